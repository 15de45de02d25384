//! Operations: liveness, readiness and metrics.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use utoipa::ToSchema;

use crate::problem::{ApiError, Problem};
use crate::services::READINESS_TIMEOUT;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Liveness {
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ready", "checks": {"auth": "serving", "wallet": "serving", "statement": "serving", "order": "serving", "token_keys": "loaded", "revocations": "synced"}}))]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// Each dependency's state: `serving`, `not_serving` or `unreachable` for the services,
    /// `loaded` or `missing` for the token verification keys, `synced` or `pending` for the
    /// first load of the revoked tokens.
    pub checks: BTreeMap<&'static str, &'static str>,
}

/// The process is alive (no dependency is checked).
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Liveness)))]
pub async fn healthz() -> axum::Json<Liveness> {
    axum::Json(Liveness { status: "ok" })
}

/// The gateway can serve: every service reports healthy (its database and broker included),
/// the token keys are loaded and the revoked tokens have been loaded once (before that, a
/// signed-out token would be accepted).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency is not ready", body = Readiness),
    ))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, axum::Json<Readiness>) {
    let probes = state.services.health.iter().map(|(name, client)| {
        let mut client = client.clone();
        async move {
            let answer = tokio::time::timeout(
                READINESS_TIMEOUT,
                client.check(HealthCheckRequest {
                    service: String::new(),
                }),
            )
            .await;
            let state = match answer {
                Ok(Ok(response)) if response.get_ref().status == ServingStatus::Serving as i32 => {
                    "serving"
                }
                Ok(Ok(_)) => "not_serving",
                _ => "unreachable",
            };
            (*name, state)
        }
    });
    let mut checks: BTreeMap<_, _> = futures_util::future::join_all(probes)
        .await
        .into_iter()
        .collect();
    checks.insert(
        "token_keys",
        if state.verifier.has_keys() {
            "loaded"
        } else {
            "missing"
        },
    );
    checks.insert(
        "revocations",
        if state.verifier.revocations_synced() {
            "synced"
        } else {
            "pending"
        },
    );
    let ready = checks
        .values()
        .all(|state| matches!(*state, "serving" | "loaded" | "synced"));
    let (status, label) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    };
    (
        status,
        axum::Json(Readiness {
            status: label,
            checks,
        }),
    )
}

/// Prometheus metrics in the text exposition format. When `METRICS_ADDR` is set they are
/// served there only, and this address answers 404.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 404, description = "Metrics are served on the internal `METRICS_ADDR` instead", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    if !state.metrics_on_main {
        return ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such route").into_response();
    }
    render_metrics(&state)
}

/// The metrics, for `/metrics` on either address.
pub fn render_metrics(state: &AppState) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
