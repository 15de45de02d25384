//! Orders and their rules, as plain data and pure functions: the status machine, and a new
//! order's items and totals.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::OrderError;

pub const CURRENCY: &str = "EUR";
/// The wallet's largest transaction, so the most an order can cost.
pub const MAX_TOTAL: i64 = 1_000_000_000;
pub const MAX_ITEMS: usize = 100;
pub const MAX_QUANTITY: i64 = 1_000;
pub const MAX_SKU_CHARS: usize = 64;
pub const MAX_NAME_CHARS: usize = 200;
/// Texts are one line, and PostgreSQL cannot store a NUL character in one.
const NO_CONTROL_CHARACTERS: &str =
    "must not contain control characters (such as NUL or a line break)";

pub use proto::OrderStatus as Status;

/// Every way an order's status moves. Nothing else changes a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The wallet applied the purchase.
    Pay,
    /// The wallet refused the purchase (insufficient funds).
    FailPayment,
    /// `POST /orders/{id}/pay`: a new payment attempt for a failed one.
    RetryPayment,
    Cancel,
    /// The payment timeout passed.
    Expire,
    Ship,
    Deliver,
}

impl Transition {
    /// The statuses this transition leaves from.
    pub fn from(self) -> &'static [Status] {
        use Status::*;
        match self {
            Transition::Pay => &[PendingPayment, PaymentFailed],
            Transition::FailPayment => &[PendingPayment],
            Transition::RetryPayment => &[PaymentFailed],
            Transition::Cancel => &[PendingPayment, PaymentFailed, Paid],
            Transition::Expire => &[PendingPayment, PaymentFailed],
            Transition::Ship => &[Paid],
            Transition::Deliver => &[Sent],
        }
    }

    pub fn to(self) -> Status {
        match self {
            Transition::Pay => Status::Paid,
            Transition::FailPayment => Status::PaymentFailed,
            Transition::RetryPayment => Status::PendingPayment,
            Transition::Cancel => Status::Cancelled,
            Transition::Expire => Status::Expired,
            Transition::Ship => Status::Sent,
            Transition::Deliver => Status::Delivered,
        }
    }

    /// What a caller asked for, in an error message ("cannot be paid").
    pub fn verb(self) -> &'static str {
        match self {
            Transition::Pay | Transition::RetryPayment => "paid",
            Transition::FailPayment => "marked as failed",
            Transition::Cancel => "cancelled",
            Transition::Expire => "expired",
            Transition::Ship => "shipped",
            Transition::Deliver => "delivered",
        }
    }

    pub fn allowed_from(self, status: Status) -> bool {
        self.from().contains(&status)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub sku: String,
    pub name: String,
    pub unit_price: i64,
    pub quantity: i64,
}

/// A validated new order (before any voucher).
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub user_id: Uuid,
    pub items: Vec<Item>,
    pub subtotal: i64,
    pub voucher_code: Option<String>,
}

impl NewOrder {
    /// Checks the items, the currency and the voucher code's shape; every violation is named.
    pub fn parse(
        user_id: Uuid,
        items: Vec<Item>,
        currency: Option<&str>,
        voucher_code: Option<String>,
    ) -> Result<Self, OrderError> {
        let mut violations: Vec<(&'static str, String)> = Vec::new();
        if items.is_empty() || items.len() > MAX_ITEMS {
            violations.push(("items", format!("must hold 1 to {MAX_ITEMS} items")));
        }
        let mut subtotal: Option<i64> = Some(0);
        for (index, item) in items.iter().enumerate() {
            let position = index + 1;
            let sku = item.sku.trim();
            if sku.is_empty() || sku.chars().count() > MAX_SKU_CHARS {
                violations.push((
                    "items.sku",
                    format!("item {position}: must be 1 to {MAX_SKU_CHARS} characters"),
                ));
            }
            if sku.chars().any(char::is_control) {
                violations.push((
                    "items.sku",
                    format!("item {position}: {NO_CONTROL_CHARACTERS}"),
                ));
            }
            let name = item.name.trim();
            if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
                violations.push((
                    "items.name",
                    format!("item {position}: must be 1 to {MAX_NAME_CHARS} characters"),
                ));
            }
            if name.chars().any(char::is_control) {
                violations.push((
                    "items.name",
                    format!("item {position}: {NO_CONTROL_CHARACTERS}"),
                ));
            }
            if !(1..=MAX_TOTAL).contains(&item.unit_price) {
                violations.push((
                    "items.unit_price",
                    format!("item {position}: must be 1 to {MAX_TOTAL} minor units (cents)"),
                ));
            }
            if !(1..=MAX_QUANTITY).contains(&item.quantity) {
                violations.push((
                    "items.quantity",
                    format!("item {position}: must be 1 to {MAX_QUANTITY}"),
                ));
            }
            subtotal = subtotal
                .and_then(|sum| sum.checked_add(item.unit_price.checked_mul(item.quantity)?));
        }
        if subtotal.is_none_or(|sum| sum > MAX_TOTAL) {
            violations.push((
                "items",
                format!("the order must cost at most {MAX_TOTAL} minor units"),
            ));
        }
        if let Some(currency) = currency
            && currency != CURRENCY
        {
            violations.push((
                "currency",
                format!("must be {CURRENCY}, the wallet's currency (got {currency:?})"),
            ));
        }
        let voucher_code = voucher_code.map(|code| code.trim().to_uppercase());
        if let Some(code) = &voucher_code
            && (code.is_empty() || code.len() > 64)
        {
            violations.push(("voucher_code", "must be 1 to 64 characters".into()));
        }
        if voucher_code
            .as_ref()
            .is_some_and(|code| code.chars().any(char::is_control))
        {
            violations.push(("voucher_code", NO_CONTROL_CHARACTERS.into()));
        }
        if !violations.is_empty() {
            return Err(OrderError::Invalid(violations));
        }
        Ok(Self {
            user_id,
            items: items
                .into_iter()
                .map(|item| Item {
                    sku: item.sku.trim().to_owned(),
                    name: item.name.trim().to_owned(),
                    ..item
                })
                .collect(),
            subtotal: subtotal.unwrap_or_default(),
            voucher_code,
        })
    }
}

