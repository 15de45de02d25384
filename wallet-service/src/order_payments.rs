//! Order payments and refunds, consumed from `order.events`.
//!
//! `order.payment_requested` becomes a `purchase` with reference `order:<id>`, once per
//! payment attempt: the request id `order:<id>:payment:<attempt>` goes through the same inbox
//! as other transaction requests, so a redelivered or republished request pays once. An
//! `order.cancelled` or `order.expired` that carries the order's payment becomes a
//! `cancellation` of that purchase (a refund), once per order. The outcome is the usual
//! `transaction.created` or `transaction.rejected` (whose `request_id` names the attempt).

use lapin::message::Delivery;
use platform::cloud_event::ReceivedEvent;
use platform::consumer::BatchHandler;
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::requests::{self, Request};
use crate::transaction::{Kind, RawRequest, Source};

pub const QUEUE: &str = "wallet.order-payments";
pub const ORDER_EXCHANGE: &str = "order.events";
pub const ROUTING_KEYS: [&str; 3] = [
    "order.payment_requested",
    "order.cancelled",
    "order.expired",
];

/// The fields of order events the wallet reads.
#[derive(Debug, Deserialize)]
struct OrderData {
    order_id: Uuid,
    user_id: Uuid,
    /// `order.payment_requested`.
    attempt: Option<i32>,
    amount: Option<i64>,
    currency: Option<String>,
    /// `order.cancelled` / `order.expired` of an order that was paid.
    payment_transaction_id: Option<Uuid>,
}

pub struct OrderPaymentHandler {
    pub pool: PgPool,
}

impl BatchHandler for OrderPaymentHandler {
    /// The request the event asks for, if any.
    type Message = Option<Request>;

    fn read(&self, delivery: &Delivery) -> Result<Option<Request>, String> {
        let event: ReceivedEvent<OrderData> = serde_json::from_slice(&delivery.data)
            .map_err(|error| format!("not an order event: {error}"))?;
        request_for(event)
    }

    async fn apply(&self, requests: &[Option<Request>]) -> anyhow::Result<()> {
        requests::apply_all(&self.pool, QUEUE, requests.iter().flatten()).await
    }
}

/// The transaction request an order event asks for; `None` when it asks for none (an order
/// cancelled before it was paid).
fn request_for(event: ReceivedEvent<OrderData>) -> Result<Option<Request>, String> {
    let order = event.data;
    let reference = format!("order:{}", order.order_id);
    let (message_id, raw) = match event.kind.as_str() {
        "order.payment_requested" => {
            let attempt = order.attempt.ok_or("attempt is missing")?;
            let amount = order.amount.ok_or("amount is missing")?;
            let raw = RawRequest {
                kind: Kind::Purchase.as_str().to_owned(),
                amount: Some(amount),
                currency: order.currency,
                description: Some(format!("Order {}", order.order_id)),
                reference: Some(reference.clone()),
                ..RawRequest::default()
            };
            (format!("{reference}:payment:{attempt}"), raw)
        }
        "order.cancelled" | "order.expired" => {
            let Some(payment) = order.payment_transaction_id else {
                return Ok(None);
            };
            let raw = RawRequest {
                kind: Kind::Cancellation.as_str().to_owned(),
                parent_transaction_id: Some(payment.to_string()),
                description: Some(format!("Refund of order {}", order.order_id)),
                reference: Some(reference.clone()),
                ..RawRequest::default()
            };
            (format!("{reference}:refund"), raw)
        }
        other => return Err(format!("unexpected event type {other:?}")),
    };
    Ok(Some(Request {
        message_id,
        user_id: order.user_id,
        raw,
        reply_to: None,
        correlation_id: None,
        source: Source::Order,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, data: serde_json::Value) -> ReceivedEvent<OrderData> {
        serde_json::from_value(serde_json::json!({"id": "m", "type": kind, "data": data})).unwrap()
    }

    #[test]
    fn a_payment_request_is_a_purchase_identified_by_its_attempt() {
        let order_id = Uuid::now_v7();
        let request = request_for(event(
            "order.payment_requested",
            serde_json::json!({"order_id": order_id, "user_id": Uuid::now_v7(), "attempt": 2,
                "amount": 1250, "currency": "EUR"}),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(request.message_id, format!("order:{order_id}:payment:2"));
        assert_eq!(request.raw.kind, "purchase");
        assert_eq!(request.raw.amount, Some(1250));
        assert_eq!(request.raw.reference, Some(format!("order:{order_id}")));
        assert_eq!(request.source, Source::Order);
    }

    #[test]
    fn a_cancelled_paid_order_is_refunded_and_an_unpaid_one_needs_nothing() {
        let order_id = Uuid::now_v7();
        let payment = Uuid::now_v7();
        let refund = request_for(event(
            "order.cancelled",
            serde_json::json!({"order_id": order_id, "user_id": Uuid::now_v7(),
                "payment_transaction_id": payment}),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(refund.message_id, format!("order:{order_id}:refund"));
        assert_eq!(refund.raw.kind, "cancellation");
        assert_eq!(refund.raw.parent_transaction_id, Some(payment.to_string()));
        let unpaid = request_for(event(
            "order.expired",
            serde_json::json!({"order_id": order_id, "user_id": Uuid::now_v7()}),
        ));
        assert!(matches!(unpaid, Ok(None)));
    }

    #[test]
    fn a_payment_request_without_its_amount_is_refused() {
        let missing = request_for(event(
            "order.payment_requested",
            serde_json::json!({"order_id": Uuid::now_v7(), "user_id": Uuid::now_v7(), "attempt": 1}),
        ));
        assert_eq!(missing.err().as_deref(), Some("amount is missing"));
    }
}
