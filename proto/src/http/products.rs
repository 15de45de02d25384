//! `/products*`: the catalogue.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::ProductStatus;

/// A product to put up for sale; the caller is its seller.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Concert ticket, row 3", "description": "Seat 12", "price": 4500, "currency": "EUR", "stock": 1, "sku": "TICKET-R3-12"}))]
pub struct NewProduct {
    /// 1 to 200 characters, no control characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// At most 2,000 characters; line breaks and tabs allowed, no other control characters.
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// Minor units (cents), 1 to 1,000,000,000.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub price: i64,
    /// Only `EUR`, the wallet's currency.
    pub currency: Option<String>,
    /// Units for sale, 0 to 1,000,000.
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub stock: i64,
    /// 1 to 64 characters; the server makes one up when absent.
    #[schema(min_length = 1, max_length = 64)]
    pub sku: Option<String>,
}

/// The seller's change: any of these fields, at least one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"price": 5000}))]
pub struct ProductChange {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub price: Option<i64>,
    /// Never below `reserved` (409).
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub stock: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21", "seller_id": "0192f0c0-0000-7d2a-9a51-6c7c0b8f4e20",
    "sku": "TICKET-R3-12", "name": "Concert ticket, row 3", "description": "Seat 12", "price": 4500,
    "currency": "EUR", "stock": 1, "reserved": 0, "available": 1, "sold": 0, "version": 1,
    "status": "active", "created_at": "2026-11-21T18:00:00Z", "updated_at": "2026-11-21T18:00:00Z"
}))]
pub struct Product {
    pub id: Uuid,
    pub seller_id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    /// Minor units (cents).
    pub price: i64,
    pub currency: String,
    /// Units left to sell.
    pub stock: i64,
    /// The part of `stock` held by orders awaiting payment.
    pub reserved: i64,
    /// `stock − reserved`: what new orders can take.
    pub available: i64,
    /// Units paid orders took.
    pub sold: i64,
    /// Counts the seller's edits; the `ETag` is `"<version>"`. Orders do not change it.
    pub version: i64,
    pub status: ProductStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ProductPage {
    pub items: Vec<Product>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Products whose name contains this, any case.
    pub q: Option<String>,
    /// One seller's products.
    pub seller_id: Option<Uuid>,
    /// `active` (the default) or `withdrawn`.
    #[param(inline)]
    pub status: Option<ProductStatus>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
