//! HTTP routes, one module per area. Handlers are thin: parse, call a service, map.

pub mod admin;
pub mod auth;
pub mod operations;
pub mod orders;
pub mod products;
pub mod statements;
pub mod wallet;

/// A list's `limit` for gRPC, where 0 means the default: so 0 itself is refused here.
pub fn page_limit(limit: Option<u32>) -> Result<u32, crate::problem::ApiError> {
    match limit {
        Some(0) => Err(crate::problem::ApiError::invalid(
            "limit",
            "must be between 1 and 200",
        )),
        other => Ok(other.unwrap_or(0)),
    }
}
