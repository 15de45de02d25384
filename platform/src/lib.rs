//! Infrastructure shared by the five programs, and nothing else: no domain types or rules
//! live here (those stay in their service; the `proto` crate is the only shared contract).
//!
//! - [`config`]: reading typed settings from the environment with errors that name the variable.
//! - [`telemetry`]: one `tracing` subscriber per process.
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

/// Every program's allocator, here so that every binary gets it (the services, the gateway,
/// the all-in-one runner, tests and benchmarks). Each argon2 hash works in 19 MiB; with
/// glibc's allocator every thread that ever hashed kept such a block (20 sign-ups in a row
/// left auth-service at 217 MB, 40 concurrent ones at 711 MB, the all-in-one runner at
/// 788 MB after 2,000 sign-ups). mimalloc returns freed memory to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod amqp;
pub mod cloud_event;
pub mod config;
pub mod consumer;
pub mod database;
pub mod grpc;
pub mod healthcheck;
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
