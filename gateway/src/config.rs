//! The gateway's settings, read once from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use platform::config::{self, ConfigError};
use platform::grpc::InternalToken;
use platform::telemetry::LogFormat;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen_addr: SocketAddr,
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

impl Config {
    /// Reads the settings; the internal credential is read by the caller (see
    /// [`InternalToken::from_env`]).
    pub fn from_env(internal_token: InternalToken) -> Result<Self, ConfigError> {
        Ok(Self {
            listen_addr: config::parse_or("GATEWAY_ADDR", ([0, 0, 0, 0], 8080).into())?,
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
