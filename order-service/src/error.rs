//! What can go wrong with an order, and how each case is told to a gRPC caller (once, here).

use platform::grpc::{invalid_fields, status};
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("invalid request")]
    Invalid(Vec<(&'static str, String)>),
    #[error("no such order")]
    NotFound,
    #[error("the order is {status}; it cannot be {verb}")]
    IllegalTransition {
        status: proto::OrderStatus,
        verb: &'static str,
    },
    #[error("no such voucher")]
    VoucherNotFound,
    #[error("this voucher has already been redeemed")]
    VoucherRedeemed,
    #[error("no such product")]
    ProductNotFound,
    #[error("item {position}: no such product")]
    UnknownProduct { position: usize },
    #[error("item {position}: this is your own product; you cannot buy it")]
    OwnProduct { position: usize },
    #[error("product {product_id} has been withdrawn from sale")]
    ProductWithdrawn { product_id: uuid::Uuid },
    #[error("product {product_id} is out of stock: {available} available")]
    OutOfStock {
        product_id: uuid::Uuid,
        available: i64,
    },
    #[error("only the product's seller can change it")]
    NotTheSeller,
    #[error("the product has changed since version {expected} (it is at version {current})")]
    VersionMismatch { expected: i64, current: i64 },
    #[error("stock cannot go below the {reserved} units orders have reserved")]
    StockBelowReserved { reserved: i64 },
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for OrderError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(error.into())
    }
}

impl From<OrderError> for Status {
    fn from(error: OrderError) -> Self {
        let (code, reason) = match &error {
            OrderError::Invalid(violations) => return invalid_fields(violations),
            OrderError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                return Status::internal("internal error");
            }
            OrderError::NotFound => (Code::NotFound, "order-not-found"),
            OrderError::IllegalTransition { .. } => (Code::Aborted, "illegal-transition"),
            OrderError::VoucherNotFound => (Code::FailedPrecondition, "voucher-not-found"),
            OrderError::VoucherRedeemed => (Code::AlreadyExists, "voucher-already-redeemed"),
            OrderError::ProductNotFound => (Code::NotFound, "product-not-found"),
            OrderError::UnknownProduct { .. } => (Code::FailedPrecondition, "product-not-found"),
            OrderError::OwnProduct { .. } => (Code::FailedPrecondition, "own-product"),
            OrderError::ProductWithdrawn { .. } => (Code::Aborted, "product-withdrawn"),
            OrderError::OutOfStock { .. } => (Code::Aborted, "out-of-stock"),
            OrderError::NotTheSeller => (Code::PermissionDenied, "not-the-seller"),
            // The gateway answers this reason with 412 Precondition Failed.
            OrderError::VersionMismatch { .. } => (Code::Aborted, "version-mismatch"),
            OrderError::StockBelowReserved { .. } => (Code::Aborted, "stock-below-reserved"),
            OrderError::IdempotencyKeyReused => {
                (Code::FailedPrecondition, "idempotency-key-reused")
            }
        };
        status(code, reason, error.to_string())
    }
}
