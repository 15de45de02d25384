//! RabbitMQ: a connection that keeps trying until the broker answers.
//!
//! Consumers and publishers supervise their own connection: when it drops they call
//! [`connect`] again, so a broker restart heals by itself.

use anyhow::Context;
use backon::Retryable;
use lapin::{Connection, ConnectionProperties};
pub use proto::messaging::{Publishers, Queue, QueueKind, dead_letter_queue};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

/// Connects to the broker, retrying with backoff until it answers or `shutdown` is
/// cancelled (then `None`).
pub async fn connect(
    url: &SecretString,
    name: &str,
    shutdown: &CancellationToken,
) -> Option<Connection> {
    let connecting = (|| try_connect(url, name))
        .retry(crate::retry::policy())
        .notify(|error, wait| {
            tracing::warn!(error = %format!("{error:#}"), ?wait, "broker not reachable, retrying");
        });
    tokio::select! {
        () = shutdown.cancelled() => None,
        connected = connecting => connected.ok(),
    }
}

/// One attempt to connect, naming the connection after the program (it shows in the
/// management UI).
pub async fn try_connect(url: &SecretString, name: &str) -> anyhow::Result<Connection> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url.expose_secret(), properties)
        .await
        // lapin's error can quote the URL, password included; keep only its kind.
        .map_err(|error| anyhow::anyhow!("{}", redact(&error.to_string(), url)))
        .context("cannot connect to RabbitMQ")
}

fn redact(message: &str, url: &SecretString) -> String {
    message.replace(url.expose_secret(), "<AMQP_URL>")
}

