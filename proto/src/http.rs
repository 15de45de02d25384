//! The public HTTP API's JSON bodies and query parameters, one definition each: the gateway
//! serves them (and derives the OpenAPI document from them), the web app reads and sends them
//! as any client would. Field docs are the API's docs.

pub mod admin;
pub mod auth;
pub mod orders;
pub mod products;
pub mod statements;
pub mod wallet;
