//! The statement service's settings, read once from the environment.

use platform::config::{self, ConfigError, ServiceSettings};
use platform::grpc::InternalToken;

use crate::email::SmtpSettings;

#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceSettings,
    /// Periods up to this many days are answered at once; longer ones become jobs.
    pub sync_max_days: i64,
    /// Email delivery of finished jobs; `None` sends no email.
    pub smtp: Option<SmtpSettings>,
    /// Where auth-service is dialed for users' email addresses (`host:port`).
    pub auth_addr: String,
}

impl Config {
    /// Reads `STATEMENT_DATABASE_URL`, `STATEMENT_GRPC_ADDR`, `STATEMENT_SYNC_MAX_DAYS`,
    /// `SMTP_URL`, `SMTP_FROM`, ...
    pub fn from_env(internal_token: InternalToken) -> Result<Self, ConfigError> {
        let sync_max_days: i64 = config::parse_or("STATEMENT_SYNC_MAX_DAYS", 15)?;
        if !(0..=1826).contains(&sync_max_days) {
            return Err(ConfigError::new(
                "STATEMENT_SYNC_MAX_DAYS",
                "must be between 0 and 1826",
            ));
        }
        let smtp = match (config::optional("SMTP_URL"), config::optional("SMTP_FROM")) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "SMTP_FROM",
                    "is required when SMTP_URL is set",
                ));
            }
            (Some(url), Some(from)) => Some(SmtpSettings::parse(&url, &from)?),
        };
        Ok(Self {
            service: ServiceSettings::from_env("STATEMENT", "statement", 50053, internal_token)?,
            sync_max_days,
            smtp,
            auth_addr: config::string_or("AUTH_GRPC_ADDR", "0.0.0.0:50051"),
        })
    }
}
