//! What every handler can reach.

use std::sync::Arc;

use crate::client_address::TrustedProxies;
use crate::services::Services;
use crate::sign_in_limiter::SignInLimiter;
use crate::token_verifier::TokenVerifier;

/// Cloned for every request (axum's `State`), so everything in it is shared, not copied:
/// cloning the four gRPC clients and the health probes per request was a tenth of the
/// gateway's CPU in the read benchmark.
#[derive(Clone)]
pub struct AppState {
    pub services: Arc<Services>,
    pub verifier: Arc<TokenVerifier>,
    pub sign_in_limiter: Arc<SignInLimiter>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Whether `/metrics` is served on the main address (it is not when `METRICS_ADDR` is
    /// set).
    pub metrics_on_main: bool,
    pub trusted_proxies: Arc<TrustedProxies>,
    pub request_timeout: std::time::Duration,
    /// Origins answered with CORS headers; none by default.
    pub cors_allowed_origins: Arc<crate::cors::AllowedOrigins>,
}
