//! Consuming a queue safely.
//!
//! Each delivery goes to a [`Handler`], which applies it (idempotently, recording the
//! message id in the same database transaction as the effect) and says whether it was
//! done or can never be processed. Then:
//! - done: the message is acknowledged, after the database commit;
//! - invalid: it is copied to `<queue>.dlq` with an `x-dead-letter-reason` header, and
//!   acknowledged once the broker confirmed the copy, so the consumer keeps going;
//! - a transient failure (the database is down): the handler is retried with backoff, the
//!   message held unacknowledged, never dropped and never dead-lettered for it. If the process
//!   dies meanwhile, RabbitMQ redelivers the message.
//! - the database refused one of the message's values (a NUL character, a string too long):
//!   invalid, since a retry would be refused again and hold the message for ever.

use std::future::Future;

use futures_util::TryStreamExt;
use lapin::Confirmation;
use lapin::Connection;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use tokio_util::sync::CancellationToken;

use crate::amqp::dead_letter_queue;

/// Header naming why a message was dead-lettered.
pub const REASON_HEADER: &str = "x-dead-letter-reason";

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Applied (or already applied before): acknowledge it.
    Done,
    /// It can never be processed (bad JSON, unknown type, ...): dead-letter it with the reason.
    Invalid(String),
}

pub trait Handler: Send + Sync {
    /// Applies one message. `Err` means a transient failure: it is retried.
    fn handle(&self, delivery: &Delivery) -> impl Future<Output = anyhow::Result<Verdict>> + Send;
}

/// Consumes `queue` with up to `concurrency` messages in flight until `shutdown` (then `Ok`)
/// or a broker error (then `Err`, and the caller reconnects).
pub async fn consume<H: Handler>(
    connection: &Connection,
    queue: &str,
    concurrency: u16,
    handler: &H,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    channel
        .basic_qos(concurrency, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            queue.into(),
            format!("{queue}-{}", uuid::Uuid::new_v4().simple()).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let channel = &channel;
    let processing = consumer
        .map_err(anyhow::Error::from)
        .try_for_each_concurrent(usize::from(concurrency), |delivery| async move {
            let Some(verdict) = handle_until_done(handler, &delivery, shutdown).await else {
                // Shutting down: leave it unacknowledged; RabbitMQ redelivers it.
                return Ok(());
            };
            if let Verdict::Invalid(reason) = verdict {
                tracing::warn!(
                    queue,
                    reason,
                    "dead-lettering a message that cannot be processed"
                );
                dead_letter(channel, queue, &delivery, &reason).await?;
            }
            delivery.ack(BasicAckOptions::default()).await?;
            Ok(())
        });
    tokio::select! {
        () = shutdown.cancelled() => Ok(()),
        result = processing => result.and(Err(anyhow::anyhow!("the consumer of {queue} was cancelled"))),
    }
}

/// Retries the handler while it fails transiently; `None` when shutdown interrupts.
async fn handle_until_done<H: Handler>(
    handler: &H,
    delivery: &Delivery,
    shutdown: &CancellationToken,
) -> Option<Verdict> {
    let mut attempt = 0;
    loop {
        match handler.handle(delivery).await {
            Ok(verdict) => return Some(verdict),
            Err(error) if let Some(refusal) = crate::database::refused_value(&error) => {
                return Some(Verdict::Invalid(format!(
                    "the database refused a value: {refusal}"
                )));
            }
            Err(error) => {
                attempt += 1;
                tracing::warn!(
                    error = format!("{error:#}"),
                    attempt,
                    "cannot apply a message yet; retrying"
                );
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(crate::database::backoff(attempt)) => {}
        }
    }
}

/// Copies `delivery` to the dead-letter queue with the reason, and waits for the broker's
/// confirmation.
async fn dead_letter(
    channel: &lapin::Channel,
    queue: &str,
    delivery: &Delivery,
    reason: &str,
) -> anyhow::Result<()> {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    headers.insert(REASON_HEADER.into(), AMQPValue::LongString(reason.into()));
    headers.insert(
        "x-original-queue".into(),
        AMQPValue::LongString(queue.into()),
    );
    let properties = delivery
        .properties
        .clone()
        .with_headers(headers)
        .with_delivery_mode(2);
    let confirm = channel
        .basic_publish(
            "".into(),
            dead_letter_queue(queue).as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            &delivery.data,
            properties,
        )
        .await?
        .await?;
    match confirm {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
        _ => anyhow::bail!("the dead-letter queue of {queue} did not take the message"),
    }
}

/// The value of a string header, if present.
pub fn header(delivery: &Delivery, name: &str) -> Option<String> {
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(value) => Some(value.to_string()),
        AMQPValue::ShortString(value) => Some(value.as_str().to_owned()),
        _ => None,
    }
}
