//! The wallet's answers to payment and refund requests, consumed from
//! `wallet.order-outcomes`: the wallet publishes them there, and that exchange forwards them
//! into `wallet.events` for everyone else, so this queue does not receive every deposit.
//!
//! Only transactions the wallet made for an order count (`source: "order"` and reference
//! `order:<id>`); any other wallet event is acknowledged and ignored. A purchase pays the
//! order, or, if the order was cancelled or expired meanwhile, is sent back for a refund; a
//! refused purchase fails the payment attempt it answers; a cancellation is the refund.
//! Each message id takes effect once (inbox), in the same transaction as the change.

use lapin::message::Delivery;
use platform::cloud_event::ReceivedEvent;
use platform::consumer::{Handler, Verdict};
use platform::outbox::{self, Outbox};
use proto::messaging::order::{OrderRequest, PAYMENT_OUTCOMES, order_of_reference};
use proto::messaging::wallet::{
    TRANSACTION_CREATED, TRANSACTION_REJECTED, TransactionCreated, TransactionRejected,
};
use proto::{TransactionSource, TransactionType};
use uuid::Uuid;

use crate::error::OrderError;
use crate::order::{Status, Transition};
use crate::orders;

/// The exchange the queue was bound to before `wallet.order-outcomes` existed.
pub const ALL_WALLET_EVENTS: &str = proto::messaging::wallet::EVENTS;

/// What a wallet event means for an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Purchased {
        order_id: Uuid,
        user_id: Uuid,
        transaction_id: Uuid,
    },
    PurchaseRefused {
        order_id: Uuid,
        attempt: i32,
        reason: String,
    },
    Refunded {
        order_id: Uuid,
        transaction_id: Uuid,
    },
    RefundRefused {
        order_id: Uuid,
        reason: String,
    },
}

pub struct PaymentOutcomeHandler {
    pub outbox: Outbox,
}

impl Handler for PaymentOutcomeHandler {
    async fn handle(&self, delivery: &Delivery) -> anyhow::Result<Verdict> {
        let event: ReceivedEvent<serde_json::Value> = match serde_json::from_slice(&delivery.data) {
            Ok(event) => event,
            Err(error) => return Ok(Verdict::Invalid(format!("not a wallet event: {error}"))),
        };
        let message_id = event.message_id(delivery);
        let outcome = match read_outcome(event) {
            Ok(Some(outcome)) => outcome,
            Ok(None) => return Ok(Verdict::Done),
            Err(reason) => return Ok(Verdict::Invalid(reason)),
        };
        self.outbox
            .apply_once(&message_id, PAYMENT_OUTCOMES.name, async |tx| {
                apply(tx, &outcome).await
            })
            .await?;
        Ok(Verdict::Done)
    }
}

/// Reads what `event` means for an order: `None` when it concerns no order.
fn read_outcome(event: ReceivedEvent<serde_json::Value>) -> Result<Option<Outcome>, String> {
    let invalid = |error: serde_json::Error| format!("not a wallet event: {error}");
    match event.kind.as_str() {
        TRANSACTION_CREATED => {
            let created: TransactionCreated =
                serde_json::from_value(event.data).map_err(invalid)?;
            if created.source != TransactionSource::Order {
                return Ok(None);
            }
            let Some(order_id) = created.reference.as_deref().and_then(order_of_reference) else {
                return Ok(None);
            };
            Ok(match created.kind {
                TransactionType::Purchase => Some(Outcome::Purchased {
                    order_id,
                    user_id: created.user_id,
                    transaction_id: created.id,
                }),
                TransactionType::Cancellation => Some(Outcome::Refunded {
                    order_id,
                    transaction_id: created.id,
                }),
                _ => None,
            })
        }
        TRANSACTION_REJECTED => {
            let rejected: TransactionRejected =
                serde_json::from_value(event.data).map_err(invalid)?;
            let Some(request) = OrderRequest::parse(&rejected.request_id) else {
                return Ok(None);
            };
            let reason = rejected.reason;
            Ok(Some(match request {
                OrderRequest::Payment { order_id, attempt } => Outcome::PurchaseRefused {
                    order_id,
                    attempt,
                    reason,
                },
                OrderRequest::Refund { order_id } => Outcome::RefundRefused { order_id, reason },
            }))
        }
        other => Err(format!("unexpected event type {other:?}")),
    }
}

