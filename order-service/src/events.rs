//! The events order-service publishes (CloudEvents on the `order.events` topic exchange),
//! always through the outbox, and the names of the queues it shares with the wallet.

use chrono::{DateTime, Utc};
use platform::cloud_event::outbox_event;
use platform::outbox::OutboxMessage;
use serde::Serialize;
use uuid::Uuid;

use crate::order::{OrderRow, Status};

pub const EXCHANGE: &str = "order.events";
pub const SOURCE: &str = "order-service";
pub const ORDER_CREATED: &str = "order.created";
pub const PAYMENT_REQUESTED: &str = "order.payment_requested";
pub const ORDER_SENT: &str = "order.sent";
pub const VOUCHER_ISSUED: &str = "voucher.issued";

/// The wallet's queue of order payments and refunds (bound to `order.events`). Declared by
/// order-service as well, with the same arguments and bindings, because it publishes there:
/// a payment request must not be dropped as unroutable because the wallet never ran yet.
pub const WALLET_PAYMENTS_QUEUE: &str = "wallet.order-payments";
pub const WALLET_PAYMENTS_KEYS: [&str; 3] = [PAYMENT_REQUESTED, "order.cancelled", "order.expired"];

/// The data of every `order.<status>` event: the order as it now is.
#[derive(Debug, Clone, Serialize)]
pub struct OrderEvent {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub status: String,
    pub subtotal: i64,
    pub discount: i64,
    pub total: i64,
    pub currency: String,
    pub voucher_code: Option<String>,
    /// Set on `order.cancelled` / `order.expired` when a payment went through: the wallet
    /// refunds it.
    pub payment_transaction_id: Option<Uuid>,
    pub refund_transaction_id: Option<Uuid>,
}

/// `order.payment_requested`: the wallet makes one `purchase` per `(order_id, attempt)`.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentRequested {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub attempt: i32,
    pub amount: i64,
    pub currency: String,
    /// `order:<id>`, carried by the wallet's transaction and its events.
    pub reference: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VoucherIssued {
    pub code: String,
    pub user_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub order_id: Uuid,
    pub issued_at: DateTime<Utc>,
}

/// The wallet reference of an order's payment and refund.
pub fn reference(order_id: Uuid) -> String {
    format!("order:{order_id}")
}

/// `order.created` for a new order.
pub fn order_created(order: &OrderRow) -> OutboxMessage {
    outbox_event(EXCHANGE, SOURCE, ORDER_CREATED, order_data(order))
}

/// `order.<status>` for an order that just moved to `status`.
pub fn status_changed(order: &OrderRow, status: Status) -> OutboxMessage {
    let kind = format!("order.{}", status.as_str());
    outbox_event(EXCHANGE, SOURCE, &kind, order_data(order))
}

pub fn payment_requested(order: &OrderRow) -> OutboxMessage {
    let data = PaymentRequested {
        order_id: order.id,
        user_id: order.user_id,
        attempt: order.payment_attempt,
        amount: order.total,
        currency: order.currency.clone(),
        reference: reference(order.id),
    };
    outbox_event(EXCHANGE, SOURCE, PAYMENT_REQUESTED, data)
}

pub fn voucher_issued(voucher: &VoucherIssued) -> OutboxMessage {
    outbox_event(EXCHANGE, SOURCE, VOUCHER_ISSUED, voucher)
}

fn order_data(order: &OrderRow) -> OrderEvent {
    OrderEvent {
        order_id: order.id,
        user_id: order.user_id,
        status: order.status.clone(),
        subtotal: order.subtotal,
        discount: order.discount,
        total: order.total,
        currency: order.currency.clone(),
        voucher_code: order.voucher_code.clone(),
        payment_transaction_id: order.payment_transaction_id,
        refund_transaction_id: order.refund_transaction_id,
    }
}
