//! order-service: orders paid from the wallet through events, and the vouchers large orders
//! earn, over gRPC (`order.v1`) and RabbitMQ.
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
//! - [`orders`]: orders in PostgreSQL; every status change goes through one function.
//! - [`vouchers`]: issuing, redeeming and giving back vouchers.
//! - [`events`]: what order-service publishes, always through the outbox.
//! - [`payment_outcomes`], [`voucher_issuing`]: the consumers; [`messaging`]: topology,
//!   consumers and outbox relay on one supervised connection.
//! - [`expiry`]: unpaid orders expire from the database's clock, not an in-memory timer.
//! - [`grpc`]: the thin gRPC layer; [`error`]: errors mapped to gRPC statuses once.

pub mod error;
pub mod events;
pub mod expiry;
pub mod grpc;
pub mod messaging;
pub mod order;
pub mod orders;
pub mod payment_outcomes;
pub mod voucher_issuing;
pub mod vouchers;

use std::time::Duration;

use platform::amqp::BrokerStatus;
use platform::config::{self, ConfigError, ServiceSettings};
use platform::grpc::InternalToken;
use platform::shutdown::CancellationToken;
use proto::order::v1::order_service_server::OrderServiceServer;
use sqlx::PgPool;
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

/// Reads this service's settings (`ORDER_DATABASE_URL`, `ORDER_GRPC_ADDR`,
/// `ORDER_PAYMENT_TIMEOUT_SECS`, ...).
pub fn config_from_env(internal_token: InternalToken) -> Result<Config, ConfigError> {
    Ok(Config {
        service: ServiceSettings::from_env("ORDER", "orders", 50054, internal_token)?,
        payment_timeout: config::seconds_or("ORDER_PAYMENT_TIMEOUT_SECS", 900)?,
    })
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
        let broker = BrokerStatus::default();
        let messaging = tokio::spawn(messaging::run(
            self.pool.clone(),
            self.config.service.amqp_url.clone(),
            broker.clone(),
            shutdown.clone(),
        ));
        let expiry = tokio::spawn(expiry::run(
            self.pool.clone(),
            EXPIRY_SWEEP,
            shutdown.clone(),
        ));
        tokio::spawn(platform::outbox::prune_hourly(
            self.pool.clone(),
            shutdown.clone(),
        ));
        let routes = tonic::service::Routes::new(OrderServiceServer::new(grpc::OrderApi {
            pool: self.pool.clone(),
            payment_timeout: self.config.payment_timeout,
        }));
        let served = platform::service::serve(
            "order-service",
            self.listener,
            routes,
            self.pool,
            Some(broker),
            self.config.service.internal_token,
            shutdown,
        )
        .await;
        // Let the consumers, the relay and a sweep finish their current work.
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            let _ = tokio::join!(messaging, expiry);
        })
        .await;
        served
    }
}
