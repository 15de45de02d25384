//! `Idempotency-Key` on `POST /orders`, with the wallet's (Stripe's) semantics: the first
//! request with a key is applied and its outcome stored, the order it placed or the rule it
//! broke (out of stock, a withdrawn product, ...); the same key with the same request gets
//! that outcome again without a second order or reservation; with another request, 422.
//!
//! The key is claimed first, in the order's own transaction, so concurrent requests with one
//! key serialise on its primary key: the second INSERT waits until the first request's
//! transaction ends, then sees its stored outcome (or, if it rolled back, takes the key).
//! Keys are kept for at least 24 hours.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::OrderError;
use crate::order::NewOrder;

/// Longest key accepted (as the wallet's).
pub const MAX_KEY_LEN: usize = 255;

/// What a key says about a request.
pub enum Claim {
    /// First use: go ahead, then [`record_order`] or [`record_refusal`].
    New,
    /// Seen before with this request, which placed this order.
    Placed(Uuid),
    /// Seen before with this request, which was refused this way.
    Refused(OrderError),
}

/// Checks the key's shape: 1 to 255 visible ASCII characters.
pub fn check(key: &str) -> Result<(), OrderError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(OrderError::Invalid(vec![(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        )]));
    }
    Ok(())
}

pub async fn claim(
    conn: &mut PgConnection,
    new: &NewOrder,
    key: &str,
) -> Result<Claim, OrderError> {
    let fingerprint = new.fingerprint();
    let inserted = sqlx::query(
        "insert into order_idempotency_keys (user_id, key, fingerprint) values ($1, $2, $3)
         on conflict do nothing",
    )
    .bind(new.user_id)
    .bind(key)
    .bind(&fingerprint)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::New);
    }
    let (stored, order_id, reason, message): (
        String,
        Option<Uuid>,
        Option<String>,
        Option<String>,
    ) = sqlx::query_as(
        "select fingerprint, order_id, error_reason, error_message
             from order_idempotency_keys where user_id = $1 and key = $2",
    )
    .bind(new.user_id)
    .bind(key)
    .fetch_one(&mut *conn)
    .await?;
    if stored != fingerprint {
        return Err(OrderError::IdempotencyKeyReused);
    }
    match (order_id, reason) {
        (Some(order_id), _) => Ok(Claim::Placed(order_id)),
        (None, Some(reason)) => Ok(Claim::Refused(OrderError::Replayed {
            reason,
            message: message.unwrap_or_default(),
        })),
        (None, None) => Err(OrderError::Internal(anyhow::anyhow!(
            "an order idempotency key without an outcome"
        ))),
    }
}

pub async fn record_order(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    order_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query("update order_idempotency_keys set order_id = $3 where user_id = $1 and key = $2")
        .bind(user_id)
        .bind(key)
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores the rule a request broke, as its problem type and message.
pub async fn record_refusal(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    reason: &str,
    message: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "update order_idempotency_keys set error_reason = $3, error_message = $4
         where user_id = $1 and key = $2",
    )
    .bind(user_id)
    .bind(key)
    .bind(reason)
    .bind(message)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets keys older than two days (the promise is at least 24 hours; run hourly).
pub const PRUNE: &str =
    "delete from order_idempotency_keys where created_at < now() - interval '48 hours'";
