//! gRPC serving and dialing.
//!
//! Every service sits behind the internal credential: a call without the right
//! `x-internal-token` metadata is refused with UNAUTHENTICATED before it reaches any handler,
//! the health service included. Each call gets a span carrying the caller's request id and
//! continuing the caller's trace.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::config::ConfigError;

/// Metadata key carrying the internal credential.
pub const INTERNAL_TOKEN_HEADER: &str = "x-internal-token";
/// Metadata key carrying the request id the gateway assigned.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request id a request carries, if it carries a readable one.
pub fn request_id(headers: &tonic::codegen::http::HeaderMap) -> Option<&str> {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
}

/// The shared secret that gRPC callers must present.
#[derive(Clone)]
pub struct InternalToken(SecretString);

impl InternalToken {
    pub const MIN_LEN: usize = 32;
    pub const VARIABLE: &str = "INTERNAL_API_TOKEN";
    /// The example value `.env.example` ships with. It is public, so a deployment that kept
    /// it would let anyone call the services: every program refuses it at start.
    pub const PLACEHOLDER: &str = "replace-me-with-a-random-string-of-at-least-32-chars";

    /// Accepts a token of at least [`Self::MIN_LEN`] visible ASCII characters.
    pub fn parse(variable: &str, raw: Option<String>) -> Result<Self, ConfigError> {
        let raw = raw.ok_or_else(|| {
            ConfigError::new(
                variable,
                "is required (the all-in-one runner generates one)",
            )
        })?;
        // The message never repeats the value: it names the variable and what to do.
        if raw == Self::PLACEHOLDER {
            return Err(ConfigError::new(
                variable,
                "is the placeholder from .env.example; set a random value \
                 (for example `openssl rand -hex 32`)",
            ));
        }
        if raw.len() < Self::MIN_LEN || !raw.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(ConfigError::new(
                variable,
                format!(
                    "must be at least {} visible ASCII characters",
                    Self::MIN_LEN
                ),
            ));
        }
        Ok(Self(SecretString::from(raw)))
    }

    /// Reads `INTERNAL_API_TOKEN` (or the file `INTERNAL_API_TOKEN_FILE` names), which
    /// separate programs require.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::parse(Self::VARIABLE, Self::configured()?)
    }

    /// Reads `INTERNAL_API_TOKEN` (or its file), or generates one when it is unset (the
    /// all-in-one runner, whose programs share the process, needs no configured secret).
    pub fn from_env_or_generate() -> Result<Self, ConfigError> {
        match Self::configured()? {
            Some(raw) => Self::parse(Self::VARIABLE, Some(raw)),
            None => Ok(Self::generate()),
        }
    }

    fn configured() -> Result<Option<String>, ConfigError> {
        let secret = crate::config::secret(Self::VARIABLE)?;
        Ok(secret.map(|secret| secret.expose_secret().to_owned()))
    }

    /// A fresh random token, for the all-in-one runner and tests.
    pub fn generate() -> Self {
        let token: String = (0..2)
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect();
        Self(SecretString::from(token))
    }

    fn matches(&self, presented: &[u8]) -> bool {
        self.0.expose_secret().as_bytes().ct_eq(presented).into()
    }

    /// The value to send (only the dialing side needs it).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for InternalToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InternalToken(<redacted>)")
    }
}

/// Serves `routes` (of `program`) plus the standard health service on `listener` until
/// `shutdown`. Each call's span continues the caller's trace (its `traceparent` metadata).
pub async fn serve(
    program: &'static str,
    listener: TcpListener,
    routes: Routes,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    token: InternalToken,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let check = move |request: Request<()>| -> Result<Request<()>, Status> {
        let presented = request
            .metadata()
            .get(INTERNAL_TOKEN_HEADER)
            .map(|value| value.as_bytes())
            .unwrap_or_default();
        if token.matches(presented) {
            Ok(request)
        } else {
            Err(Status::unauthenticated(
                "missing or wrong internal credential",
            ))
        }
    };
    tonic::transport::Server::builder()
        .trace_fn(move |request| {
            let request_id = request_id(request.headers()).unwrap_or("-");
            // Exported under its method's name (`wallet.v1.WalletService/GetBalance`), as
            // OpenTelemetry names RPC spans: a name, not one more attribute to send.
            let span = tracing::info_span!(
                "grpc",
                otel.name = request.uri().path().trim_start_matches('/'),
                request_id,
                service.name = program,
                otel.kind = "server",
            );
            crate::trace_context::continue_from_headers(&span, request.headers());
            span
        })
        .layer(tonic::service::InterceptorLayer::new(check))
        .add_routes(routes)
        .add_service(health)
        // Without TCP_NODELAY, an answer written in more than one piece waits for the
        // caller's delayed ACK: 40 ms for a page of transactions.
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown.cancelled_owned(),
        )
        .await?;
    Ok(())
}

