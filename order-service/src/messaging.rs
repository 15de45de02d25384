//! order-service's RabbitMQ side: its topology, the consumers of payment outcomes and of
//! `order.sent`, and the outbox relay, all on one broker connection (see
//! `platform::service::Service::on_broker`).

use std::sync::Arc;

use lapin::Connection;
use lapin::types::FieldTable;
use platform::amqp;
use platform::consumer::consume;
use platform::outbox::Outbox;
use platform::shutdown::CancellationToken;
use proto::messaging::order::{PAYMENT_OUTCOMES, VOUCHER_ISSUING};
use proto::messaging::wallet::ORDER_PAYMENTS;

use crate::payment_outcomes::{ALL_WALLET_EVENTS, PaymentOutcomeHandler};
use crate::voucher_issuing::VoucherIssuingHandler;

/// Messages of one queue processed at once.
const CONCURRENCY: u16 = 32;

pub async fn run(
    outbox: Outbox,
    connection: Arc<Connection>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let channel = connection.create_channel().await?;
    amqp::declare_queue(&channel, &PAYMENT_OUTCOMES).await?;
    unbind_from_all_wallet_events(&channel).await?;
    amqp::declare_queue(&channel, &VOUCHER_ISSUING).await?;
    // The wallet's queue of order payments, declared by their producer too: a payment
    // request must not be dropped as unroutable because the wallet never ran yet.
    amqp::declare_queue(&channel, &ORDER_PAYMENTS).await?;
    let outcomes = PaymentOutcomeHandler {
        outbox: outbox.clone(),
    };
    let vouchers = VoucherIssuingHandler {
        outbox: outbox.clone(),
    };
    tokio::try_join!(
        outbox.relay(&connection, &shutdown),
        consume(
            &connection,
            &PAYMENT_OUTCOMES,
            CONCURRENCY,
            &outcomes,
            &shutdown
        ),
        consume(
            &connection,
            &VOUCHER_ISSUING,
            CONCURRENCY,
            &vouchers,
            &shutdown
        ),
    )?;
    Ok(())
}

/// Removes the bindings of the payment outcomes queue to `wallet.events` that earlier
/// versions made: through them every deposit reached the queue only to be ignored. Removing a
/// binding that is not there does nothing.
async fn unbind_from_all_wallet_events(channel: &lapin::Channel) -> lapin::Result<()> {
    // Unbinding from a missing exchange would be an error.
    amqp::declare_topic_exchange(channel, ALL_WALLET_EVENTS).await?;
    for key in PAYMENT_OUTCOMES.routing_keys {
        channel
            .queue_unbind(
                PAYMENT_OUTCOMES.name.into(),
                ALL_WALLET_EVENTS.into(),
                (*key).into(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}
