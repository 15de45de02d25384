//! The wallet's RabbitMQ side: its topology, the consumers of transaction requests and of
//! order payments, and the outbox relay, all on one supervised connection that is
//! re-established after any broker failure.

use platform::amqp::{self, BrokerStatus};
use platform::consumer::consume_batches;
use platform::shutdown::CancellationToken;
use secrecy::SecretString;
use sqlx::PgPool;

use crate::events::{EXCHANGE, ORDER_OUTCOMES_EXCHANGE};
use crate::order_payments::{self, OrderPaymentHandler};
use crate::requests::{COMPAT_QUEUE, Format, REQUESTS_QUEUE, RequestHandler};

/// Transaction requests (and order payments) applied at once, each in its own
/// transaction, then acknowledged together.
const BATCH: u16 = 64;

pub async fn run(
    pool: PgPool,
    url: SecretString,
    status: BrokerStatus,
    shutdown: CancellationToken,
) {
    let stop = shutdown.clone();
    amqp::supervise(
        url,
        "wallet-service".into(),
        status,
        shutdown,
        move |connection| {
            let pool = pool.clone();
            let shutdown = stop.clone();
            async move {
                let channel = connection.create_channel().await?;
                amqp::declare_forwarding_exchange(&channel, ORDER_OUTCOMES_EXCHANGE, EXCHANGE)
                    .await?;
                amqp::declare_queue_with_dlq(&channel, REQUESTS_QUEUE).await?;
                amqp::declare_queue_with_dlq(&channel, COMPAT_QUEUE).await?;
                amqp::declare_subscription(
                    &channel,
                    order_payments::QUEUE,
                    order_payments::ORDER_EXCHANGE,
                    &order_payments::ROUTING_KEYS,
                )
                .await?;
                let requests = RequestHandler {
                    pool: pool.clone(),
                    queue: REQUESTS_QUEUE,
                    format: Format::Platform,
                };
                let legacy = RequestHandler {
                    pool: pool.clone(),
                    queue: COMPAT_QUEUE,
                    format: Format::Legacy,
                };
                let orders = OrderPaymentHandler { pool: pool.clone() };
                tokio::try_join!(
                    platform::outbox::relay(pool, &connection, &shutdown),
                    consume_batches(&connection, REQUESTS_QUEUE, BATCH, &requests, &shutdown),
                    consume_batches(&connection, COMPAT_QUEUE, BATCH, &legacy, &shutdown),
                    consume_batches(
                        &connection,
                        order_payments::QUEUE,
                        BATCH,
                        &orders,
                        &shutdown
                    ),
                )?;
                Ok(())
            }
        },
    )
    .await;
}
