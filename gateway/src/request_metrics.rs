//! Request counts and latencies per route and status, rendered at `/metrics`.
//!
//! Every label takes a bounded set of values, so that no client can grow the metrics (and
//! the memory behind them) by sending requests: the route is the matched route template or
//! `unmatched`, never the path; the method is one of the standard methods or `other` (a
//! client may send any token as a method: 300 made-up methods once made 300 series); the
//! status is one of the few a handler or middleware can produce.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
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
    let method = method_label(request.method());
    let response = next.run(request).await;
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed());
    response
}

/// The method as a label: the standard methods by name, anything else as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        for made_up in ["FOO", "BREW", "get"] {
            let method = Method::from_bytes(made_up.as_bytes()).expect("a method token");
            assert_eq!(method_label(&method), "other", "{made_up}");
        }
    }
}
