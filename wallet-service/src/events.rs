//! The events the wallet publishes (CloudEvents on the `wallet.events` topic exchange),
//! always through the outbox.
//!
//! The outcomes of order payments and refunds (source `order`) are published to
//! `wallet.order-outcomes` instead, which forwards everything into `wallet.events`: every
//! subscriber of `wallet.events` still gets every event, while order-service binds its queue
//! to `wallet.order-outcomes` and so no longer receives (and discards) every deposit. That
//! was a queue write, a delivery and an acknowledgement per deposit, for nothing (see
//! docs/benchmarks.md).

use platform::cloud_event::outbox_event;
use platform::outbox::OutboxMessage;
use serde::Serialize;
use uuid::Uuid;

use crate::transaction::Source;

pub const EXCHANGE: &str = "wallet.events";
/// Where the outcomes of order payments and refunds go; forwards into [`EXCHANGE`].
pub const ORDER_OUTCOMES_EXCHANGE: &str = "wallet.order-outcomes";
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

/// The `transaction.created` event of a transaction from `source`, without its data: the
/// ledger fills that in with the row it writes (see `ledger::apply`).
pub fn transaction_created(source: Source) -> OutboxMessage {
    event(
        exchange(source == Source::Order),
        TRANSACTION_CREATED,
        serde_json::Value::Null,
    )
}

/// `rejection` of a request from `source`.
pub fn transaction_rejected(rejection: &Rejection, source: Source) -> OutboxMessage {
    event(
        exchange(source == Source::Order),
        TRANSACTION_REJECTED,
        rejection,
    )
}

fn exchange(for_an_order: bool) -> &'static str {
    if for_an_order {
        ORDER_OUTCOMES_EXCHANGE
    } else {
        EXCHANGE
    }
}

/// A copy of the event `payload` for the requester's `reply_to` queue (through the default
/// exchange).
pub fn reply(
    payload: &serde_json::Value,
    reply_to: &str,
    correlation_id: Option<String>,
) -> OutboxMessage {
    OutboxMessage {
        message_id: Uuid::new_v4(),
        exchange: String::new(),
        routing_key: reply_to.to_owned(),
        correlation_id,
        payload: payload.clone(),
    }
}

fn event(exchange: &str, kind: &str, data: impl Serialize) -> OutboxMessage {
    outbox_event(exchange, SOURCE, kind, data)
}
