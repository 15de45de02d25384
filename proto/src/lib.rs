//! The gRPC contracts of the four services, one versioned protobuf package each.
//!
//! This crate is the only contract shared between programs: the gateway uses the clients,
//! each service implements its server.

#![allow(clippy::all, clippy::pedantic)]

pub mod auth {
    pub mod v1 {
        tonic::include_proto!("auth.v1");
    }
}

pub mod wallet {
    pub mod v1 {
        tonic::include_proto!("wallet.v1");
    }
}

pub mod statement {
    pub mod v1 {
        tonic::include_proto!("statement.v1");
    }
}

pub mod order {
    pub mod v1 {
        tonic::include_proto!("order.v1");
    }
}
