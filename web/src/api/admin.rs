//! The admin views' calls. The API answers 403 to anyone but an admin; the pages show it.

use super::{Api, Order, Page, Problem, User, read};

impl Api {
    pub async fn admin_orders(
        &self,
        token: &str,
        status: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Page<Order>, Problem> {
        let mut query = vec![("limit", "20")];
        query.extend(status.map(|status| ("status", status)));
        query.extend(cursor.map(|cursor| ("cursor", cursor)));
        let request = self.http.get(self.url("/admin/orders")).query(&query);
        read(request.bearer_auth(token)).await
    }

    pub async fn admin_users(
        &self,
        token: &str,
        q: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Page<User>, Problem> {
        let mut query = vec![("limit", "50")];
        query.extend(q.map(|q| ("q", q)));
        query.extend(cursor.map(|cursor| ("cursor", cursor)));
        let request = self.http.get(self.url("/admin/users")).query(&query);
        read(request.bearer_auth(token)).await
    }
}
