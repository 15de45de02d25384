//! The events the wallet publishes (CloudEvents on the `wallet.events` topic exchange),
//! always through the outbox.

use platform::cloud_event::outbox_event;
use platform::outbox::OutboxMessage;
use serde::Serialize;
use uuid::Uuid;

use crate::transaction::Transaction;

pub const EXCHANGE: &str = "wallet.events";
pub const SOURCE: &str = "wallet-service";
pub const TRANSACTION_CREATED: &str = "transaction.created";
pub const TRANSACTION_REJECTED: &str = "transaction.rejected";

/// `transaction.rejected` data: a request that broke a rule.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    /// The request's message id.
    pub request_id: String,
    pub user_id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    /// A stable slug, e.g. `insufficient-funds`.
    pub reason: String,
    /// The same, for a human.
    pub detail: String,
    pub reference: Option<String>,
}

pub fn transaction_created(transaction: &Transaction) -> OutboxMessage {
    event(TRANSACTION_CREATED, transaction)
}

pub fn transaction_rejected(rejection: &Rejection) -> OutboxMessage {
    event(TRANSACTION_REJECTED, rejection)
}

/// A copy of `message` for the requester's `reply_to` queue (through the default exchange).
pub fn reply(
    message: &OutboxMessage,
    reply_to: &str,
    correlation_id: Option<String>,
) -> OutboxMessage {
    OutboxMessage {
        message_id: Uuid::new_v4(),
        exchange: String::new(),
        routing_key: reply_to.to_owned(),
        correlation_id,
        payload: message.payload.clone(),
    }
}

fn event(kind: &str, data: impl Serialize) -> OutboxMessage {
    outbox_event(EXCHANGE, SOURCE, kind, data)
}
