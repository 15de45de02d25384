//! CloudEvents 1.0 in structured JSON mode: the envelope of every event the platform publishes.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use uuid::Uuid;

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
    pub data: T,
}

impl<T: Serialize> CloudEvent<T> {
    pub fn new(id: Uuid, source: &str, kind: &str, time: DateTime<Utc>, data: T) -> Self {
        Self {
            specversion: "1.0",
            id,
            source: format!("/{source}"),
            kind: kind.to_owned(),
            time: time.to_rfc3339_opts(SecondsFormat::Micros, true),
            datacontenttype: "application/json",
            data,
        }
    }
}
