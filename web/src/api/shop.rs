//! The shop's calls: the catalogue, a seller's products (edits carry the version they are
//! based on), placing an order, and a seller's sales.

use uuid::Uuid;

use super::{
    Api, NewOrder, NewProduct, Order, PageParams, Problem, Product, ProductChange, ProductFilter,
    ProductPage, SalePage, read,
};

impl Api {
    /// The catalogue is public: no token.
    pub async fn products(&self, filter: &ProductFilter) -> Result<ProductPage, Problem> {
        read(self.http.get(self.url("/products")).query(filter)).await
    }

    pub async fn product(&self, id: Uuid) -> Result<Product, Problem> {
        read(self.http.get(self.url(&format!("/products/{id}")))).await
    }

    pub async fn create_product(&self, token: &str, body: &NewProduct) -> Result<Product, Problem> {
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
        body: &ProductChange,
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
        body: &NewOrder,
        key: &str,
    ) -> Result<Order, Problem> {
        let request = self.http.post(self.url("/orders"));
        let request = request.header("idempotency-key", key).json(body);
        read(request.bearer_auth(token)).await
    }

    pub async fn sales(&self, token: &str, page: &PageParams) -> Result<SalePage, Problem> {
        self.get(token, "/sales", page).await
    }
}
