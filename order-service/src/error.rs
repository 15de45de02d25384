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
        };
        status(code, reason, error.to_string())
    }
}
