//! Local verification of access tokens: no network round trip per request.
//!
//! The gateway holds the auth service's public keys (it can verify, never mint) and the set
//! of revoked token ids. Two background tasks keep them current: the keys are fetched at
//! start and again when a token names an unknown key; revocations are followed every half
//! second, so a token signed out at any gateway is refused by every gateway within a second.
//! The gateway that handles a sign-out refuses the token at once.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use platform::shutdown::CancellationToken;
use proto::auth::v1::{GetVerificationKeysRequest, ListRevokedTokensRequest};
use serde::Deserialize;
use uuid::Uuid;

use crate::problem::ApiError;
use crate::services::Services;

/// What the gateway reads from a verified token.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub exp: i64,
    pub jti: Uuid,
    #[serde(default)]
    pub roles: Vec<String>,
}

struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    validation: Validation,
}

#[derive(Default)]
pub struct TokenVerifier {
    keys: RwLock<Option<Keys>>,
    /// Revoked `jti` → the token's expiry (unix seconds), after which it can be forgotten.
    revoked: RwLock<HashMap<Uuid, i64>>,
    /// Set when a token names a key we do not have (the auth service may have a new one).
    unknown_key_seen: AtomicBool,
}

const REVOCATION_POLL: Duration = Duration::from_millis(500);
const KEY_REFRESH: Duration = Duration::from_secs(300);
const MIN_KEY_FETCH_GAP: Duration = Duration::from_secs(5);

impl TokenVerifier {
    /// Whether the keys have been loaded (the gateway is not ready before).
    pub fn has_keys(&self) -> bool {
        read(&self.keys).is_some()
    }

    /// Verifies signature (EdDSA only), `exp`, `iss` and `aud`, then revocation.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let invalid = || ApiError::unauthorized("the access token is invalid or expired");
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        let claims = {
            let keys = read(&self.keys);
            let keys = keys.as_ref().ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "service-unavailable",
                    "token verification is not ready yet; try again shortly",
                )
            })?;
            let key = header
                .kid
                .as_ref()
                .and_then(|kid| keys.by_kid.get(kid))
                .ok_or_else(|| {
                    self.unknown_key_seen.store(true, Ordering::Relaxed);
                    invalid()
                })?;
            jsonwebtoken::decode::<Claims>(token, key, &keys.validation)
                .map_err(|_| invalid())?
                .claims
        };
        if read(&self.revoked).contains_key(&claims.jti) {
            return Err(ApiError::unauthorized("the access token has been revoked"));
        }
        Ok(claims)
    }

    /// Refuses `jti` from now on in this gateway (the auth service records it for the others).
    pub fn revoke_locally(&self, jti: Uuid, expires_at: i64) {
        write(&self.revoked).insert(jti, expires_at);
    }

    /// Keeps keys and revocations current until `shutdown`.
    pub async fn stay_current(&self, services: Services, shutdown: CancellationToken) {
        let mut after_seq = 0;
        let mut last_key_fetch: Option<Instant> = None;
        let mut logged_unavailable = false;
        loop {
            // Fetch keys until we have them, then every few minutes, and sooner (but not
            // more often than every few seconds) when a token named an unknown key.
            let since_fetch = last_key_fetch.map_or(Duration::MAX, |at| at.elapsed());
            let wanted = !self.has_keys()
                || since_fetch >= KEY_REFRESH
                || (self.unknown_key_seen.load(Ordering::Relaxed)
                    && since_fetch >= MIN_KEY_FETCH_GAP);
            if wanted {
                last_key_fetch = Some(Instant::now());
                self.unknown_key_seen.store(false, Ordering::Relaxed);
                match self.fetch_keys(&services).await {
                    Ok(()) => logged_unavailable = false,
                    Err(status) => {
                        if !logged_unavailable {
                            tracing::warn!(code = ?status.code(), "cannot fetch token keys yet; retrying");
                            logged_unavailable = true;
                        }
                    }
                }
            }
            match self.follow_revocations(&services, after_seq).await {
                Ok(seq) => after_seq = seq,
                Err(status) => tracing::debug!(code = ?status.code(), "cannot fetch revocations"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(REVOCATION_POLL) => {}
            }
        }
    }

    async fn fetch_keys(&self, services: &Services) -> Result<(), tonic::Status> {
        let response = services
            .auth
            .clone()
            .get_verification_keys(GetVerificationKeysRequest {})
            .await?
            .into_inner();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.leeway = 0;
        validation.set_issuer(&[&response.issuer]);
        validation.set_audience(&[&response.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let by_kid = response
            .keys
            .into_iter()
            .filter(|key| key.algorithm == "EdDSA")
            .map(|key| (key.kid, DecodingKey::from_ed_der(&key.public_key)))
            .collect();
        *write(&self.keys) = Some(Keys { by_kid, validation });
        tracing::info!("token verification keys loaded");
        Ok(())
    }

    /// Fetches revocations newer than `after_seq`, forgets expired ones, and returns the
    /// newest `seq` seen.
    async fn follow_revocations(
        &self,
        services: &Services,
        mut after_seq: i64,
    ) -> Result<i64, tonic::Status> {
        loop {
            let tokens = services
                .auth
                .clone()
                .list_revoked_tokens(ListRevokedTokensRequest { after_seq })
                .await?
                .into_inner()
                .tokens;
            if tokens.is_empty() {
                break;
            }
            let mut revoked = write(&self.revoked);
            for token in tokens {
                after_seq = after_seq.max(token.seq);
                if let Ok(jti) = Uuid::parse_str(&token.jti) {
                    let expires_at = token.expires_at.map_or(i64::MAX, |at| at.seconds);
                    revoked.insert(jti, expires_at);
                }
            }
        }
        let now = chrono::Utc::now().timestamp();
        write(&self.revoked).retain(|_, expires_at| *expires_at >= now);
        Ok(after_seq)
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
