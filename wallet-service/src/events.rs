//! The events the wallet publishes (CloudEvents on `wallet.events`), always through the
//! outbox. Their payloads are the contract's ([`proto::messaging::wallet`]).
//!
//! The outcomes of order payments and refunds (source `order`) are published to
//! `wallet.order-outcomes` instead, which forwards everything into `wallet.events`: every
//! subscriber of `wallet.events` still gets every event, while order-service binds its queue
//! to `wallet.order-outcomes` and so no longer receives (and discards) every deposit. That
//! was a queue write, a delivery and an acknowledgement per deposit, for nothing (see
//! docs/benchmarks-history.md).

use platform::cloud_event::outbox_event;
use platform::outbox::OutboxMessage;
use proto::TransactionSource;
use proto::messaging::wallet::{
    EVENTS, ORDER_OUTCOMES, SOURCE, TRANSACTION_CREATED, TRANSACTION_REJECTED, TransactionCreated,
    TransactionRejected,
};
use uuid::Uuid;

/// The `transaction.created` event of `transaction`.
pub fn transaction_created(transaction: &TransactionCreated) -> OutboxMessage {
    outbox_event(
        exchange(transaction.source),
        SOURCE,
        TRANSACTION_CREATED,
        transaction,
    )
}

/// `rejection` of a request from `source`.
pub fn transaction_rejected(
    rejection: &TransactionRejected,
    source: TransactionSource,
) -> OutboxMessage {
    outbox_event(exchange(source), SOURCE, TRANSACTION_REJECTED, rejection)
}

fn exchange(source: TransactionSource) -> &'static str {
    match source {
        TransactionSource::Order => ORDER_OUTCOMES,
        TransactionSource::Api | TransactionSource::Event => EVENTS,
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
