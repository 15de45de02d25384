//! The statement service's RabbitMQ side: its queues, their consumers and the outbox relay,
//! on one broker connection (see `platform::service::Service::on_broker`).

use std::sync::Arc;

use lapin::Connection;
use platform::amqp;
use platform::consumer::{consume, consume_batches};
use platform::outbox::Outbox;
use platform::shutdown::CancellationToken;
use proto::messaging::statement::{EMAILS, EVENTS, JOBS, TRANSACTIONS};

use crate::email::EmailHandler;
use crate::jobs::JobHandler;
use crate::wallet_events::TransactionCreatedHandler;

/// Statement lines recorded at once, in one statement and one commit.
const LINES_BATCH: u16 = 128;
/// Jobs, and emails, handled at once (each is long).
const JOBS_AT_ONCE: u16 = 2;

pub async fn run(
    outbox: Outbox,
    emails: Option<Arc<EmailHandler>>,
    connection: Arc<Connection>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let channel = connection.create_channel().await?;
    amqp::declare_topic_exchange(&channel, EVENTS).await?;
    amqp::declare_queue(&channel, &TRANSACTIONS).await?;
    amqp::declare_queue(&channel, &JOBS).await?;
    amqp::declare_queue(&channel, &EMAILS).await?;
    let lines = TransactionCreatedHandler {
        pool: outbox.pool().clone(),
    };
    let jobs = JobHandler {
        outbox: outbox.clone(),
        email: emails.is_some(),
    };
    let sending = async {
        match &emails {
            Some(handler) => {
                consume(
                    &connection,
                    &EMAILS,
                    JOBS_AT_ONCE,
                    handler.as_ref(),
                    &shutdown,
                )
                .await
            }
            None => {
                shutdown.cancelled().await;
                Ok(())
            }
        }
    };
    tokio::try_join!(
        outbox.relay(&connection, &shutdown),
        consume_batches(&connection, &TRANSACTIONS, LINES_BATCH, &lines, &shutdown),
        consume(&connection, &JOBS, JOBS_AT_ONCE, &jobs, &shutdown),
        sending,
    )?;
    Ok(())
}
