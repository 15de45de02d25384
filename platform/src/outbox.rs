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
//! [`Outbox`] is the service's handle: its database and the wake-up of its relay. Rows are
//! added only inside an [`outbox::Transaction`](Transaction) (begun by [`Outbox::begin`]),
//! whose [`commit`](Transaction::commit) wakes the relay, or by a lone statement run through
//! [`Outbox::after`], which wakes it once the statement committed. The wake-up is in-process,
//! not a PostgreSQL `NOTIFY`: PostgreSQL serializes the commits of every notifying transaction
//! of the server on one lock, which halved the commit rate under load (see
//! docs/benchmarks-history.md). Rows that no relay of this process hears of (added by another
//! instance whose relay is down) are found by a poll, every half second by default; tests
//! lengthen it beyond their deadlines, so that a commit which forgets the wake-up fails them.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use anyhow::Context;
use backon::BackoffBuilder;
use futures_util::future;
use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection};
use sqlx::{PgConnection, PgPool, Postgres};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

/// How many rows one relay publishes per database transaction.
const BATCH: i64 = 200;
/// How often a relay looks for rows when nothing woke it, unless told otherwise.
pub const FALLBACK_POLL: Duration = Duration::from_millis(500);
/// How long published rows stay, for inspection.
pub const KEEP_PUBLISHED: Duration = Duration::from_secs(7 * 24 * 3600);

/// A service's outbox: its database, and the wake-up its relay waits on. Cheap to clone;
/// every clone wakes the same relays.
#[derive(Debug, Clone)]
pub struct Outbox {
    pool: PgPool,
    /// Bumped after each commit that added rows; the relays watch it.
    added: watch::Sender<u64>,
    fallback_poll: Duration,
}

impl Outbox {
    /// The outbox in `pool`'s database, whose relays also look for rows every
    /// `fallback_poll` when nothing woke them.
    pub fn new(pool: PgPool, fallback_poll: Duration) -> Self {
        Self {
            pool,
            added: watch::Sender::new(0),
            fallback_poll,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Begins a database transaction that may add outbox rows. It commits only through
    /// [`Transaction::commit`], which wakes the relays; dropped, it rolls back.
    pub async fn begin(&self) -> sqlx::Result<Transaction> {
        Ok(Transaction {
            tx: self.pool.begin().await?,
            added: self.added.clone(),
        })
    }

    /// Runs `statement`, one statement outside any transaction that may add outbox rows (it
    /// commits by itself), and then wakes the relays.
    pub async fn after<T>(&self, statement: impl Future<Output = T>) -> T {
        let outcome = statement.await;
        self.wake();
        outcome
    }

    /// A consumer's step: records `message_id` (of `queue`) in the inbox, runs `apply` and
    /// commits, in one database transaction, so the message takes effect once. `None` (and
    /// nothing done) when the id was recorded before.
    pub async fn apply_once<T>(
        &self,
        message_id: &str,
        queue: &str,
        apply: impl AsyncFnOnce(&mut Transaction) -> anyhow::Result<T>,
    ) -> anyhow::Result<Option<T>> {
        let mut tx = self.begin().await?;
        if !crate::inbox::record(&mut tx, message_id, queue).await? {
            return Ok(None);
        }
        let applied = apply(&mut tx).await?;
        tx.commit().await?;
        Ok(Some(applied))
    }

    /// Publishes outbox rows on `connection` until `shutdown` (then `Ok`) or a broker error
    /// (then `Err`, and the caller reconnects). Database errors are waited out.
    pub async fn relay(
        &self,
        connection: &Connection,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let user = connection.status().username();
        let mut added = self.added.subscribe();
        let mut delays = crate::retry::policy().build();
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            // Commits from now on wake the wait below, even those during this batch.
            added.borrow_and_update();
            match publish_batch(&self.pool, &channel, &user).await {
                Ok(published) => {
                    delays = crate::retry::policy().build();
                    if published > 0 {
                        continue;
                    }
                }
                Err(BatchError::Broker(error)) => return Err(error),
                Err(BatchError::Database(error)) => {
                    let wait = delays.next().unwrap_or(Duration::from_secs(5));
                    tracing::warn!(%error, ?wait, "outbox relay cannot read the database; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(wait) => {}
                    }
                    continue;
                }
            }
            // Nothing to publish: wait for a commit or the next poll.
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = added.changed() => {}
                () = tokio::time::sleep(self.fallback_poll) => {}
            }
        }
    }

