//! order-service's messages: the order events it publishes, and its queues.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Publishers, Queue, QueueKind};
use crate::enums::OrderStatus;

/// The CloudEvent `source` of order-service's events.
pub const SOURCE: &str = "order-service";

/// Topic exchange of order events: [`ORDER_CREATED`], [`PAYMENT_REQUESTED`],
/// `order.<status>` ([`status_changed`]) and [`VOUCHER_ISSUED`].
pub const EVENTS: &str = "order.events";

pub const ORDER_CREATED: &str = "order.created";
pub const PAYMENT_REQUESTED: &str = "order.payment_requested";
pub const ORDER_PAID: &str = "order.paid";
pub const ORDER_PAYMENT_FAILED: &str = "order.payment_failed";
pub const ORDER_CANCELLED: &str = "order.cancelled";
pub const ORDER_EXPIRED: &str = "order.expired";
pub const ORDER_SENT: &str = "order.sent";
pub const ORDER_DELIVERED: &str = "order.delivered";
pub const VOUCHER_ISSUED: &str = "voucher.issued";

/// The routing key of the event of an order that moved to `status`.
pub fn status_changed(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::PendingPayment => PAYMENT_REQUESTED,
        OrderStatus::Paid => ORDER_PAID,
        OrderStatus::PaymentFailed => ORDER_PAYMENT_FAILED,
        OrderStatus::Cancelled => ORDER_CANCELLED,
        OrderStatus::Expired => ORDER_EXPIRED,
        OrderStatus::Sent => ORDER_SENT,
        OrderStatus::Delivered => ORDER_DELIVERED,
    }
}

/// The wallet's answers to order payments and refunds (from `wallet.order-outcomes`).
pub const PAYMENT_OUTCOMES: Queue = Queue {
    name: "order.payment-outcomes",
    exchange: Some(super::wallet::ORDER_OUTCOMES),
    routing_keys: &[
        super::wallet::TRANSACTION_CREATED,
        super::wallet::TRANSACTION_REJECTED,
    ],
    publishers: Publishers::Platform,
    kind: QueueKind::Quorum,
};

/// Sent orders, which may earn a voucher.
pub const VOUCHER_ISSUING: Queue = Queue {
    name: "order.voucher-issuing",
    exchange: Some(EVENTS),
    routing_keys: &[ORDER_SENT],
    publishers: Publishers::Platform,
    kind: QueueKind::Quorum,
};

/// The data of `order.created` and of every `order.<status>` event: the order as it now is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrderChanged {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub status: OrderStatus,
    pub subtotal: i64,
    pub discount: i64,
    pub total: i64,
    pub currency: String,
    pub voucher_code: Option<String>,
    /// Set on `order.cancelled` / `order.expired` when a payment went through: the wallet
    /// refunds it.
    pub payment_transaction_id: Option<Uuid>,
    pub refund_transaction_id: Option<Uuid>,
    /// On `order.delivered`: each seller's share of `total`, which the wallet credits as a
    /// `deposit` with reference [`payout_reference`], once per (order, seller). Empty on every
    /// other event (and absent from events of earlier versions).
    #[serde(default)]
    pub payouts: Vec<Payout>,
}

/// A seller's share of a delivered order: the sellers' shares add up to the order's total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Payout {
    pub seller_id: Uuid,
    /// Minor units, more than 0.
    pub amount: i64,
}

/// `order.payment_requested`: the wallet makes one `purchase` per `(order_id, attempt)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PaymentRequested {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub attempt: i32,
    pub amount: i64,
    pub currency: String,
    /// [`reference`] of the order, carried by the wallet's transaction and its events.
    pub reference: String,
}

/// `voucher.issued`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct VoucherIssued {
    pub code: String,
    pub user_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub order_id: Uuid,
    pub issued_at: DateTime<Utc>,
}

/// The prefix of the wallet references, and request ids, of order payments and refunds:
/// other systems may not use it.
pub const REFERENCE_PREFIX: &str = "order:";

/// The wallet reference of an order's payment and refund: `order:<id>`.
pub fn reference(order_id: Uuid) -> String {
    format!("{REFERENCE_PREFIX}{order_id}")
}

/// The wallet reference, and request id, of a seller's payout for an order:
/// `order:<id>:payout:<seller_id>`.
pub fn payout_reference(order_id: Uuid, seller_id: Uuid) -> String {
    format!("{}:payout:{seller_id}", reference(order_id))
}

/// The order a wallet reference names (`order:<uuid>`).
pub fn order_of_reference(reference: &str) -> Option<Uuid> {
    Uuid::parse_str(reference.strip_prefix(REFERENCE_PREFIX)?).ok()
}

/// What the wallet does for an order: pay attempt `n`, or refund the payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderRequest {
    Payment { order_id: Uuid, attempt: i32 },
    Refund { order_id: Uuid },
}

impl OrderRequest {
    /// The message id the wallet applies it under (`order:<id>:payment:<n>`,
    /// `order:<id>:refund`), echoed as `request_id` in `transaction.rejected`.
    pub fn request_id(self) -> String {
        match self {
            Self::Payment { order_id, attempt } => {
                format!("{}:payment:{attempt}", reference(order_id))
            }
            Self::Refund { order_id } => format!("{}:refund", reference(order_id)),
        }
    }

    /// Reads a request id back; `None` for one that is not an order's.
    pub fn parse(request_id: &str) -> Option<Self> {
        let rest = request_id.strip_prefix(REFERENCE_PREFIX)?;
        let (id, what) = rest.split_once(':')?;
        let order_id = Uuid::parse_str(id).ok()?;
        if what == "refund" {
            return Some(Self::Refund { order_id });
        }
        let attempt = what.strip_prefix("payment:")?.parse().ok()?;
        Some(Self::Payment { order_id, attempt })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_read_back() {
        let order_id = Uuid::now_v7();
        for request in [
            OrderRequest::Payment {
                order_id,
                attempt: 3,
            },
            OrderRequest::Refund { order_id },
        ] {
            assert_eq!(OrderRequest::parse(&request.request_id()), Some(request));
        }
        assert_eq!(OrderRequest::parse("abc"), None);
        assert_eq!(order_of_reference(&reference(order_id)), Some(order_id));
        // A payout is not the order's payment: its reference names no order.
        let payout = payout_reference(order_id, Uuid::now_v7());
        assert_eq!(order_of_reference(&payout), None);
        assert_eq!(OrderRequest::parse(&payout), None);
    }
}
