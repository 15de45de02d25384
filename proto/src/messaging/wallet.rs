//! wallet-service's messages: the outcomes it publishes, the transaction requests other
//! systems send it, and the order payments it takes from `order.events`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{Publishers, Queue, QueueKind};
use crate::enums::{TransactionSource, TransactionType};

/// The CloudEvent `source` of wallet-service's events.
pub const SOURCE: &str = "wallet-service";

/// Topic exchange of transaction outcomes: [`TRANSACTION_CREATED`], [`TRANSACTION_REJECTED`].
pub const EVENTS: &str = "wallet.events";
/// Topic exchange of the outcomes of order payments and refunds, bound into [`EVENTS`] with
/// `#`: every subscriber of `wallet.events` still gets them, while order-service binds here
/// and so does not receive every deposit.
pub const ORDER_OUTCOMES: &str = "wallet.order-outcomes";

pub const TRANSACTION_CREATED: &str = "transaction.created";
pub const TRANSACTION_REJECTED: &str = "transaction.rejected";

/// Transaction requests in the platform's format ([`TransactionRequest`]), published by other
/// systems through the default exchange.
pub const TRANSACTION_REQUESTS: Queue = Queue {
    name: "wallet.transaction-requests",
    exchange: None,
    routing_keys: &[],
    publishers: Publishers::Anyone,
    kind: QueueKind::Quorum,
};

/// Transaction requests in the envelope of the Node.js wallet this platform replaces
/// ([`LegacyEnvelope`]). Its publishers declare it themselves (amqplib's `assertQueue` with
/// its defaults), hence a plain durable queue.
pub const LEGACY_REQUESTS: Queue = Queue {
    name: "wallet_queue",
    exchange: None,
    routing_keys: &[],
    publishers: Publishers::Anyone,
    kind: QueueKind::PlainDurable,
};

/// Order payments, refunds and payouts to sellers, from `order.events`.
pub const ORDER_PAYMENTS: Queue = Queue {
    name: "wallet.order-payments",
    exchange: Some(super::order::EVENTS),
    routing_keys: &[
        super::order::PAYMENT_REQUESTED,
        super::order::ORDER_CANCELLED,
        super::order::ORDER_EXPIRED,
        super::order::ORDER_DELIVERED,
    ],
    publishers: Publishers::Platform,
    kind: QueueKind::Quorum,
};

/// `transaction.created`: a transaction applied to a wallet, as its ledger row (the wallet
/// reads its rows as this type, and statement-service records it as a statement line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct TransactionCreated {
    pub id: Uuid,
    pub user_id: Uuid,
    #[serde(rename = "type")]
    #[cfg_attr(feature = "sqlx", sqlx(rename = "type"))]
    pub kind: TransactionType,
    /// Minor units, positive.
    pub amount: i64,
    pub currency: String,
    /// The wallet's balance right after this transaction.
    pub balance_after: i64,
    pub parent_transaction_id: Option<Uuid>,
    pub description: Option<String>,
    pub source: TransactionSource,
    pub reference: Option<String>,
    #[serde(with = "super::time")]
    #[cfg_attr(feature = "schema", schemars(with = "DateTime<Utc>"))]
    pub created_at: DateTime<Utc>,
}

/// `transaction.rejected`: a request from the broker that broke a wallet rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TransactionRejected {
    /// The request's message id.
    pub request_id: String,
    pub user_id: Uuid,
    #[serde(rename = "type")]
    pub kind: TransactionType,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    /// A stable slug, e.g. `insufficient-funds`.
    pub reason: String,
    /// The same, for a human.
    pub detail: String,
    pub reference: Option<String>,
}

/// A message on [`TRANSACTION_REQUESTS`], as read: fields keep the JSON types a publisher may
/// get wrong in a way the wallet explains (an unknown `type`, a parent that is not a UUID).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TransactionRequest {
    pub user_id: Option<Uuid>,
    #[serde(rename = "type")]
    pub kind: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub parent_transaction_id: Option<String>,
    pub reference: Option<String>,
    pub description: Option<String>,
}

/// A message on [`LEGACY_REQUESTS`]:
/// `{"pattern":"transaction_emitted","data":{"userId","transaction":{"id","amount","operation"}}}`.
#[derive(Debug, Deserialize)]
pub struct LegacyEnvelope {
    pub pattern: String,
    pub data: LegacyData,
}

/// The `pattern` of a legacy transaction request.
pub const LEGACY_PATTERN: &str = "transaction_emitted";

#[derive(Debug, Deserialize)]
pub struct LegacyData {
    #[serde(rename = "userId")]
    pub user_id: Uuid,
    pub transaction: LegacyTransaction,
}

#[derive(Debug, Deserialize)]
pub struct LegacyTransaction {
    /// The parent of a reversal or cancellation; otherwise the publisher's own id.
    pub id: Option<serde_json::Value>,
    /// Major units as written (`10.5`), so it converts to minor units without floating point.
    pub amount: Option<Box<RawValue>>,
    /// 0 deposit, 1 withdraw, 2 purchase, 3 reversal, 4 cancellation.
    pub operation: u8,
}
