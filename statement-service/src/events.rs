//! The events the statement service publishes (`statement.events`), through the outbox.

use platform::cloud_event::outbox_event;
use platform::outbox::OutboxMessage;
use proto::messaging::statement::{
    EVENTS, SOURCE, STATEMENT_GENERATED, StatementGenerated, download_url,
};

use crate::jobs::Job;

pub fn statement_generated(job: &Job) -> OutboxMessage {
    let data = StatementGenerated {
        job_id: job.id,
        user_id: job.user_id,
        from: job.period_from,
        to: job.period_to,
        line_count: job.line_count,
        download_url: download_url(job.id),
    };
    outbox_event(EVENTS, SOURCE, STATEMENT_GENERATED, data)
}
