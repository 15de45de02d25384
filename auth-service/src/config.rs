//! The auth service's settings, read once from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use platform::config::{self, ConfigError};
use platform::grpc::InternalToken;
use platform::telemetry::LogFormat;
use secrecy::SecretString;

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: SecretString,
    pub database_max_connections: u32,
    pub grpc_addr: SocketAddr,
    pub internal_token: InternalToken,
    pub log_format: LogFormat,
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
    /// Reads the settings; the internal credential is read by the caller (see
    /// [`InternalToken::from_env`]).
    pub fn from_env(internal_token: InternalToken) -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: config::secret_or(
                "AUTH_DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/auth",
            ),
            database_max_connections: config::database_max_connections()?,
            grpc_addr: config::parse_or("AUTH_GRPC_ADDR", ([0, 0, 0, 0], 50051).into())?,
            internal_token,
            log_format: config::parse_or("LOG_FORMAT", LogFormat::Text)?,
            token_ttl: config::seconds_or("ACCESS_TOKEN_TTL_SECS", 900)?,
            token_issuer: config::string_or("TOKEN_ISSUER", crate::DEFAULT_ISSUER),
            token_audience: config::string_or("TOKEN_AUDIENCE", crate::DEFAULT_AUDIENCE),
            admin_emails: config::lowercase_list("ADMIN_EMAILS"),
        })
    }
}
