//! The shop's calls: the catalogue, a seller's products (edits carry the version they are
//! based on), placing an order, and a seller's sales.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Api, Order, OrderItem, Page, Problem, read};

#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: Uuid,
    pub seller_id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price: i64,
    pub currency: String,
    pub stock: i64,
    pub reserved: i64,
    pub available: i64,
    pub sold: i64,
    /// What an edit names in `If-Match`, so that it never overwrites a newer change.
    pub version: i64,
    pub status: String,
}

/// Filters and paging of `GET /products`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProductFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seller_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// One order of the seller's products, and their payout once it is delivered.
#[derive(Debug, Clone, Deserialize)]
pub struct Sale {
    pub order_id: Uuid,
    pub status: String,
    pub items: Vec<OrderItem>,
    pub subtotal: i64,
    pub payout: Option<i64>,
    pub ordered_at: DateTime<Utc>,
}

impl Api {
    /// The catalogue is public: no token.
    pub async fn products(&self, filter: &ProductFilter) -> Result<Page<Product>, Problem> {
        read(self.http.get(self.url("/products")).query(filter)).await
    }

    pub async fn product(&self, id: Uuid) -> Result<Product, Problem> {
        read(self.http.get(self.url(&format!("/products/{id}")))).await
    }

    pub async fn create_product(
        &self,
        token: &str,
        body: &serde_json::Value,
    ) -> Result<Product, Problem> {
        let request = self.http.post(self.url("/products")).json(body);
        read(request.bearer_auth(token)).await
    }

    /// `PATCH /products/{id}` based on `version`: refused (412) when the product changed
    /// since.
    pub async fn update_product(
        &self,
        token: &str,
        id: Uuid,
        version: i64,
        body: &serde_json::Value,
    ) -> Result<Product, Problem> {
        let request = self.http.patch(self.url(&format!("/products/{id}")));
        let request = request
            .header("if-match", format!("\"{version}\""))
            .json(body);
        read(request.bearer_auth(token)).await
    }

    pub async fn withdraw_product(&self, token: &str, id: Uuid) -> Result<Product, Problem> {
        let request = self.http.delete(self.url(&format!("/products/{id}")));
        read(request.bearer_auth(token)).await
    }

    /// `POST /orders`; `key` makes a re-posted form place one order.
    pub async fn place_order(
        &self,
        token: &str,
        body: &serde_json::Value,
        key: &str,
    ) -> Result<Order, Problem> {
        let request = self.http.post(self.url("/orders"));
        let request = request.header("idempotency-key", key).json(body);
        read(request.bearer_auth(token)).await
    }

    pub async fn sales(&self, token: &str, cursor: Option<&str>) -> Result<Page<Sale>, Problem> {
        self.list(token, "/sales", "20", &[("cursor", cursor)])
            .await
    }
}
