//! The ledger in PostgreSQL: applying a transaction, reading balances and history.
//!
//! A balance changes only through one statement, which also locks the wallet row until
//! commit: money out is a conditional UPDATE (`balance + delta >= 0`), money in an upsert
//! that creates the wallet on first use. Concurrent transactions of one wallet queue up
//! there instead of reading a stale balance. The database enforces the rest (a non-negative
//! balance, one undo per parent, an append-only ledger).

use chrono::{DateTime, Utc};
use platform::outbox::OutboxMessage;
use platform::pagination::PageRequest;
use proto::messaging::wallet::TransactionCreated;
use sqlx::{Executor, FromRow, PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::error::LedgerError;
use crate::events;
use crate::money::CURRENCY;
use crate::transaction::{
    NewTransaction, Parent, Transaction, TransactionSource, TransactionType, effect,
};

const COLUMNS: &str = "id, user_id, type, amount, currency, balance_after, parent_transaction_id, description, source, reference, created_at";

/// A transaction applied, and the payload of its `transaction.created` event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Applied {
    #[sqlx(flatten)]
    pub transaction: Transaction,
    pub event: serde_json::Value,
}

/// Applies `new` on `conn` and queues its `transaction.created` event in the outbox, in one
/// statement: atomic on its own, so a caller with nothing else to write needs no explicit
/// transaction (it runs it through [`platform::outbox::Outbox::after`], which wakes the
/// relays; inside an outbox transaction, its commit does).
pub async fn apply(conn: &mut PgConnection, new: &NewTransaction) -> Result<Applied, LedgerError> {
    let parent = match new.parent_transaction_id {
        Some(id) => Some(
            sqlx::query_as::<_, Parent>(
                "select id, user_id, type, amount, source from transactions where id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(LedgerError::ParentNotFound)?,
        ),
        None => None,
    };
    let (amount, delta) = effect(new, parent.as_ref())?;
    match write(conn, new, amount, delta, Inbox::None).await {
        Ok(Written::Applied(applied)) => Ok(applied),
        Ok(_) => Err(LedgerError::InsufficientFunds),
        // Another cancellation or reversal of this parent committed first.
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            Err(LedgerError::AlreadyUndone)
        }
        Err(error) => Err(error.into()),
    }
}

