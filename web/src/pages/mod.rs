//! The pages, one module per area; thin handlers that call [`crate::api`] and render.

pub mod admin;
pub mod auth;
pub mod layout;
pub mod orders;
pub mod sales;
pub mod selling;
pub mod shop;
pub mod statements;
pub mod wallet;
