//! order-service's RabbitMQ side: its topology, the consumers of payment outcomes and of
//! `order.sent`, and the outbox relay, all on one supervised connection that is
//! re-established after any broker failure.

use lapin::types::FieldTable;
use platform::amqp::{self, BrokerStatus};
use platform::consumer::consume;
use platform::shutdown::CancellationToken;
use secrecy::SecretString;
use sqlx::PgPool;

use crate::events::{EXCHANGE, ORDER_SENT, WALLET_PAYMENTS_KEYS, WALLET_PAYMENTS_QUEUE};
use crate::payment_outcomes::{self, PaymentOutcomeHandler};
use crate::voucher_issuing::{self, VoucherIssuingHandler};

/// Messages of one queue processed at once.
const CONCURRENCY: u16 = 32;

pub async fn run(
    pool: PgPool,
    url: SecretString,
    status: BrokerStatus,
    shutdown: CancellationToken,
) {
    let stop = shutdown.clone();
    amqp::supervise(
        url,
        "order-service".into(),
        status,
        shutdown,
        move |connection| {
            let pool = pool.clone();
            let shutdown = stop.clone();
            async move {
                let channel = connection.create_channel().await?;
                amqp::declare_subscription(
                    &channel,
                    payment_outcomes::QUEUE,
                    payment_outcomes::WALLET_EXCHANGE,
                    &payment_outcomes::ROUTING_KEYS,
                )
                .await?;
                unbind_from_all_wallet_events(&channel).await?;
                amqp::declare_subscription(
                    &channel,
                    voucher_issuing::QUEUE,
                    EXCHANGE,
                    &[ORDER_SENT],
                )
                .await?;
                // The wallet's queue, declared by the producer too (see `WALLET_PAYMENTS_QUEUE`).
                amqp::declare_subscription(
                    &channel,
                    WALLET_PAYMENTS_QUEUE,
                    EXCHANGE,
                    &WALLET_PAYMENTS_KEYS,
                )
                .await?;
                let outcomes = PaymentOutcomeHandler { pool: pool.clone() };
                let vouchers = VoucherIssuingHandler { pool: pool.clone() };
                tokio::try_join!(
                    platform::outbox::relay(pool, &connection, &shutdown),
                    consume(
                        &connection,
                        payment_outcomes::QUEUE,
                        CONCURRENCY,
                        &outcomes,
                        &shutdown
                    ),
                    consume(
                        &connection,
                        voucher_issuing::QUEUE,
                        CONCURRENCY,
                        &vouchers,
                        &shutdown
                    ),
                )?;
                Ok(())
            }
        },
    )
    .await;
}

/// Removes the bindings of the payment outcomes queue to `wallet.events` that earlier
/// versions made: through them every deposit reached the queue only to be ignored. Removing a
/// binding that is not there does nothing.
async fn unbind_from_all_wallet_events(channel: &lapin::Channel) -> lapin::Result<()> {
    // Unbinding from a missing exchange would be an error.
    amqp::declare_topic_exchange(channel, payment_outcomes::ALL_WALLET_EVENTS).await?;
    for key in payment_outcomes::ROUTING_KEYS {
        channel
            .queue_unbind(
                payment_outcomes::QUEUE.into(),
                payment_outcomes::ALL_WALLET_EVENTS.into(),
                key.into(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}
