//! CloudEvents 1.0 in structured JSON mode: the envelope of every event the platform publishes.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::outbox::OutboxMessage;

#[derive(Debug, Clone, Serialize)]
pub struct CloudEvent<T> {
    pub specversion: &'static str,
    pub id: Uuid,
    /// The producing service, as a URI reference (`/wallet-service`).
    pub source: String,
    /// The routing key, e.g. `transaction.created`.
    #[serde(rename = "type")]
    pub kind: String,
    pub time: String,
    pub datacontenttype: &'static str,
    /// The distributed-tracing extension: the trace the event was written in (W3C
    /// `traceparent`), absent when no trace was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    pub data: T,
}

impl<T: Serialize> CloudEvent<T> {
    /// A new event, in the trace of the current span (if one is recorded).
    pub fn new(id: Uuid, source: &str, kind: &str, time: DateTime<Utc>, data: T) -> Self {
        let mut traceparent = None;
        let mut tracestate = None;
        for (key, value) in crate::trace_context::current() {
            match key {
                crate::trace_context::TRACEPARENT => traceparent = Some(value),
                _ => tracestate = Some(value),
            }
        }
        Self {
            specversion: "1.0",
            id,
            source: format!("/{source}"),
            kind: kind.to_owned(),
            time: time.to_rfc3339_opts(SecondsFormat::Micros, true),
            datacontenttype: "application/json",
            traceparent,
            tracestate,
            data,
        }
    }
}

/// An event for the outbox: a new CloudEvent of type `kind` from `source`, published to the
/// topic `exchange` with `kind` as its routing key and its id as the message id.
pub fn outbox_event(
    exchange: &str,
    source: &str,
    kind: &str,
    data: impl Serialize,
) -> OutboxMessage {
    let id = Uuid::new_v4();
    let envelope = CloudEvent::new(id, source, kind, Utc::now(), data);
    OutboxMessage {
        message_id: id,
        exchange: exchange.to_owned(),
        routing_key: kind.to_owned(),
        correlation_id: None,
        // Serialising plain data structs cannot fail.
        payload: serde_json::to_value(envelope).unwrap_or_default(),
    }
}

/// A received CloudEvent: its id, type and data (other attributes are not needed).
#[derive(Debug, Clone, Deserialize)]
pub struct ReceivedEvent<T> {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: T,
}

impl<T> ReceivedEvent<T> {
    /// The id a consumer records in its inbox: the delivery's `message_id` property, or the
    /// event's own id when the publisher set none.
    pub fn message_id(&self, delivery: &lapin::message::Delivery) -> String {
        delivery
            .properties
            .message_id()
            .as_ref()
            .map_or_else(|| self.id.clone(), |id| id.as_str().to_owned())
    }
}
