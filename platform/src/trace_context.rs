//! W3C trace context (`traceparent`, `tracestate`) across every hop, in one place: HTTP and
//! gRPC headers, AMQP headers, and the CloudEvents distributed-tracing extension of the events
//! the outbox stores. Reading it makes the current span continue the caller's trace; writing
//! it passes the current span on.
//!
//! All of it is a no-op unless [`crate::telemetry`] installed a span exporter: without one
//! there is no trace to continue, and the hops cost nothing more than before.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable};
use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::codegen::http::{HeaderMap, HeaderValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C header (and CloudEvents extension attribute) naming the trace and parent span.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C header carrying vendor-specific trace state along with `traceparent`.
pub const TRACESTATE: &str = "tracestate";

/// Set once the process's subscriber exports spans (see [`crate::telemetry::init`]). The
/// subscriber is process-global, so this is too.
static EXPORTING: AtomicBool = AtomicBool::new(false);

pub(crate) fn enable() {
    EXPORTING.store(true, Ordering::Relaxed);
}

/// Whether spans are exported: the spans that exist only for the trace (a message's
/// `consume` and `publish`, a `commit`) are made only then.
pub fn is_enabled() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// `make()`'s span when spans are exported, else a disabled span that costs nothing.
pub fn span_if_enabled(make: impl FnOnce() -> tracing::Span) -> tracing::Span {
    if is_enabled() {
        make()
    } else {
        tracing::Span::none()
    }
}

/// The trace context of the current span as `(key, value)` pairs (`traceparent` and, if any,
/// `tracestate`); empty when no trace is being recorded.
pub fn current() -> Vec<(&'static str, String)> {
    if !is_enabled() {
        return Vec::new();
    }
    of_context(&Context::current())
}

fn of_context(context: &Context) -> Vec<(&'static str, String)> {
    if !context.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut fields = HashMap::new();
    TraceContextPropagator::new().inject_context(context, &mut fields);
    [TRACEPARENT, TRACESTATE]
        .into_iter()
        .filter_map(|key| {
            fields
                .remove(key)
                .filter(|value| !value.is_empty())
                .map(|value| (key, value))
        })
        .collect()
}

/// Makes `span` continue the trace `get` finds (`get` answers the value of `traceparent` and
/// `tracestate`), if it finds a valid one; otherwise `span` starts a trace of its own.
pub fn continue_from<'a>(span: &tracing::Span, get: impl Fn(&str) -> Option<&'a str>) {
    if let Some(parent) = extract(get) {
        // Fails only when the span has started already, which callers do not do.
        let _ = span.set_parent(parent);
    }
}

/// The valid trace context `get` finds, if any.
fn extract<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Option<Context> {
    if !is_enabled() {
        return None;
    }
    let fields: HashMap<String, String> = [TRACEPARENT, TRACESTATE]
        .into_iter()
        .filter_map(|key| get(key).map(|value| (key.to_owned(), value.to_owned())))
        .collect();
    if fields.is_empty() {
        return None;
    }
    let context = TraceContextPropagator::new().extract(&fields);
    context.span().span_context().is_valid().then_some(context)
}

/// Makes `span` continue the trace of the HTTP or gRPC request whose headers are `headers`.
pub fn continue_from_headers(span: &tracing::Span, headers: &HeaderMap) {
    continue_from(span, |key| {
        headers.get(key).and_then(|value| value.to_str().ok())
    });
}

/// Adds the current trace context to `headers` (an HTTP response, a gRPC request's metadata).
pub fn write_headers(headers: &mut HeaderMap) {
    for (key, value) in current() {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(key, value);
        }
    }
}

/// Makes `span` continue the trace of a delivery: its `traceparent` AMQP header, or else the
/// `traceparent` attribute of the CloudEvent it carries (another system may set either).
pub fn continue_from_delivery(span: &tracing::Span, delivery: &Delivery) {
    if let Some(parent) = of_delivery(delivery) {
        let _ = span.set_parent(parent);
    }
}

/// Makes `span`, which applies `deliveries` together, continue the trace of the first one
/// and link to those of the others (a span has one parent).
pub fn continue_from_deliveries<'a>(
    span: &tracing::Span,
    deliveries: impl IntoIterator<Item = &'a Delivery>,
) {
    if !is_enabled() {
        return;
    }
    let mut contexts = deliveries.into_iter().filter_map(of_delivery);
    if let Some(parent) = contexts.next() {
        let _ = span.set_parent(parent);
    }
    for other in contexts {
        span.add_link(other.span().span_context().clone());
    }
}

fn of_delivery(delivery: &Delivery) -> Option<Context> {
    if !is_enabled() {
        return None;
    }
    let headers = delivery.properties.headers().as_ref();
    let header = |key: &str| match headers?.inner().get(key)? {
        AMQPValue::LongString(value) => Some(value.to_string()),
        AMQPValue::ShortString(value) => Some(value.as_str().to_owned()),
        _ => None,
    };
    let mut fields = (header(TRACEPARENT), header(TRACESTATE));
    if fields.0.is_none() {
        fields = of_event_bytes(&delivery.data);
    }
    extract(|key| match key {
        TRACEPARENT => fields.0.as_deref(),
        _ => fields.1.as_deref(),
    })
}

/// The `traceparent` and `tracestate` attributes of a CloudEvent in structured JSON mode.
fn of_event_bytes(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Extension {
        traceparent: Option<String>,
        tracestate: Option<String>,
    }
    serde_json::from_slice::<Extension>(body)
        .map(|event| (event.traceparent, event.tracestate))
        .unwrap_or_default()
}

/// Makes `span` continue the trace an outbox row's CloudEvent was written in.
pub fn continue_from_event(span: &tracing::Span, payload: &serde_json::Value) {
    continue_from(span, |key| {
        payload.get(key).and_then(|value| value.as_str())
    });
}

/// Adds the current trace context to the headers of a message about to be published.
pub fn write_amqp_headers(headers: &mut FieldTable) {
    for (key, value) in current() {
        headers.insert(key.into(), AMQPValue::LongString(value.into()));
    }
}
