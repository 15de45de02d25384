//! Request counts and latencies per route and status, rendered at `/metrics`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use platform::shutdown::CancellationToken;

/// How often recorded latencies are folded into their summaries.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Request count and latency per route and status.
pub async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed());
    response
}

/// The process-wide Prometheus recorder (several gateways may share a process in tests).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Folds the latencies recorded since the last pass into their summaries, every
/// [`UPKEEP_INTERVAL`] until `shutdown`.
///
/// The recorder keeps every latency sample until something folds it in. Only the
/// exporter's own listener does that by itself, and the gateway serves `/metrics` through
/// its router instead: without this task, a gateway nobody scraped kept every request's
/// sample, and its memory grew with each request.
pub async fn keep_up(handle: PrometheusHandle, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(UPKEEP_INTERVAL);
    loop {
        tokio::select! {
            _ = ticks.tick() => handle.run_upkeep(),
            () = shutdown.cancelled() => return,
        }
    }
}
