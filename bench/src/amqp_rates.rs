//! Rates on the broker: its own baseline, and the wallet applying requests published
//! straight to its queue.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};

/// Publishes with confirms at most this many messages ahead of the confirmations.
const WINDOW: usize = 256;

fn per_second(count: u64, elapsed: Duration) -> f64 {
    f64::from(u32::try_from(count).unwrap_or(u32::MAX)) / elapsed.as_secs_f64()
}

/// Publishes `count` persistent messages to `queue` with confirms, `WINDOW` in flight.
async fn publish_all(
    channel: &lapin::Channel,
    queue: &str,
    count: u64,
    body: impl Fn(u64) -> Vec<u8>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut pending = futures_util::stream::FuturesUnordered::new();
    for n in 0..count {
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                &body(n),
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type("application/json".into())
                    .with_message_id(uuid::Uuid::new_v4().to_string().into()),
            )
            .await?;
        pending.push(confirm);
        while pending.len() >= WINDOW {
            if let Some(confirmed) = pending.next().await {
                confirmed?;
            }
        }
    }
    while let Some(confirmed) = pending.next().await {
        confirmed?;
    }
    Ok(started.elapsed())
}

/// The broker's raw rates on one quorum queue: publish with confirms, consume with acks.
pub async fn broker(url: &str, count: u64) -> anyhow::Result<(f64, f64)> {
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let queue = format!("bench.baseline.{}", uuid::Uuid::new_v4().simple());
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(queue.as_str().into(), durable, arguments)
        .await?;
    let body = br#"{"user_id":"0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21","type":"deposit","amount":1}"#;
    let published = publish_all(&channel, &queue, count, |_| body.to_vec()).await?;

    let consumer_channel = connection.create_channel().await?;
    consumer_channel
        .basic_qos(32, BasicQosOptions::default())
        .await?;
    let mut consumer = consumer_channel
        .basic_consume(
            queue.as_str().into(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let started = Instant::now();
    let mut received = 0;
    while received < count {
        let Some(delivery) = consumer.next().await else {
            anyhow::bail!("the consumer stopped after {received} messages");
        };
        delivery?.ack(BasicAckOptions::default()).await?;
        received += 1;
    }
    let consumed = started.elapsed();
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    let _ = connection.close(200, "done".into()).await;
    Ok((per_second(count, published), per_second(count, consumed)))
}

/// The rates of [`wallet_requests`], per second, each from the start of publishing.
pub struct RequestRates {
    pub published: f64,
    /// Requests in the wallet's ledger.
    pub applied: f64,
    /// Their events published by the wallet's outbox relay.
    pub relayed: f64,
    /// Their statement lines written by statement-service.
    pub lines: f64,
}

/// Publishes `count` deposits of 1, spread over `users`, to `wallet.transaction-requests`,
/// then waits until the wallet's ledger holds all of them, the wallet's outbox has
/// published their events and statement-service has written their lines.
pub async fn wallet_requests(
    url: &str,
    wallet_database: &str,
    statement_database: &str,
    users: &[&str],
    count: u64,
) -> anyhow::Result<RequestRates> {
    let wallet = sqlx::PgPool::connect(wallet_database).await?;
    let statement = sqlx::PgPool::connect(statement_database).await?;
    let users_list: Vec<uuid::Uuid> = users
        .iter()
        .map(|user| user.parse())
        .collect::<Result<_, _>>()?;
    // Polled every 20 ms, so cheap: the users' balances (each request deposits 1, and nothing
    // else touches these wallets) rather than a count of the whole ledger, which read every
    // row of every earlier measure and took PostgreSQL's CPU from the work being measured.
    let deposited = || async {
        sqlx::query_scalar::<_, i64>(
            "select coalesce(sum(balance), 0)::bigint from wallets where user_id = any($1)",
        )
        .bind(&users_list)
        .fetch_one(&wallet)
        .await
    };
    let unpublished = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from outbox where published_at is null")
            .fetch_one(&wallet)
            .await
    };
    let lines = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from statement_lines where user_id = any($1)")
            .bind(&users_list)
            .fetch_one(&statement)
            .await
    };
    let (deposited_before, lines_before) = (deposited().await?, lines().await?);
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let started = Instant::now();
    let bodies: Vec<Vec<u8>> = users
        .iter()
        .map(|user| {
            serde_json::to_vec(&serde_json::json!({
                "user_id": user, "type": "deposit", "amount": 1, "currency": "EUR",
            }))
        })
        .collect::<Result<_, _>>()?;
    let published = publish_all(&channel, "wallet.transaction-requests", count, |n| {
        bodies[usize::try_from(n).unwrap_or_default() % bodies.len()].clone()
    })
    .await?;
    let count_i64 = i64::try_from(count)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut applied = None;
    let mut relayed = None;
    let mut written = None;
    // The ledger first; then the events, which were written with it: all of them are out
    // once nothing is left unpublished; then the lines.
    while written.is_none() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the requests were not all handled within 600 s"
        );
        if applied.is_none() {
            if deposited().await? >= deposited_before + count_i64 {
                applied = Some(started.elapsed());
            }
        } else if relayed.is_none() {
            if unpublished().await? == 0 {
                relayed = Some(started.elapsed());
            }
        } else if lines().await? >= lines_before + count_i64 {
            written = Some(started.elapsed());
        }
        if written.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let _ = connection.close(200, "done".into()).await;
    wallet.close().await;
    statement.close().await;
    let rate = |elapsed: Option<Duration>| per_second(count, elapsed.unwrap_or_default());
    Ok(RequestRates {
        published: per_second(count, published),
        applied: rate(applied),
        relayed: rate(relayed),
        lines: rate(written),
    })
}