/// Applies `new`, a transaction with no parent, as [`apply`] does, and records message
/// `message_id` of `queue` in the inbox in the same statement: a request from the broker in
/// one round trip. `None` when it wrote nothing because the message id is already recorded
/// or the wallet holds too little: the caller then takes the longer way, in a transaction,
/// which tells the two apart and records a rejection.
pub async fn apply_once(
    conn: &mut PgConnection,
    new: &NewTransaction,
    message_id: &str,
    queue: &str,
) -> Result<Option<Applied>, LedgerError> {
    let (amount, delta) = effect(new, None)?;
    let inbox = Inbox::IfWritten { message_id, queue };
    match write(conn, new, amount, delta, inbox).await {
        Ok(Written::Applied(applied)) => Ok(Some(applied)),
        Ok(_) => Ok(None),
        // The inbox refused the id: applied before (or by another instance meanwhile), and
        // the whole statement was rolled back.
        Err(sqlx::Error::Database(error)) if error.constraint() == Some("inbox_pkey") => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// What [`record_and_apply`] did.
#[derive(Debug)]
pub enum Recorded {
    /// The message id was recorded before (or earlier in this transaction): nothing written.
    Duplicate,
    /// The message id is recorded now, but the wallet holds too little: nothing else written,
    /// and the caller records the rejection in the same transaction.
    TooLittleMoney,
    /// Recorded and applied.
    Applied(Applied),
}

/// Records message `message_id` of `queue` in the inbox and applies `new`, a transaction
/// with no parent, in one statement, inside the caller's database transaction: a request of
/// a batch from the broker in one round trip. Unlike [`apply_once`], a message id recorded
/// before is no error, which would abort the caller's transaction and with it the batch: the
/// inbox row is written first, `on conflict do nothing`, and the change only if it was.
///
/// `Err` with a refusal when `new` breaks a rule that is checked before anything is written
/// (not even the inbox row): the caller takes the longer way, which records the rejection.
pub async fn record_and_apply(
    conn: &mut PgConnection,
    new: &NewTransaction,
    message_id: &str,
    queue: &str,
) -> Result<Recorded, LedgerError> {
    let (amount, delta) = effect(new, None)?;
    let inbox = Inbox::First { message_id, queue };
    Ok(match write(conn, new, amount, delta, inbox).await? {
        Written::Applied(applied) => Recorded::Applied(applied),
        Written::TooLittleMoney => Recorded::TooLittleMoney,
        Written::Duplicate => Recorded::Duplicate,
    })
}

/// Where [`write`]'s statement records a broker message in the inbox, if it does.
#[derive(Debug, Clone, Copy)]
enum Inbox<'a> {
    /// Not at all (an API request).
    None,
    /// Only when the change is written. A message id recorded before is a unique violation:
    /// an error, which rolls the statement back (and aborts a transaction around it).
    IfWritten { message_id: &'a str, queue: &'a str },
    /// First, `on conflict do nothing`, and the change is written only if the row was: a
    /// message id recorded before writes nothing and raises nothing.
    First { message_id: &'a str, queue: &'a str },
}

/// What [`write`]'s statement did.
enum Written {
    Applied(Applied),
    /// Nothing written (but the inbox row, with [`Inbox::First`]).
    TooLittleMoney,
    /// [`Inbox::First`] only: the message id was recorded before; nothing written.
    Duplicate,
}

/// The one statement of [`apply`], [`apply_once`] and [`record_and_apply`]: changes the
/// balance by `delta`, appends the ledger row of `amount`, queues its event and records the
/// inbox row as `inbox` says.
async fn write(
    conn: &mut PgConnection,
    new: &NewTransaction,
    amount: i64,
    delta: i64,
    inbox: Inbox<'_>,
) -> sqlx::Result<Written> {
    // With the inbox row first, the change reads it: no row recorded, no change.
    let (first, from_recorded, and_recorded) = match inbox {
        Inbox::First { .. } => (
            "recorded as (insert into inbox (message_id, queue) values ($15, $16)
                 on conflict do nothing returning message_id),",
            "from recorded",
            "and exists (select from recorded)",
        ),
        _ => ("", "", ""),
    };
    // Money in creates the wallet on first use; money out needs a wallet with enough in it
    // (a missing wallet holds nothing): no row back means too little money, and then
    // nothing is written.
    let change = if delta > 0 {
        format!(
            "insert into wallets (user_id, currency, balance) select $2, $5, $10 {from_recorded}
             on conflict (user_id) do update
                set balance = wallets.balance + $10, updated_at = now()
             returning balance"
        )
    } else {
        format!(
            "update wallets set balance = balance + $10, updated_at = now()
             where user_id = $2 and balance + $10 >= 0 {and_recorded} returning balance"
        )
    };
    let if_written = match inbox {
        Inbox::IfWritten { .. } => {
            "if_written as (insert into inbox (message_id, queue) select $15, $16 from changed),"
        }
        _ => "",
    };
    // No row: too little money, or (with the inbox row first) a duplicate. The inbox row
    // first: one row, recorded, whose other columns are null when the change was refused.
    let result = match inbox {
        Inbox::First { .. } => {
            "select inserted.*, queued.payload as event
             from recorded left join (inserted cross join queued) on true"
        }
        _ => "select inserted.*, queued.payload as event from inserted, queued",
    };
    let id = Uuid::now_v7();
    let event = event_of(id, new, amount);
    let sql = format!(
        "with {first} changed as ({change}), {if_written}
         inserted as (
             insert into transactions (id, user_id, type, amount, currency, balance_after,
                 parent_transaction_id, description, source, reference)
             select $1, $2, $3, $4, $5, balance, $6, $7, $8, $9 from changed
             returning {COLUMNS}
         ),
         queued as (
             insert into outbox (message_id, exchange, routing_key, payload)
             select $11, $12, $13, {payload} from inserted, {written}
             returning payload
         )
         {result}",
        payload = event_payload("$14::jsonb"),
        written = WRITTEN_AT,
    );
    let mut query = sqlx::query(&sql)
        .bind(id)
        .bind(new.user_id)
        .bind(new.kind)
        .bind(amount)
        .bind(CURRENCY)
        .bind(new.parent_transaction_id)
        .bind(&new.description)
        .bind(new.source)
        .bind(&new.reference)
        .bind(delta)
        .bind(event.message_id)
        .bind(&event.exchange)
        .bind(&event.routing_key)
        .bind(&event.payload);
    if let Inbox::IfWritten { message_id, queue } | Inbox::First { message_id, queue } = inbox {
        query = query.bind(message_id).bind(queue);
    }
    let Some(row) = query.fetch_optional(&mut *conn).await? else {
        return Ok(match inbox {
            Inbox::First { .. } => Written::Duplicate,
            _ => Written::TooLittleMoney,
        });
    };
    if row
        .try_get::<Option<serde_json::Value>, _>("event")?
        .is_none()
    {
        return Ok(Written::TooLittleMoney);
    }
    Ok(Written::Applied(Applied::from_row(&row)?))
}

