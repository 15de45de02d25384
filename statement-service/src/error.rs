//! What can go wrong in the statement service, told to gRPC callers once, here.

use platform::grpc::{invalid_fields, status};
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    #[error("invalid request")]
    Invalid(Vec<(&'static str, String)>),
    #[error("no such statement job")]
    JobNotFound,
    #[error("the statement job is {0}; its CSV can be downloaded once it is done")]
    JobNotDone(proto::JobStatus),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StatementError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(error.into())
    }
}

impl From<StatementError> for Status {
    fn from(error: StatementError) -> Self {
        match error {
            StatementError::Invalid(violations) => invalid_fields(&violations),
            StatementError::JobNotFound => status(Code::NotFound, "not-found", error.to_string()),
            // A conflict with the job's current state: try again later.
            StatementError::JobNotDone(_) => {
                status(Code::Aborted, "job-not-done", error.to_string())
            }
            StatementError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                Status::internal("internal error")
            }
        }
    }
}
