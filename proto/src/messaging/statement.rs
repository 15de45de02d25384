//! statement-service's messages: the events it publishes and its queues.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Publishers, Queue, QueueKind};

/// The CloudEvent `source` of statement-service's events.
pub const SOURCE: &str = "statement-service";

/// Topic exchange of statement events: [`STATEMENT_GENERATED`].
pub const EVENTS: &str = "statement.events";
pub const STATEMENT_GENERATED: &str = "statement.generated";

/// Wallet transactions, which become statement lines.
pub const TRANSACTIONS: Queue = Queue {
    name: "statement.transactions",
    exchange: Some(super::wallet::EVENTS),
    routing_keys: &[super::wallet::TRANSACTION_CREATED],
    publishers: Publishers::Platform,
    kind: QueueKind::Quorum,
};

/// Long statements to generate ([`JobMessage`]); statement-service's own queue.
pub const JOBS: Queue = Queue {
    name: "statement.jobs",
    exchange: None,
    routing_keys: &[],
    publishers: Publishers::Platform,
    kind: QueueKind::Quorum,
};

/// Finished statements to email ([`JobMessage`]); statement-service's own queue.
pub const EMAILS: Queue = Queue {
    name: "statement.emails",
    exchange: None,
    routing_keys: &[],
    publishers: Publishers::Platform,
    kind: QueueKind::Quorum,
};

/// `statement.generated`: a finished statement job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StatementGenerated {
    pub job_id: Uuid,
    pub user_id: Uuid,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub line_count: Option<i64>,
    pub download_url: String,
}

/// The body of a message on [`JOBS`] and [`EMAILS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct JobMessage {
    pub job_id: Uuid,
}

/// Where the gateway serves a job's CSV.
pub fn download_url(job_id: Uuid) -> String {
    format!("/statements/jobs/{job_id}/download")
}
