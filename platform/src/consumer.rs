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
//!
//! [`consume_batches`] does the same for a [`BatchHandler`], which applies the messages
//! waiting at a time together (one database transaction where it can) and acknowledges
//! them at once.
//!
//! Before a handler sees a delivery, the consumer dead-letters, unread:
//! - on a queue only the platform publishes to ([`Publishers::Platform`]), a message whose
//!   `user_id` property is not the platform's own broker user (the user of the consuming
//!   connection), with the reason `untrusted-publisher`. RabbitMQ refuses a `user_id` other
//!   than the publishing connection's user, so another system cannot forge it; and any broker
//!   user that may publish reaches every queue through the default exchange, so this is what
//!   keeps other systems from posing as the platform.
//! - a body over [`MAX_MESSAGE_BYTES`].
//!
//! Reasons are cut to [`MAX_REASON_BYTES`]: they may quote the message, which the publisher
//! chose.

use std::collections::BTreeSet;
use std::future::Future;

use backon::Retryable;
use futures_util::{StreamExt, TryStreamExt};
use lapin::Confirmation;
use lapin::Connection;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::amqp::{Publishers, Queue, dead_letter_queue};

/// Header naming why a message was dead-lettered.
pub const REASON_HEADER: &str = "x-dead-letter-reason";
/// Header of a dead-lettered copy holding the `user_id` the original carried: the copy is
/// published by the platform, so it carries the platform's own.
pub const ORIGINAL_USER_HEADER: &str = "x-original-user-id";

/// The largest body a consumer reads; a larger message is dead-lettered unread. Every
/// message of the contract is far smaller (a transaction request is under 1 KiB, with a
/// 500-character description), and a consumer holds up to its prefetch of them in memory.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The most bytes of a dead-letter reason (and so of any part of the message it quotes).
pub const MAX_REASON_BYTES: usize = 256;

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

/// A handler that applies several messages at once.
pub trait BatchHandler: Send + Sync {
    /// A message read and checked, ready to apply.
    type Message: Send + Sync;
    /// Reads one delivery: the message, or why it can never be processed.
    fn read(&self, delivery: &Delivery) -> Result<Self::Message, String>;
    /// Messages of one key are applied in the order they came, one batch after the other;
    /// [`consume_in_lanes`] may apply messages of different keys side by side. By default
    /// every message has the same key.
    fn order_key(&self, _message: &Self::Message) -> u128 {
        0
    }
    /// Applies `messages` together (in one database transaction where it can), each once
    /// per message id. `Err` means a transient failure: they are all retried, so those
    /// applied already must be found in the inbox and left alone.
    fn apply(&self, messages: &[Self::Message]) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// A channel with publisher confirms (for the dead-letter copies) consuming `queue` with up
/// to `prefetch` messages unacknowledged.
async fn subscribe(
    connection: &Connection,
    queue: &str,
    prefetch: u16,
) -> anyhow::Result<(lapin::Channel, lapin::Consumer)> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            queue.into(),
            format!("{queue}-{}", uuid::Uuid::new_v4().simple()).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((channel, consumer))
}

/// Who a consumer of `queue` takes messages from: the platform's broker user, that of the
/// consuming connection (see the module's documentation).
struct Gate<'a> {
    queue: &'a Queue,
    platform_user: String,
}

impl<'a> Gate<'a> {
    fn new(connection: &Connection, queue: &'a Queue) -> Self {
        Self {
            queue,
            platform_user: connection.status().username(),
        }
    }

    /// Why `delivery` must be dead-lettered unread, if it must.
    fn refusal(&self, delivery: &Delivery) -> Option<String> {
        if self.queue.publishers == Publishers::Platform {
            let user = delivery.properties.user_id().as_ref();
            if user.is_none_or(|user| user.as_str() != self.platform_user) {
                return Some(proto::messaging::UNTRUSTED_PUBLISHER.to_owned());
            }
        }
        let size = delivery.data.len();
        (size > MAX_MESSAGE_BYTES)
            .then(|| format!("message too large: {size} bytes, the limit is {MAX_MESSAGE_BYTES}"))
    }
}

