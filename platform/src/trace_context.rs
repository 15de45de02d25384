//! W3C trace context (`traceparent`, `tracestate`) across every hop, in one place: HTTP and
//! gRPC headers, AMQP headers, and the CloudEvents distributed-tracing extension of the events
//! the outbox stores. Reading it makes the current span continue the caller's trace; writing
//! it passes the current span on.
//!
//! All of it is a no-op unless [`crate::telemetry`] installed a span exporter: without one
//! there is no trace to continue, and the hops cost nothing more than before.

use std::sync::atomic::{AtomicBool, Ordering};

use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::codegen::http::{HeaderMap, HeaderValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::LookupSpan;

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
    let Some(context) = context_of_current_span() else {
        return Vec::new();
    };
    let span = context.span();
    let ids = span.span_context();
    if !ids.is_valid() {
        return Vec::new();
    }
    let mut fields = vec![(TRACEPARENT, traceparent(ids))];
    let state = ids.trace_state().header();
    if !state.is_empty() {
        fields.push((TRACESTATE, state));
    }
    fields
}

/// The OpenTelemetry context of the innermost entered span that the OpenTelemetry layer
/// records, if any. A dependency's span that `RUST_LOG` enables for the log lines is not
/// recorded (it has no context), so the search goes up to its parents.
///
/// The layer does not make a span's context the "current" OpenTelemetry context on every
/// entry (`with_context_activation(false)`, see [`crate::telemetry`]): the spans are entered
/// and left at every poll of their futures, about a dozen times per request, while the
/// context is needed only where a request leaves the process and in log lines. So it is
/// looked up here, from the span, when needed.
fn context_of_current_span() -> Option<Context> {
    // Not for use while the subscriber is handling an event or a span (it would see no
    // subscriber): log lines use `context_of_current_span_in`.
    tracing::dispatcher::get_default(context_of_current_span_in)
}

/// [`context_of_current_span`], with the subscriber `dispatch`.
pub(crate) fn context_of_current_span_in(dispatch: &tracing::Dispatch) -> Option<Context> {
    // The registry's own view: the span entered last, whichever layer records it.
    let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
    let current = dispatch.current_span();
    let span = registry.span(current.id()?)?;
    span.scope()
        .find_map(|span| tracing_opentelemetry::get_otel_context(&span.id(), dispatch))
}

/// The W3C `traceparent` of `ids` (`00-{trace id}-{span id}-{flags}`, lowercase hex), the
/// value `TraceContextPropagator` writes, built without `format!` (two requests' worth of it
/// per balance read: the gRPC call and the HTTP answer).
fn traceparent(ids: &SpanContext) -> String {
    fn push_hex(out: &mut String, bytes: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for byte in bytes {
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
    }
    let mut value = String::with_capacity(55);
    value.push_str("00-");
    push_hex(&mut value, &ids.trace_id().to_bytes());
    value.push('-');
    push_hex(&mut value, &ids.span_id().to_bytes());
    value.push('-');
    push_hex(
        &mut value,
        &[(ids.trace_flags() & TraceFlags::SAMPLED).to_u8()],
    );
    value
}

/// Makes `span` continue the trace `get` finds (`get` answers the value of `traceparent` and
/// `tracestate`), if it finds a valid one; otherwise `span` starts a trace of its own.
pub fn continue_from<'a>(span: &tracing::Span, get: impl Fn(&str) -> Option<&'a str>) {
    if let Some(parent) = extract(get) {
        // Fails only when the span has started already, which callers do not do.
        let _ = span.set_parent(parent);
    }
}

/// The valid trace context `get` finds, if any: `TraceContextPropagator`'s reading, handed
/// the two values directly (the propagator's own entry point wants a map, which cost a
/// `HashMap` of owned keys and values per gRPC call).
fn extract<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Option<Context> {
    if !is_enabled() {
        return None;
    }
    struct Fields<'a>(Option<&'a str>, Option<&'a str>);
    impl Extractor for Fields<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            match key {
                TRACEPARENT => self.0,
                TRACESTATE => self.1,
                _ => None,
            }
        }
        fn keys(&self) -> Vec<&str> {
            [(TRACEPARENT, self.0), (TRACESTATE, self.1)]
                .into_iter()
                .filter_map(|(key, value)| value.map(|_| key))
                .collect()
        }
    }
    // Without a `traceparent` there is nothing to continue (the common case of a client
    // that sends none): no propagator run.
    let fields = Fields(Some(get(TRACEPARENT)?), get(TRACESTATE));
    let context = TraceContextPropagator::new().extract(&fields);
    context.span().span_context().is_valid().then_some(context)
}

/// Makes `span` continue the trace of the HTTP or gRPC request whose headers are `headers`.
pub fn continue_from_headers(span: &tracing::Span, headers: &HeaderMap) {
    continue_from(span, |key| {
        headers.get(key).and_then(|value| value.to_str().ok())
    });
}

/// Adds `trace` (as [`current`] gives it) to the headers of an HTTP response.
pub fn write_headers(headers: &mut HeaderMap, trace: Vec<(&'static str, String)>) {
    for (key, value) in trace {
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry::trace::{SpanId, TraceId, TraceState};

    use super::*;

    /// `traceparent` writes what the SDK's propagator writes, sampled or not (the other flag
    /// bits are not passed on).
    #[test]
    fn the_traceparent_is_the_propagators() {
        let trace_id =
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap_or(TraceId::INVALID);
        let span_id = SpanId::from_hex("00f067aa0ba902b7").unwrap_or(SpanId::INVALID);
        for flags in [0x00, 0x01, 0x03, 0xff] {
            let ids = SpanContext::new(
                trace_id,
                span_id,
                TraceFlags::new(flags),
                false,
                TraceState::default(),
            );
            let mut written = HashMap::new();
            TraceContextPropagator::new().inject_context(
                &Context::new().with_remote_span_context(ids.clone()),
                &mut written,
            );
            assert_eq!(
                Some(&traceparent(&ids)),
                written.get(TRACEPARENT),
                "{flags:#04x}"
            );
        }
    }
}
