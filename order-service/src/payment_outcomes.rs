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
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::OrderError;
use crate::order::{Status, Transition};
use crate::orders;

pub const QUEUE: &str = "order.payment-outcomes";
pub const WALLET_EXCHANGE: &str = "wallet.order-outcomes";
/// The exchange the queue was bound to before `wallet.order-outcomes` existed.
pub const ALL_WALLET_EVENTS: &str = "wallet.events";
pub const ROUTING_KEYS: [&str; 2] = ["transaction.created", "transaction.rejected"];

/// The fields of `transaction.created` and `transaction.rejected` data this service reads.
#[derive(Debug, Deserialize)]
struct WalletData {
    /// The transaction's id (`transaction.created`).
    id: Option<Uuid>,
    /// The request's id (`transaction.rejected`): `order:<id>:payment:<attempt>` or
    /// `order:<id>:refund`.
    request_id: Option<String>,
    user_id: Uuid,
    #[serde(rename = "type")]
    kind: String,
    source: Option<String>,
    reference: Option<String>,
    reason: Option<String>,
}

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
    pub pool: PgPool,
}

impl Handler for PaymentOutcomeHandler {
    async fn handle(&self, delivery: &Delivery) -> anyhow::Result<Verdict> {
        let event: ReceivedEvent<WalletData> = match serde_json::from_slice(&delivery.data) {
            Ok(event) => event,
            Err(error) => return Ok(Verdict::Invalid(format!("not a wallet event: {error}"))),
        };
        let message_id = event.message_id(delivery);
        let outcome = match read_outcome(&event) {
            Ok(Some(outcome)) => outcome,
            Ok(None) => return Ok(Verdict::Done),
            Err(reason) => return Ok(Verdict::Invalid(reason)),
        };
        let mut tx = self.pool.begin().await?;
        if platform::inbox::record(&mut tx, &message_id, QUEUE).await? {
            apply(&mut tx, &outcome).await?;
        }
        platform::outbox::commit(&self.pool, tx).await?;
        Ok(Verdict::Done)
    }
}

/// Reads what `event` means for an order: `None` when it concerns no order.
fn read_outcome(event: &ReceivedEvent<WalletData>) -> Result<Option<Outcome>, String> {
    let data = &event.data;
    match event.kind.as_str() {
        "transaction.created" => {
            if data.source.as_deref() != Some("order") {
                return Ok(None);
            }
            let Some(order_id) = data.reference.as_deref().and_then(order_of_reference) else {
                return Ok(None);
            };
            let transaction_id = data.id.ok_or("transaction.created without an id")?;
            Ok(match data.kind.as_str() {
                "purchase" => Some(Outcome::Purchased {
                    order_id,
                    user_id: data.user_id,
                    transaction_id,
                }),
                "cancellation" => Some(Outcome::Refunded {
                    order_id,
                    transaction_id,
                }),
                _ => None,
            })
        }
        "transaction.rejected" => {
            let Some(request) = data.request_id.as_deref().and_then(order_request) else {
                return Ok(None);
            };
            let reason = data.reason.clone().unwrap_or_default();
            Ok(Some(match request {
                (order_id, Some(attempt)) => Outcome::PurchaseRefused {
                    order_id,
                    attempt,
                    reason,
                },
                (order_id, None) => Outcome::RefundRefused { order_id, reason },
            }))
        }
        other => Err(format!("unexpected event type {other:?}")),
    }
}

/// `order:<uuid>` → the order id.
fn order_of_reference(reference: &str) -> Option<Uuid> {
    Uuid::parse_str(reference.strip_prefix("order:")?).ok()
}

/// `order:<id>:payment:<attempt>` → `(id, Some(attempt))`; `order:<id>:refund` → `(id, None)`.
fn order_request(request_id: &str) -> Option<(Uuid, Option<i32>)> {
    let rest = request_id.strip_prefix("order:")?;
    let (id, what) = rest.split_once(':')?;
    let id = Uuid::parse_str(id).ok()?;
    if what == "refund" {
        return Some((id, None));
    }
    let attempt = what.strip_prefix("payment:")?.parse().ok()?;
    Some((id, Some(attempt)))
}

/// Applies an outcome to its order, inside the caller's transaction.
pub async fn apply(conn: &mut PgConnection, outcome: &Outcome) -> anyhow::Result<()> {
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
            let status = Status::parse(&order.status).map_err(anyhow::Error::msg)?;
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
            if order.payment_attempt == *attempt && order.status == Status::PendingPayment.as_str()
            {
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

    fn event(kind: &str, data: serde_json::Value) -> ReceivedEvent<WalletData> {
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
                "source": "order", "reference": format!("order:{order_id}")}),
        );
        assert_eq!(
            read_outcome(&created),
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
                "source": "event", "reference": format!("order:{}", Uuid::now_v7())}),
        );
        assert_eq!(read_outcome(&created), Ok(None));
    }

    #[test]
    fn a_rejection_names_the_attempt_it_answers() {
        let order_id = Uuid::now_v7();
        let rejected = event(
            "transaction.rejected",
            serde_json::json!({"request_id": format!("order:{order_id}:payment:3"),
                "user_id": Uuid::now_v7(), "type": "purchase", "reason": "insufficient-funds"}),
        );
        assert_eq!(
            read_outcome(&rejected),
            Ok(Some(Outcome::PurchaseRefused {
                order_id,
                attempt: 3,
                reason: "insufficient-funds".into()
            }))
        );
        let refund = event(
            "transaction.rejected",
            serde_json::json!({"request_id": format!("order:{order_id}:refund"),
                "user_id": Uuid::now_v7(), "type": "cancellation", "reason": "already-undone"}),
        );
        assert!(matches!(
            read_outcome(&refund),
            Ok(Some(Outcome::RefundRefused { .. }))
        ));
        let unrelated = event(
            "transaction.rejected",
            serde_json::json!({"request_id": "abc", "user_id": Uuid::now_v7(), "type": "deposit"}),
        );
        assert_eq!(read_outcome(&unrelated), Ok(None));
    }
}