/// The `transaction.created` event of `new`, to be transaction `id`. Two of its values only
/// the database knows, when it writes the row: the balance after, and the time (taken once
/// the wallet's row is locked, so that one wallet's transactions are in balance order). The
/// statement that writes the row sets those two ([`event_payload`]).
fn event_of(id: Uuid, new: &NewTransaction, amount: i64) -> OutboxMessage {
    events::transaction_created(&TransactionCreated {
        id,
        user_id: new.user_id,
        kind: new.kind,
        amount,
        currency: CURRENCY.to_owned(),
        balance_after: 0,
        parent_transaction_id: new.parent_transaction_id,
        description: new.description.clone(),
        source: new.source,
        reference: new.reference.clone(),
        created_at: DateTime::UNIX_EPOCH,
    })
}

/// SQL: `event` (an [`event_of`] payload) with the balance after and the time of the row
/// `inserted` set, and the envelope's `time` too, written as every event time is (RFC 3339,
/// UTC, microseconds, from [`WRITTEN_AT`]'s `at`).
fn event_payload(event: &str) -> String {
    format!(
        "jsonb_set(jsonb_set(jsonb_set({event},
             '{{time}}', to_jsonb(at), false),
             '{{data,created_at}}', to_jsonb(at), false),
             '{{data,balance_after}}', to_jsonb(inserted.balance_after), false)"
    )
}

/// SQL: the time the row `inserted` was written, as `at`, for [`event_payload`].
const WRITTEN_AT: &str = "lateral (select to_char(inserted.created_at at time zone 'UTC',
    'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') as at) as written";

