//! order-service: a catalogue of products with server-set prices and stock, orders of them
//! paid from the wallet through events, and the vouchers large orders earn, over gRPC
//! (`order.v1`) and RabbitMQ.
//!
//! The payment story: creating an order queues `order.payment_requested` (outbox); the
//! wallet makes the purchase and publishes `transaction.created` or `transaction.rejected`
//! with reference `order:<id>`; [`payment_outcomes`] moves the order to `paid` or
//! `payment_failed`. Cancelling a paid order publishes `order.cancelled` with the payment,
//! and the wallet refunds it; a payment that arrives after the order ended is refunded the
//! same way.
//!
//! Layout:
//! - [`order`]: the status machine, items and totals, as pure code.
//! - [`orders`]: orders in PostgreSQL; every status change goes through one function;
//!   [`idempotency`]: `Idempotency-Key` on new orders.
//! - [`product`]: the catalogue's rules and an order's pricing, as pure code; [`products`]:
//!   the catalogue in PostgreSQL and the stock orders reserve, sell and give back.
//! - [`payout`]: how a delivered order's total is shared between its sellers; [`sales`]: a
//!   seller's sales and payouts.
//! - [`vouchers`]: issuing, redeeming and giving back vouchers.
//! - [`events`]: what order-service publishes, always through the outbox.
//! - [`payment_outcomes`], [`voucher_issuing`]: the consumers; [`messaging`]: topology,
//!   consumers and outbox relay on one broker connection.
//! - [`expiry`]: unpaid orders expire from the database's clock, not an in-memory timer.
//! - [`grpc`]: the thin gRPC layer; [`error`]: errors mapped to gRPC statuses once.

pub mod error;
pub mod events;
pub mod expiry;
pub mod grpc;
pub mod idempotency;
pub mod messaging;
pub mod order;
pub mod orders;
pub mod payment_outcomes;
pub mod payout;
pub mod product;
pub mod products;
pub mod sales;
pub mod voucher_issuing;
pub mod vouchers;

use std::time::Duration;

use platform::config::{self, ConfigError, ServiceSettings};
use platform::grpc::InternalToken;
use platform::service::Service;
use proto::order::v1::order_service_server::OrderServiceServer;
use tokio::net::TcpListener;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How often unpaid orders are checked for expiry.
const EXPIRY_SWEEP: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceSettings,
    /// Unpaid orders (`pending_payment`, `payment_failed`) expire this long after creation.
    pub payment_timeout: Duration,
}

impl Config {
    /// Reads `ORDER_DATABASE_URL`, `ORDER_GRPC_ADDR`, `ORDER_PAYMENT_TIMEOUT_SECS`, ...
    pub fn from_env(internal_token: InternalToken) -> Result<Self, ConfigError> {
        Ok(Self {
            service: ServiceSettings::from_env("ORDER", "orders", 50054, internal_token)?,
            payment_timeout: config::seconds_or("ORDER_PAYMENT_TIMEOUT_SECS", 900)?,
        })
    }
}

/// The order service on `listener`, ready to run.
pub async fn build(config: Config, listener: TcpListener) -> anyhow::Result<Service> {
    let mut service = Service::build("order-service", config.service, &MIGRATOR, listener).await?;
    let outbox = service.outbox();
    let expiring = outbox.clone();
    service.every(EXPIRY_SWEEP, "expire unpaid orders", move || {
        let outbox = expiring.clone();
        async move { expiry::sweep(&outbox).await }
    });
    service.prune_hourly("prune order idempotency keys", idempotency::KEYS.prune());
    let messaging = outbox.clone();
    service.on_broker(move |connection, shutdown| {
        messaging::run(messaging.clone(), connection, shutdown)
    });
    service.grpc(tonic::service::Routes::new(OrderServiceServer::new(
        grpc::OrderApi {
            outbox,
            payment_timeout: config.payment_timeout,
        },
    )));
    Ok(service)
}
