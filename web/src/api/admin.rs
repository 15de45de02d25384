//! The admin views' calls. The API answers 403 to anyone but an admin; the pages show it.

use super::{AdminOrderFilter, Api, OrderPage, Problem, UserFilter, UserPage};

impl Api {
    pub async fn admin_orders(
        &self,
        token: &str,
        filter: &AdminOrderFilter,
    ) -> Result<OrderPage, Problem> {
        self.get(token, "/admin/orders", filter).await
    }

    pub async fn admin_users(&self, token: &str, filter: &UserFilter) -> Result<UserPage, Problem> {
        self.get(token, "/admin/users", filter).await
    }
}
