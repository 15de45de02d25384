//! The events order-service publishes (CloudEvents on `order.events`), always through the
//! outbox. Their payloads are the contract's ([`proto::messaging::order`]).

use platform::cloud_event::outbox_event;
use platform::outbox::OutboxMessage;
use proto::messaging::order::{
    EVENTS, ORDER_CREATED, ORDER_DELIVERED, OrderChanged, PAYMENT_REQUESTED, PaymentRequested,
    Payout, SOURCE, VOUCHER_ISSUED, VoucherIssued, reference, status_changed as key_of,
};

use crate::order::{OrderRow, Status};

/// `order.created` for a new order.
pub fn order_created(order: &OrderRow) -> OutboxMessage {
    outbox_event(EVENTS, SOURCE, ORDER_CREATED, order_data(order))
}

/// `order.<status>` for an order that just moved to `status`.
pub fn status_changed(order: &OrderRow, status: Status) -> OutboxMessage {
    outbox_event(EVENTS, SOURCE, key_of(status), order_data(order))
}

/// `order.delivered`, with each seller's payout.
pub fn delivered(order: &OrderRow, payouts: &[Payout]) -> OutboxMessage {
    let mut data = order_data(order);
    data.payouts = payouts.to_vec();
    outbox_event(EVENTS, SOURCE, ORDER_DELIVERED, data)
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
    outbox_event(EVENTS, SOURCE, PAYMENT_REQUESTED, data)
}

pub fn voucher_issued(voucher: &VoucherIssued) -> OutboxMessage {
    outbox_event(EVENTS, SOURCE, VOUCHER_ISSUED, voucher)
}

fn order_data(order: &OrderRow) -> OrderChanged {
    OrderChanged {
        order_id: order.id,
        user_id: order.user_id,
        status: order.status,
        subtotal: order.subtotal,
        discount: order.discount,
        total: order.total,
        currency: order.currency.clone(),
        voucher_code: order.voucher_code.clone(),
        payment_transaction_id: order.payment_transaction_id,
        refund_transaction_id: order.refund_transaction_id,
        payouts: Vec::new(),
    }
}
