//! Infrastructure shared by the five programs, and nothing else: no domain types or rules
//! live here (those stay in their service; the `proto` crate is the only shared contract).
//!
//! - [`config`]: reading typed settings from the environment with errors that name the variable.
//! - [`telemetry`]: one `tracing` subscriber per process, exporting spans over OTLP when
//!   configured; [`trace_context`]: the W3C trace context across HTTP, gRPC and RabbitMQ.
//! - [`shutdown`]: Ctrl-C / SIGTERM turned into a cancellation token every task watches.
//! - [`database`]: "create the database if it is missing, then migrate".
//! - [`amqp`]: a RabbitMQ connection that retries until the broker answers.
//! - [`retry`]: the backoff of everything retried (broker, database, consumers).
//! - [`outbox`]: events written with the change they describe, published by a relay; the
//!   [`outbox::Outbox`] handle is also how consumers apply a message once.
//! - [`inbox`]: message ids applied once, in the same transaction as the effect.
//! - [`consumer`]: consuming a queue with dead-lettering and retries; [`cloud_event`]: the
//!   event envelope.
//! - [`grpc`]: serving gRPC with the internal credential, health service and a trace span,
//!   and dialing a service with that credential.
//! - [`service`]: the common life of a gRPC service (database, background work, serving,
//!   draining) and its `main`; [`lifecycle`]: background tasks and their drain.
//! - [`pagination`]: `limit` and opaque cursors for lists, newest first.
//! - [`timestamp`]: protobuf timestamps to and from UTC times.
//! - [`healthcheck`]: the `healthcheck` subcommand every program offers to container runtimes.
//!
//! It also sets the allocator of every binary that links it (`ALLOCATOR`, below).

pub mod amqp;
pub mod cloud_event;
pub mod config;
pub mod consumer;
pub mod database;
pub mod grpc;
pub mod healthcheck;
pub mod idempotency;
pub mod inbox;
pub mod lifecycle;
pub mod outbox;
pub mod pagination;
pub mod retry;
pub mod service;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod timestamp;
pub mod trace_context;

/// The allocator of every program, of the all-in-one `stack`, and of the tests and bench
/// binaries: declared here, in the crate they all link, so that none is left out. When only
/// auth-service's `main.rs` declared it, `stack` ran on glibc's allocator, which kept the
/// 19 MiB blocks argon2 had freed (one per thread that had hashed): it grew from 40 MB to
/// 889 MB over 2,000 sign-ups. mimalloc gives freed memory back to the system (after its
/// purge delay, 1 s). It is built without transparent huge pages (`no_thp`, see
/// Cargo.toml): with them, each program was 10–12 MB larger idle. Password hashing no
/// longer depends on the allocator: it works in buffers it keeps (`auth_service::password`).
/// Figures: docs/benchmarks.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