/// Consumes `queue` with up to `concurrency` messages in flight until `shutdown` (then `Ok`)
/// or a broker error (then `Err`, and the caller reconnects).
pub async fn consume<H: Handler>(
    connection: &Connection,
    queue: &Queue,
    concurrency: u16,
    handler: &H,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let gate = &Gate::new(connection, queue);
    let queue = queue.name;
    let (channel, consumer) = subscribe(connection, queue, concurrency).await?;
    let channel = &channel;
    let processing = consumer
        .map_err(anyhow::Error::from)
        .try_for_each_concurrent(usize::from(concurrency), |delivery| {
            let span = consume_span(queue, 1);
            crate::trace_context::continue_from_delivery(&span, &delivery);
            handle_delivery(channel, gate, handler, delivery, shutdown).instrument(span)
        });
    tokio::select! {
        () = shutdown.cancelled() => Ok(()),
        result = processing => result.and(Err(anyhow::anyhow!("the consumer of {queue} was cancelled"))),
    }
}

/// The span of applying `count` messages of `queue`, made only when spans are exported.
fn consume_span(queue: &str, count: usize) -> tracing::Span {
    crate::trace_context::span_if_enabled(|| {
        tracing::info_span!(
            "consume",
            service.name = crate::telemetry::program(),
            messaging.destination.name = queue,
            messaging.batch.message_count = count,
            otel.kind = "consumer",
        )
    })
}

/// Handles one delivery of [`consume`], dead-letters it if it is invalid, and acknowledges it.
async fn handle_delivery<H: Handler>(
    channel: &lapin::Channel,
    gate: &Gate<'_>,
    handler: &H,
    delivery: Delivery,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let verdict = match gate.refusal(&delivery) {
        Some(reason) => Verdict::Invalid(reason),
        None => match handle_until_done(handler, &delivery, shutdown).await {
            Some(verdict) => verdict,
            // Shutting down: leave it unacknowledged; RabbitMQ redelivers it.
            None => return Ok(()),
        },
    };
    if let Verdict::Invalid(reason) = verdict {
        dead_letter(channel, gate, &delivery, &reason).await?;
    }
    delivery.ack(BasicAckOptions::default()).await?;
    Ok(())
}

/// Consumes `queue` as [`consume`] does, but applies the messages in batches: all those
/// waiting when the previous batch is done, up to `batch`, in one call to
/// [`BatchHandler::apply`], then acknowledged at once. Under load many messages share a
/// database commit and an acknowledgement; when the queue is quiet a batch is one message,
/// applied as soon as it arrives.
pub async fn consume_batches<H: BatchHandler>(
    connection: &Connection,
    queue: &Queue,
    batch: u16,
    handler: &H,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    consume_in_lanes(connection, queue, batch, 1, handler, shutdown).await
}

/// Consumes `queue` as [`consume_batches`] does, with up to `lanes` batches applied at once.
/// Each message goes to the lane of its [`BatchHandler::order_key`], and a lane applies its
/// batches one after the other, so the messages of one key keep their order while the others
/// go side by side: while one batch waits for its commit, the others use the CPU.
///
/// A message is acknowledged once it and every message delivered before it are done (lanes
/// finish out of order, and an acknowledgement with `multiple` covers every earlier one).
pub async fn consume_in_lanes<H: BatchHandler>(
    connection: &Connection,
    queue: &Queue,
    batch: u16,
    lanes: u16,
    handler: &H,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let gate = &Gate::new(connection, queue);
    let name = queue.name;
    let batch = usize::from(batch.max(1));
    let lanes = lanes.max(1);
    // Twice a batch per lane, so that each lane's next batch arrives while this one is applied.
    let prefetch = u16::try_from(batch * usize::from(lanes) * 2).unwrap_or(u16::MAX);
    let (channel, mut consumer) = subscribe(connection, name, prefetch).await?;
    let channel = &channel;
    let acks = &Acks::default();
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..lanes).map(|_| mpsc::unbounded_channel()).unzip();
    // Reads each delivery (the prefetch bounds how many wait in the lanes) and hands it to its
    // lane. An invalid one has no key; any lane dead-letters it.
    let dispatching = async move {
        while let Some(delivery) = consumer.next().await {
            let delivery = delivery?;
            let read = gate
                .refusal(&delivery)
                .map_or_else(|| handler.read(&delivery), Err);
            let lane = read.as_ref().map_or(0, |message| {
                usize::try_from(handler.order_key(message) % u128::from(lanes)).unwrap_or(0)
            });
            if senders[lane].send((delivery, read)).is_err() {
                // The lane stopped: shutting down (or its error ends the consumer).
                return Ok(());
            }
        }
        Err(anyhow::anyhow!("the consumer of {name} was cancelled"))
    };
    let applying = receivers.into_iter().map(|receiver| async move {
        run_lane(handler, gate, channel, acks, receiver, batch, shutdown).await
    });
    let processing = async {
        tokio::try_join!(dispatching, futures_util::future::try_join_all(applying)).map(|_| ())
    };
    tokio::select! {
        () = shutdown.cancelled() => Ok(()),
        result = processing => result,
    }
}

