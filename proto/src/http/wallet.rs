//! `/wallet/*`: the balance, its history, and transactions.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{TransactionSource, TransactionType};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"balance": 1250, "currency": "EUR", "updated_at": "2026-11-21T18:00:00Z"}))]
pub struct Balance {
    /// Minor units (cents): 1250 is 12.50 EUR.
    pub balance: i64,
    pub currency: String,
    pub updated_at: DateTime<Utc>,
}

/// A transaction to apply. `amount` is required for deposit, withdraw and purchase; a
/// cancellation (of a purchase) or reversal (of a deposit or withdraw) names its parent and
/// may repeat the parent's amount.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "deposit", "amount": 1250, "currency": "EUR", "description": "Top-up"}))]
pub struct NewTransaction {
    #[serde(rename = "type")]
    pub kind: TransactionType,
    /// Minor units, 1 to 1,000,000,000.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub amount: Option<i64>,
    /// Only `EUR`, the wallet's currency.
    pub currency: Option<String>,
    pub parent_transaction_id: Option<Uuid>,
    /// At most 500 characters, no control characters (such as NUL or a line break).
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21", "type": "deposit", "amount": 1250, "currency": "EUR",
    "balance_after": 1250, "parent_transaction_id": null, "description": "Top-up", "source": "api",
    "reference": null, "created_at": "2026-11-21T18:00:00Z"
}))]
pub struct Transaction {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: TransactionType,
    pub amount: i64,
    pub currency: String,
    /// The wallet's balance right after this transaction.
    pub balance_after: i64,
    pub parent_transaction_id: Option<Uuid>,
    pub description: Option<String>,
    /// `api`, `event` (published to RabbitMQ by another system) or `order`.
    pub source: TransactionSource,
    /// Set for event and order transactions, e.g. `order:<id>`.
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TransactionPage {
    pub items: Vec<Transaction>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this type.
    #[serde(rename = "type")]
    #[param(rename = "type", inline)]
    pub kind: Option<TransactionType>,
    /// From this day (`YYYY-MM-DD`, UTC, included) or instant (RFC 3339), 1970 to 9999.
    pub from: Option<String>,
    /// Up to this day (`YYYY-MM-DD`, UTC, included) or instant (RFC 3339), 1970 to 9999.
    pub to: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"currency": "EUR", "days": [{"date": "2026-11-20", "balance": 0}, {"date": "2026-11-21", "balance": 1250}]}))]
pub struct BalanceHistory {
    pub currency: String,
    /// One entry per day, oldest first, today (UTC) last.
    pub days: Vec<DayBalance>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DayBalance {
    pub date: NaiveDate,
    /// The balance at the end of the day (UTC), minor units: that of the day's last
    /// transaction, or of the last one before it (0 before the first).
    pub balance: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// How many days, today included: 1 to 366 (default 30).
    #[param(minimum = 1, maximum = 366)]
    pub days: Option<u32>,
}
