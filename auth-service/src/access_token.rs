//! Access tokens: JWTs signed with EdDSA (Ed25519), the algorithm pinned on both sides.

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
}

/// Signs access tokens for users.
pub struct TokenIssuer {
    key: ActiveKey,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl TokenIssuer {
    pub fn new(key: ActiveKey, issuer: String, audience: String, ttl: Duration) -> Self {
        Self {
            key,
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

    pub fn issue(
        &self,
        user_id: Uuid,
        roles: &[Role],
        now: DateTime<Utc>,
    ) -> anyhow::Result<IssuedToken> {
        let expires_in = i64::try_from(self.ttl.as_secs())?;
        let claims = Claims {
            sub: user_id,
            iat: now.timestamp(),
            exp: now.timestamp() + expires_in,
            iss: &self.issuer,
            aud: &self.audience,
            jti: Uuid::new_v4(),
            roles,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.key.encoding_key)?;
        Ok(IssuedToken { token, expires_in })
    }
}