/// Where to dial a service that listens on `addr`: an unspecified listen address
/// (`0.0.0.0`) is reached on loopback.
pub fn dial_address(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    }
}

/// A lazily connected channel to the service at `target` (`host:port`; a `0.0.0.0` host
/// means this machine): the caller may start before the service, and the channel
/// reconnects by itself.
pub fn channel(target: &str, timeout: Duration) -> Channel {
    let target = match target.parse::<SocketAddr>() {
        Ok(addr) => dial_address(addr).to_string(),
        Err(_) => target.to_owned(),
    };
    let endpoint = Endpoint::from_shared(format!("http://{target}")).unwrap_or_else(|_| {
        // Configuration checks `host:port`; fall back to a target that fails on use.
        Endpoint::from_static("http://invalid.invalid:1")
    });
    endpoint
        .connect_timeout(Duration::from_secs(2))
        .timeout(timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .connect_lazy()
}

/// What every gRPC call made while serving one HTTP request carries (see [`serving`]).
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The HTTP request's id: the services log it with the call.
    pub request_id: String,
    /// The trace context of the HTTP request's span, as [`crate::trace_context::current`]
    /// gives it: read once for all of the request's calls (and its answer) rather than
    /// looked up from the span at each call.
    pub trace: Vec<(&'static str, String)>,
}

tokio::task_local! {
    /// The HTTP request being served (see [`serving`]).
    static CALLER: Caller;
}

/// Runs `work` (the handling of one HTTP request) so that every gRPC call it makes through a
/// [`WithInternalToken`] client carries `caller`'s request id and trace context.
pub async fn serving<F: std::future::Future>(caller: Caller, work: F) -> F::Output {
    CALLER.scope(caller, work).await
}

/// Adds the internal credential to every outgoing call, and the request id and trace context
/// of the HTTP request being served (see [`serving`]), or else the trace context of the
/// current span (`traceparent`, see [`crate::trace_context`]).
#[derive(Clone, Debug)]
pub struct WithInternalToken(InternalToken);

impl WithInternalToken {
    pub fn new(token: InternalToken) -> Self {
        Self(token)
    }
}

impl tonic::service::Interceptor for WithInternalToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let value = self
            .0
            .expose()
            .parse()
            .map_err(|_| Status::internal("the internal credential is not valid metadata"))?;
        let metadata = request.metadata_mut();
        metadata.insert(INTERNAL_TOKEN_HEADER, value);
        let insert = |metadata: &mut tonic::metadata::MetadataMap, key, value: &str| {
            if let Ok(value) = value.parse() {
                metadata.insert(key, value);
            }
        };
        let serving = CALLER.try_with(|caller| {
            insert(metadata, REQUEST_ID_HEADER, &caller.request_id);
            for (key, value) in &caller.trace {
                insert(metadata, key, value);
            }
        });
        if serving.is_err() {
            // The call continues the trace of the span making it.
            for (key, value) in crate::trace_context::current() {
                insert(metadata, key, &value);
            }
        }
        Ok(request)
    }
}

