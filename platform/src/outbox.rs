//! The transactional outbox: a service writes the events it wants published into its
//! `outbox` table in the same database transaction as the change they describe, so an
//! event exists if and only if the change committed. A relay publishes them with publisher
//! confirms and `mandatory`, and marks them sent.
//!
//! Every service using it has this table (see its migrations):
//! `outbox (id bigint identity, message_id uuid unique, exchange text, routing_key text,
//! correlation_id text null, payload jsonb, created_at, published_at null)`.
//!
//! Delivery is at least once: a relay that dies after publishing and before marking a row
//! publishes it again, so consumers deduplicate by `message_id`. Several relays (several
//! instances of a service) share the work with `FOR UPDATE SKIP LOCKED`: a row is in the hands
//! of one relay at a time, and a relay that dies releases its rows with its transaction.
//!
//! A transaction that added rows ends with [`commit`], which wakes the relays of this
//! process that serve the same database (a lone statement that added rows is followed by
//! [`wake`]). The wake-up is in-process, not a PostgreSQL `NOTIFY`: PostgreSQL serializes
//! the commits of every notifying transaction of the server on one lock, which halved the
//! commit rate under load (see docs/benchmarks.md). Rows that no local relay hears of
//! (added by another instance whose relay is down) are found by a poll every half second.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Connection};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How many rows one relay publishes per database transaction.
const BATCH: i64 = 200;
/// How often, in milliseconds, a relay looks for rows when nothing woke it.
static FALLBACK_POLL_MS: AtomicU64 = AtomicU64::new(500);
/// Per database name: bumped after each commit that added rows to that database's outbox;
/// the relays of this process that serve it watch it.
static ADDED: LazyLock<Mutex<HashMap<String, watch::Sender<u64>>>> = LazyLock::new(Mutex::default);

/// The signal of `pool`'s database.
fn added_rows(pool: &PgPool) -> watch::Sender<u64> {
    let options = pool.connect_options();
    let database = options.get_database().unwrap_or_default();
    let mut signals = ADDED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(signal) = signals.get(database) {
        return signal.clone();
    }
    let signal = watch::Sender::new(0);
    signals.insert(database.to_owned(), signal.clone());
    signal
}

/// A message to publish.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub message_id: Uuid,
    pub exchange: String,
    pub routing_key: String,
    pub correlation_id: Option<String>,
    pub payload: serde_json::Value,
}

