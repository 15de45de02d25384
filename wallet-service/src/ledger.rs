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

/// What [`record_and_apply_many`] did with a request.
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

/// Where [`write`]'s statement records a broker message in the inbox, if it does.
#[derive(Debug, Clone, Copy)]
enum Inbox<'a> {
    /// Not at all (an API request).
    None,
    /// Only when the change is written. A message id recorded before is a unique violation:
    /// an error, which rolls the statement back (and aborts a transaction around it).
    IfWritten { message_id: &'a str, queue: &'a str },
}

/// What [`write`]'s statement did.
enum Written {
    Applied(Applied),
    /// Nothing written.
    TooLittleMoney,
}

/// The one statement of [`apply`] and [`apply_once`]: changes the balance by `delta`,
/// appends the ledger row of `amount`, queues its event and records the inbox row as
/// `inbox` says.
async fn write(
    conn: &mut PgConnection,
    new: &NewTransaction,
    amount: i64,
    delta: i64,
    inbox: Inbox<'_>,
) -> sqlx::Result<Written> {
    // Money in creates the wallet on first use; money out needs a wallet with enough in it
    // (a missing wallet holds nothing): no row back means too little money, and then
    // nothing is written.
    let change = if delta > 0 {
        "insert into wallets (user_id, currency, balance) values ($2, $5, $10)
         on conflict (user_id) do update
            set balance = wallets.balance + $10, updated_at = now()
         returning balance"
    } else {
        "update wallets set balance = balance + $10, updated_at = now()
         where user_id = $2 and balance + $10 >= 0 returning balance"
    };
    let if_written = match inbox {
        Inbox::IfWritten { .. } => {
            "if_written as (insert into inbox (message_id, queue) select $15, $16 from changed),"
        }
        Inbox::None => "",
    };
    let id = Uuid::now_v7();
    let event = event_of(id, new, amount);
    let sql = format!(
        "with changed as ({change}), {if_written}
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
         select inserted.*, queued.payload as event from inserted, queued",
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
    if let Inbox::IfWritten { message_id, queue } = inbox {
        query = query.bind(message_id).bind(queue);
    }
    // No row: too little money.
    let Some(row) = query.fetch_optional(&mut *conn).await? else {
        return Ok(Written::TooLittleMoney);
    };
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
/// another, each with the span of the request it came in, as [`apply`] would one after the
/// other, in one statement inside the caller's database transaction: the plain deposits and
/// withdrawals of a [`crate::group_commit`] batch in one round trip, however many there
/// are. Each gets its outcome: applied, or too little money (nothing written for it).
///
/// `Err` when the statement failed (for instance a deadlock with another instance): nothing
/// was written, and the caller's transaction is aborted. Two requests of one wallet are
/// refused before anything is sent: a statement changes a row once, so the second would be
/// lost, or (a withdrawal joined twice) written with the first one's balance.
pub async fn apply_many(
    conn: &mut PgConnection,
    news: &[(&NewTransaction, &tracing::Span)],
) -> Result<Vec<Result<Applied, LedgerError>>, LedgerError> {
    let items: Vec<Item> = news
        .iter()
        .map(|&(new, span)| Item {
            new,
            span,
            message_id: "",
        })
        .collect();
    let outcomes = write_many(conn, &items, None).await?;
    Ok(outcomes
        .into_iter()
        .map(|outcome| match outcome? {
            Recorded::Applied(applied) => Ok(applied),
            Recorded::TooLittleMoney => Err(LedgerError::InsufficientFunds),
            // Only a request with a broker message id can be one: never an API request.
            Recorded::Duplicate => Err(LedgerError::Internal(anyhow::anyhow!(
                "an API request was taken for a duplicate message"
            ))),
        })
        .collect())
}

/// Records each of `requests` (a transaction with no parent, and its broker message id) in
/// the inbox of `queue` and applies it if its message id is new, all in one statement
/// inside the caller's database transaction, as [`apply_many`] does for the API's requests:
/// the requests of a round of a broker batch in one round trip. Each is of another wallet
/// and has another message id than the others, and gets its [`Recorded`] outcome; its
/// event carries the caller's current span (the batch's).
pub async fn record_and_apply_many(
    conn: &mut PgConnection,
    requests: &[(&NewTransaction, &str)],
    queue: &str,
) -> Result<Vec<Result<Recorded, LedgerError>>, LedgerError> {
    let span = tracing::Span::current();
    let items: Vec<Item> = requests
        .iter()
        .map(|&(new, message_id)| Item {
            new,
            span: &span,
            message_id,
        })
        .collect();
    write_many(conn, &items, Some(queue)).await
}

/// A request of [`write_many`].
struct Item<'a> {
    new: &'a NewTransaction,
    span: &'a tracing::Span,
    /// Its broker message id, recorded in the inbox of the queue [`write_many`] is given.
    message_id: &'a str,
}

/// The one statement of [`apply_many`] and [`record_and_apply_many`]. With `inbox` (a
/// queue), each request's message id is recorded first (`on conflict do nothing`) and only
/// the requests whose row is new are applied: a message id recorded before (or earlier in
/// the caller's transaction) writes nothing and raises nothing, which would abort the
/// caller's transaction and with it the batch. `Err` for a request that breaks a rule
/// checked before anything is written (not even the inbox row): the caller takes the
/// longer way, which records the rejection.
async fn write_many(
    conn: &mut PgConnection,
    items: &[Item<'_>],
    inbox: Option<&str>,
) -> Result<Vec<Result<Recorded, LedgerError>>, LedgerError> {
    let mut wallets = std::collections::HashSet::with_capacity(items.len());
    let mut message_ids = std::collections::HashSet::with_capacity(items.len());
    if !items.iter().all(|item| {
        item.new.parent_transaction_id.is_none()
            && wallets.insert(item.new.user_id)
            && (inbox.is_none() || message_ids.insert(item.message_id))
    }) {
        return Err(LedgerError::Internal(anyhow::anyhow!(
            "one statement takes requests with no parent, one per wallet and message id"
        )));
    }
    let mut requests = Requests::default();
    // Each request's transaction id, if it is sent, and its outcome: a broken rule, or what
    // the statement says.
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        match effect(item.new, None) {
            Ok((amount, delta)) => {
                let id = Uuid::now_v7();
                // The event carries the trace of the request it belongs to.
                let event = item.span.in_scope(|| event_of(id, item.new, amount));
                requests.push(id, item.new, amount, delta, event, item.message_id);
                outcomes.push((Some(id), Ok(Recorded::Duplicate)));
            }
            Err(error) => outcomes.push((None, Err(error))),
        }
    }
    // With an inbox, a request changes its wallet only if its message id is new.
    let (recorded, only_recorded, left_join_recorded, is_recorded) = match inbox {
        Some(_) => (
            "recorded as (
                 insert into inbox (message_id, queue)
                 select request_id, $15 from requests order by position
                 on conflict do nothing returning message_id as request_id
             ),",
            "join recorded using (request_id)",
            "left join recorded using (request_id)",
            "recorded.request_id is not null",
        ),
        None => ("", "", "", "true"),
    };
    // Money in creates the wallet on first use, money out needs enough in it, as in
    // [`write`]; the rows come in the order given, which locks wallets in that order.
    let sql = format!(
        "with requests as (
             select * from unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[],
                 $5::text[], $6::text[], $7::text[], $8::bigint[], $9::uuid[], $10::text[],
                 $11::text[], $12::jsonb[], $14::text[])
             with ordinality as requests(id, user_id, type, amount, description, source,
                 reference, delta, message_id, exchange, routing_key, event, request_id,
                 position)
         ),
         {recorded}
         deposited as (
             insert into wallets (user_id, currency, balance)
             select user_id, $13, delta from requests {only_recorded}
             where delta > 0 order by position
             on conflict (user_id) do update
                set balance = wallets.balance + excluded.balance, updated_at = now()
             returning user_id, balance
         ),
         withdrawn as (
             update wallets set balance = wallets.balance + requests.delta, updated_at = now()
             from requests {only_recorded}
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
         select requests.id as request, {is_recorded} as recorded, inserted.*,
             queued.payload as event
         from requests {left_join_recorded}
             left join inserted on inserted.id = requests.id
             left join queued on queued.message_id = requests.message_id",
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
        request_ids,
    } = requests;
    let mut query = sqlx::query(&sql)
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
        .bind(request_ids);
    if let Some(queue) = inbox {
        query = query.bind(queue);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    for row in rows {
        let request: Uuid = row.try_get("request")?;
        let outcome = if row
            .try_get::<Option<serde_json::Value>, _>("event")?
            .is_some()
        {
            Recorded::Applied(Applied::from_row(&row)?)
        } else if row.try_get("recorded")? {
            Recorded::TooLittleMoney
        } else {
            Recorded::Duplicate
        };
        if let Some((_, slot)) = outcomes.iter_mut().find(|(id, _)| *id == Some(request)) {
            *slot = Ok(outcome);
        }
    }
    Ok(outcomes.into_iter().map(|(_, outcome)| outcome).collect())
}

/// [`write_many`]'s requests, a column each, as the statement takes them.
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
    /// Broker message ids, for the inbox (empty for the API's requests).
    request_ids: Vec<String>,
}

impl Requests {
    fn push(
        &mut self,
        id: Uuid,
        new: &NewTransaction,
        amount: i64,
        delta: i64,
        event: OutboxMessage,
        request_id: &str,
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
        self.request_ids.push(request_id.to_owned());
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
