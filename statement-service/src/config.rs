//! The statement service's settings, read once from the environment.

use std::time::Duration;

use platform::config::{self, ConfigError, ServiceSettings};
use platform::grpc::InternalToken;

use crate::email::SmtpSettings;

#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceSettings,
    /// Periods up to this many days are answered at once; longer ones become jobs.
    pub sync_max_days: i64,
    /// A short period with more lines than this becomes a job too: an answer at once stays
    /// small whatever the period holds.
    pub sync_max_lines: i64,
    /// Jobs a user may have pending or running at once; one more is refused (429).
    pub max_open_jobs: i64,
    /// How long a finished job and its CSV are kept.
    pub file_retention: Duration,
    /// How often finished jobs past their retention are removed. Not read from the
    /// environment: tests shorten it.
    pub prune_every: Duration,
    /// Email delivery of finished jobs; `None` sends no email.
    pub smtp: Option<SmtpSettings>,
    /// Where auth-service is dialed for users' email addresses (`host:port`).
    pub auth_addr: String,
}

impl Config {
    /// Reads `STATEMENT_DATABASE_URL`, `STATEMENT_GRPC_ADDR`, `STATEMENT_SYNC_MAX_DAYS`,
    /// `STATEMENT_SYNC_MAX_LINES`, `STATEMENT_MAX_OPEN_JOBS`, `STATEMENT_RETENTION_DAYS`,
    /// `SMTP_URL`, `SMTP_FROM`, ...
    pub fn from_env(internal_token: InternalToken) -> Result<Self, ConfigError> {
        let sync_max_days: i64 = config::parse_or("STATEMENT_SYNC_MAX_DAYS", 15)?;
        if !(0..=1826).contains(&sync_max_days) {
            return Err(ConfigError::new(
                "STATEMENT_SYNC_MAX_DAYS",
                "must be between 0 and 1826",
            ));
        }
        let sync_max_lines = config::count_or("STATEMENT_SYNC_MAX_LINES", 10_000)?;
        if sync_max_lines > 100_000 {
            return Err(ConfigError::new(
                "STATEMENT_SYNC_MAX_LINES",
                "must be between 1 and 100000",
            ));
        }
        let retention_days = config::count_or("STATEMENT_RETENTION_DAYS", 30)?;
        if retention_days > 3650 {
            return Err(ConfigError::new(
                "STATEMENT_RETENTION_DAYS",
                "must be between 1 and 3650",
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
            sync_max_lines: sync_max_lines.into(),
            max_open_jobs: config::count_or("STATEMENT_MAX_OPEN_JOBS", 5)?.into(),
            file_retention: Duration::from_secs(u64::from(retention_days) * 86_400),
            prune_every: Duration::from_secs(3600),
            smtp,
            auth_addr: config::string_or("AUTH_GRPC_ADDR", "0.0.0.0:50051"),
        })
    }
}
