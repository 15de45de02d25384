//! What can go wrong in the auth service, and how each case is told to the caller.

use platform::grpc::{invalid_fields, status};
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid request")]
    Invalid(Vec<(&'static str, String)>),
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Wrong password and unknown email alike, so the answer reveals nothing.
    #[error("wrong email or password")]
    InvalidCredentials,
    /// Unknown, expired, revoked or already used (all alike to the caller).
    #[error("the refresh token is invalid, expired or already used")]
    InvalidRefreshToken,
    #[error("no such user")]
    UserNotFound,
    /// No password hashing slot came free in time.
    #[error("too many passwords are being checked at once; try again shortly")]
    Busy,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AuthError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(error.into())
    }
}

impl From<crate::password::HashingError> for AuthError {
    fn from(error: crate::password::HashingError) -> Self {
        match error {
            crate::password::HashingError::Busy(_) => Self::Busy,
            crate::password::HashingError::Failed(error) => Self::Internal(error),
        }
    }
}

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Invalid(violations) => invalid_fields(&violations),
            AuthError::EmailTaken => status(Code::AlreadyExists, "email-taken", error.to_string()),
            AuthError::InvalidCredentials => status(
                Code::Unauthenticated,
                "invalid-credentials",
                error.to_string(),
            ),
            AuthError::InvalidRefreshToken => status(
                Code::Unauthenticated,
                "invalid-refresh-token",
                error.to_string(),
            ),
            AuthError::UserNotFound => status(Code::NotFound, "not-found", error.to_string()),
            // UNAVAILABLE: the caller may try again (the gateway answers 503 with Retry-After).
            AuthError::Busy => status(Code::Unavailable, "hashing-busy", error.to_string()),
            AuthError::Internal(error) => {
                // Logged once here with its chain; the caller learns nothing of the cause.
                tracing::error!(error = format!("{error:#}"), "internal error");
                Status::internal("internal error")
            }
        }
    }
}
