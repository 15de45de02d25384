//! statement-service: statements built from wallet events, over gRPC (`statement.v1`), with
//! long periods generated as background jobs from a RabbitMQ queue.
//!
//! Layout:
//! - [`period`]: statement periods (pure); [`lines`]: statement lines and statements.
//! - [`wallet_events`]: the `transaction.created` consumer that records lines.
//! - [`jobs`]: long statements as jobs; [`csv`]: their CSV; [`email`]: emailing them.
//! - [`events`]: `statement.generated`; [`messaging`]: queues, consumers and the relay.
//! - [`grpc`]: the thin gRPC layer; [`error`]: errors mapped to gRPC statuses once.

pub mod config;
pub mod csv;
pub mod email;
pub mod error;
pub mod events;
pub mod grpc;
pub mod jobs;
pub mod lines;
pub mod messaging;
pub mod period;
pub mod wallet_events;

use std::sync::Arc;
use std::time::Duration;

use platform::amqp::BrokerStatus;
use platform::config::ConfigError;
use platform::grpc::{InternalToken, WithInternalToken};
use platform::shutdown::CancellationToken;
use proto::auth::v1::auth_service_client::AuthServiceClient;
use proto::statement::v1::statement_service_server::StatementServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;

pub use config::Config;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Reads this service's settings (`STATEMENT_DATABASE_URL`, `STATEMENT_GRPC_ADDR`, ...).
pub fn config_from_env(internal_token: InternalToken) -> Result<Config, ConfigError> {
    Config::from_env(internal_token)
}

pub struct Application {
    listener: TcpListener,
    pool: PgPool,
    config: Config,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.service.grpc_addr).await?;
        Self::build_with_listener(config, listener).await
    }

    /// Prepares the service on an already bound listener (tests bind port 0).
    pub async fn build_with_listener(
        config: Config,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let pool = platform::database::connect_and_migrate(
            &config.service.database_url,
            config.service.database_max_connections,
            &MIGRATOR,
        )
        .await?;
        Ok(Self {
            listener,
            pool,
            config,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let service = self.config.service;
        let emails = self.config.smtp.map(|smtp| {
            let auth = AuthServiceClient::new(InterceptedService::new(
                platform::grpc::channel(&self.config.auth_addr, Duration::from_secs(10)),
                WithInternalToken::new(service.internal_token.clone()),
            ));
            Arc::new(email::EmailHandler::new(self.pool.clone(), smtp, auth))
        });
        let broker = BrokerStatus::default();
        let messaging = tokio::spawn(messaging::run(
            self.pool.clone(),
            service.amqp_url.clone(),
            emails,
            broker.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(platform::outbox::prune_hourly(
            self.pool.clone(),
            shutdown.clone(),
        ));
        let routes = tonic::service::Routes::new(StatementServiceServer::new(grpc::StatementApi {
            pool: self.pool.clone(),
            sync_max_days: self.config.sync_max_days,
        }));
        let served = platform::service::serve(
            "statement-service",
            self.listener,
            routes,
            self.pool,
            Some(broker),
            service.internal_token,
            shutdown,
        )
        .await;
        let _ = tokio::time::timeout(Duration::from_secs(10), messaging).await;
        served
    }
}
