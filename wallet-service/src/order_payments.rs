//! Order payments, refunds and payouts, consumed from `order.events`.
//!
//! `order.payment_requested` becomes a `purchase` with reference `order:<id>`, once per
//! payment attempt: the request id `order:<id>:payment:<attempt>` goes through the same inbox
//! as other transaction requests, so a redelivered or republished request pays once. An
//! `order.cancelled` or `order.expired` that carries the order's payment becomes a
//! `cancellation` of that purchase (a refund), once per order. The outcome is the usual
//! `transaction.created` or `transaction.rejected` (whose `request_id` names the attempt).
//! `order.delivered` credits each seller their payout: a `deposit` with reference
//! `order:<id>:payout:<seller_id>`, which is also its request id, so each (order, seller) is
//! paid once however often the event arrives.

use lapin::message::Delivery;
use platform::cloud_event::ReceivedEvent;
use platform::consumer::BatchHandler;
use platform::outbox::Outbox;
use proto::messaging::order::{
    ORDER_CANCELLED, ORDER_DELIVERED, ORDER_EXPIRED, OrderChanged, OrderRequest, PAYMENT_REQUESTED,
    PaymentRequested, payout_reference,
};
use proto::messaging::wallet::ORDER_PAYMENTS;
use proto::{TransactionSource, TransactionType};

use crate::requests::{self, Request};
use crate::transaction::RawRequest;

pub struct OrderPaymentHandler {
    pub outbox: Outbox,
}

impl BatchHandler for OrderPaymentHandler {
    /// The requests the event asks for: none, one, or a payout per seller.
    type Message = Vec<Request>;

    fn read(&self, delivery: &Delivery) -> Result<Vec<Request>, String> {
        let event: ReceivedEvent<serde_json::Value> = serde_json::from_slice(&delivery.data)
            .map_err(|error| format!("not an order event: {error}"))?;
        if event.kind == ORDER_DELIVERED {
            return payouts_for(event);
        }
        Ok(request_for(event)?.into_iter().collect())
    }

    async fn apply(&self, requests: &[Vec<Request>]) -> anyhow::Result<()> {
        requests::apply_all(&self.outbox, ORDER_PAYMENTS.name, requests.iter().flatten()).await
    }
}

/// The deposits `order.delivered` asks for: one per seller's payout.
fn payouts_for(event: ReceivedEvent<serde_json::Value>) -> Result<Vec<Request>, String> {
    let order: OrderChanged = serde_json::from_value(event.data)
        .map_err(|error| format!("not an order event: {error}"))?;
    Ok(order
        .payouts
        .iter()
        .map(|payout| {
            let reference = payout_reference(order.order_id, payout.seller_id);
            Request {
                message_id: reference.clone(),
                user_id: payout.seller_id,
                raw: RawRequest {
                    kind: TransactionType::Deposit,
                    amount: Some(payout.amount),
                    currency: Some(order.currency.clone()),
                    parent_transaction_id: None,
                    description: Some(format!("Sale, order {}", order.order_id)),
                    reference: Some(reference),
                },
                reply_to: None,
                correlation_id: None,
                source: TransactionSource::Order,
            }
        })
        .collect())
}

