//! Access tokens: JWTs signed with EdDSA (Ed25519), the algorithm pinned on both sides.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header};
use proto::Role;
use serde::Serialize;
use uuid::Uuid;

use crate::signing_keys::ActiveKey;

/// The claims of an access token. `roles` lets the gateway authorise without a call.
#[derive(Debug, Serialize)]
pub struct Claims<'a> {
    pub sub: Uuid,
    pub exp: i64,
    pub iat: i64,
    pub iss: &'a str,
    pub aud: &'a str,
    pub jti: Uuid,
    pub roles: &'a [Role],
}

/// A signed token and its lifetime in seconds.
pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
    /// Its id and expiry, so that its refresh token can revoke it with its family.
    pub jti: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// Signs access tokens for users.
pub struct TokenIssuer {
    /// Replaced when a rotated key becomes active (see `signing_keys`).
    key: RwLock<Arc<ActiveKey>>,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl TokenIssuer {
    pub fn new(key: ActiveKey, issuer: String, audience: String, ttl: Duration) -> Self {
        Self {
            key: RwLock::new(Arc::new(key)),
            issuer,
            audience,
            ttl,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The `kid` new tokens are signed with.
    pub fn kid(&self) -> String {
        self.active().kid.clone()
    }

    /// Signs new tokens with `key` from now on (tokens signed before stay valid: the old
    /// key stays published).
    pub fn set_key(&self, key: ActiveKey) {
        if self.active().kid != key.kid {
            tracing::info!(kid = key.kid, "signing new tokens with another key");
            *self.key.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        }
    }

    fn active(&self) -> Arc<ActiveKey> {
        // Nothing can be left half-written under this lock: go on after a panic.
        self.key
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        roles: &[Role],
        now: DateTime<Utc>,
    ) -> anyhow::Result<IssuedToken> {
        let expires_in = i64::try_from(self.ttl.as_secs())?;
        let jti = Uuid::new_v4();
        let exp = now.timestamp() + expires_in;
        let claims = Claims {
            sub: user_id,
            iat: now.timestamp(),
            exp,
            iss: &self.issuer,
            aud: &self.audience,
            jti,
            roles,
        };
        let key = self.active();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding_key)?;
        let expires_at = DateTime::from_timestamp(exp, 0)
            .ok_or_else(|| anyhow::anyhow!("token expiry out of range"))?;
        Ok(IssuedToken {
            token,
            expires_in,
            jti,
            expires_at,
        })
    }
}
