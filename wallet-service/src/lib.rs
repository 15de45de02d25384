//! wallet-service: one EUR wallet per user and an append-only ledger, over gRPC
//! (`wallet.v1`) and RabbitMQ.
//!
//! Layout:
//! - [`money`], [`transaction`]: amounts, transaction types and the rules, as pure code.
//! - [`ledger`]: applying a transaction and reading balances and history in PostgreSQL.
//! - [`history`]: the balance at the end of each of the last days, for charts.
//! - [`create`], [`idempotency`]: the API path with `Idempotency-Key`.
//! - [`group_commit`]: API requests applied many to a database transaction.
//! - [`requests`]: transaction requests consumed from RabbitMQ (and the legacy envelope).
//! - [`order_payments`]: order payments and refunds, from `order.events`.
//! - [`events`]: `transaction.created` / `transaction.rejected`, always via the outbox.
//! - [`messaging`]: the topology, consumers and outbox relay on one broker connection.
//! - [`grpc`]: the thin gRPC layer, where errors become statuses; [`error`]: what goes wrong.

pub mod create;
pub mod error;
pub mod events;
pub mod group_commit;
pub mod grpc;
pub mod history;
pub mod idempotency;
pub mod ledger;
pub mod messaging;
pub mod money;
pub mod order_payments;
pub mod requests;
pub mod transaction;

use platform::config::{ConfigError, ServiceSettings};
use platform::grpc::InternalToken;
use platform::service::Service;
use proto::wallet::v1::wallet_service_server::WalletServiceServer;
use tokio::net::TcpListener;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceSettings,
    pub group_commit: group_commit::Settings,
}

impl Config {
    /// Reads `WALLET_DATABASE_URL`, `WALLET_GRPC_ADDR`, `AMQP_URL`, `WALLET_BATCH_*`, ...
    pub fn from_env(internal_token: InternalToken) -> Result<Self, ConfigError> {
        Ok(Self {
            service: ServiceSettings::from_env("WALLET", "wallet", 50052, internal_token)?,
            group_commit: group_commit::Settings::from_env()?,
        })
    }
}

/// The wallet service on `listener`, ready to run.
pub async fn build(config: Config, listener: TcpListener) -> anyhow::Result<Service> {
    let mut service = Service::build("wallet-service", config.service, &MIGRATOR, listener).await?;
    let outbox = service.outbox();
    service.prune_hourly("prune idempotency keys", idempotency::KEYS.prune());
    let messaging = outbox.clone();
    let request_batches = config.group_commit;
    service.on_broker(move |connection, shutdown| {
        messaging::run(messaging.clone(), connection, request_batches, shutdown)
    });
    let batches = group_commit::GroupCommit::start(&outbox, config.group_commit);
    service.grpc(tonic::service::Routes::new(WalletServiceServer::new(
        grpc::WalletApi { outbox, batches },
    )));
    Ok(service)
}
