//! Local verification of access tokens: no network round trip per request.
//!
//! The gateway holds the auth service's public keys (it can verify, never mint) and the set
//! of revoked token ids. A background task keeps them current: the keys are fetched at
//! start, every minute (so a rotated key is known before auth-service signs with it: see
//! auth-service's `signing_keys`) and when a token names an unknown key; revocations are
//! followed every half second, so a token signed out at any gateway is refused by every
//! gateway within a second. The gateway that handles a sign-out refuses the token at once.
//!
//! Revocations are followed with auth-service's commit-ordered cursor (see its
//! `revocations` module), so a revocation that commits after one with a higher `seq` is
//! still applied. The gateway is not ready (`/readyz`) until its first full revocation sync
//! has succeeded: before it, a signed-out token would still be accepted.
//!
//! A token's signature is checked once: its claims are kept (by the whole token string, in a
//! bounded `quick_cache` that evicts the least used) until the keys change, because an EdDSA
//! check costs ~37 µs, about a tenth of the machine at the benchmark's read rate. Expiry and
//! revocation are checked on every request, cached or not.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use platform::shutdown::CancellationToken;
use proto::Role;
use proto::auth::v1::{
    GetVerificationKeysRequest, ListRevokedTokensRequest, RevocationCursor, SigningAlgorithm,
};
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
    pub roles: Vec<Role>,
}

struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    validation: Validation,
    /// What the keys were made from, to tell whether a fetch changed anything.
    fingerprint: Fingerprint,
}

/// The public keys by `kid` (sorted), the issuer and the audience.
type Fingerprint = (Vec<(String, Vec<u8>)>, String, String);

pub struct TokenVerifier {
    keys: RwLock<Option<Keys>>,
    /// Revoked `jti` → the token's expiry (unix seconds), after which it can be forgotten.
    revoked: RwLock<HashMap<Uuid, i64>>,
    /// Set when a token names a key we do not have (the auth service may have a new one).
    unknown_key_seen: AtomicBool,
    /// Set once every revocation committed before the first sync has been loaded.
    revocations_synced: AtomicBool,
    /// Tokens whose signature, issuer and audience were verified with the current keys.
    verified: quick_cache::sync::Cache<String, Claims>,
}

/// At most this many verified tokens are kept; a token evicted is verified again on its next
/// use.
const MAX_VERIFIED: usize = 10_000;

impl Default for TokenVerifier {
    fn default() -> Self {
        Self {
            keys: RwLock::default(),
            revoked: RwLock::default(),
            unknown_key_seen: AtomicBool::default(),
            revocations_synced: AtomicBool::default(),
            verified: quick_cache::sync::Cache::new(MAX_VERIFIED),
        }
    }
}

const REVOCATION_POLL: Duration = Duration::from_millis(500);
/// Shorter than auth-service's default `SIGNING_KEY_ACTIVATION_SECS` (120 s), so that a
/// rotated key is fetched before tokens signed with it arrive.
const KEY_REFRESH: Duration = Duration::from_secs(60);
const MIN_KEY_FETCH_GAP: Duration = Duration::from_secs(5);

impl TokenVerifier {
    /// Whether the keys have been loaded (the gateway is not ready before).
    pub fn has_keys(&self) -> bool {
        read(&self.keys).is_some()
    }

    /// Whether the first revocation sync has succeeded (the gateway is not ready before).
    pub fn revocations_synced(&self) -> bool {
        self.revocations_synced.load(Ordering::Acquire)
    }

