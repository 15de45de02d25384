//! The admin views' calls. The API answers 403 to anyone but an admin; the pages show it.

use super::{Api, Order, Page, Problem, User};

impl Api {
    pub async fn admin_orders(
        &self,
        token: &str,
        status: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Page<Order>, Problem> {
        let filters = [("status", status), ("cursor", cursor)];
        self.list(token, "/admin/orders", "20", &filters).await
    }

    pub async fn admin_users(
        &self,
        token: &str,
        q: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Page<User>, Problem> {
        let filters = [("q", q), ("cursor", cursor)];
        self.list(token, "/admin/users", "50", &filters).await
    }
}
