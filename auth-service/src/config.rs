//! The auth service's settings, read once from the environment.

use std::time::Duration;

use platform::config::{self, ConfigError, ServiceSettings};
use platform::grpc::InternalToken;
use secrecy::ExposeSecret;

use crate::signing_keys::KeyEncryptionKey;

#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceSettings,
    /// Lifetime of an access token.
    pub token_ttl: Duration,
    /// Lifetime of a refresh token (a session without activity ends after it).
    pub refresh_token_ttl: Duration,
    /// `iss` of the tokens this service signs.
    pub token_issuer: String,
    /// `aud` of the tokens this service signs.
    pub token_audience: String,
    /// Lowercased emails that get the `admin` role (worked out at sign-up and every sign-in).
    pub admin_emails: Vec<String>,
    /// The longest a sign-up or sign-in waits for a password hashing slot before it is
    /// refused as busy.
    pub hash_wait: Duration,
    /// Seals the signing keys at rest; `None` keeps them in clear (with a warning at start).
    pub key_encryption_key: Option<KeyEncryptionKey>,
    /// How long a new signing key is published before tokens are signed with it, so that
    /// every gateway has fetched it by then (they refresh their keys every minute).
    pub signing_key_activation: Duration,
}

impl Config {
    /// Reads `AUTH_DATABASE_URL`, `AUTH_GRPC_ADDR`, `ACCESS_TOKEN_TTL_SECS`,
    /// `REFRESH_TOKEN_TTL_SECS`, `ADMIN_EMAILS`,
    /// `PASSWORD_HASH_MAX_WAIT_MS`, `AUTH_KEY_ENCRYPTION_KEY`, `SIGNING_KEY_ACTIVATION_SECS`,
    /// ...; the internal credential is read by the caller (see [`InternalToken::from_env`]).
    pub fn from_env(internal_token: InternalToken) -> Result<Self, ConfigError> {
        Ok(Self {
            service: ServiceSettings::from_env("AUTH", "auth", 50051, internal_token)?,
            token_ttl: config::seconds_or("ACCESS_TOKEN_TTL_SECS", 900)?,
            refresh_token_ttl: config::seconds_or("REFRESH_TOKEN_TTL_SECS", 30 * 24 * 3600)?,
            token_issuer: config::string_or("TOKEN_ISSUER", crate::DEFAULT_ISSUER),
            token_audience: config::string_or("TOKEN_AUDIENCE", crate::DEFAULT_AUDIENCE),
            admin_emails: config::lowercase_list("ADMIN_EMAILS"),
            hash_wait: Duration::from_millis(config::parse_or("PASSWORD_HASH_MAX_WAIT_MS", 2000)?),
            key_encryption_key: config::secret(KeyEncryptionKey::VARIABLE)?
                .map(|raw| KeyEncryptionKey::parse(raw.expose_secret()))
                .transpose()
                .map_err(|reason| ConfigError::new(KeyEncryptionKey::VARIABLE, reason))?,
            signing_key_activation: Duration::from_secs(config::parse_or(
                "SIGNING_KEY_ACTIVATION_SECS",
                120,
            )?),
        })
    }
}