/// Applies each of `news`, transactions with no parent of wallets that differ from one
/// another, each with the span of the request it came in, as [`apply`] would one after the other, in one statement inside the caller's
/// database transaction: the plain deposits and withdrawals of a [`crate::group_commit`]
/// batch in one round trip, however many there are. Each gets its outcome: applied, or too
/// little money (nothing written for it).
///
/// `Err` when the statement failed (for instance a deadlock with another instance): nothing
/// was written, and the caller's transaction is aborted. Two requests of one wallet are
/// refused before anything is sent: a statement changes a row once, so the second would be
/// lost, or (a withdrawal joined twice) written with the first one's balance.
pub async fn apply_many(
    conn: &mut PgConnection,
    news: &[(&NewTransaction, &tracing::Span)],
) -> Result<Vec<Result<Applied, LedgerError>>, LedgerError> {
    let mut wallets = std::collections::HashSet::with_capacity(news.len());
    if !news
        .iter()
        .all(|(new, _)| new.parent_transaction_id.is_none() && wallets.insert(new.user_id))
    {
        return Err(LedgerError::Internal(anyhow::anyhow!(
            "apply_many takes requests with no parent, one per wallet"
        )));
    }
    let mut requests = Requests::default();
    // Each request's transaction id, if it is sent, and its outcome so far: too little
    // money, unless the statement returns its row.
    let mut outcomes = Vec::with_capacity(news.len());
    for &(new, span) in news {
        match effect(new, None) {
            Ok((amount, delta)) => {
                let id = Uuid::now_v7();
                // The event carries the trace of the request it belongs to.
                let event = span.in_scope(|| event_of(id, new, amount));
                requests.push(id, new, amount, delta, event);
                outcomes.push((Some(id), Err(LedgerError::InsufficientFunds)));
            }
            Err(error) => outcomes.push((None, Err(error))),
        }
    }
    // Money in creates the wallet on first use, money out needs enough in it, as in
    // [`write`]; the rows come in the order given, which locks wallets in that order.
    let sql = format!(
        "with requests as (
             select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[],
                 $5::text[], $6::text[], $7::text[], $8::bigint[], $9::uuid[], $10::text[],
                 $11::text[], $12::jsonb[])
             with ordinality as requests(id, user_id, type, amount, description, source,
                 reference, delta, message_id, exchange, routing_key, event, position)
         ),
         deposited as (
             insert into wallets (user_id, currency, balance)
             select user_id, $13, delta from requests where delta > 0 order by position
             on conflict (user_id) do update
                set balance = wallets.balance + excluded.balance, updated_at = now()
             returning user_id, balance
         ),
         withdrawn as (
             update wallets set balance = wallets.balance + requests.delta, updated_at = now()
             from requests
             where requests.delta < 0 and wallets.user_id = requests.user_id
               and wallets.balance + requests.delta >= 0
             returning wallets.user_id, wallets.balance
         ),
         changed as (select * from deposited union all select * from withdrawn),
         inserted as (
             insert into transactions (id, user_id, type, amount, currency, balance_after,
                 parent_transaction_id, description, source, reference)
             select id, user_id, type, amount, $13, balance, null, description, source,
                 reference
             from requests join changed using (user_id)
             order by position
             returning {COLUMNS}
         ),
         queued as (
             insert into outbox (message_id, exchange, routing_key, payload)
             select requests.message_id, requests.exchange, requests.routing_key, {payload}
             from inserted join requests using (id), {written}
             returning message_id, payload
         )
         select inserted.*, queued.payload as event
         from inserted join requests using (id)
             join queued on queued.message_id = requests.message_id",
        payload = event_payload("requests.event"),
        written = WRITTEN_AT,
    );
    let Requests {
        ids,
        user_ids,
        kinds,
        amounts,
        descriptions,
        sources,
        references,
        deltas,
        message_ids,
        exchanges,
        routing_keys,
        events,
    } = requests;
    let rows = sqlx::query(&sql)
        .bind(ids)
        .bind(user_ids)
        .bind(kinds)
        .bind(amounts)
        .bind(descriptions)
        .bind(sources)
        .bind(references)
        .bind(deltas)
        .bind(message_ids)
        .bind(exchanges)
        .bind(routing_keys)
        .bind(events)
        .bind(CURRENCY)
        .fetch_all(&mut *conn)
        .await?;
    for row in rows {
        let applied = Applied::from_row(&row)?;
        if let Some((_, outcome)) = outcomes
            .iter_mut()
            .find(|(id, _)| *id == Some(applied.transaction.id))
        {
            *outcome = Ok(applied);
        }
    }
    Ok(outcomes.into_iter().map(|(_, outcome)| outcome).collect())
}

/// [`apply_many`]'s requests, a column each, as the statement takes them.
#[derive(Default)]
struct Requests {
    ids: Vec<Uuid>,
    user_ids: Vec<Uuid>,
    kinds: Vec<TransactionType>,
    amounts: Vec<i64>,
    descriptions: Vec<Option<String>>,
    sources: Vec<TransactionSource>,
    references: Vec<Option<String>>,
    deltas: Vec<i64>,
    message_ids: Vec<Uuid>,
    exchanges: Vec<String>,
    routing_keys: Vec<String>,
    events: Vec<serde_json::Value>,
}

impl Requests {
    fn push(
        &mut self,
        id: Uuid,
        new: &NewTransaction,
        amount: i64,
        delta: i64,
        event: OutboxMessage,
    ) {
        self.ids.push(id);
        self.user_ids.push(new.user_id);
        self.kinds.push(new.kind);
        self.amounts.push(amount);
        self.descriptions.push(new.description.clone());
        self.sources.push(new.source);
        self.references.push(new.reference.clone());
        self.deltas.push(delta);
        self.message_ids.push(event.message_id);
        self.exchanges.push(event.exchange);
        self.routing_keys.push(event.routing_key);
        self.events.push(event.payload);
    }
}

