//! Statements: a period picker, the lines of a short period, a long period's job with its
//! progress (the page reloads itself while the job runs: a `<meta http-equiv="refresh">`,
//! no script) and the CSV download.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Days, Utc};
use maud::{Markup, html};
use proto::JobStatus;
use uuid::Uuid;

use crate::AppState;
use crate::api::{Job, PeriodParams, Statement, StatementAnswer};
use crate::money;
use crate::pages::layout::{self, Column, Nav, PageError, form_error};
use crate::session::SignedIn;

pub async fn statements_page(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Query(period): Query<PeriodParams>,
) -> Result<Response, PageError> {
    let today = Utc::now().date_naive();
    let from = period.from.clone().filter(|from| !from.is_empty());
    let to = period.to.clone().filter(|to| !to.is_empty());
    let (mut statement, mut error) = (None, None);
    if from.is_some() && to.is_some() {
        let period = PeriodParams {
            from: from.clone(),
            to: to.clone(),
        };
        match state.api.statement(&user.token, &period).await {
            Ok(StatementAnswer::Now(found)) => statement = Some(found),
            // A long period is a job: its own page shows the progress.
            Ok(StatementAnswer::Job(job)) => {
                return Ok(
                    Redirect::to(&format!("/statements/jobs/{}", job.job_id)).into_response()
                );
            }
            Err(problem) if problem.is_unauthorized() => {
                return Err(PageError::from_problem(problem, "/statements", &headers));
            }
            Err(problem) => error = Some(problem.message()),
        }
    }
    let from = from.unwrap_or_else(|| (today - Days::new(15)).to_string());
    let to = to.unwrap_or_else(|| today.to_string());
    Ok(layout::html(layout::page(
        "Statements",
        Nav::Statements,
        Some(&user),
        html! {
            h1 { "Statements" }
            section.card aria-labelledby="period-heading" {
                h2 id="period-heading" { "Period" }
                p.hint { "Up to 15 days are shown at once; a longer period (up to 5 years) is prepared as a CSV file to download." }
                form.filters method="get" action="/statements" {
                    div {
                        label for="from" { "From" }
                        input id="from" name="from" type="date" required value=(from);
                    }
                    div {
                        label for="to" { "To" }
                        input id="to" name="to" type="date" required value=(to);
                    }
                    button type="submit" { "Show statement" }
                }
                (form_error(error.as_deref()))
            }
            @if let Some(statement) = &statement { (lines(statement)) }
        },
    )))
}

fn lines(statement: &Statement) -> Markup {
    html! {
        section.card aria-labelledby="lines-heading" {
            h2 id="lines-heading" { "Statement " (statement.from) " to " (statement.to) }
            dl.totals {
                dt { "Opening balance" } dd data-testid="opening" { (money::format(statement.opening_balance)) " " (statement.currency) }
                dt { "Closing balance" } dd data-testid="closing" { (money::format(statement.closing_balance)) " " (statement.currency) }
            }
            @if statement.lines.is_empty() {
                p { "No transactions in this period." }
            } @else {
                (layout::table("Statement lines", "Statement lines, oldest first", &[Column::Text("When (UTC)"), Column::Text("Type"), Column::Text("Description"), Column::Num("Amount"), Column::Num("Balance after")], html! {
                    @for line in &statement.lines {
                        tr {
                            td { (line.occurred_at.format("%Y-%m-%d %H:%M")) }
                            td { (line.kind) }
                            td { (line.description.as_deref().unwrap_or("")) }
                            td.num { (money::format(line.amount)) }
                            td.num { (money::format(line.balance_after)) }
                        }
                    }
                }))
            }
        }
    }
}

pub async fn job_page(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Result<Response, PageError> {
    let path = format!("/statements/jobs/{id}");
    let job = state
        .api
        .job(&user.token, id)
        .await
        .map_err(|problem| PageError::from_problem(problem, &path, &headers))?;
    let running = matches!(job.status, JobStatus::Pending | JobStatus::Running);
    let mut response = layout::html(layout::page(
        "Statement file",
        Nav::Statements,
        Some(&user),
        job_view(&job),
    ));
    if running {
        // Progress without a script: the browser asks again in two seconds.
        response
            .headers_mut()
            .insert(header::REFRESH, HeaderValue::from_static("2"));
    }
    Ok(response)
}

fn job_view(job: &Job) -> Markup {
    let period = format!("{} to {}", job.from, job.to);
    let step = match job.status {
        JobStatus::Pending => 1,
        JobStatus::Running => 2,
        JobStatus::Done | JobStatus::Failed => 3,
    };
    html! {
        h1 { "Statement file" }
        section.card aria-labelledby="job-heading" {
            h2 id="job-heading" { "Statement " (period) }
            div role="status" aria-live="polite" {
                @match job.status {
                    JobStatus::Done => {
                        p data-testid="job-status" { "Ready: " (line_count(job.line_count.unwrap_or(0))) "." }
                        p { a.button href=(format!("/statements/jobs/{}/download", job.job_id)) download { "Download CSV" } }
                    }
                    JobStatus::Failed => {
                        p.error data-testid="job-status" { "The statement could not be prepared: " (job.failure_reason.as_deref().unwrap_or("unknown reason")) ". Ask for it again." }
                    }
                    status => {
                        p data-testid="job-status" { "Preparing (" (status) ")… this page updates by itself." }
                        progress max="3" value=(step) aria-label="Progress" { (step) " of 3" }
                    }
                }
            }
            p { a href="/statements" { "Another period" } }
        }
    }
}

fn line_count(count: i64) -> String {
    if count == 1 {
        "1 line".to_owned()
    } else {
        format!("{count} lines")
    }
}

/// The CSV, streamed from the API as it arrives.
pub async fn download(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Result<Response, PageError> {
    let path = format!("/statements/jobs/{id}");
    let csv = state
        .api
        .download(&user.token, id)
        .await
        .map_err(|problem| PageError::from_problem(problem, &path, &headers))?;
    let disposition = format!("attachment; filename=\"statement-{id}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(csv.bytes_stream()),
    )
        .into_response())
}