/// Whether the program currently holds a working broker connection (for health reports).
#[derive(Debug, Clone, Default)]
pub struct BrokerStatus(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl BrokerStatus {
    pub fn is_connected(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set(&self, connected: bool) {
        self.0
            .store(connected, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Runs `work` on a broker connection until `shutdown`, reconnecting (with backoff) whenever
/// the connection or `work` fails, and reports the connection state in `status`. `work`
/// gets a fresh connection each time and should return only on an error; a broker restart
/// or `rabbitmqctl close_all_connections` heals by itself this way.
pub async fn supervise<W, Fut>(
    url: SecretString,
    name: String,
    status: BrokerStatus,
    shutdown: CancellationToken,
    mut work: W,
) where
    W: FnMut(std::sync::Arc<Connection>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    while let Some(connection) = connect(&url, &name, &shutdown).await {
        status.set(true);
        tracing::info!(connection = name, "connected to RabbitMQ");
        let connection = std::sync::Arc::new(connection);
        let watcher = connection.clone();
        // Boxed, so that it can be dropped at the moment chosen below.
        let mut running = Box::pin(work(connection));
        let outcome = tokio::select! {
            biased;
            () = shutdown.cancelled() => Ok(()),
            outcome = &mut running => outcome,
            () = until_closed(&watcher) => Err(anyhow::anyhow!("the connection closed")),
        };
        status.set(false);
        if shutdown.is_cancelled() {
            // The connection first, then the work and its channels: a channel dropped while
            // the connection is open closes itself, and one still closing when the
            // connection closes made lapin log an error at every shutdown.
            let _closing = watcher.close(200, "shutting down".into()).await;
            drop(running);
            return;
        }
        let error = outcome
            .err()
            .unwrap_or_else(|| anyhow::anyhow!("the work ended"));
        tracing::warn!(
            connection = name,
            error = format!("{error:#}"),
            "RabbitMQ work stopped; reconnecting"
        );
        let _closing = watcher.close(320, "reconnecting".into()).await;
        drop(running);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
        }
    }
}

async fn until_closed(connection: &Connection) {
    while connection.status().connected() {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Keeps a broker connection open until `shutdown` (for a service that only reports it).
pub async fn stay_connected(
    url: SecretString,
    name: String,
    status: BrokerStatus,
    shutdown: CancellationToken,
) {
    supervise(url, name, status, shutdown, |_connection| {
        std::future::pending()
    })
    .await;
}

/// Declares a durable topic exchange.
pub async fn declare_topic_exchange(channel: &lapin::Channel, name: &str) -> lapin::Result<()> {
    channel
        .exchange_declare(
            name.into(),
            lapin::ExchangeKind::Topic,
            lapin::options::ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
}

/// Declares the durable topic exchange `name` and forwards everything published to it into
/// the topic exchange `into` (declared too), which routes it on as if it had been published
/// there. Queues bound to `name` receive only what is published to `name`.
pub async fn declare_forwarding_exchange(
    channel: &lapin::Channel,
    name: &str,
    into: &str,
) -> lapin::Result<()> {
    declare_topic_exchange(channel, into).await?;
    declare_topic_exchange(channel, name).await?;
    channel
        .exchange_bind(
            into.into(),
            name.into(),
            "#".into(),
            lapin::options::ExchangeBindOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await
}

/// How many times RabbitMQ redelivers a message (for example after the consumer crashed on
/// it) before it dead-letters it. RabbitMQ 3.10 quorum queues have no default limit.
pub const DELIVERY_LIMIT: i64 = 20;

/// Durable, and nothing else (what amqplib's `assertQueue` asks for by default).
const DURABLE: lapin::options::QueueDeclareOptions = lapin::options::QueueDeclareOptions {
    passive: false,
    durable: true,
    exclusive: false,
    auto_delete: false,
    nowait: false,
};

fn quorum() -> lapin::types::FieldTable {
    let mut quorum = lapin::types::FieldTable::default();
    quorum.insert(
        "x-queue-type".into(),
        lapin::types::AMQPValue::LongString("quorum".into()),
    );
    quorum
}

/// Declares the quorum queue `name` and its dead-letter queue `<name>.dlq`: messages that
/// exceed the delivery limit, or that a consumer dead-letters, end up there.
pub async fn declare_queue_with_dlq(channel: &lapin::Channel, name: &str) -> lapin::Result<()> {
    use lapin::types::AMQPValue;
    let dlq = dead_letter_queue(name);
    channel
        .queue_declare(dlq.as_str().into(), DURABLE, quorum())
        .await?;
    let mut arguments = quorum();
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    arguments.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(dlq.as_str().into()),
    );
    arguments.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(DELIVERY_LIMIT),
    );
    channel
        .queue_declare(name.into(), DURABLE, arguments)
        .await?;
    Ok(())
}

/// Declares `queue` as a quorum queue with its dead-letter queue and, when it takes events
/// from a topic exchange, that exchange (declared too, so the order in which services start
/// does not matter) and its bindings.
///
/// A [`QueueKind::PlainDurable`] queue is declared durable with no arguments, exactly as
/// amqplib declares it by default, so its publishers' own declarations are accepted. Its
/// dead-letter queue is still a quorum queue, which the consumer copies bad messages to; but
/// RabbitMQ itself neither dead-letters nor limits redeliveries there.
pub async fn declare_queue(channel: &lapin::Channel, queue: &Queue) -> lapin::Result<()> {
    match queue.kind {
        QueueKind::Quorum => declare_queue_with_dlq(channel, queue.name).await?,
        QueueKind::PlainDurable => {
            let dlq = dead_letter_queue(queue.name);
            channel
                .queue_declare(dlq.as_str().into(), DURABLE, quorum())
                .await?;
            channel
                .queue_declare(
                    queue.name.into(),
                    DURABLE,
                    lapin::types::FieldTable::default(),
                )
                .await?;
        }
    }
    let Some(exchange) = queue.exchange else {
        return Ok(());
    };
    declare_topic_exchange(channel, exchange).await?;
    for key in queue.routing_keys {
        channel
            .queue_bind(
                queue.name.into(),
                exchange.into(),
                (*key).into(),
                lapin::options::QueueBindOptions::default(),
                lapin::types::FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// Declares `queue` as [`declare_queue`] does, on a channel of its own; but when an earlier
/// version declared a queue of that name with other arguments (RabbitMQ refuses the
/// declaration then, 406 PRECONDITION_FAILED: `wallet_queue` was a quorum queue with
/// dead-letter arguments), keeps that queue, with a warning, and lets it be consumed as it
/// is. It is not deleted here: a message published between a check that it is empty and its
/// deletion would be lost. Once an operator deletes it (docs/operations.md), the consumer is
/// cancelled, the service reconnects and declares it anew.
pub async fn declare_queue_or_keep_old(
    connection: &Connection,
    queue: &Queue,
) -> anyhow::Result<()> {
    let channel = connection.create_channel().await?;
    match declare_queue(&channel, queue).await {
        Ok(()) => Ok(()),
        Err(error) if is_precondition_failed(&error) => {
            tracing::warn!(
                queue = queue.name,
                "the queue was declared with other arguments by an earlier version, so \
                 publishers that declare it are refused; it is consumed as it is until you \
                 delete it once drained (see docs/operations.md)"
            );
            // The refusal closed that channel; the queue itself exists.
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// Whether the broker refused an operation with 406 PRECONDITION_FAILED.
fn is_precondition_failed(error: &lapin::Error) -> bool {
    use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(amqp)
        if *amqp.kind() == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED))
}
