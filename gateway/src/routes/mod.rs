//! HTTP routes, one module per area. Handlers are thin: parse, call a service, map.

pub mod auth;
pub mod operations;
pub mod statements;
pub mod wallet;

use chrono::{DateTime, Utc};

/// A protobuf timestamp as a UTC time (the epoch if absent, which services never send).
pub fn time(at: Option<prost_types::Timestamp>) -> DateTime<Utc> {
    at.and_then(platform::timestamp::from_proto)
        .unwrap_or_default()
}
