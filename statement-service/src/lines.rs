//! Statement lines: one per wallet transaction, and the statements built from them.

use chrono::{DateTime, NaiveDate, Utc};
use proto::TransactionType;
use proto::messaging::wallet::TransactionCreated;
use sqlx::PgPool;
use uuid::Uuid;

use crate::period::{Period, start_of};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Line {
    pub transaction_id: Uuid,
    #[sqlx(rename = "type")]
    pub kind: TransactionType,
    pub amount: i64,
    pub balance_after: i64,
    pub description: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// A line and the id of the message that carried it.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    /// The transaction of a `transaction.created` event: it becomes the line.
    pub line: TransactionCreated,
}

/// Records the lines of `received` (messages from `queue`) once per message id: the inbox
/// rows and the lines are written by one statement, so atomically, in one round trip and
/// one commit however many there are. A message id already in the inbox (or twice in
/// `received`) adds nothing, and neither does a transaction already recorded (the same
/// event republished under another message id).
pub async fn record_once(pool: &PgPool, queue: &str, received: &[Received]) -> sqlx::Result<()> {
    fn column<'a, T>(received: &'a [Received], value: impl Fn(&'a Received) -> T) -> Vec<T> {
        received.iter().map(value).collect()
    }
    sqlx::query(
        "with batch as (
             select distinct on (message_id) *
             from unnest($2::text[], $3::uuid[], $4::uuid[], $5::text[], $6::bigint[],
                         $7::text[], $8::bigint[], $9::text[], $10::timestamptz[])
                  as b (message_id, transaction_id, user_id, type, amount, currency,
                        balance_after, description, occurred_at)
             -- The same order in every transaction, so that two instances recording
             -- the same ids wait for each other instead of deadlocking.
             order by message_id
         ),
         fresh as (
             insert into inbox (message_id, queue) select message_id, $1 from batch
             on conflict do nothing returning message_id
         )
         insert into statement_lines (transaction_id, user_id, type, amount, currency, balance_after, description, occurred_at)
         select transaction_id, user_id, type, amount, currency, balance_after, description, occurred_at
         from batch join fresh using (message_id)
         on conflict (transaction_id) do nothing",
    )
    .bind(queue)
    .bind(column(received, |r| r.message_id.as_str()))
    .bind(column(received, |r| r.line.id))
    .bind(column(received, |r| r.line.user_id))
    .bind(column(received, |r| r.line.kind))
    .bind(column(received, |r| r.line.amount))
    .bind(column(received, |r| r.line.currency.as_str()))
    .bind(column(received, |r| r.line.balance_after))
    .bind(column(received, |r| r.line.description.as_deref()))
    .bind(column(received, |r| r.line.created_at))
    .execute(pool)
    .await?;
    Ok(())
}

/// The balance at the start of `day`: the `balance_after` of the user's last line before it
/// (0 for a wallet with no earlier transaction).
pub async fn balance_before(pool: &PgPool, user_id: Uuid, day: NaiveDate) -> sqlx::Result<i64> {
    let balance: Option<i64> = sqlx::query_scalar(
        "select balance_after from statement_lines where user_id = $1 and occurred_at < $2
         order by occurred_at desc, transaction_id desc limit 1",
    )
    .bind(user_id)
    .bind(start_of(day))
    .fetch_optional(pool)
    .await?;
    Ok(balance.unwrap_or(0))
}

/// Up to `limit` lines of the period after `after` (a line's `(occurred_at, transaction_id)`),
/// oldest first: a long statement is read page by page.
pub async fn page(
    pool: &PgPool,
    user_id: Uuid,
    period: Period,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<Line>> {
    sqlx::query_as(
        "select transaction_id, type, amount, balance_after, description, occurred_at from statement_lines
         where user_id = $1 and occurred_at >= $2 and occurred_at < $3
           and ($4::timestamptz is null or (occurred_at, transaction_id) > ($4, $5))
         order by occurred_at, transaction_id limit $6",
    )
    .bind(user_id)
    .bind(period.start())
    .bind(period.end())
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A statement: opening and closing balance and the lines in between, oldest first.
#[derive(Debug, Clone)]
pub struct Statement {
    pub period: Period,
    pub opening_balance: i64,
    pub closing_balance: i64,
    pub lines: Vec<Line>,
}

/// Builds the statement of a short period in memory, if it has at most `max_lines` lines
/// (`None` when it has more: it is for a job then, read page by page). A period with no line
/// is a valid, empty statement whose balances are the balance carried over.
pub async fn statement(
    pool: &PgPool,
    user_id: Uuid,
    period: Period,
    max_lines: i64,
) -> sqlx::Result<Option<Statement>> {
    // One more than allowed tells whether there are too many, without counting them all.
    let lines = page(pool, user_id, period, None, max_lines.saturating_add(1)).await?;
    if i64::try_from(lines.len()).map_or(true, |count| count > max_lines) {
        return Ok(None);
    }
    let opening_balance = balance_before(pool, user_id, period.from).await?;
    let closing_balance = lines
        .last()
        .map_or(opening_balance, |line| line.balance_after);
    Ok(Some(Statement {
        period,
        opening_balance,
        closing_balance,
        lines,
    }))
}