    /// Verifies signature (EdDSA only), `exp`, `iss` and `aud`, then revocation.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = match self.verified.get(token) {
            Some(claims) => claims,
            None => self.verify_signature_and_remember(token)?,
        };
        // The same rule as the signature check's (no leeway), for cached tokens too.
        if claims.exp < now {
            return Err(invalid_or_expired());
        }
        if read(&self.revoked).contains_key(&claims.jti) {
            return Err(ApiError::unauthorized("the access token has been revoked"));
        }
        Ok(claims)
    }

    /// Checks signature (EdDSA only), `exp`, `iss` and `aud`, and remembers the claims. The
    /// keys stay locked until they are remembered, so a key change (which forgets every
    /// token) cannot come in between and leave a token verified with a withdrawn key.
    fn verify_signature_and_remember(&self, token: &str) -> Result<Claims, ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid_or_expired())?;
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
                invalid_or_expired()
            })?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &keys.validation)
            .map_err(|_| invalid_or_expired())?
            .claims;
        self.verified.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    /// Refuses `jti` from now on in this gateway (the auth service records it for the others).
    pub fn revoke_locally(&self, jti: Uuid, expires_at: i64) {
        write(&self.revoked).insert(jti, expires_at);
    }

    /// Keeps keys and revocations current until `shutdown`.
    pub async fn stay_current(&self, services: Arc<Services>, shutdown: CancellationToken) {
        let mut cursor = RevocationCursor::default();
        let mut last_key_fetch: Option<Instant> = None;
        let mut logged_unavailable = false;
        let mut revocations_failing = false;
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
            match self.follow_revocations(&services, cursor).await {
                Ok(next) => {
                    cursor = next;
                    self.revocations_synced.store(true, Ordering::Release);
                    revocations_failing = false;
                }
                // Once per outage at warn: until the first sync the gateway is not ready.
                Err(status) if !revocations_failing => {
                    tracing::warn!(code = ?status.code(), message = status.message(), "cannot fetch revocations yet; retrying");
                    revocations_failing = true;
                }
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
        let validation = validation(&response.issuer, &response.audience);
        let mut public: Vec<(String, Vec<u8>)> = response
            .keys
            .into_iter()
            .filter(|key| key.algorithm == i32::from(SigningAlgorithm::Eddsa))
            .map(|key| (key.kid, key.public_key))
            .collect();
        public.sort();
        let by_kid = public
            .iter()
            .map(|(kid, public_key)| (kid.clone(), DecodingKey::from_ed_der(public_key)))
            .collect();
        let fingerprint = (public, response.issuer, response.audience);
        // Fetched every minute: forget the verified tokens only when something changed.
        let unchanged = read(&self.keys)
            .as_ref()
            .is_some_and(|keys| keys.fingerprint == fingerprint);
        if unchanged {
            return Ok(());
        }
        self.set_keys(Keys {
            by_kid,
            validation,
            fingerprint,
        });
        tracing::info!("token verification keys loaded");
        Ok(())
    }

    fn set_keys(&self, keys: Keys) {
        *write(&self.keys) = Some(keys);
        // A key may have been withdrawn: what it signed must be checked again.
        self.verified.clear();
    }

    /// Fetches the revocations after `cursor` (every page), forgets expired ones, and returns
    /// where to continue.
    async fn follow_revocations(
        &self,
        services: &Services,
        mut cursor: RevocationCursor,
    ) -> Result<RevocationCursor, tonic::Status> {
        loop {
            let answer = services
                .auth
                .clone()
                .list_revoked_tokens(ListRevokedTokensRequest {
                    after_seq: 0,
                    cursor: Some(cursor),
                })
                .await?
                .into_inner();
            {
                let mut revoked = write(&self.revoked);
                for token in answer.tokens {
                    if let Ok(jti) = Uuid::parse_str(&token.jti) {
                        let expires_at = token.expires_at.map_or(i64::MAX, |at| at.seconds);
                        revoked.insert(jti, expires_at);
                    }
                }
            }
            let next = answer.next_cursor.ok_or_else(|| {
                // An auth-service from before the cursor: upgrade it before the gateways.
                tonic::Status::internal(
                    "the auth service answered without a revocation cursor (is it older than \
                     this gateway?)",
                )
            })?;
            // `more` with a cursor that did not move would ask for the same page forever.
            let moved = (next.txid, next.seq) != (cursor.txid, cursor.seq);
            cursor = next;
            if !(answer.more && moved) {
                break;
            }
        }
        let now = chrono::Utc::now().timestamp();
        write(&self.revoked).retain(|_, expires_at| *expires_at >= now);
        Ok(cursor)
    }
}

