//! `/orders*`, `/vouchers` and `/sales`: orders of catalogue products, the vouchers large orders
//! earn, and a seller's sales.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::OrderStatus;

/// One line of a new order: which product and how many. Price, name, sku and seller come
/// from the catalogue; a client cannot set them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    /// A product's id (a string, so that a bad one is named in the problem's `errors`).
    #[schema(format = Uuid)]
    pub product_id: String,
    /// 1 to 1,000, no more than the product has available.
    #[schema(minimum = 1, maximum = 1_000)]
    pub quantity: i64,
}

/// A new order: 1 to 100 lines of distinct products, costing at most 1,000,000,000 minor
/// units in all.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"items": [{"product_id": "0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21", "quantity": 2}], "voucher_code": null}))]
pub struct NewOrder {
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<OrderLine>,
    /// Only `EUR`, the wallet's currency.
    pub currency: Option<String>,
    /// One of the caller's unredeemed vouchers: takes up to its amount off the total. No
    /// control characters.
    #[schema(min_length = 1, max_length = 64)]
    pub voucher_code: Option<String>,
}

/// An order's line as the catalogue priced it when the order was placed: later price changes
/// do not touch it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Item {
    pub sku: String,
    pub name: String,
    /// Minor units (cents).
    pub unit_price: i64,
    pub quantity: i64,
    /// Null on orders placed before the catalogue existed.
    pub product_id: Option<Uuid>,
    pub seller_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusChange {
    pub status: OrderStatus,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21", "user_id": "0192f0b0-0000-7d2a-9a51-6c7c0b8f4e20", "status": "paid",
    "items": [{"sku": "BOOK-42", "name": "A good book", "unit_price": 2500, "quantity": 2,
        "product_id": "0192f0c0-1111-7d2a-9a51-6c7c0b8f4e20", "seller_id": "0192f0c0-0000-7d2a-9a51-6c7c0b8f4e20"}],
    "subtotal": 5000, "discount": 0, "total": 5000, "currency": "EUR", "voucher_code": null,
    "payment_transaction_id": "0192f0c1-7d00-7d2a-9a51-6c7c0b8f4e22", "refund_transaction_id": null,
    "created_at": "2026-11-21T18:00:00Z", "updated_at": "2026-11-21T18:00:00.2Z",
    "status_history": [{"status": "pending_payment", "at": "2026-11-21T18:00:00Z"}, {"status": "paid", "at": "2026-11-21T18:00:00.2Z"}]
}))]
pub struct Order {
    pub id: Uuid,
    /// The buyer.
    pub user_id: Uuid,
    pub status: OrderStatus,
    pub items: Vec<Item>,
    /// Sum of `unit_price × quantity`, minor units.
    pub subtotal: i64,
    /// What a voucher took off.
    pub discount: i64,
    /// `subtotal − discount`: what the wallet pays.
    pub total: i64,
    pub currency: String,
    pub voucher_code: Option<String>,
    /// The wallet purchase that paid the order.
    pub payment_transaction_id: Option<Uuid>,
    /// The wallet cancellation that refunded it.
    pub refund_transaction_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every status the order has had, oldest first.
    pub status_history: Vec<StatusChange>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<Order>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"code": "K7QX2M9PRT4WZ8HN", "amount": 500, "currency": "EUR", "order_id": "0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21", "issued_at": "2026-11-21T18:00:00Z", "redeemed_at": null, "redeemed_order_id": null}))]
pub struct Voucher {
    pub code: String,
    /// Minor units: 500 is 5.00 EUR.
    pub amount: i64,
    pub currency: String,
    /// The order that earned it.
    pub order_id: Uuid,
    pub issued_at: DateTime<Utc>,
    pub redeemed_at: Option<DateTime<Utc>>,
    /// The order it was spent on.
    pub redeemed_order_id: Option<Uuid>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct VoucherPage {
    pub items: Vec<Voucher>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// One order of the caller's products: what they sold in it and what they are paid.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "order_id": "0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21", "status": "delivered",
    "items": [{"sku": "TICKET-R3", "name": "Concert ticket, row 3", "unit_price": 4500, "quantity": 1,
        "product_id": "0192f0c0-1111-7d2a-9a51-6c7c0b8f4e20", "seller_id": "0192f0c0-0000-7d2a-9a51-6c7c0b8f4e20"}],
    "subtotal": 4500, "payout": 4500, "ordered_at": "2026-11-21T18:00:00Z"
}))]
pub struct Sale {
    pub order_id: Uuid,
    /// The order's status.
    pub status: OrderStatus,
    /// The caller's items of the order.
    pub items: Vec<Item>,
    /// Sum of those items, before any voucher.
    pub subtotal: i64,
    /// The caller's share of what the buyer paid (a voucher's discount shared pro rata),
    /// credited to their wallet once the order is delivered; null before.
    pub payout: Option<i64>,
    pub ordered_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct SalePage {
    pub items: Vec<Sale>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only orders in this status.
    #[param(inline)]
    pub status: Option<OrderStatus>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