/// Applies an outcome to its order, inside the caller's transaction.
pub async fn apply(conn: &mut outbox::Transaction, outcome: &Outcome) -> anyhow::Result<()> {
    match outcome {
        Outcome::Purchased {
            order_id,
            user_id,
            transaction_id,
        } => {
            let Some(order) = orders::lock(conn, *order_id).await? else {
                tracing::warn!(%order_id, "a payment for an unknown order");
                return Ok(());
            };
            if order.user_id != *user_id {
                tracing::warn!(%order_id, "a payment from another user's wallet ignored");
                return Ok(());
            }
            let status = order.status;
            if Transition::Pay.allowed_from(status) {
                orders::transition(
                    conn,
                    *order_id,
                    None,
                    Transition::Pay,
                    Some(*transaction_id),
                )
                .await
                .map_err(internal)?;
            } else if matches!(status, Status::Cancelled | Status::Expired) {
                tracing::info!(%order_id, "payment arrived after the order ended; refunding it");
                orders::record_late_payment(conn, *order_id, *transaction_id)
                    .await
                    .map_err(internal)?;
            } else if order.payment_transaction_id != Some(*transaction_id) {
                // Payment attempts follow one another (a new one only after the last failed),
                // so a second successful purchase cannot happen; say so loudly if it does.
                tracing::error!(%order_id, %transaction_id, "a second payment for a paid order");
            }
        }
        Outcome::PurchaseRefused {
            order_id,
            attempt,
            reason,
        } => {
            let Some(order) = orders::lock(conn, *order_id).await? else {
                return Ok(());
            };
            // Only the answer to the attempt in flight moves the order.
            if order.payment_attempt == *attempt && order.status == Status::PendingPayment {
                tracing::info!(%order_id, reason, "payment refused");
                orders::transition(conn, *order_id, None, Transition::FailPayment, None)
                    .await
                    .map_err(internal)?;
            }
        }
        Outcome::Refunded {
            order_id,
            transaction_id,
        } => {
            orders::record_refund(conn, *order_id, *transaction_id)
                .await
                .map_err(internal)?;
        }
        Outcome::RefundRefused { order_id, reason } => {
            tracing::error!(%order_id, reason, "the wallet refused to refund an order");
        }
    }
    Ok(())
}

fn internal(error: OrderError) -> anyhow::Error {
    match error {
        OrderError::Internal(error) => error,
        other => anyhow::anyhow!(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, data: serde_json::Value) -> ReceivedEvent<serde_json::Value> {
        serde_json::from_value(serde_json::json!({"id": "m1", "type": kind, "data": data})).unwrap()
    }

    #[test]
    fn an_order_purchase_pays_its_order() {
        let order_id = Uuid::now_v7();
        let transaction_id = Uuid::now_v7();
        let user_id = Uuid::now_v7();
        let created = event(
            "transaction.created",
            serde_json::json!({"id": transaction_id, "user_id": user_id, "type": "purchase",
                "source": "order", "reference": format!("order:{order_id}"), "amount": 300,
                "currency": "EUR", "balance_after": 0, "created_at": "2026-11-21T18:40:01.123456Z"}),
        );
        assert_eq!(
            read_outcome(created),
            Ok(Some(Outcome::Purchased {
                order_id,
                user_id,
                transaction_id
            }))
        );
    }

    #[test]
    fn a_purchase_another_system_labelled_with_an_order_reference_pays_nothing() {
        let created = event(
            "transaction.created",
            serde_json::json!({"id": Uuid::now_v7(), "user_id": Uuid::now_v7(), "type": "purchase",
                "source": "event", "reference": format!("order:{}", Uuid::now_v7()), "amount": 300,
                "currency": "EUR", "balance_after": 0, "created_at": "2026-11-21T18:40:01.123456Z"}),
        );
        assert_eq!(read_outcome(created), Ok(None));
    }

    #[test]
    fn a_rejection_names_the_attempt_it_answers() {
        let order_id = Uuid::now_v7();
        let rejected = event(
            "transaction.rejected",
            serde_json::json!({"request_id": format!("order:{order_id}:payment:3"),
                "user_id": Uuid::now_v7(), "type": "purchase", "reason": "insufficient-funds", "detail": "too little"}),
        );
        assert_eq!(
            read_outcome(rejected),
            Ok(Some(Outcome::PurchaseRefused {
                order_id,
                attempt: 3,
                reason: "insufficient-funds".into()
            }))
        );
        let refund = event(
            "transaction.rejected",
            serde_json::json!({"request_id": format!("order:{order_id}:refund"),
                "user_id": Uuid::now_v7(), "type": "cancellation", "reason": "already-undone", "detail": "undone"}),
        );
        assert!(matches!(
            read_outcome(refund),
            Ok(Some(Outcome::RefundRefused { .. }))
        ));
        let unrelated = event(
            "transaction.rejected",
            serde_json::json!({"request_id": "abc", "user_id": Uuid::now_v7(), "type": "deposit",
                "reason": "insufficient-funds", "detail": "too little"}),
        );
        assert_eq!(read_outcome(unrelated), Ok(None));
    }
}
