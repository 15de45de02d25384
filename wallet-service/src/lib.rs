//! wallet-service: one EUR wallet per user and an append-only ledger, over gRPC
//! (`wallet.v1`) and RabbitMQ.
//!
//! Layout:
//! - [`money`], [`transaction`]: amounts, transaction types and the rules, as pure code.
//! - [`ledger`]: applying a transaction and reading balances and history in PostgreSQL.
//! - [`create`], [`idempotency`]: the API path with `Idempotency-Key`.
//! - [`requests`]: transaction requests consumed from RabbitMQ (and the legacy envelope).
//! - [`order_payments`]: order payments and refunds, from `order.events`.
//! - [`events`]: `transaction.created` / `transaction.rejected`, always via the outbox.
//! - [`messaging`]: the topology, consumers and outbox relay on one supervised connection.
//! - [`grpc`]: the thin gRPC layer; [`error`]: errors mapped to gRPC statuses once.

pub mod create;
pub mod error;
pub mod events;
pub mod grpc;
pub mod idempotency;
pub mod ledger;
pub mod messaging;
pub mod money;
pub mod order_payments;
pub mod requests;
pub mod transaction;

use std::time::Duration;

use platform::amqp::BrokerStatus;
use platform::config::{ConfigError, ServiceSettings};
use platform::grpc::InternalToken;
use platform::shutdown::CancellationToken;
use proto::wallet::v1::wallet_service_server::WalletServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub type Config = ServiceSettings;

/// Reads this service's settings (`WALLET_DATABASE_URL`, `WALLET_GRPC_ADDR`, `AMQP_URL`, ...).
pub fn config_from_env(internal_token: InternalToken) -> Result<Config, ConfigError> {
    ServiceSettings::from_env("WALLET", "wallet", 50052, internal_token)
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
        let pool = platform::database::connect_and_migrate(
            &config.database_url,
            config.database_max_connections,
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
        let broker = BrokerStatus::default();
        let messaging = tokio::spawn(messaging::run(
            self.pool.clone(),
            self.config.amqp_url.clone(),
            broker.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(prune_idempotency_keys(self.pool.clone(), shutdown.clone()));
        tokio::spawn(platform::outbox::prune_hourly(
            self.pool.clone(),
            shutdown.clone(),
        ));
        let routes = tonic::service::Routes::new(WalletServiceServer::new(grpc::WalletApi {
            pool: self.pool.clone(),
        }));
        let served = platform::service::serve(
            "wallet-service",
            self.listener,
            routes,
            self.pool,
            Some(broker),
            self.config.internal_token,
            shutdown,
        )
        .await;
        // Let the consumers and the relay finish their current message.
        let _ = tokio::time::timeout(Duration::from_secs(10), messaging).await;
        served
    }
}

/// Hourly clean-up of expired idempotency keys.
async fn prune_idempotency_keys(pool: PgPool, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
        if let Err(error) = idempotency::prune(&pool).await {
            tracing::warn!(%error, "cannot prune idempotency keys");
        }
    }
}
