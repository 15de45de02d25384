//! What can go wrong in the wallet, and how each case is told to a gRPC caller (once, here)
//! and named in a `transaction.rejected` event.

use platform::grpc::{invalid_fields, status};
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("invalid request")]
    Invalid(Vec<(&'static str, String)>),
    #[error("the balance is too low for this transaction")]
    InsufficientFunds,
    #[error("the parent transaction does not exist")]
    ParentNotFound,
    #[error("{0}")]
    NotUndoable(String),
    #[error("the amount must equal the parent transaction's amount ({0}) or be left out")]
    AmountMismatch(i64),
    #[error("the parent transaction has already been cancelled or reversed")]
    AlreadyUndone,
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("no such transaction")]
    TransactionNotFound,
    /// The stored outcome of an earlier request with the same `Idempotency-Key`.
    #[error("{message}")]
    Replayed {
        code: i32,
        reason: String,
        message: String,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for LedgerError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(error.into())
    }
}

impl LedgerError {
    /// The gRPC code and stable reason of a rule failure; `None` for internal errors.
    pub fn code_and_reason(&self) -> Option<(Code, &'static str)> {
        Some(match self {
            Self::Invalid(_) => (Code::InvalidArgument, "validation-failed"),
            Self::InsufficientFunds => (Code::FailedPrecondition, "insufficient-funds"),
            Self::ParentNotFound => (Code::NotFound, "parent-not-found"),
            Self::NotUndoable(_) => (Code::FailedPrecondition, "parent-not-undoable"),
            Self::AmountMismatch(_) => (Code::InvalidArgument, "amount-mismatch"),
            Self::AlreadyUndone => (Code::AlreadyExists, "already-undone"),
            Self::IdempotencyKeyReused => (Code::FailedPrecondition, "idempotency-key-reused"),
            Self::TransactionNotFound => (Code::NotFound, "not-found"),
            Self::Replayed { .. } | Self::Internal(_) => return None,
        })
    }

    /// A human explanation, field by field for validation failures.
    pub fn detail(&self) -> String {
        match self {
            Self::Invalid(violations) => violations
                .iter()
                .map(|(field, reason)| format!("{field}: {reason}"))
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        }
    }
}

impl From<LedgerError> for Status {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::Invalid(violations) => invalid_fields(&violations),
            LedgerError::Replayed {
                code,
                reason,
                message,
            } => status(Code::from(code), &reason, message),
            LedgerError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                Status::internal("internal error")
            }
            other => {
                let (code, reason) = other
                    .code_and_reason()
                    .unwrap_or((Code::Internal, "internal"));
                status(code, reason, other.detail())
            }
        }
    }
}