    /// Removes published rows older than `keep` (they are only kept for inspection).
    pub async fn prune(&self, keep: Duration) -> sqlx::Result<u64> {
        let seconds = f64::from(u32::try_from(keep.as_secs()).unwrap_or(u32::MAX));
        let done = sqlx::query(
            "delete from outbox where published_at < now() - make_interval(secs => $1)",
        )
        .bind(seconds)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    fn wake(&self) {
        wake(&self.added);
    }
}

/// A database transaction that may add outbox rows (see [`Outbox::begin`]). It derefs to
/// its connection for the change itself.
pub struct Transaction {
    tx: sqlx::Transaction<'static, Postgres>,
    added: watch::Sender<u64>,
}

impl Transaction {
    /// Adds `message` to the outbox; it is published once the transaction commits.
    pub async fn enqueue(&mut self, message: &OutboxMessage) -> sqlx::Result<()> {
        sqlx::query(
            "insert into outbox (message_id, exchange, routing_key, correlation_id, payload)
             values ($1, $2, $3, $4, $5)",
        )
        .bind(message.message_id)
        .bind(&message.exchange)
        .bind(&message.routing_key)
        .bind(&message.correlation_id)
        .bind(&message.payload)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Commits, and wakes the relays to publish what was added. Wake-ups that come while a
    /// relay is busy are merged into one more look.
    pub async fn commit(self) -> sqlx::Result<()> {
        let span = crate::trace_context::span_if_enabled(|| tracing::info_span!("commit"));
        self.tx.commit().instrument(span).await?;
        wake(&self.added);
        Ok(())
    }
}

impl Deref for Transaction {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for Transaction {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

/// Tells the relays watching `added` that rows were committed.
fn wake(added: &watch::Sender<u64>) {
    added.send_modify(|count| *count = count.wrapping_add(1));
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

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    message_id: Uuid,
    exchange: String,
    routing_key: String,
    correlation_id: Option<String>,
    payload: serde_json::Value,
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
///
/// Every message carries `user_id` = `user`, the connection's broker user (RabbitMQ refuses
/// any other): the platform's consumers take messages only from the platform's user.
async fn publish_batch(
    pool: &PgPool,
    channel: &lapin::Channel,
    user: &str,
) -> Result<usize, BatchError> {
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
    // Every publish of the batch is queued before any is awaited, so lapin writes their
    // frames together. Awaited one by one, each publish waited for lapin's I/O thread to
    // write it: a wake-up of that thread and one write per message.
    let mut publishes = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut publish = Box::pin(future::maybe_done(publish(channel, user, row)));
        // Its first poll queues the message's frames: the batch goes out in the rows' order.
        let _ = futures_util::poll!(publish.as_mut());
        publishes.push(publish);
    }
    for (row, mut publish) in rows.iter().zip(publishes) {
        publish.as_mut().await;
        let confirmation = publish.as_mut().take_output().unwrap_or_else(|| {
            Err(BatchError::Broker(anyhow::anyhow!(
                "a publish without an outcome"
            )))
        })?;
        match confirmation {
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

/// Publishes one outbox row on `channel`, as broker user `user`, and waits for the broker's
/// confirm.
async fn publish(
    channel: &lapin::Channel,
    user: &str,
    row: &Row,
) -> Result<Confirmation, BatchError> {
    let body =
        serde_json::to_vec(&row.payload).map_err(|error| BatchError::Broker(error.into()))?;
    let mut properties = BasicProperties::default()
        .with_message_id(row.message_id.to_string().into())
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_user_id(user.into())
        .with_timestamp(u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default());
    if let Some(correlation_id) = &row.correlation_id {
        properties = properties.with_correlation_id(correlation_id.as_str().into());
    }
    // The publish continues the trace the event was written in (its CloudEvent's
    // `traceparent`), and passes itself on in the `traceparent` header.
    let span = match row.payload.get(crate::trace_context::TRACEPARENT) {
        Some(_) => crate::trace_context::span_if_enabled(|| {
            tracing::info_span!(
                "publish",
                service.name = crate::telemetry::program(),
                messaging.destination.name = row.exchange.as_str(),
                messaging.rabbitmq.destination.routing_key = row.routing_key.as_str(),
                messaging.message.id = %row.message_id,
                otel.kind = "producer",
            )
        }),
        None => tracing::Span::none(),
    };
    crate::trace_context::continue_from_event(&span, &row.payload);
    let mut headers = FieldTable::default();
    span.in_scope(|| crate::trace_context::write_amqp_headers(&mut headers));
    if !headers.inner().is_empty() {
        properties = properties.with_headers(headers);
    }
    channel
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
        .instrument(span)
        .await
        .context("cannot publish")
        .map_err(BatchError::Broker)?
        .await
        .context("no publisher confirm")
        .map_err(BatchError::Broker)
}
