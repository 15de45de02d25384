//! Refresh tokens: a session that outlives its 15-minute access tokens.
//!
//! A refresh token is 32 random bytes (base64url); only its SHA-256 is stored. Each one is
//! single use: refreshing marks it used and issues a new pair (rotation) in the same
//! *family*, the chain that started at one sign-in. A used token presented again means
//! that two parties hold the chain (a thief, or a replay), and there is no telling which
//! one is the owner, so the whole family is revoked, together with the access tokens it
//! issued (they go to `revoked_tokens`, which gateways follow). Signing out revokes the
//! family of the access token used for it.
//!
//! Refreshing re-reads the account's roles (as a sign-in does), so a session never keeps a
//! role longer than one access token's lifetime.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use proto::Role;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::access_token::{IssuedToken, TokenIssuer};
use crate::accounts;
use crate::error::AuthError;

/// A new refresh token, shown to the client once.
pub struct RefreshToken {
    pub token: String,
}

/// Starts a family for a new sign-in (or sign-up) whose first access token is `access`.
pub async fn start(
    pool: &PgPool,
    user_id: Uuid,
    access: &IssuedToken,
    ttl: Duration,
) -> Result<RefreshToken, AuthError> {
    let mut db = pool.acquire().await?;
    insert(&mut db, Uuid::now_v7(), user_id, access, ttl).await
}

/// Exchanges a refresh token for a new access token and a new refresh token. An unknown,
/// expired, revoked or already used token is refused; a used one also revokes its family.
pub async fn refresh(
    pool: &PgPool,
    issuer: &TokenIssuer,
    admin_emails: &[String],
    ttl: Duration,
    raw: &str,
) -> Result<(IssuedToken, RefreshToken), AuthError> {
    let mut tx = pool.begin().await?;
    // The row lock makes two refreshes with one token take turns: the second sees it used.
    let found: Option<(Uuid, Uuid, DateTime<Utc>, bool, bool)> = sqlx::query_as(
        "select family, user_id, expires_at, used_at is not null, revoked_at is not null
         from refresh_tokens where token_hash = $1 for update",
    )
    .bind(hash(raw).as_slice())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((family, user_id, expires_at, used, revoked)) = found else {
        return Err(AuthError::InvalidRefreshToken);
    };
    if revoked || expires_at <= Utc::now() {
        return Err(AuthError::InvalidRefreshToken);
    }
    if used {
        revoke_family(&mut tx, family).await?;
        tx.commit().await?;
        tracing::warn!(%user_id, %family, "a used refresh token came back: its family is revoked");
        return Err(AuthError::InvalidRefreshToken);
    }
    let (email, stored_roles): (String, Vec<Role>) =
        sqlx::query_as("select email, roles from users where id = $1")
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
    let roles = accounts::roles_of(&email, admin_emails);
    if roles != stored_roles {
        sqlx::query("update users set roles = $2 where id = $1")
            .bind(user_id)
            .bind(&roles)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("update refresh_tokens set used_at = now() where token_hash = $1")
        .bind(hash(raw).as_slice())
        .execute(&mut *tx)
        .await?;
    let access = issuer.issue(user_id, &roles, Utc::now())?;
    let refresh = insert(&mut tx, family, user_id, &access, ttl).await?;
    tx.commit().await?;
    Ok((access, refresh))
}

/// Revokes the family of the refresh token issued with access token `access_jti` (at
/// sign-out). Nothing to do for an access token without one.
pub async fn revoke_family_of(pool: &PgPool, access_jti: Uuid) -> Result<(), AuthError> {
    let mut tx = pool.begin().await?;
    let family: Option<Uuid> =
        sqlx::query_scalar("select family from refresh_tokens where access_jti = $1")
            .bind(access_jti)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(family) = family {
        revoke_family(&mut tx, family).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Forgets refresh tokens that have expired anyway (run hourly).
pub const PRUNE_EXPIRED: &str =
    "delete from refresh_tokens where expires_at < now() - interval '1 hour'";

async fn revoke_family(db: &mut PgConnection, family: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "update refresh_tokens set revoked_at = now() where family = $1 and revoked_at is null",
    )
    .bind(family)
    .execute(&mut *db)
    .await?;
    sqlx::query(
        "insert into revoked_tokens (jti, expires_at)
         select access_jti, access_expires_at from refresh_tokens
         where family = $1 and access_expires_at > now()
         on conflict (jti) do nothing",
    )
    .bind(family)
    .execute(&mut *db)
    .await?;
    Ok(())
}

async fn insert(
    db: &mut PgConnection,
    family: Uuid,
    user_id: Uuid,
    access: &IssuedToken,
    ttl: Duration,
) -> Result<RefreshToken, AuthError> {
    let secret: [u8; 32] = rand::random();
    let token = URL_SAFE_NO_PAD.encode(secret);
    let ttl = chrono::Duration::from_std(ttl).map_err(anyhow::Error::from)?;
    sqlx::query(
        "insert into refresh_tokens
             (token_hash, family, user_id, access_jti, access_expires_at, expires_at)
         values ($1, $2, $3, $4, $5, now() + $6)",
    )
    .bind(hash(&token).as_slice())
    .bind(family)
    .bind(user_id)
    .bind(access.jti)
    .bind(access.expires_at)
    .bind(ttl)
    .execute(&mut *db)
    .await?;
    Ok(RefreshToken { token })
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_stored_as_its_sha256_never_in_clear() {
        let digest = hash("abc");
        assert_eq!(
            digest[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256 of \"abc\" starts ba7816bf"
        );
    }
}
