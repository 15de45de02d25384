//! Orders and their rules, as plain data and pure functions: the status machine, and a new
//! order's items and totals.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::OrderError;
use crate::product::{Line, parse_lines};

pub const CURRENCY: &str = "EUR";
/// The wallet's largest transaction, so the most an order can cost.
pub const MAX_TOTAL: i64 = 1_000_000_000;
pub const MAX_ITEMS: usize = 100;
pub const MAX_QUANTITY: i64 = 1_000;
pub const MAX_SKU_CHARS: usize = 64;
pub const MAX_NAME_CHARS: usize = 200;
/// Texts are one line, and PostgreSQL cannot store a NUL character in one.
pub const NO_CONTROL_CHARACTERS: &str =
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

/// An order's line as the catalogue priced it when the order was placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub sku: String,
    pub name: String,
    pub unit_price: i64,
    pub quantity: i64,
    /// `None` on orders placed before the catalogue existed.
    pub product_id: Option<Uuid>,
    pub seller_id: Option<Uuid>,
}

/// A validated new order: which products, how many, and the voucher; the catalogue prices
/// it inside the transaction that reserves the stock.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub user_id: Uuid,
    pub lines: Vec<Line>,
    pub voucher_code: Option<String>,
}

impl NewOrder {
    /// Checks the lines, the currency and the voucher code's shape; every violation is named.
    pub fn parse(
        user_id: Uuid,
        lines: Vec<(String, i64)>,
        currency: Option<&str>,
        voucher_code: Option<String>,
    ) -> Result<Self, OrderError> {
        let mut violations: Vec<(&'static str, String)> = Vec::new();
        let lines = match parse_lines(lines) {
            Ok(lines) => lines,
            Err(OrderError::Invalid(more)) => {
                violations.extend(more);
                Vec::new()
            }
            Err(other) => return Err(other),
        };
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
            lines,
            voucher_code,
        })
    }

    /// What identifies the request behind an `Idempotency-Key`: the same key with another
    /// fingerprint is another request.
    pub fn fingerprint(&self) -> String {
        let lines: Vec<String> = self
            .lines
            .iter()
            .map(|line| format!("{}x{}", line.product_id, line.quantity))
            .collect();
        format!(
            "{}|{}",
            lines.join(","),
            self.voucher_code.as_deref().unwrap_or_default()
        )
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

    fn fields(error: OrderError) -> Vec<&'static str> {
        match error {
            OrderError::Invalid(violations) => violations.iter().map(|(field, _)| *field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn the_voucher_code_is_trimmed_and_upper_cased() {
        let order = NewOrder::parse(
            Uuid::nil(),
            vec![(Uuid::now_v7().to_string(), 3)],
            Some("EUR"),
            Some(" abc ".into()),
        )
        .unwrap();
        assert_eq!(order.lines[0].quantity, 3);
        assert_eq!(order.voucher_code.as_deref(), Some("ABC"));
    }

    #[test]
    fn every_invalid_field_is_named() {
        let error = NewOrder::parse(
            Uuid::nil(),
            vec![("x".into(), 0)],
            Some("USD"),
            Some("A\u{0}".into()),
        )
        .unwrap_err();
        assert_eq!(
            fields(error),
            [
                "items.product_id",
                "items.quantity",
                "currency",
                "voucher_code"
            ]
        );
        let error = NewOrder::parse(Uuid::nil(), vec![], None, None).unwrap_err();
        assert_eq!(fields(error), ["items"]);
    }

    #[test]
    fn the_fingerprint_tells_requests_apart() {
        let id = Uuid::now_v7().to_string();
        let order = |quantity, code: Option<&str>| {
            NewOrder::parse(
                Uuid::nil(),
                vec![(id.clone(), quantity)],
                None,
                code.map(Into::into),
            )
            .unwrap()
            .fingerprint()
        };
        assert_eq!(order(1, None), order(1, None));
        assert_ne!(order(1, None), order(2, None));
        assert_ne!(order(1, None), order(1, Some("ABC")));
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
