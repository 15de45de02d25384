//! `/statements*`: statements over HTTP, long periods as jobs.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use proto::JobStatus;
use proto::http::statements::{Job, JobAccepted, Line, PeriodParams, Statement};
use proto::messaging::statement::download_url;
use proto::statement::v1 as pb;

use crate::answer;
use crate::auth_user::AuthUser;
use crate::problem::{ApiError, Problem};
use crate::query::Query;
use crate::state::AppState;

/// The caller's statement for a period.
///
/// Periods of at most 15 days (`to − from ≤ 15`) with at most 10,000 lines are answered at
/// once (200). Longer ones, up to 5 years, and short ones with more lines, become a
/// background job (202 with its id and `Location`). A user may have 5 jobs pending or running
/// at once; one more is 429 with `Retry-After`. Finished jobs are kept 30 days.
#[utoipa::path(get, path = "/statements", tag = "statements", security(("bearer" = [])),
    params(PeriodParams),
    responses(
        (status = 200, description = "The statement", body = Statement),
        (status = 202, description = "A job generates the statement (a period over 15 days, or over 10,000 lines); poll `Location`", body = JobAccepted,
            headers(("Location" = String, description = "/statements/jobs/{job_id}"))),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A malformed date, a day outside 1970-01-01 to 9999-12-31, `from` after `to`, or a period over 5 years", body = Problem, content_type = "application/problem+json",
            examples(
                ("reversed" = (value = json!({"type": "/problems/validation-failed", "title": "Unprocessable Entity", "status": 422, "detail": "from: must not be after `to` (2026-11-01)", "errors": {"from": ["must not be after `to` (2026-11-01)"]}}))),
                ("out-of-range" = (value = json!({"type": "/problems/validation-failed", "title": "Unprocessable Entity", "status": 422, "detail": "to: must be between 1970-01-01 and 9999-12-31 (UTC)", "errors": {"to": ["must be between 1970-01-01 and 9999-12-31 (UTC)"]}}))),
            )),
        (status = 429, description = "The caller already has the most statement jobs pending or running (5 by default); ask again after `Retry-After` seconds", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait")),
            example = json!({"type": "/problems/too-many-jobs", "title": "Too Many Requests", "status": 429, "detail": "you have 5 statement jobs pending or running, the most at once; ask again once one is done"})),
    ))]
pub async fn statement(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<PeriodParams>,
) -> Result<Response, ApiError> {
    // The service reads an empty day as "the default"; a client that sends `to=` meant a day.
    for (field, value) in [("from", &params.from), ("to", &params.to)] {
        if value.as_deref() == Some("") {
            return Err(ApiError::invalid(
                field,
                "must be a date written YYYY-MM-DD",
            ));
        }
    }
    let answer = state
        .services
        .statement
        .clone()
        .get_statement(pb::GetStatementRequest {
            user_id: user.id.to_string(),
            from: params.from.unwrap_or_default(),
            to: params.to.unwrap_or_default(),
        })
        .await?
        .into_inner();
    Ok(match answer.result {
        Some(pb::get_statement_response::Result::Statement(statement)) => axum::Json(Statement {
            from: statement.from,
            to: statement.to,
            currency: statement.currency,
            opening_balance: statement.opening_balance,
            closing_balance: statement.closing_balance,
            lines: statement
                .lines
                .into_iter()
                .map(line)
                .collect::<Result<_, _>>()?,
        })
        .into_response(),
        Some(pb::get_statement_response::Result::Job(job)) => (
            StatusCode::ACCEPTED,
            [(header::LOCATION, format!("/statements/jobs/{}", job.job_id))],
            axum::Json(JobAccepted {
                job_id: answer::id(&job.job_id)?,
                status: answer::value(job.status)?,
            }),
        )
            .into_response(),
        None => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "an internal error occurred",
            ));
        }
    })
}

/// A statement job of the caller.
#[utoipa::path(get, path = "/statements/jobs/{id}", tag = "statements", security(("bearer" = [])),
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job (or another user's, or one finished more than 30 days ago)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn job(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<Job>, ApiError> {
    let job = state
        .services
        .statement
        .clone()
        .get_job(pb::GetJobRequest {
            user_id: user.id.to_string(),
            job_id: id,
        })
        .await?
        .into_inner();
    let job_id = answer::id(&job.job_id)?;
    let status = answer::value(job.status)?;
    Ok(axum::Json(Job {
        download_url: (status == JobStatus::Done).then(|| download_url(job_id)),
        job_id,
        status,
        from: job.from,
        to: job.to,
        line_count: job.line_count,
        failure_reason: job.failure_reason,
    }))
}

/// The CSV of a finished job: `transaction_id,occurred_at,type,amount,balance_after,description`,
/// oldest first, amounts as decimals (`12.50`), times in RFC 3339 UTC.
#[utoipa::path(get, path = "/statements/jobs/{id}/download", tag = "statements", security(("bearer" = [])),
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The statement as a CSV attachment", body = String, content_type = "text/csv"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job (or another user's, or one finished more than 30 days ago)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is not done yet", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/job-not-done", "title": "Conflict", "status": 409, "detail": "the statement job is running; its CSV can be downloaded once it is done"})),
    ))]
pub async fn download(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let chunks = state
        .services
        .statement
        .clone()
        .download_job(pb::GetJobRequest {
            user_id: user.id.to_string(),
            job_id: id.clone(),
        })
        .await?
        .into_inner();
    // Streamed through as the chunks arrive: the gateway never holds the whole file.
    let body = Body::from_stream(chunks.map(|chunk| chunk.map(|chunk| chunk.data)));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"statement-{id}.csv\""),
            ),
        ],
        body,
    )
        .into_response())
}

fn line(line: pb::Line) -> Result<Line, ApiError> {
    Ok(Line {
        transaction_id: answer::id(&line.transaction_id)?,
        kind: answer::value(line.r#type)?,
        amount: line.amount,
        balance_after: line.balance_after,
        description: line.description,
        occurred_at: answer::time(line.occurred_at)?,
    })
}
