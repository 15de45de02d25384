//! The events the statement service publishes (`statement.events`), through the outbox.

use chrono::Utc;
use platform::cloud_event::CloudEvent;
use platform::outbox::OutboxMessage;
use uuid::Uuid;

use crate::jobs::Job;

pub const EXCHANGE: &str = "statement.events";
pub const STATEMENT_GENERATED: &str = "statement.generated";

pub fn statement_generated(job: &Job) -> OutboxMessage {
    let id = Uuid::new_v4();
    let data = serde_json::json!({
        "job_id": job.id,
        "user_id": job.user_id,
        "from": job.period_from,
        "to": job.period_to,
        "line_count": job.line_count,
        "download_url": download_url(job.id),
    });
    let event = CloudEvent::new(
        id,
        "statement-service",
        STATEMENT_GENERATED,
        Utc::now(),
        data,
    );
    OutboxMessage {
        message_id: id,
        exchange: EXCHANGE.to_owned(),
        routing_key: STATEMENT_GENERATED.to_owned(),
        correlation_id: None,
        payload: serde_json::to_value(event).unwrap_or_default(),
    }
}

/// Where the gateway serves a job's CSV.
pub fn download_url(job_id: Uuid) -> String {
    format!("/statements/jobs/{job_id}/download")
}