/// A delivery handed to a lane, read.
type Read<M> = (Delivery, Result<M, String>);

/// One lane of [`consume_in_lanes`]: takes whatever has queued (up to `batch`), applies it,
/// dead-letters the invalid messages and acknowledges; `Ok` when shutdown interrupts.
async fn run_lane<H: BatchHandler>(
    handler: &H,
    gate: &Gate<'_>,
    channel: &lapin::Channel,
    acks: &Acks,
    mut queue: mpsc::UnboundedReceiver<Read<H::Message>>,
    batch: usize,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut received = Vec::with_capacity(batch);
    // `recv_many` waits for one delivery, then takes whatever else has queued.
    while queue.recv_many(&mut received, batch).await > 0 {
        let (deliveries, messages): (Vec<Delivery>, Vec<_>) = received.drain(..).unzip();
        let span = consume_span(gate.queue.name, deliveries.len());
        crate::trace_context::continue_from_deliveries(&span, &deliveries);
        let applying = apply_batch(handler, messages, shutdown).instrument(span);
        let Some(verdicts) = applying.await else {
            // Shutting down: leave them unacknowledged; RabbitMQ redelivers them.
            return Ok(());
        };
        for (delivery, verdict) in deliveries.iter().zip(verdicts) {
            if let Verdict::Invalid(reason) = verdict {
                dead_letter(channel, gate, delivery, &reason).await?;
            }
        }
        acks.done(
            channel,
            deliveries.iter().map(|delivery| delivery.delivery_tag),
        )
        .await?;
    }
    Ok(())
}

/// The acknowledgements of one channel's deliveries, which lanes finish out of order.
#[derive(Default)]
struct Acks {
    state: tokio::sync::Mutex<AckState>,
}

#[derive(Default)]
struct AckState {
    /// Every delivery up to this tag is acknowledged (tags count from 1 on each channel).
    acknowledged: u64,
    /// Deliveries done beyond it, waiting for an earlier one.
    done: BTreeSet<u64>,
}

impl Acks {
    /// Marks `tags` done and acknowledges, with one `multiple` acknowledgement, every
    /// delivery up to the first one not done. Under the lock, so acknowledgements go out in
    /// order: acknowledging a tag twice would close the channel.
    async fn done(
        &self,
        channel: &lapin::Channel,
        tags: impl Iterator<Item = u64>,
    ) -> lapin::Result<()> {
        let mut state = self.state.lock().await;
        state.done.extend(tags);
        let mut up_to = state.acknowledged;
        while state.done.remove(&(up_to + 1)) {
            up_to += 1;
        }
        if up_to > state.acknowledged {
            channel
                .basic_ack(up_to, BasicAckOptions { multiple: true })
                .await?;
            state.acknowledged = up_to;
        }
        Ok(())
    }
}

