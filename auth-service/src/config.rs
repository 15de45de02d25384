//! The auth service's settings, read once from the environment.

use std::time::Duration;

use platform::config::{self, ConfigError, ServiceSettings};
use platform::grpc::InternalToken;

#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceSettings,
    /// Lifetime of an access token.
    pub token_ttl: Duration,
    /// `iss` of the tokens this service signs.
    pub token_issuer: String,
    /// `aud` of the tokens this service signs.
    pub token_audience: String,
    /// Lowercased emails that get the `admin` role at sign-up.
    pub admin_emails: Vec<String>,
}

impl Config {
    /// Reads `AUTH_DATABASE_URL`, `AUTH_GRPC_ADDR`, `ACCESS_TOKEN_TTL_SECS`, `ADMIN_EMAILS`,
    /// ...; the internal credential is read by the caller (see [`InternalToken::from_env`]).
    pub fn from_env(internal_token: InternalToken) -> Result<Self, ConfigError> {
        Ok(Self {
            service: ServiceSettings::from_env("AUTH", "auth", 50051, internal_token)?,
            token_ttl: config::seconds_or("ACCESS_TOKEN_TTL_SECS", 900)?,
            token_issuer: config::string_or("TOKEN_ISSUER", crate::DEFAULT_ISSUER),
            token_audience: config::string_or("TOKEN_AUDIENCE", crate::DEFAULT_AUDIENCE),
            admin_emails: config::lowercase_list("ADMIN_EMAILS"),
        })
    }
}
