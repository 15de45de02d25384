//! Typed settings from environment variables.
//!
//! Programs read the environment once, at start, through these helpers; a bad value stops
//! the program with a message naming the variable and saying why.

use std::fmt::Display;
use std::str::FromStr;

use secrecy::SecretString;

/// A setting that could not be read. The message names the variable and never its value,
/// which may be a secret.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable}: {reason}")]
pub struct ConfigError {
    pub variable: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(variable: &str, reason: impl Display) -> Self {
        Self {
            variable: variable.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// The variable's value, or `None` when it is unset or blank.
pub fn optional(variable: &str) -> Option<String> {
    std::env::var(variable)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// The variable parsed as `T`, or `default` when it is unset.
pub fn parse_or<T>(variable: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match optional(variable) {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|error| ConfigError::new(variable, format!("{error} (got {raw:?})"))),
    }
}

/// A string setting with a default.
pub fn string_or(variable: &str, default: &str) -> String {
    optional(variable).unwrap_or_else(|| default.to_owned())
}

/// A secret setting: the variable's value, or the contents of the file named by
/// `<variable>_FILE` (as container platforms mount secrets: Docker and compose secrets,
/// Kubernetes secret volumes), or `None` when neither is set. Setting both is an error, and
/// so is a file that cannot be read; the message names the variables, never the value.
pub fn secret(variable: &str) -> Result<Option<SecretString>, ConfigError> {
    let file_variable = format!("{variable}_FILE");
    secret_from(variable, optional(variable), optional(&file_variable))
}

/// [`secret`] given the values of `variable` and of `<variable>_FILE`.
fn secret_from(
    variable: &str,
    value: Option<String>,
    file: Option<String>,
) -> Result<Option<SecretString>, ConfigError> {
    let file_variable = format!("{variable}_FILE");
    match (value, file) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            variable,
            format!("set either {variable} or {file_variable}, not both"),
        )),
        (Some(value), None) => Ok(Some(SecretString::from(value))),
        (None, Some(path)) => {
            let contents = std::fs::read_to_string(&path).map_err(|error| {
                ConfigError::new(&file_variable, format!("cannot read {path}: {error}"))
            })?;
            let value = contents.trim();
            if value.is_empty() {
                return Err(ConfigError::new(&file_variable, format!("{path} is empty")));
            }
            Ok(Some(SecretString::from(value.to_owned())))
        }
        (None, None) => Ok(None),
    }
}

/// A secret setting (see [`secret`]) with a default, for example a database URL that may hold
/// a password.
pub fn secret_or(variable: &str, default: &str) -> Result<SecretString, ConfigError> {
    Ok(secret(variable)?.unwrap_or_else(|| SecretString::from(default.to_owned())))
}

/// A positive number of seconds.
pub fn seconds_or(variable: &str, default: u64) -> Result<std::time::Duration, ConfigError> {
    let seconds: u64 = parse_or(variable, default)?;
    if seconds == 0 {
        return Err(ConfigError::new(variable, "must be at least 1 second"));
    }
    Ok(std::time::Duration::from_secs(seconds))
}

/// A count of at least 1.
pub fn count_or(variable: &str, default: u32) -> Result<u32, ConfigError> {
    let count: u32 = parse_or(variable, default)?;
    if count == 0 {
        return Err(ConfigError::new(variable, "must be at least 1"));
    }
    Ok(count)
}

/// `DATABASE_MAX_CONNECTIONS`: the most connections one instance of a program opens to its
/// database. Every instance of every program shares the server's `max_connections` (100 by
/// default), so the default leaves room for two instances of each.
pub fn database_max_connections() -> Result<u32, ConfigError> {
    count_or("DATABASE_MAX_CONNECTIONS", 8)
}

/// A comma-separated list, lowercased and without blanks.
pub fn lowercase_list(variable: &str) -> Vec<String> {
    optional(variable)
        .unwrap_or_default()
        .split(',')
        .map(|item| item.trim().to_lowercase())
        .filter(|item| !item.is_empty())
        .collect()
}

