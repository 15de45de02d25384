//! What every handler can reach.

use std::sync::Arc;

use crate::services::Services;
use crate::sign_in_limiter::SignInLimiter;
use crate::token_verifier::TokenVerifier;

#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub verifier: Arc<TokenVerifier>,
    pub sign_in_limiter: Arc<SignInLimiter>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub request_timeout: std::time::Duration,
}
