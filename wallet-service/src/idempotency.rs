//! `Idempotency-Key`, with Stripe's semantics: the first request with a key is applied and
//! its outcome (the transaction, or the rule it broke) stored; the same key with the same
//! request gets that outcome again without a second effect; with another request, 422.
//!
//! Concurrent requests with one key serialise on the key's primary key: the second INSERT
//! waits until the first request's transaction ends, then sees its stored outcome (or, if it
//! rolled back, takes the key itself). Keys are kept for at least 24 hours.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::{LedgerError, Refusal};

/// What a key says about a request.
pub enum Claim {
    /// First use: go ahead, then [`record_success`] or [`record_failure`].
    New,
    /// Seen before with this request: its transaction.
    Applied(Uuid),
    /// Seen before with this request, which failed this way.
    Failed(LedgerError),
}

#[derive(sqlx::FromRow)]
struct Stored {
    fingerprint: String,
    transaction_id: Option<Uuid>,
    error_reason: Option<Refusal>,
    error_message: Option<String>,
}

pub async fn claim(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    fingerprint: &str,
) -> Result<Claim, LedgerError> {
    let inserted = sqlx::query(
        "insert into idempotency_keys (user_id, key, fingerprint) values ($1, $2, $3) on conflict do nothing",
    )
    .bind(user_id)
    .bind(key)
    .bind(fingerprint)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::New);
    }
    let stored: Stored = sqlx::query_as(
        "select fingerprint, transaction_id, error_reason, error_message
         from idempotency_keys where user_id = $1 and key = $2",
    )
    .bind(user_id)
    .bind(key)
    .fetch_one(&mut *conn)
    .await?;
    if stored.fingerprint != fingerprint {
        return Err(LedgerError::IdempotencyKeyReused);
    }
    match (stored.transaction_id, stored.error_reason) {
        (Some(id), _) => Ok(Claim::Applied(id)),
        (None, Some(refusal)) => Ok(Claim::Failed(LedgerError::Replayed {
            refusal,
            message: stored.error_message.unwrap_or_default(),
        })),
        (None, None) => Err(LedgerError::Internal(anyhow::anyhow!(
            "idempotency key without an outcome"
        ))),
    }
}

pub async fn record_success(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    transaction_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query("update idempotency_keys set transaction_id = $3 where user_id = $1 and key = $2")
        .bind(user_id)
        .bind(key)
        .bind(transaction_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn record_failure(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    refusal: Refusal,
    message: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "update idempotency_keys set error_reason = $3, error_message = $4
         where user_id = $1 and key = $2",
    )
    .bind(user_id)
    .bind(key)
    .bind(refusal)
    .bind(message)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets keys older than two days (the promise is at least 24 hours; run hourly).
pub const PRUNE: &str =
    "delete from idempotency_keys where created_at < now() - interval '48 hours'";
