//! What can go wrong in the statement service, told to gRPC callers once, here.

use std::time::Duration;

use platform::grpc::{invalid_fields, status};
use tonic::{Code, Status};

/// When a user at the job limit is told to ask again: a job of a few thousand lines takes
/// seconds.
pub const JOB_RETRY_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    #[error("invalid request")]
    Invalid(Vec<(&'static str, String)>),
    #[error("no such statement job")]
    JobNotFound,
    #[error("the statement job is {0}; its CSV can be downloaded once it is done")]
    JobNotDone(proto::JobStatus),
    #[error(
        "you have {0} statement jobs pending or running, the most at once; ask again once one is done"
    )]
    TooManyJobs(i64),
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
            StatementError::TooManyJobs(_) => {
                platform::grpc::limit_reached("too-many-jobs", error.to_string(), JOB_RETRY_AFTER)
            }
            StatementError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                Status::internal("internal error")
            }
        }
    }
}
