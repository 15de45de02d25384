//! The contracts shared between programs, and nothing else:
//!
//! - the gRPC contracts of the four services, one versioned protobuf package each: the
//!   gateway uses the clients, each service implements its server;
//! - [`enums`]: the closed vocabularies (transaction type and source, order and job status,
//!   role),
//!   one Rust enum each, used in gRPC, events, HTTP bodies and database rows alike;
//! - [`messaging`]: every RabbitMQ exchange, queue and routing key, and every event payload;
//! - [`http`]: the public HTTP API's bodies and query parameters (with their OpenAPI schemas);
//! - [`money`]: amounts written as decimals for people (statement CSVs, the web app).

pub mod enums;
pub mod http;
pub mod messaging;
pub mod money;

pub use enums::{
    JobStatus, OrderStatus, ProductStatus, Role, TransactionSource, TransactionType, UnknownValue,
};

/// Generated code: lints are the generator's business.
#[allow(clippy::all, clippy::pedantic)]
pub mod auth {
    pub mod v1 {
        tonic::include_proto!("auth.v1");
    }
}

#[allow(clippy::all, clippy::pedantic)]
pub mod wallet {
    pub mod v1 {
        tonic::include_proto!("wallet.v1");
    }
}

#[allow(clippy::all, clippy::pedantic)]
pub mod statement {
    pub mod v1 {
        tonic::include_proto!("statement.v1");
    }
}

#[allow(clippy::all, clippy::pedantic)]
pub mod order {
    pub mod v1 {
        tonic::include_proto!("order.v1");
    }
}
