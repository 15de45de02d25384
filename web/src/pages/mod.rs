//! The pages, one module per area; thin handlers that call [`crate::api`] and render.

pub mod auth;
pub mod layout;
pub mod orders;
pub mod statements;
pub mod wallet;
