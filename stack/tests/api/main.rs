//! Black-box tests: the whole platform started in-process on free ports, with fresh
//! databases and a fresh RabbitMQ vhost per test, driven over real HTTP and gRPC.

// A test (and its helpers) should panic on anything unexpected.
#![allow(clippy::unwrap_used)]

mod admin;
mod auth;
mod credential;
mod database_roles;
mod dates;
mod hashing;
mod helpers;
mod http_errors;
mod instances;
mod logs;
mod operations;
mod orders;
mod otlp_sink;
mod payouts;
mod products;
mod refresh;
mod smtp_sink;
mod statements;
mod tokens;
mod traces;
mod wallet;
mod web;