/// What a voucher takes off: up to its amount, never more than the subtotal.
pub fn discount(subtotal: i64, voucher_amount: i64) -> i64 {
    voucher_amount.min(subtotal)
}

/// An order as stored (without its items and history, which are read beside it).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: Status,
    pub currency: String,
    pub subtotal: i64,
    pub discount: i64,
    pub total: i64,
    pub voucher_code: Option<String>,
    pub payment_attempt: i32,
    pub payment_transaction_id: Option<Uuid>,
    pub refund_transaction_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StatusChange {
    pub status: Status,
    pub at: DateTime<Utc>,
}

/// An order with its items and its status history (oldest first).
#[derive(Debug, Clone)]
pub struct Order {
    pub row: OrderRow,
    pub items: Vec<Item>,
    pub history: Vec<StatusChange>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(unit_price: i64, quantity: i64) -> Item {
        Item {
            sku: "SKU-1".into(),
            name: "Coffee".into(),
            unit_price,
            quantity,
        }
    }

    fn fields(error: OrderError) -> Vec<&'static str> {
        match error {
            OrderError::Invalid(violations) => violations.iter().map(|(field, _)| *field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn the_subtotal_is_the_sum_of_price_times_quantity() {
        let order = NewOrder::parse(
            Uuid::nil(),
            vec![item(250, 3), item(1000, 1)],
            Some("EUR"),
            Some(" abc ".into()),
        )
        .unwrap();
        assert_eq!(order.subtotal, 1750);
        assert_eq!(order.voucher_code.as_deref(), Some("ABC"));
    }

    #[test]
    fn every_invalid_field_is_named() {
        let mut bad = item(0, 0);
        bad.sku = " ".into();
        bad.name = "x".repeat(201);
        let error = NewOrder::parse(Uuid::nil(), vec![bad], Some("USD"), None).unwrap_err();
        assert_eq!(
            fields(error),
            [
                "items.sku",
                "items.name",
                "items.unit_price",
                "items.quantity",
                "currency"
            ]
        );
        let error = NewOrder::parse(Uuid::nil(), vec![], None, None).unwrap_err();
        assert_eq!(fields(error), ["items"]);
        let mut control = item(100, 1);
        control.sku = "SKU\u{0}1".into();
        control.name = "Coffee\r\nBcc: x".into();
        let error =
            NewOrder::parse(Uuid::nil(), vec![control], None, Some("A\u{0}".into())).unwrap_err();
        assert_eq!(fields(error), ["items.sku", "items.name", "voucher_code"]);
    }

    #[test]
    fn an_order_costing_more_than_the_wallet_can_pay_is_refused_without_overflow() {
        let error =
            NewOrder::parse(Uuid::nil(), vec![item(MAX_TOTAL, 1000)], None, None).unwrap_err();
        assert_eq!(fields(error), ["items"]);
        let many = vec![item(MAX_TOTAL, 1); 2];
        assert_eq!(
            fields(NewOrder::parse(Uuid::nil(), many, None, None).unwrap_err()),
            ["items"]
        );
    }

    #[test]
    fn a_voucher_takes_off_at_most_the_subtotal() {
        assert_eq!(discount(10_001, 500), 500);
        assert_eq!(discount(300, 500), 300);
    }

    #[test]
    fn only_the_documented_transitions_are_allowed() {
        use Status::*;
        let allowed: Vec<(Status, Status)> = Status::ALL
            .iter()
            .flat_map(|&from| {
                [
                    Transition::Pay,
                    Transition::FailPayment,
                    Transition::RetryPayment,
                    Transition::Cancel,
                    Transition::Expire,
                    Transition::Ship,
                    Transition::Deliver,
                ]
                .into_iter()
                .filter(move |transition| transition.allowed_from(from))
                .map(move |transition| (from, transition.to()))
            })
            .collect();
        assert_eq!(
            allowed,
            [
                (PendingPayment, Paid),
                (PendingPayment, PaymentFailed),
                (PendingPayment, Cancelled),
                (PendingPayment, Expired),
                (Paid, Cancelled),
                (Paid, Sent),
                (PaymentFailed, Paid),
                (PaymentFailed, PendingPayment),
                (PaymentFailed, Cancelled),
                (PaymentFailed, Expired),
                (Sent, Delivered),
            ]
        );
    }

    #[test]
    fn statuses_read_back_what_they_write() {
        for &status in Status::ALL {
            assert_eq!(status.as_str().parse(), Ok(status));
        }
        assert!("shipped".parse::<Status>().is_err());
    }
}
