//! The `statement.v1.StatementService` gRPC surface.

use std::pin::Pin;

use chrono::Utc;
use futures_util::Stream;
use platform::outbox::Outbox;
use prost::Message;
use proto::JobStatus;
use proto::statement::v1 as pb;
use proto::statement::v1::statement_service_server::StatementService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::error::StatementError;
use crate::jobs::{self, Job};
use crate::lines::{self, Line};
use crate::period::Period;

pub struct StatementApi {
    pub outbox: Outbox,
    /// Periods up to this many days (`to − from`) are answered at once...
    pub sync_max_days: i64,
    /// ...when they have at most this many lines.
    pub sync_max_lines: i64,
    /// Jobs a user may have pending or running at once.
    pub max_open_jobs: i64,
}

/// The largest statement sent at once: the gateway's client, like any tonic client by
/// default, refuses to decode a message over 4 MiB (the answer is that, less a margin for
/// the response around the statement). The line limit keeps statements far below it in
/// practice, but not always: 10,000 lines with 500-character descriptions are more.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024 - 1024;

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::CsvChunk, Status>> + Send>>;

#[tonic::async_trait]
impl StatementService for StatementApi {
    async fn get_statement(
        &self,
        request: Request<pb::GetStatementRequest>,
    ) -> Result<Response<pb::GetStatementResponse>, Status> {
        let request = request.into_inner();
        let user_id = parse_user(&request.user_id)?;
        let period = Period::parse(&request.from, &request.to, Utc::now().date_naive())
            .map_err(StatementError::Invalid)?;
        let result = match self.at_once(user_id, period).await? {
            Some(statement) => pb::get_statement_response::Result::Statement(statement),
            None => {
                let job = jobs::create(&self.outbox, user_id, period, self.max_open_jobs).await?;
                pb::get_statement_response::Result::Job(job_message(job))
            }
        };
        Ok(Response::new(pb::GetStatementResponse {
            result: Some(result),
        }))
    }

    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let job = self.find_job(request.into_inner()).await?;
        Ok(Response::new(job_message(job)))
    }

    type DownloadJobStream = ChunkStream;

    async fn download_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let job = self.find_job(request.into_inner()).await?;
        if job.status != JobStatus::Done {
            return Err(StatementError::JobNotDone(job.status).into());
        }
        // One chunk at a time from the database: a large CSV never sits in memory whole.
        let pool = self.outbox.pool().clone();
        let chunks = futures_util::stream::unfold(Some(0), move |seq| {
            let pool = pool.clone();
            async move {
                let seq = seq?;
                match jobs::chunk(&pool, job.id, seq).await {
                    Ok(Some(data)) => Some((Ok(pb::CsvChunk { data }), Some(seq + 1))),
                    Ok(None) => None,
                    Err(error) => Some((Err(Status::from(StatementError::from(error))), None)),
                }
            }
        });
        Ok(Response::new(Box::pin(chunks)))
    }
}

impl StatementApi {
    /// The statement of `period` as one answer, if the period is short and the statement
    /// small; `None` when it is for a job.
    async fn at_once(
        &self,
        user_id: Uuid,
        period: Period,
    ) -> Result<Option<pb::Statement>, StatementError> {
        if period.span_days() > self.sync_max_days {
            return Ok(None);
        }
        let pool = self.outbox.pool();
        let Some(statement) = lines::statement(pool, user_id, period, self.sync_max_lines).await?
        else {
            return Ok(None);
        };
        let message = pb::Statement {
            from: period.from.to_string(),
            to: period.to.to_string(),
            currency: "EUR".into(),
            opening_balance: statement.opening_balance,
            closing_balance: statement.closing_balance,
            lines: statement.lines.into_iter().map(line).collect(),
        };
        Ok((message.encoded_len() <= MAX_ANSWER_BYTES).then_some(message))
    }

    async fn find_job(&self, request: pb::GetJobRequest) -> Result<Job, StatementError> {
        let user_id = parse_user(&request.user_id)?;
        // An id that is not a UUID names no job: not found, like a missing one.
        let job_id = Uuid::parse_str(&request.job_id).map_err(|_| StatementError::JobNotFound)?;
        jobs::find(self.outbox.pool(), user_id, job_id)
            .await?
            .ok_or(StatementError::JobNotFound)
    }
}

fn parse_user(raw: &str) -> Result<Uuid, StatementError> {
    Uuid::parse_str(raw)
        .map_err(|_| StatementError::Invalid(vec![("user_id", "must be a UUID".into())]))
}

fn job_message(job: Job) -> pb::Job {
    pb::Job {
        job_id: job.id.to_string(),
        status: job.status.into(),
        from: job.period_from.to_string(),
        to: job.period_to.to_string(),
        line_count: job.line_count,
        failure_reason: job.failure_reason,
    }
}

fn line(line: Line) -> pb::Line {
    pb::Line {
        transaction_id: line.transaction_id.to_string(),
        r#type: line.kind.into(),
        amount: line.amount,
        balance_after: line.balance_after,
        description: line.description,
        occurred_at: Some(platform::timestamp::to_proto(line.occurred_at)),
    }
}
