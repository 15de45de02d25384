//! The web app's settings, read once from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use platform::config::{self, ConfigError};
use platform::telemetry::LogFormat;

#[derive(Debug, Clone)]
pub struct Config {
    /// `WEB_ADDR`: where the pages are served.
    pub listen_addr: SocketAddr,
    /// `GATEWAY_URL`: the public HTTP API, without a trailing slash.
    pub gateway_url: String,
    pub log_format: LogFormat,
    /// How long a page waits for the API (all its calls together).
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            listen_addr: config::parse_or("WEB_ADDR", ([0, 0, 0, 0], 3000).into())?,
            gateway_url: gateway_url(&config::string_or("GATEWAY_URL", "http://127.0.0.1:8080"))
                .map_err(|reason| ConfigError::new("GATEWAY_URL", reason))?,
            log_format: config::parse_or("LOG_FORMAT", LogFormat::Text)?,
            request_timeout: config::seconds_or("WEB_REQUEST_TIMEOUT_SECS", 10)?,
            shutdown_grace: config::shutdown_grace()?,
        })
    }
}

/// `http(s)://host[:port]`, without a trailing slash.
pub fn gateway_url(raw: &str) -> Result<String, String> {
    let url = raw.trim().trim_end_matches('/');
    match url.split_once("://") {
        Some(("http" | "https", rest)) if !rest.is_empty() => Ok(url.to_owned()),
        _ => Err(format!(
            "expected http://host:port or https://host, got {raw:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_url_loses_its_trailing_slash_and_must_be_http() {
        assert_eq!(
            gateway_url("http://gw:8080/").as_deref(),
            Ok("http://gw:8080")
        );
        assert_eq!(
            gateway_url("gw:8080"),
            Err("expected http://host:port or https://host, got \"gw:8080\"".to_owned())
        );
    }
}
