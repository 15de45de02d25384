//! Signed-out tokens.
//!
//! Gateways verify tokens locally, so each keeps the set of revoked token ids in memory. It
//! loads the set from here at start and then asks every half second for what is new: a
//! revocation reaches every gateway within a second, and no broker outage can make one miss
//! it.
//!
//! "What is new" follows commit order, not `seq` order. A `seq` is drawn when a row is
//! inserted, so two sign-outs can commit in the other order (seq 11 commits, then seq 10):
//! a cursor on `seq` alone would step past 10 before it was visible and never see it. So
//! each row records the transaction that wrote it (`txid`, PostgreSQL's 64-bit `xid8`), and
//! every answer also reads the *horizon*, `pg_snapshot_xmin(pg_current_snapshot())`: every
//! transaction below it has ended, so no row below it can still appear.
//!
//! - Rows below the horizon are *settled*; they are handed out once, in `(txid, seq)`
//!   order, a page at a time, and the cursor moves past them.
//! - Rows at or above the horizon are visible (committed) but not settled: an older
//!   transaction may still commit a row before them. They are handed out on every poll, and
//!   the cursor stays at the horizon, until the horizon passes them. A gateway may apply one
//!   several times, which is harmless; it can never skip one.
//!
//! Why not re-read a trailing window of `seq`s: no window is wide enough for a transaction
//! that stalls between insert and commit. Why not serialise the writers with a lock: the
//! order would then hold only for rows written through this code. The cost of the horizon
//! is that a long transaction on the auth database keeps its later revocations unsettled,
//! so they are sent again each poll until it ends (they still apply at once).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, sqlx::FromRow)]
pub struct RevokedToken {
    pub seq: i64,
    pub jti: Uuid,
    pub expires_at: DateTime<Utc>,
    pub txid: i64,
}

/// A position in commit order: the writing transaction's id, then `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cursor {
    pub txid: i64,
    pub seq: i64,
}

/// One answer: the revocations after the cursor, where to continue, and whether more
/// settled ones are waiting.
#[derive(Debug)]
pub struct Page {
    pub tokens: Vec<RevokedToken>,
    pub next: Cursor,
    pub more: bool,
}

/// Most unsettled rows handed out at once. They are the revocations committed while some
/// older transaction is still open: normally a handful. Past this, the rest wait for the
/// horizon to move (late, never lost).
const MAX_UNSETTLED: i64 = 10_000;

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

/// Unexpired revocations after `after` in commit order (see the module doc): at most
/// `limit` settled ones, then every unsettled one (up to [`MAX_UNSETTLED`]).
pub async fn list_after(pool: &PgPool, after: Cursor, limit: i64) -> sqlx::Result<Page> {
    // Read first: the rows read below, in a later snapshot, include every settled one.
    let horizon: i64 =
        sqlx::query_scalar("select pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            .fetch_one(pool)
            .await?;
    let mut tokens: Vec<RevokedToken> = sqlx::query_as(
        "select seq, jti, expires_at, txid::text::bigint as txid from revoked_tokens
         where txid < $1::text::xid8 and (txid, seq) > ($2::text::xid8, $3)
           and expires_at > now()
         order by txid, seq limit $4",
    )
    .bind(horizon)
    .bind(after.txid)
    .bind(after.seq)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let full = i64::try_from(tokens.len()).unwrap_or(i64::MAX) >= limit;
    if let (true, Some(last)) = (full, tokens.last()) {
        let next = Cursor {
            txid: last.txid,
            seq: last.seq,
        };
        return Ok(Page {
            tokens,
            next,
            more: true,
        });
    }
    let unsettled: Vec<RevokedToken> = sqlx::query_as(
        "select seq, jti, expires_at, txid::text::bigint as txid from revoked_tokens
         where txid >= $1::text::xid8 and expires_at > now()
         order by txid, seq limit $2",
    )
    .bind(horizon)
    .bind(MAX_UNSETTLED)
    .fetch_all(pool)
    .await?;
    tokens.extend(unsettled);
    // Every settled row is handed out: continue at the horizon (never move backwards).
    let next = after.max(Cursor {
        txid: horizon,
        seq: 0,
    });
    Ok(Page {
        tokens,
        next,
        more: false,
    })
}

/// Unexpired revocations after `after_seq`, in `seq` order, at most `limit`: the answer to
/// gateways from before the commit-ordered cursor, during a rolling upgrade.
pub async fn list_after_seq(
    pool: &PgPool,
    after_seq: i64,
    limit: i64,
) -> sqlx::Result<Vec<RevokedToken>> {
    sqlx::query_as(
        "select seq, jti, expires_at, txid::text::bigint as txid from revoked_tokens
         where seq > $1 and expires_at > now() order by seq limit $2",
    )
    .bind(after_seq)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Forgets revocations of tokens that have expired anyway (run hourly).
pub const PRUNE_EXPIRED: &str =
    "delete from revoked_tokens where expires_at < now() - interval '1 hour'";