/// Applies `new` as [`apply`] does, or, when it breaks a rule, leaves the caller's
/// transaction as it was, for the caller to record the outcome in. Every rule but one is
/// checked before anything is written; the exception is an undo that finds the parent undone
/// by another one committed meanwhile: PostgreSQL refuses the row after the balance changed
/// and aborts the transaction. So only an undo pays for a savepoint (two round trips).
///
/// The savepoint is released even after a rollback to it (sqlx's nested transactions leave
/// it in place, and what follows then runs in a subtransaction of its own): a batch of many
/// requests ([`crate::group_commit`]) would otherwise nest one more level per refused undo.
pub async fn try_apply(
    conn: &mut PgConnection,
    new: &NewTransaction,
) -> Result<Applied, LedgerError> {
    if !new.kind.undoes_a_parent() {
        return apply(conn, new).await;
    }
    // Plain text, not a prepared statement: one round trip, and several commands allowed.
    conn.execute("savepoint undo").await?;
    let outcome = apply(conn, new).await;
    match &outcome {
        Ok(_) => {
            conn.execute("release savepoint undo").await?;
        }
        Err(error) if error.refusal().is_some() => {
            conn.execute("rollback to savepoint undo; release savepoint undo")
                .await?;
        }
        // The caller rolls back its whole transaction.
        Err(_) => {}
    }
    outcome
}

async fn ensure_wallet(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("insert into wallets (user_id, currency) values ($1, $2) on conflict do nothing")
        .bind(user_id)
        .bind(CURRENCY)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Balance {
    pub balance: i64,
    pub currency: String,
    pub updated_at: DateTime<Utc>,
}

/// The user's balance; an empty wallet is created on first use.
pub async fn balance(pool: &PgPool, user_id: Uuid) -> Result<Balance, LedgerError> {
    let mut conn = pool.acquire().await?;
    let found =
        sqlx::query_as("select balance, currency, updated_at from wallets where user_id = $1")
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(balance) = found {
        return Ok(balance);
    }
    ensure_wallet(&mut conn, user_id).await?;
    Ok(
        sqlx::query_as("select balance, currency, updated_at from wallets where user_id = $1")
            .bind(user_id)
            .fetch_one(&mut *conn)
            .await?,
    )
}

pub async fn find(
    conn: &mut PgConnection,
    user_id: Uuid,
    id: Uuid,
) -> Result<Transaction, LedgerError> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from transactions where id = $1 and user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?
    .ok_or(LedgerError::TransactionNotFound)
}

/// Filters of the history.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kind: Option<TransactionType>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// One page of the user's transactions, newest first, and the next page's cursor.
pub async fn list(
    pool: &PgPool,
    user_id: Uuid,
    filter: &Filter,
    page: &PageRequest,
) -> Result<(Vec<Transaction>, Option<String>), LedgerError> {
    let (rows, next) = page
        .fetch_page(
            sqlx::query_as(&format!(
                "select {COLUMNS} from transactions
             where user_id = $1
               and ($2::text is null or type = $2::text)
               and ($3::timestamptz is null or created_at >= $3)
               and ($4::timestamptz is null or created_at <= $4)
               and ($5::timestamptz is null or (created_at, id) < ($5, $6))
             order by created_at desc, id desc
             limit $7"
            ))
            .bind(user_id)
            .bind(filter.kind)
            .bind(filter.from)
            .bind(filter.to),
            pool,
            |row: &Transaction| (row.created_at, row.id),
        )
        .await?;
    Ok((rows, next))
}

/// What an audit of one wallet finds: its balance, and the sum of its ledger (each
/// transaction's effect recomputed from its type and its parent's). They must be equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audit {
    pub balance: i64,
    pub ledger_sum: i64,
    pub transactions: i64,
}

pub async fn audit(pool: &PgPool, user_id: Uuid) -> sqlx::Result<Audit> {
    let (balance, ledger_sum, transactions): (i64, i64, i64) = sqlx::query_as(
        "select
             coalesce((select balance from wallets where user_id = $1), 0),
             coalesce(sum(case t.type
                 when 'deposit' then t.amount
                 when 'cancellation' then t.amount
                 when 'reversal' then case p.type when 'deposit' then -t.amount else t.amount end
                 else -t.amount end), 0)::bigint,
             count(t.id)
         from transactions t left join transactions p on p.id = t.parent_transaction_id
         where t.user_id = $1",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await?;
    Ok(Audit {
        balance,
        ledger_sum,
        transactions,
    })
}
