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
    #[error("the product is at version {current}, not the one `If-Match` names")]
    VersionMismatch { expected: i64, current: i64 },
    #[error("stock cannot go below the {reserved} units orders have reserved")]
    StockBelowReserved { reserved: i64 },
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    /// The stored refusal of an earlier request with the same `Idempotency-Key`.
    #[error("{message}")]
    Replayed { reason: String, message: String },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for OrderError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(error.into())
    }
}

impl OrderError {
    /// The gRPC code and `ErrorInfo` reason of every error but the invalid, internal and
    /// replayed ones.
    fn code_and_reason(&self) -> Option<(Code, &'static str)> {
        Some(match self {
            OrderError::Invalid(_) | OrderError::Internal(_) | OrderError::Replayed { .. } => {
                return None;
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
        })
    }

    /// A refusal an `Idempotency-Key` remembers, as its reason and message: a rule the order
    /// broke when it was placed (not a passing failure such as a database outage).
    pub fn remembered(&self) -> Option<(&'static str, String)> {
        match self {
            OrderError::Invalid(violations) => Some((
                "validation-failed",
                violations
                    .iter()
                    .map(|(field, message)| format!("{field}: {message}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
            OrderError::UnknownProduct { .. }
            | OrderError::OwnProduct { .. }
            | OrderError::ProductWithdrawn { .. }
            | OrderError::OutOfStock { .. }
            | OrderError::VoucherNotFound
            | OrderError::VoucherRedeemed => self
                .code_and_reason()
                .map(|(_, reason)| (reason, self.to_string())),
            _ => None,
        }
    }
}

/// The gRPC code of a remembered refusal's reason, as when it was first answered.
fn code_of(reason: &str) -> Code {
    match reason {
        "out-of-stock" | "product-withdrawn" => Code::Aborted,
        "voucher-already-redeemed" => Code::AlreadyExists,
        "validation-failed" => Code::InvalidArgument,
        _ => Code::FailedPrecondition,
    }
}

impl From<OrderError> for Status {
    fn from(error: OrderError) -> Self {
        match &error {
            OrderError::Invalid(violations) => invalid_fields(violations),
            OrderError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                Status::internal("internal error")
            }
            OrderError::Replayed { reason, message } => status(code_of(reason), reason, message),
            other => match other.code_and_reason() {
                Some((code, reason)) => status(code, reason, error.to_string()),
                None => Status::internal("internal error"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_refusal_gets_the_code_it_first_had() {
        let refusals = [
            OrderError::OutOfStock {
                product_id: uuid::Uuid::nil(),
                available: 0,
            },
            OrderError::ProductWithdrawn {
                product_id: uuid::Uuid::nil(),
            },
            OrderError::OwnProduct { position: 1 },
            OrderError::UnknownProduct { position: 2 },
            OrderError::VoucherNotFound,
            OrderError::VoucherRedeemed,
        ];
        for error in refusals {
            let (reason, message) = error.remembered().unwrap();
            let first = Status::from(error);
            let replayed = Status::from(OrderError::Replayed {
                reason: reason.into(),
                message,
            });
            assert_eq!(replayed.code(), first.code(), "{reason}");
            assert_eq!(replayed.message(), first.message());
        }
        assert!(
            OrderError::Internal(anyhow::anyhow!("down"))
                .remembered()
                .is_none()
        );
        assert!(OrderError::NotFound.remembered().is_none());
    }
}