/// Adds `message` to the outbox inside the caller's transaction. The transaction must end
/// with [`commit`], or the row waits for the poll.
pub async fn enqueue(conn: &mut PgConnection, message: &OutboxMessage) -> sqlx::Result<()> {
    sqlx::query(
        "insert into outbox (message_id, exchange, routing_key, correlation_id, payload)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(message.message_id)
    .bind(&message.exchange)
    .bind(&message.routing_key)
    .bind(&message.correlation_id)
    .bind(&message.payload)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Commits `tx`, a transaction on `pool` that may have added outbox rows, and wakes the
/// relays of `pool`'s database to publish them. Wake-ups that come while a relay is busy
/// are merged into one more look.
pub async fn commit(pool: &PgPool, tx: Transaction<'_, Postgres>) -> sqlx::Result<()> {
    tx.commit().await?;
    wake(pool);
    Ok(())
}

/// Wakes the relays of `pool`'s database after a single statement, outside an explicit
/// transaction, added outbox rows (it committed on its own).
pub fn wake(pool: &PgPool) {
    added_rows(pool).send_modify(|count| *count = count.wrapping_add(1));
}

/// Sets how often relays look for rows that nothing woke them for. Tests set it far beyond
/// their deadlines, so that a commit which forgets to wake the relays fails them.
pub fn set_fallback_poll(every: Duration) {
    let millis = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
    FALLBACK_POLL_MS.store(millis, Ordering::Relaxed);
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    message_id: Uuid,
    exchange: String,
    routing_key: String,
    correlation_id: Option<String>,
    payload: serde_json::Value,
}

/// Publishes outbox rows on `connection` until `shutdown` (then `Ok`) or a broker error
/// (then `Err`, and the caller reconnects). Database errors are waited out.
pub async fn relay(
    pool: PgPool,
    connection: &Connection,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut added = added_rows(&pool).subscribe();
    let mut database_failures = 0;
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        // Commits from now on wake the wait below, even those during this batch.
        added.borrow_and_update();
        match publish_batch(&pool, &channel).await {
            Ok(published) if published > 0 => {
                database_failures = 0;
                continue;
            }
            Ok(_) => database_failures = 0,
            Err(BatchError::Broker(error)) => return Err(error),
            Err(BatchError::Database(error)) => {
                database_failures += 1;
                tracing::warn!(%error, "outbox relay cannot read the database; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(crate::database::backoff(database_failures)) => {}
                }
                continue;
            }
        }
        // Nothing to publish: wait for a commit or the next poll.
        let poll = Duration::from_millis(FALLBACK_POLL_MS.load(Ordering::Relaxed));
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = added.changed() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
}

enum BatchError {
    Database(sqlx::Error),
    Broker(anyhow::Error),
}

impl From<sqlx::Error> for BatchError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

/// Publishes one batch and marks it sent, in one database transaction. Returns how many
/// rows were published.
///
/// One statement claims the rows and marks them published; the mark only counts if the
/// transaction commits, which is after the broker confirmed every message. A relay that
/// dies before leaves the rows unpublished for the next one.
async fn publish_batch(pool: &PgPool, channel: &lapin::Channel) -> Result<usize, BatchError> {
    let mut tx = pool.begin().await?;
    let mut rows: Vec<Row> = sqlx::query_as(
        "update outbox set published_at = now() where id in (
             select id from outbox where published_at is null
             order by id limit $1 for update skip locked
         )
         returning id, message_id, exchange, routing_key, correlation_id, payload",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    // In the order they were added (`returning` does not keep the subquery's order).
    rows.sort_unstable_by_key(|row| row.id);
    if rows.is_empty() {
        return Ok(0);
    }
    let mut confirms = Vec::with_capacity(rows.len());
    for row in &rows {
        let body =
            serde_json::to_vec(&row.payload).map_err(|error| BatchError::Broker(error.into()))?;
        let mut properties = BasicProperties::default()
            .with_message_id(row.message_id.to_string().into())
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_timestamp(u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default());
        if let Some(correlation_id) = &row.correlation_id {
            properties = properties.with_correlation_id(correlation_id.as_str().into());
        }
        let confirm = channel
            .basic_publish(
                row.exchange.as_str().into(),
                row.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &body,
                properties,
            )
            .await
            .context("cannot publish")
            .map_err(BatchError::Broker)?;
        confirms.push(confirm);
    }
    for (row, confirm) in rows.iter().zip(confirms) {
        match confirm
            .await
            .context("no publisher confirm")
            .map_err(BatchError::Broker)?
        {
            Confirmation::Ack(None) | Confirmation::NotRequested => {}
            // Nobody listens on that routing key (yet): the broker dropped it by design of
            // the topology, not by failure, so the row is done.
            Confirmation::Ack(Some(_)) => tracing::warn!(
                exchange = row.exchange,
                routing_key = row.routing_key,
                "published event had no queue to go to"
            ),
            Confirmation::Nack(_) => {
                return Err(BatchError::Broker(anyhow::anyhow!(
                    "the broker refused message {}",
                    row.message_id
                )));
            }
        }
    }
    tx.commit().await?;
    Ok(rows.len())
}

/// How long published rows stay, for inspection.
const KEEP_PUBLISHED: Duration = Duration::from_secs(7 * 24 * 3600);

/// Removes published rows older than a week, every hour, until `shutdown`.
pub async fn prune_hourly(pool: PgPool, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
        if let Err(error) = prune(&pool, KEEP_PUBLISHED).await {
            tracing::warn!(%error, "cannot prune the outbox");
        }
    }
}

/// Removes published rows older than `keep` (they are only kept for inspection).
pub async fn prune(pool: &PgPool, keep: Duration) -> sqlx::Result<u64> {
    let seconds = f64::from(u32::try_from(keep.as_secs()).unwrap_or(u32::MAX));
    let done =
        sqlx::query("delete from outbox where published_at < now() - make_interval(secs => $1)")
            .bind(seconds)
            .execute(pool)
            .await?;
    Ok(done.rows_affected())
}
