//! The wallet's RabbitMQ side: its topology, the consumers of transaction requests and of
//! order payments, and the outbox relay, all on one broker connection (see
//! `platform::service::Service::on_broker`).

use std::sync::Arc;

use lapin::Connection;
use platform::amqp;
use platform::consumer::consume_batches;
use platform::outbox::Outbox;
use platform::shutdown::CancellationToken;
use proto::messaging::wallet::{
    EVENTS, LEGACY_REQUESTS, ORDER_OUTCOMES, ORDER_PAYMENTS, TRANSACTION_REQUESTS,
};

use crate::order_payments::OrderPaymentHandler;
use crate::requests::{Format, RequestHandler};

/// Transaction requests (and order payments) applied at once, in one database transaction
/// (see `requests::apply_all`), then acknowledged together.
const BATCH: u16 = 64;

pub async fn run(
    outbox: Outbox,
    connection: Arc<Connection>,
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
    tokio::try_join!(
        outbox.relay(&connection, &shutdown),
        consume_batches(
            &connection,
            &TRANSACTION_REQUESTS,
            BATCH,
            &requests,
            &shutdown
        ),
        consume_batches(&connection, &LEGACY_REQUESTS, BATCH, &legacy, &shutdown),
        consume_batches(&connection, &ORDER_PAYMENTS, BATCH, &orders, &shutdown),
    )?;
    Ok(())
}
