//! The gateway's settings, read once from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use platform::config::{self, ConfigError};
use platform::grpc::InternalToken;
use platform::telemetry::LogFormat;

use crate::client_address::TrustedProxies;
use crate::cors::AllowedOrigins;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen_addr: SocketAddr,
    /// Where `/metrics` is served instead of `listen_addr` (an internal address), if set.
    pub metrics_addr: Option<SocketAddr>,
    /// Proxies whose `X-Forwarded-For` is believed for the client address; none by default.
    pub trusted_proxies: TrustedProxies,
    /// Origins whose browser apps may call the API (CORS); none by default.
    pub cors_allowed_origins: AllowedOrigins,
    /// Where each service is dialed, as `host:port` (a `0.0.0.0` host means this machine).
    pub auth_addr: String,
    pub wallet_addr: String,
    pub statement_addr: String,
    pub order_addr: String,
    pub internal_token: InternalToken,
    pub log_format: LogFormat,
    /// Longest time a request may take, gRPC calls included.
    pub request_timeout: Duration,
    pub sign_in_limits: SignInLimits,
    pub sign_up_limits: SignUpLimits,
    /// How long requests in flight and background tasks get to finish after a stop request.
    pub shutdown_grace: Duration,
}

/// How many failed sign-ins are tolerated within `window` before 429.
#[derive(Debug, Clone, Copy)]
pub struct SignInLimits {
    pub per_email: u32,
    pub per_address: u32,
    pub window: Duration,
}

/// How many sign-ups one client address may make within `window` before 429.
#[derive(Debug, Clone, Copy)]
pub struct SignUpLimits {
    pub per_address: u32,
    pub window: Duration,
}

impl Config {
    /// Reads the settings; the internal credential is read by the caller (see
    /// [`InternalToken::from_env`]).
    pub fn from_env(internal_token: InternalToken) -> Result<Self, ConfigError> {
        Ok(Self {
            listen_addr: config::parse_or("GATEWAY_ADDR", ([0, 0, 0, 0], 8080).into())?,
            metrics_addr: config::optional("METRICS_ADDR")
                .map(|raw| {
                    raw.parse().map_err(|error| {
                        ConfigError::new("METRICS_ADDR", format!("{error} (got {raw:?})"))
                    })
                })
                .transpose()?,
            trusted_proxies: TrustedProxies::parse(&config::string_or("TRUSTED_PROXIES", ""))
                .map_err(|reason| ConfigError::new("TRUSTED_PROXIES", reason))?,
            cors_allowed_origins: AllowedOrigins::parse(&config::string_or(
                "CORS_ALLOWED_ORIGINS",
                "",
            ))
            .map_err(|reason| ConfigError::new("CORS_ALLOWED_ORIGINS", reason))?,
            auth_addr: service_addr("AUTH_GRPC_ADDR", 50051)?,
            wallet_addr: service_addr("WALLET_GRPC_ADDR", 50052)?,
            statement_addr: service_addr("STATEMENT_GRPC_ADDR", 50053)?,
            order_addr: service_addr("ORDER_GRPC_ADDR", 50054)?,
            internal_token,
            log_format: config::parse_or("LOG_FORMAT", LogFormat::Text)?,
            request_timeout: config::seconds_or("GATEWAY_REQUEST_TIMEOUT_SECS", 10)?,
            sign_in_limits: SignInLimits {
                per_email: positive("SIGN_IN_MAX_FAILURES_PER_EMAIL", 5)?,
                per_address: positive("SIGN_IN_MAX_FAILURES_PER_ADDRESS", 20)?,
                window: config::seconds_or("SIGN_IN_FAILURE_WINDOW_SECS", 900)?,
            },
            sign_up_limits: SignUpLimits {
                per_address: positive("SIGN_UP_MAX_PER_ADDRESS", 20)?,
                window: config::seconds_or("SIGN_UP_WINDOW_SECS", 3600)?,
            },
            shutdown_grace: config::shutdown_grace()?,
        })
    }
}

fn service_addr(variable: &str, default_port: u16) -> Result<String, ConfigError> {
    let addr = config::string_or(variable, &format!("0.0.0.0:{default_port}"));
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(addr),
        _ => Err(ConfigError::new(
            variable,
            format!("expected host:port, got {addr:?}"),
        )),
    }
}

fn positive(variable: &str, default: u32) -> Result<u32, ConfigError> {
    let value = config::parse_or(variable, default)?;
    if value == 0 {
        return Err(ConfigError::new(variable, "must be at least 1"));
    }
    Ok(value)
}
