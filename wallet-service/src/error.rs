//! What can go wrong in the wallet. Transport-free: the gRPC layer (`grpc`) maps a
//! [`Refusal`] to a status once, and `transaction.rejected` names it by its slug.

/// Why the wallet refused a request: a stable slug, the problem `type` over HTTP and the
/// `reason` of `transaction.rejected`. Stored with an `Idempotency-Key`'s failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "kebab-case")]
pub enum Refusal {
    ValidationFailed,
    InsufficientFunds,
    ParentNotFound,
    ParentNotUndoable,
    NotUndoableHere,
    AmountMismatch,
    AlreadyUndone,
    IdempotencyKeyReused,
    NotFound,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationFailed => "validation-failed",
            Self::InsufficientFunds => "insufficient-funds",
            Self::ParentNotFound => "parent-not-found",
            Self::ParentNotUndoable => "parent-not-undoable",
            Self::NotUndoableHere => "not-undoable-here",
            Self::AmountMismatch => "amount-mismatch",
            Self::AlreadyUndone => "already-undone",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::NotFound => "not-found",
        }
    }
}

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
    /// The parent was made through another way in (see [`crate::transaction::effect`]).
    #[error("{0}")]
    NotUndoableHere(String),
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
    Replayed { refusal: Refusal, message: String },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for LedgerError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(error.into())
    }
}

impl LedgerError {
    /// Why a rule refused the request; `None` for internal errors.
    pub fn refusal(&self) -> Option<Refusal> {
        Some(match self {
            Self::Invalid(_) => Refusal::ValidationFailed,
            Self::InsufficientFunds => Refusal::InsufficientFunds,
            Self::ParentNotFound => Refusal::ParentNotFound,
            Self::NotUndoable(_) => Refusal::ParentNotUndoable,
            Self::NotUndoableHere(_) => Refusal::NotUndoableHere,
            Self::AmountMismatch(_) => Refusal::AmountMismatch,
            Self::AlreadyUndone => Refusal::AlreadyUndone,
            Self::IdempotencyKeyReused => Refusal::IdempotencyKeyReused,
            Self::TransactionNotFound => Refusal::NotFound,
            Self::Replayed { refusal, .. } => *refusal,
            Self::Internal(_) => return None,
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
