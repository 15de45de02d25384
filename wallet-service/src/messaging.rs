//! The wallet's RabbitMQ side: its topology, the consumers of transaction requests and of
//! order payments, and the outbox relay, all on one broker connection (see
//! `platform::service::Service::on_broker`).

use std::sync::Arc;

use lapin::Connection;
use platform::amqp;
use platform::consumer::{consume_batches, consume_in_lanes};
use platform::outbox::Outbox;
use platform::shutdown::CancellationToken;
use proto::messaging::wallet::{
    EVENTS, LEGACY_REQUESTS, ORDER_OUTCOMES, ORDER_PAYMENTS, TRANSACTION_REQUESTS,
};

use crate::group_commit::Settings;
use crate::order_payments::OrderPaymentHandler;
use crate::requests::{Format, RequestHandler};

/// Order payments applied at once, in one database transaction (see `requests::apply_all`),
/// then acknowledged together. One lane: a payout event credits several wallets, so it has no
/// one wallet to be ordered by.
const ORDER_BATCH: u16 = 64;

/// Runs the wallet's side of the broker on `connection`. Transaction requests are applied in
/// batches of up to `batches.max_size`, `batches.request_lanes` at once per queue, one
/// wallet's requests always in the same lane and so in the order they came, as the API's
/// group commit does.
pub async fn run(
    outbox: Outbox,
    connection: Arc<Connection>,
    batches: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let channel = connection.create_channel().await?;
    amqp::declare_forwarding_exchange(&channel, ORDER_OUTCOMES, EVENTS).await?;
    amqp::declare_queue(&channel, &TRANSACTION_REQUESTS).await?;
    // Declared as legacy publishers declare it; earlier versions declared it otherwise.
    amqp::declare_queue_or_keep_old(&connection, &LEGACY_REQUESTS).await?;
    amqp::declare_queue(&channel, &ORDER_PAYMENTS).await?;
    let requests = RequestHandler {
        outbox: outbox.clone(),
        queue: TRANSACTION_REQUESTS.name,
        format: Format::Platform,
    };
    let legacy = RequestHandler {
        outbox: outbox.clone(),
        queue: LEGACY_REQUESTS.name,
        format: Format::Legacy,
    };
    let orders = OrderPaymentHandler {
        outbox: outbox.clone(),
    };
    let batch = u16::try_from(batches.max_size).unwrap_or(u16::MAX);
    let lanes = u16::try_from(batches.request_lanes).unwrap_or(u16::MAX);
    tokio::try_join!(
        outbox.relay(&connection, &shutdown),
        consume_in_lanes(
            &connection,
            &TRANSACTION_REQUESTS,
            batch,
            lanes,
            &requests,
            &shutdown
        ),
        consume_in_lanes(
            &connection,
            &LEGACY_REQUESTS,
            batch,
            lanes,
            &legacy,
            &shutdown
        ),
        consume_batches(
            &connection,
            &ORDER_PAYMENTS,
            ORDER_BATCH,
            &orders,
            &shutdown
        ),
    )?;
    Ok(())
}
