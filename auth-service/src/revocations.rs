//! Signed-out tokens.
//!
//! Gateways verify tokens locally, so each keeps the set of revoked token ids in memory. It
//! loads the set from here at start and then asks every half second for rows newer than the
//! last `seq` it saw: a revocation reaches every gateway within a second, and no broker
//! outage can make one miss it.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, sqlx::FromRow)]
pub struct RevokedToken {
    pub seq: i64,
    pub jti: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// Revokes `jti` until `expires_at`. Revoking twice is harmless.
pub async fn revoke(pool: &PgPool, jti: Uuid, expires_at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query(
        "insert into revoked_tokens (jti, expires_at) values ($1, $2) on conflict (jti) do nothing",
    )
    .bind(jti)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Unexpired revocations after `after_seq`, oldest first, at most `limit`.
pub async fn list_after(
    pool: &PgPool,
    after_seq: i64,
    limit: i64,
) -> sqlx::Result<Vec<RevokedToken>> {
    sqlx::query_as(
        "select seq, jti, expires_at from revoked_tokens
         where seq > $1 and expires_at > now() order by seq limit $2",
    )
    .bind(after_seq)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Forgets revocations of tokens that have expired anyway.
pub async fn prune_expired(pool: &PgPool) -> sqlx::Result<u64> {
    let done =
        sqlx::query("delete from revoked_tokens where expires_at < now() - interval '1 hour'")
            .execute(pool)
            .await?;
    Ok(done.rows_affected())
}