/// The transaction request an order event asks for; `None` when it asks for none (an order
/// cancelled before it was paid).
fn request_for(event: ReceivedEvent<serde_json::Value>) -> Result<Option<Request>, String> {
    let invalid = |error: serde_json::Error| format!("not an order event: {error}");
    let (user_id, request, raw) = match event.kind.as_str() {
        PAYMENT_REQUESTED => {
            let payment: PaymentRequested = serde_json::from_value(event.data).map_err(invalid)?;
            let raw = RawRequest {
                kind: TransactionType::Purchase,
                amount: Some(payment.amount),
                currency: Some(payment.currency),
                parent_transaction_id: None,
                description: Some(format!("Order {}", payment.order_id)),
                reference: Some(proto::messaging::order::reference(payment.order_id)),
            };
            let request = OrderRequest::Payment {
                order_id: payment.order_id,
                attempt: payment.attempt,
            };
            (payment.user_id, request, raw)
        }
        ORDER_CANCELLED | ORDER_EXPIRED => {
            let order: OrderChanged = serde_json::from_value(event.data).map_err(invalid)?;
            let Some(payment) = order.payment_transaction_id else {
                return Ok(None);
            };
            let raw = RawRequest {
                kind: TransactionType::Cancellation,
                amount: None,
                currency: None,
                parent_transaction_id: Some(payment.to_string()),
                description: Some(format!("Refund of order {}", order.order_id)),
                reference: Some(proto::messaging::order::reference(order.order_id)),
            };
            let request = OrderRequest::Refund {
                order_id: order.order_id,
            };
            (order.user_id, request, raw)
        }
        other => return Err(format!("unexpected event type {other:?}")),
    };
    Ok(Some(Request {
        message_id: request.request_id(),
        user_id,
        raw,
        reply_to: None,
        correlation_id: None,
        source: TransactionSource::Order,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    use uuid::Uuid;

    fn event(kind: &str, data: serde_json::Value) -> ReceivedEvent<serde_json::Value> {
        serde_json::from_value(serde_json::json!({"id": "m", "type": kind, "data": data})).unwrap()
    }

    fn order(order_id: Uuid, payment: Option<Uuid>) -> serde_json::Value {
        serde_json::to_value(OrderChanged {
            order_id,
            user_id: Uuid::now_v7(),
            status: proto::OrderStatus::Cancelled,
            subtotal: 300,
            discount: 0,
            total: 300,
            currency: "EUR".into(),
            voucher_code: None,
            payment_transaction_id: payment,
            refund_transaction_id: None,
            payouts: Vec::new(),
        })
        .unwrap()
    }

    #[test]
    fn a_payment_request_is_a_purchase_identified_by_its_attempt() {
        let order_id = Uuid::now_v7();
        let request = request_for(event(
            "order.payment_requested",
            serde_json::json!({"order_id": order_id, "user_id": Uuid::now_v7(), "attempt": 2,
                "amount": 1250, "currency": "EUR", "reference": format!("order:{order_id}")}),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(request.message_id, format!("order:{order_id}:payment:2"));
        assert_eq!(request.raw.kind, TransactionType::Purchase);
        assert_eq!(request.raw.amount, Some(1250));
        assert_eq!(request.raw.reference, Some(format!("order:{order_id}")));
        assert_eq!(request.source, TransactionSource::Order);
    }

    #[test]
    fn a_cancelled_paid_order_is_refunded_and_an_unpaid_one_needs_nothing() {
        let order_id = Uuid::now_v7();
        let payment = Uuid::now_v7();
        let refund = request_for(event("order.cancelled", order(order_id, Some(payment))))
            .unwrap()
            .unwrap();
        assert_eq!(refund.message_id, format!("order:{order_id}:refund"));
        assert_eq!(refund.raw.kind, TransactionType::Cancellation);
        assert_eq!(refund.raw.parent_transaction_id, Some(payment.to_string()));
        let unpaid = request_for(event("order.expired", order(order_id, None)));
        assert!(matches!(unpaid, Ok(None)));
    }

    #[test]
    fn a_delivered_order_credits_each_seller_once_under_its_own_request_id() {
        let order_id = Uuid::now_v7();
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        let mut data = order(order_id, Some(Uuid::now_v7()));
        data["status"] = "delivered".into();
        data["payouts"] = serde_json::json!([
            {"seller_id": first, "amount": 667},
            {"seller_id": second, "amount": 333}
        ]);
        let payouts = payouts_for(event("order.delivered", data)).unwrap();
        assert_eq!(payouts.len(), 2);
        let reference = format!("order:{order_id}:payout:{first}");
        assert_eq!(payouts[0].message_id, reference);
        assert_eq!(payouts[0].user_id, first);
        assert_eq!(payouts[0].raw.kind, TransactionType::Deposit);
        assert_eq!(payouts[0].raw.amount, Some(667));
        assert_eq!(payouts[0].raw.reference, Some(reference));
        assert_eq!(payouts[0].source, TransactionSource::Order);
        assert_eq!(payouts[1].raw.amount, Some(333));
        // An event from before payouts existed pays no one.
        let mut old = order(order_id, None);
        old.as_object_mut().unwrap().remove("payouts");
        let old = payouts_for(event("order.delivered", old)).unwrap();
        assert!(old.is_empty());
    }

    #[test]
    fn a_payment_request_without_its_amount_is_refused() {
        let missing = request_for(event(
            "order.payment_requested",
            serde_json::json!({"order_id": Uuid::now_v7(), "user_id": Uuid::now_v7(), "attempt": 1}),
        ));
        let reason = missing.err().unwrap();
        assert!(reason.contains("missing field `amount`"), "{reason}");
    }
}