/// The verdict on each message, once the valid ones are applied; `None` when shutdown
/// interrupts. When the database refuses a value of the batch, its messages are applied one
/// at a time, so that only the one holding the value is dead-lettered.
async fn apply_batch<H: BatchHandler>(
    handler: &H,
    messages: Vec<Result<H::Message, String>>,
    shutdown: &CancellationToken,
) -> Option<Vec<Verdict>> {
    let mut verdicts = vec![Verdict::Done; messages.len()];
    let mut valid = Vec::with_capacity(messages.len());
    let mut positions = Vec::with_capacity(messages.len());
    for (position, message) in messages.into_iter().enumerate() {
        match message {
            Ok(message) => {
                valid.push(message);
                positions.push(position);
            }
            Err(reason) => verdicts[position] = Verdict::Invalid(reason),
        }
    }
    if valid.is_empty()
        || until_applied(|| handler.apply(&valid), shutdown)
            .await?
            .is_ok()
    {
        return Some(verdicts);
    }
    for (message, position) in valid.iter().zip(positions) {
        let alone = std::slice::from_ref(message);
        if let Err(refusal) = until_applied(|| handler.apply(alone), shutdown).await? {
            verdicts[position] = refused(&refusal);
        }
    }
    Some(verdicts)
}

/// The verdict on a message holding a value the database refused.
fn refused(refusal: &str) -> Verdict {
    Verdict::Invalid(format!("the database refused a value: {refusal}"))
}

/// Retries the handler while it fails transiently; `None` when shutdown interrupts.
async fn handle_until_done<H: Handler>(
    handler: &H,
    delivery: &Delivery,
    shutdown: &CancellationToken,
) -> Option<Verdict> {
    Some(
        until_applied(|| handler.handle(delivery), shutdown)
            .await?
            .unwrap_or_else(|refusal| refused(&refusal)),
    )
}

/// Retries `apply` while it fails transiently: `Some(Ok)` once it succeeded, `Some(Err)`
/// with what the database said when it refused a value (a retry cannot help), `None` when
/// shutdown interrupts.
async fn until_applied<T, F: Future<Output = anyhow::Result<T>>>(
    apply: impl FnMut() -> F,
    shutdown: &CancellationToken,
) -> Option<Result<T, String>> {
    let applying = apply
        .retry(crate::retry::policy())
        .when(|error| crate::database::refused_value(error).is_none())
        .notify(|error, wait| {
            tracing::warn!(
                error = format!("{error:#}"),
                ?wait,
                "cannot apply a message yet; retrying"
            );
        });
    tokio::select! {
        () = shutdown.cancelled() => None,
        applied = applying => Some(applied.map_err(|error| {
            crate::database::refused_value(&error).unwrap_or_else(|| format!("{error:#}"))
        })),
    }
}

/// Copies `delivery` to the dead-letter queue with the reason (cut to [`MAX_REASON_BYTES`]),
/// and waits for the broker's confirmation.
async fn dead_letter(
    channel: &lapin::Channel,
    gate: &Gate<'_>,
    delivery: &Delivery,
    reason: &str,
) -> anyhow::Result<()> {
    let queue = gate.queue.name;
    let reason = truncate(reason, MAX_REASON_BYTES);
    tracing::warn!(
        queue,
        reason,
        "dead-lettering a message that cannot be processed"
    );
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    headers.insert(REASON_HEADER.into(), AMQPValue::LongString(reason.into()));
    headers.insert(
        "x-original-queue".into(),
        AMQPValue::LongString(queue.into()),
    );
    if let Some(user) = delivery.properties.user_id() {
        headers.insert(
            ORIGINAL_USER_HEADER.into(),
            AMQPValue::LongString(user.as_str().into()),
        );
    }
    // The copy is the platform's message: RabbitMQ would refuse another user's `user_id` on
    // it (closing the channel), and the dead-letter queue's readers can trust where it
    // came from.
    let properties = delivery
        .properties
        .clone()
        .with_headers(headers)
        .with_user_id(gate.platform_user.as_str().into())
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

/// `text` cut to at most `max` bytes, on a character boundary (dead-letter reasons, gRPC
/// validation statuses).
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let end = (0..=max)
        .rev()
        .find(|&end| text.is_char_boundary(end))
        .unwrap_or_default();
    &text[..end]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("abc", 256), "abc");
        assert_eq!(truncate("abcdef", 3), "abc");
        // "é" is two bytes: cutting inside it keeps the character before.
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("€€", 5), "€");
        let long = "ü".repeat(300);
        assert!(truncate(&long, MAX_REASON_BYTES).len() <= MAX_REASON_BYTES);
    }
}
