//! The events the statement service publishes (`statement.events`), through the outbox.

use platform::cloud_event::outbox_event;
use platform::outbox::OutboxMessage;
use uuid::Uuid;

use crate::jobs::Job;

pub const EXCHANGE: &str = "statement.events";
pub const STATEMENT_GENERATED: &str = "statement.generated";

pub fn statement_generated(job: &Job) -> OutboxMessage {
    let data = serde_json::json!({
        "job_id": job.id,
        "user_id": job.user_id,
        "from": job.period_from,
        "to": job.period_to,
        "line_count": job.line_count,
        "download_url": download_url(job.id),
    });
    outbox_event(EXCHANGE, "statement-service", STATEMENT_GENERATED, data)
}

/// Where the gateway serves a job's CSV.
pub fn download_url(job_id: Uuid) -> String {
    format!("/statements/jobs/{job_id}/download")
}
