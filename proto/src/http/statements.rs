//! `/statements*`: statements, and jobs for long periods.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{JobStatus, TransactionType};

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodParams {
    /// First day, `YYYY-MM-DD` (UTC, included), 1970 to 9999. Default: 15 days before `to`.
    #[param(format = Date)]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC, included), 1970 to 9999. Default: today.
    #[param(format = Date)]
    pub to: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "from": "2026-11-06", "to": "2026-11-21", "currency": "EUR", "opening_balance": 0, "closing_balance": 750,
    "lines": [
        {"transaction_id": "0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21", "type": "deposit", "amount": 1000, "balance_after": 1000, "description": "Top-up", "occurred_at": "2026-11-20T09:00:00Z"},
        {"transaction_id": "0192f0c1-8d00-7d2a-9a51-6c7c0b8f4e22", "type": "purchase", "amount": 250, "balance_after": 750, "description": null, "occurred_at": "2026-11-21T10:30:00Z"}
    ]
}))]
pub struct Statement {
    pub from: String,
    pub to: String,
    pub currency: String,
    /// The balance at the start of `from`.
    pub opening_balance: i64,
    /// The balance at the end of `to`.
    pub closing_balance: i64,
    /// Oldest first.
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Line {
    pub transaction_id: Uuid,
    #[serde(rename = "type")]
    pub kind: TransactionType,
    pub amount: i64,
    pub balance_after: i64,
    pub description: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"job_id": "0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21", "status": "pending"}))]
pub struct JobAccepted {
    pub job_id: Uuid,
    /// `pending`.
    pub status: JobStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"job_id": "0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21", "status": "done", "from": "2025-11-21", "to": "2026-11-21", "line_count": 1204, "download_url": "/statements/jobs/0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21/download", "failure_reason": null}))]
pub struct Job {
    pub job_id: Uuid,
    /// `pending`, `running`, `done` or `failed`.
    pub status: JobStatus,
    pub from: String,
    pub to: String,
    /// Set once done.
    pub line_count: Option<i64>,
    /// Set once done.
    pub download_url: Option<String>,
    /// Set when failed.
    pub failure_reason: Option<String>,
}