/// The settings every service shares, embedded as `service` in each one's configuration: its
/// database, its gRPC address, the broker, the internal credential, the log format and how
/// long shutdown waits for background work.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub database_url: SecretString,
    pub database_max_connections: u32,
    pub grpc_addr: std::net::SocketAddr,
    pub amqp_url: SecretString,
    pub internal_token: crate::grpc::InternalToken,
    pub log_format: crate::telemetry::LogFormat,
    /// How long background tasks (consumers, the outbox relay, periodic jobs) get to finish
    /// after a stop request before they are cancelled.
    pub shutdown_grace: std::time::Duration,
    /// How often the outbox relay looks for rows nothing woke it for. Not read from the
    /// environment: tests lengthen it so that a commit which forgets the wake-up fails them.
    pub outbox_poll: std::time::Duration,
}

impl ServiceSettings {
    /// Reads `<PREFIX>_DATABASE_URL` (default database `database` on the local server; like
    /// `AMQP_URL`, also from a file named by `<PREFIX>_DATABASE_URL_FILE`),
    /// `DATABASE_MAX_CONNECTIONS`, `<PREFIX>_GRPC_ADDR` (default `0.0.0.0:<port>`),
    /// `AMQP_URL`, `LOG_FORMAT` and `SHUTDOWN_GRACE_SECS`.
    pub fn from_env(
        prefix: &str,
        database: &str,
        port: u16,
        internal_token: crate::grpc::InternalToken,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: secret_or(
                &format!("{prefix}_DATABASE_URL"),
                &format!("postgres://postgres@127.0.0.1:5432/{database}"),
            )?,
            database_max_connections: database_max_connections()?,
            grpc_addr: parse_or(&format!("{prefix}_GRPC_ADDR"), ([0, 0, 0, 0], port).into())?,
            amqp_url: secret_or("AMQP_URL", DEFAULT_AMQP_URL)?,
            internal_token,
            log_format: parse_or("LOG_FORMAT", crate::telemetry::LogFormat::Text)?,
            shutdown_grace: shutdown_grace()?,
            outbox_poll: crate::outbox::FALLBACK_POLL,
        })
    }
}

/// `SHUTDOWN_GRACE_SECS` (default 10): how long a program lets its work in flight finish
/// after SIGTERM or Ctrl-C.
pub fn shutdown_grace() -> Result<std::time::Duration, ConfigError> {
    seconds_or("SHUTDOWN_GRACE_SECS", 10)
}

pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn file_with(contents: &str) -> String {
        let path = std::env::temp_dir().join(format!("secret-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, contents).expect("a temporary file");
        path.to_string_lossy().into_owned()
    }

    fn exposed(secret: Result<Option<SecretString>, ConfigError>) -> Option<String> {
        secret
            .expect("a readable secret")
            .map(|secret| secret.expose_secret().to_owned())
    }

    #[test]
    fn a_secret_comes_from_the_variable_or_from_the_file_it_names() {
        assert_eq!(
            exposed(secret_from("X", Some("v".into()), None)),
            Some("v".into())
        );
        let file = file_with("from-file\n");
        assert_eq!(
            exposed(secret_from("X", None, Some(file.clone()))),
            Some("from-file".into())
        );
        assert_eq!(exposed(secret_from("X", None, None)), None);
        std::fs::remove_file(file).expect("removed");
    }

    #[test]
    fn both_set_an_unreadable_file_or_an_empty_one_is_refused_without_the_value() {
        let file = file_with("  \n");
        let both = secret_from("X", Some("hunter2".into()), Some(file.clone())).unwrap_err();
        assert_eq!(both.variable, "X");
        assert!(!both.to_string().contains("hunter2"), "{both}");
        let empty = secret_from("X", None, Some(file.clone())).unwrap_err();
        assert_eq!(empty.variable, "X_FILE");
        let missing = secret_from("X", None, Some("/nonexistent/secret".into())).unwrap_err();
        assert_eq!(missing.variable, "X_FILE");
        assert!(
            missing
                .reason
                .starts_with("cannot read /nonexistent/secret"),
            "{missing}"
        );
        std::fs::remove_file(file).expect("removed");
    }
}
