//! `Idempotency-Key`, with Stripe's semantics: the first request with a key is applied and
//! its outcome stored (the id of what it created, or the rule it broke); the same key with
//! the same request gets that outcome again without a second effect; with another request,
//! the caller answers 422.
//!
//! The key is claimed in the request's own database transaction, so concurrent requests
//! with one key serialise on the key's primary key: the second INSERT waits until the first
//! request's transaction ends, then sees its stored outcome (or, if it rolled back, takes
//! the key itself). Keys are kept for at least 24 hours ([`Keys::prune`], run hourly).
//!
//! A service keeps its keys in a table of this shape (the outcome column named as it likes):
//!
//! ```sql
//! create table idempotency_keys (
//!     user_id        uuid not null,
//!     key            text not null,
//!     fingerprint    text not null,   -- the normalised request
//!     transaction_id uuid,            -- the outcome: what the first request created ...
//!     error_reason   text,            -- ... or the rule it broke, and how it was told
//!     error_message  text,
//!     created_at     timestamptz not null default now(),
//!     primary key (user_id, key)
//! );
//! ```

use sqlx::{PgConnection, Postgres};
use uuid::Uuid;

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// The field a badly shaped key is reported under.
pub const FIELD: &str = "Idempotency-Key";

/// Refuses a key that is empty, too long or not visible ASCII, with the message to show.
pub fn check(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "must be 1 to {MAX_KEY_LEN} visible ASCII characters"
        ));
    }
    Ok(())
}

/// What a key says about a request. `R` is how the service names a broken rule.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim<R> {
    /// First use: go ahead, then [`Keys::record_success`] or [`Keys::record_refusal`].
    New,
    /// Seen before with another request.
    Reused,
    /// Seen before with this request, which created this.
    Succeeded(Uuid),
    /// Seen before with this request, which broke this rule.
    Refused { reason: R, message: String },
}

/// One service's table of keys: its statements, written once.
pub struct Keys {
    claim: String,
    stored: String,
    record_success: String,
    record_refusal: String,
    prune: String,
}

impl Keys {
    /// The keys kept in `table`, whose successful outcome is the id in column `outcome`.
    pub fn new(table: &str, outcome: &str) -> Self {
        Self {
            claim: format!(
                "insert into {table} (user_id, key, fingerprint) values ($1, $2, $3)
                 on conflict do nothing"
            ),
            stored: format!(
                "select fingerprint, {outcome}, error_reason, error_message
                 from {table} where user_id = $1 and key = $2"
            ),
            record_success: format!(
                "update {table} set {outcome} = $3 where user_id = $1 and key = $2"
            ),
            record_refusal: format!(
                "update {table} set error_reason = $3, error_message = $4
                 where user_id = $1 and key = $2"
            ),
            // Two days: the promise is at least 24 hours.
            prune: format!("delete from {table} where created_at < now() - interval '48 hours'"),
        }
    }

    /// Claims `key` for a request whose normalised form is `fingerprint`, inside the
    /// request's transaction `conn`.
    pub async fn claim<R>(
        &self,
        conn: &mut PgConnection,
        user_id: Uuid,
        key: &str,
        fingerprint: &str,
    ) -> sqlx::Result<Claim<R>>
    where
        R: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres> + Send + Unpin,
    {
        let inserted = sqlx::query(&self.claim)
            .bind(user_id)
            .bind(key)
            .bind(fingerprint)
            .execute(&mut *conn)
            .await?;
        if inserted.rows_affected() == 1 {
            return Ok(Claim::New);
        }
        let (stored, created, reason, message): (String, Option<Uuid>, Option<R>, Option<String>) =
            sqlx::query_as(&self.stored)
                .bind(user_id)
                .bind(key)
                .fetch_one(&mut *conn)
                .await?;
        if stored != fingerprint {
            return Ok(Claim::Reused);
        }
        match (created, reason) {
            (Some(id), _) => Ok(Claim::Succeeded(id)),
            (None, Some(reason)) => Ok(Claim::Refused {
                reason,
                message: message.unwrap_or_default(),
            }),
            // The outcome is written in the transaction that claimed the key, so a
            // committed key without one is a bug, not a request to answer.
            (None, None) => Err(sqlx::Error::Decode(
                "an idempotency key was committed without an outcome".into(),
            )),
        }
    }

    /// Stores what the request that claimed `key` created.
    pub async fn record_success(
        &self,
        conn: &mut PgConnection,
        user_id: Uuid,
        key: &str,
        created: Uuid,
    ) -> sqlx::Result<()> {
        sqlx::query(&self.record_success)
            .bind(user_id)
            .bind(key)
            .bind(created)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Stores the rule the request that claimed `key` broke, and the message it got.
    pub async fn record_refusal<R>(
        &self,
        conn: &mut PgConnection,
        user_id: Uuid,
        key: &str,
        reason: R,
        message: &str,
    ) -> sqlx::Result<()>
    where
        R: for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send,
    {
        sqlx::query(&self.record_refusal)
            .bind(user_id)
            .bind(key)
            .bind(reason)
            .bind(message)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// The statement that forgets keys older than two days, for an hourly prune.
    pub fn prune(&self) -> &str {
        &self.prune
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_one_to_255_visible_ascii_characters() {
        assert_eq!(check("a"), Ok(()));
        assert_eq!(check(&"k".repeat(MAX_KEY_LEN)), Ok(()));
        let refused = Err("must be 1 to 255 visible ASCII characters".to_owned());
        for bad in [
            String::new(),
            "k".repeat(MAX_KEY_LEN + 1),
            "a b".into(),
            "é".into(),
        ] {
            assert_eq!(check(&bad), refused, "{bad:?}");
        }
    }
}