/// Reports the service as serving while `is_ready` holds, checked every few seconds,
/// until `shutdown`. The gateway's `/readyz` and container health checks read this.
pub async fn report_health<F, Fut>(
    reporter: tonic_health::server::HealthReporter,
    is_ready: F,
    shutdown: CancellationToken,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    use tonic_health::ServingStatus;
    loop {
        let status = if is_ready().await {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        reporter.set_service_status("", status).await;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// The `ErrorInfo` domain of the platform's own errors.
pub const ERROR_DOMAIN: &str = "wallet-platform";

/// A status that carries a stable, machine-readable `reason` (an `ErrorInfo` detail); the
/// gateway turns the reason into the problem `type`.
pub fn status(code: tonic::Code, reason: &str, message: impl Into<String>) -> Status {
    use tonic_types::{ErrorDetails, StatusExt};
    let details =
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::new());
    Status::with_error_details(code, message, details)
}

/// RESOURCE_EXHAUSTED with a stable `reason` and a `RetryInfo` detail: a limit of the caller's
/// (not the service's health) was reached, and it may try again after `retry_after`. The
/// gateway answers it 429 with `Retry-After`; a RESOURCE_EXHAUSTED without a reason is the
/// transport's (a message over a size limit) and answered 503.
pub fn limit_reached(reason: &str, message: impl Into<String>, retry_after: Duration) -> Status {
    use tonic_types::{ErrorDetails, StatusExt};
    let mut details =
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::new());
    details.set_retry_info(Some(retry_after));
    Status::with_error_details(tonic::Code::ResourceExhausted, message, details)
}

/// INVALID_ARGUMENT naming each bad field and why (a `BadRequest` detail), which the gateway
/// returns as 422 with an `errors` map.
pub fn invalid_fields(violations: &[(&str, String)]) -> Status {
    use tonic_types::{ErrorDetails, FieldViolation, StatusExt};
    let kept = bounded_violations(violations);
    let mut details = ErrorDetails::with_error_info(
        "validation-failed",
        ERROR_DOMAIN,
        std::collections::HashMap::new(),
    );
    details.set_bad_request(
        kept.iter()
            .map(|(field, description)| FieldViolation::new(*field, description.clone()))
            .collect::<Vec<_>>(),
    );
    let summary = kept
        .iter()
        .map(|(field, description)| format!("{field}: {description}"))
        .collect::<Vec<_>>()
        .join("; ");
    Status::with_error_details(
        tonic::Code::InvalidArgument,
        crate::consumer::truncate(&summary, MAX_SUMMARY_BYTES).to_owned(),
        details,
    )
}

/// At most this many violations travel in one status, each described in at most
/// [`MAX_DESCRIPTION_BYTES`]: the status goes in HTTP/2 headers (the message and the
/// details, base64), whose size is limited (16 KiB by default), and an order of 100 lines
/// each naming the same product once gave 99 violations, an oversized header and a 500.
const MAX_VIOLATIONS: usize = 20;
const MAX_DESCRIPTION_BYTES: usize = 256;
/// The status message (percent-encoded in its header, up to three times longer) is a summary;
/// the violations themselves travel in the details.
const MAX_SUMMARY_BYTES: usize = 1024;

/// The first [`MAX_VIOLATIONS`] violations, descriptions cut on a character boundary, and,
/// when some were left out, how many on the last field kept.
fn bounded_violations<'a>(violations: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
    let mut kept: Vec<(&str, String)> = violations
        .iter()
        .take(MAX_VIOLATIONS)
        .map(|(field, description)| {
            (
                *field,
                crate::consumer::truncate(description, MAX_DESCRIPTION_BYTES).to_owned(),
            )
        })
        .collect();
    let left_out = violations.len().saturating_sub(MAX_VIOLATIONS);
    if let (true, Some((field, _))) = (left_out > 0, kept.last()) {
        let field = *field;
        kept.push((field, format!("and {left_out} more problems like these")));
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_of_many_long_violations_stays_small_and_says_how_many_were_left_out() {
        let violations: Vec<(&str, String)> = (0..1000)
            .map(|i| ("items.product_id", format!("item {i}: {}", "é".repeat(300))))
            .collect();
        let status = invalid_fields(&violations);
        let details = tonic_types::StatusExt::get_error_details(&status);
        let bad_request = details.bad_request().expect("the violations");
        assert_eq!(bad_request.field_violations.len(), MAX_VIOLATIONS + 1);
        assert!(
            bad_request
                .field_violations
                .iter()
                .all(|violation| violation.description.len() <= MAX_DESCRIPTION_BYTES)
        );
        assert_eq!(
            bad_request.field_violations[MAX_VIOLATIONS].description,
            "and 980 more problems like these"
        );
        // What goes into the HTTP/2 headers (16 KiB by default): the message, percent-encoded
        // (at most three times longer), and the details in base64.
        assert!(status.message().len() <= MAX_SUMMARY_BYTES);
        assert!(status.message().len() * 3 + status.details().len() * 4 / 3 < 12 * 1024);
    }

    #[test]
    fn the_placeholder_of_env_example_is_refused_without_echoing_it() {
        let env_example = include_str!("../../.env.example");
        assert!(env_example.contains(&format!(
            "{}={}",
            InternalToken::VARIABLE,
            InternalToken::PLACEHOLDER
        )));
        let error = InternalToken::parse(
            InternalToken::VARIABLE,
            Some(InternalToken::PLACEHOLDER.to_owned()),
        )
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
        assert!(error.contains("INTERNAL_API_TOKEN"), "{error}");
        assert!(error.contains("placeholder"), "{error}");
        assert!(!error.contains(InternalToken::PLACEHOLDER), "{error}");
        assert!(InternalToken::parse(InternalToken::VARIABLE, Some("x".repeat(32))).is_ok());
    }
}