/// Every way a token can fail its own checks gets the same answer: the caller learns
/// nothing about which.
fn invalid_or_expired() -> ApiError {
    ApiError::unauthorized("the access token is invalid or expired")
}

/// EdDSA only, no leeway on `exp`, and the issuer and audience the auth service names.
fn validation(issuer: &str, audience: &str) -> Validation {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.algorithms = vec![Algorithm::EdDSA];
    validation.leeway = 0;
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "auth-service";
    const AUDIENCE: &str = "platform";

    fn detail(result: Result<Claims, ApiError>) -> String {
        result.unwrap_err().problem.detail
    }

    fn keys(kid: &str, signing: &ed25519_dalek::SigningKey) -> Keys {
        let public = DecodingKey::from_ed_der(signing.verifying_key().as_bytes());
        Keys {
            by_kid: HashMap::from([(kid.to_owned(), public)]),
            validation: validation(ISSUER, AUDIENCE),
            fingerprint: (Vec::new(), String::new(), String::new()),
        }
    }

    fn token(kid: &str, signing: &ed25519_dalek::SigningKey, jti: Uuid, exp: i64) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        let claims = json!({"sub": Uuid::nil(), "exp": exp, "jti": jti, "iss": ISSUER,
            "aud": AUDIENCE, "roles": ["customer"]});
        let der = signing.to_pkcs8_der().unwrap();
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
    }

    fn in_an_hour() -> i64 {
        chrono::Utc::now().timestamp() + 3600
    }

    #[test]
    fn a_verified_token_is_still_checked_for_revocation_and_expiry() {
        let verifier = TokenVerifier::default();
        let signing = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        verifier.set_keys(keys("k1", &signing));
        let jti = Uuid::new_v4();
        let valid = token("k1", &signing, jti, in_an_hour());
        assert_eq!(verifier.verify(&valid).unwrap().jti, jti);
        assert_eq!(verifier.verify(&valid).unwrap().jti, jti);
        verifier.revoke_locally(jti, in_an_hour());
        assert_eq!(
            detail(verifier.verify(&valid)),
            "the access token has been revoked"
        );

        // Remembered while valid, presented after its expiry.
        let expired = token("k1", &signing, Uuid::new_v4(), in_an_hour());
        let mut claims = verifier.verify(&expired).unwrap();
        claims.exp = chrono::Utc::now().timestamp() - 1;
        verifier.verified.insert(expired.clone(), claims);
        assert_eq!(
            detail(verifier.verify(&expired)),
            "the access token is invalid or expired"
        );
    }

    #[test]
    fn tokens_signed_by_a_withdrawn_key_are_refused_even_if_verified_before() {
        let verifier = TokenVerifier::default();
        let old = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        verifier.set_keys(keys("old", &old));
        let signed = token("old", &old, Uuid::new_v4(), in_an_hour());
        verifier.verify(&signed).unwrap();
        verifier.set_keys(keys(
            "new",
            &ed25519_dalek::SigningKey::from_bytes(&[2; 32]),
        ));
        assert_eq!(
            detail(verifier.verify(&signed)),
            "the access token is invalid or expired"
        );
    }

    #[test]
    fn a_forged_signature_is_refused_and_not_remembered() {
        let verifier = TokenVerifier::default();
        let real = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        verifier.set_keys(keys("k1", &real));
        let forger = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
        let forged = token("k1", &forger, Uuid::new_v4(), in_an_hour());
        for _ in 0..2 {
            assert_eq!(
                detail(verifier.verify(&forged)),
                "the access token is invalid or expired"
            );
        }
        assert!(verifier.verified.is_empty());
    }
}
