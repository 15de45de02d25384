//! order-service: orders and vouchers, over gRPC and RabbitMQ.
//!
//! For now the service owns its database (created and migrated at start) and a broker
//! connection, and answers the gRPC health service; its API arrives with the order capability.

use platform::amqp::BrokerStatus;
use platform::config::{ConfigError, ServiceSettings};
use platform::grpc::InternalToken;
use platform::shutdown::CancellationToken;
use sqlx::PgPool;
use tokio::net::TcpListener;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub type Config = ServiceSettings;

/// Reads this service's settings (`ORDER_DATABASE_URL`, `ORDER_GRPC_ADDR`, ...).
pub fn config_from_env(internal_token: InternalToken) -> Result<Config, ConfigError> {
    ServiceSettings::from_env("ORDER", "orders", 50054, internal_token)
}

pub struct Application {
    listener: TcpListener,
    pool: PgPool,
    config: Config,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.grpc_addr).await?;
        Self::build_with_listener(config, listener).await
    }

    /// Prepares the service on an already bound listener (tests bind port 0).
    pub async fn build_with_listener(
        config: Config,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let pool =
            platform::database::connect_and_migrate(&config.database_url, 10, &MIGRATOR).await?;
        Ok(Self {
            listener,
            pool,
            config,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let broker = BrokerStatus::default();
        tokio::spawn(platform::amqp::stay_connected(
            self.config.amqp_url.clone(),
            "order-service".to_owned(),
            broker.clone(),
            shutdown.clone(),
        ));
        platform::service::serve(
            "order-service",
            self.listener,
            tonic::service::Routes::default(),
            self.pool,
            Some(broker),
            self.config.internal_token,
            shutdown,
        )
        .await
    }
}
