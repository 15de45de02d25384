//! What the services answer, checked against their contract: an id that is not a UUID, a
//! missing time or an enum value outside the contract is a broken service, not data. It is
//! logged once, here, and the client gets a 500 (never a nil UUID or the epoch).

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::problem::ApiError;

/// A service broke its contract: what it sent is logged, the client sees an internal error.
fn broken(what: &str, detail: impl std::fmt::Display) -> ApiError {
    tracing::error!(what, %detail, "a service answered outside its contract");
    ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "an internal error occurred",
    )
}

/// An id a service sent.
pub fn id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|error| broken("an id", error))
}

/// An optional id a service sent.
pub fn optional_id(raw: Option<String>) -> Result<Option<Uuid>, ApiError> {
    raw.as_deref().map(id).transpose()
}

/// A time a service sent (always present, within chrono's range).
pub fn time(at: Option<prost_types::Timestamp>) -> Result<DateTime<Utc>, ApiError> {
    at.and_then(platform::timestamp::from_proto)
        .ok_or_else(|| broken("a time", "missing or out of range"))
}

/// A day (`YYYY-MM-DD`) a service sent.
pub fn date(raw: &str) -> Result<NaiveDate, ApiError> {
    raw.parse().map_err(|error| broken("a date", error))
}

/// A protobuf enum value a service sent (`proto::TransactionType`, `proto::OrderStatus`, ...).
pub fn value<T: TryFrom<i32, Error = proto::UnknownValue>>(number: i32) -> Result<T, ApiError> {
    T::try_from(number).map_err(|error| broken("an enum value", error))
}
