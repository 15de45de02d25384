//! What every handler can reach.

use std::sync::Arc;

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
    pub request_timeout: std::time::Duration,
}
