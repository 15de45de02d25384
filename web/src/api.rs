//! The gateway's public HTTP API, as this app uses it: one method per call, typed answers,
//! and every refusal as a [`Problem`] to show next to the form that caused it.

use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod admin;
mod shop;

/// What the API said no with (RFC 9457), or why it could not be asked.
#[derive(Debug, Clone, Deserialize)]
pub struct Problem {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub detail: String,
    /// Field → messages, for validation failures.
    #[serde(default)]
    pub errors: std::collections::BTreeMap<String, Vec<String>>,
}

impl Problem {
    fn unavailable() -> Self {
        Self {
            kind: "/problems/unavailable".into(),
            status: 503,
            detail: "the service is not reachable right now; try again in a moment".into(),
            errors: Default::default(),
        }
    }

    /// A form's value this app could not read (before asking the API anything).
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self {
            kind: "/problems/validation-failed".into(),
            status: 422,
            detail: detail.into(),
            errors: Default::default(),
        }
    }

    pub fn not_found() -> Self {
        Self {
            kind: "/problems/not-found".into(),
            status: 404,
            detail: "no such page".into(),
            errors: Default::default(),
        }
    }

    /// The access token was refused: the person has to sign in again.
    pub fn is_unauthorized(&self) -> bool {
        self.status == 401
    }

    /// One readable sentence, with the field errors when there are any.
    pub fn message(&self) -> String {
        let mut message = capitalized(&self.detail);
        for (field, reasons) in &self.errors {
            for reason in reasons {
                message.push_str(&format!(" {}: {reason}.", field.replace('_', " ")));
            }
        }
        message
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => {
            let mut out: String = first.to_uppercase().collect();
            out.push_str(chars.as_str());
            if !out.ends_with('.') {
                out.push('.');
            }
            out
        }
        None => "Something went wrong.".into(),
    }
}

/// The API's bodies, as the gateway defines them (`proto::http`), under the names the pages
/// use.
pub use proto::http::admin::{OrderParams as AdminOrderFilter, UserPage, UserParams as UserFilter};
pub use proto::http::auth::{AccessToken, Credentials, RefreshRequest, User};
pub use proto::http::orders::{
    Item as OrderItem, ListParams as OrderFilter, NewOrder, Order, OrderLine, OrderPage,
    PageParams, Sale, SalePage, Voucher, VoucherPage,
};
pub use proto::http::products::{
    ListParams as ProductFilter, NewProduct, Product, ProductChange, ProductPage,
};
pub use proto::http::statements::{Job, JobAccepted, PeriodParams, Statement};
pub use proto::http::wallet::{
    Balance, BalanceHistory, HistoryParams, ListParams as TransactionFilter, NewTransaction,
    Transaction, TransactionPage,
};

/// `GET /statements` answers at once, or with a job for a long period.
pub enum StatementAnswer {
    Now(Statement),
    Job(JobAccepted),
}

/// The gateway, reached over HTTP like any client reaches it.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(base: String, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(3))
            .build()?;
        Ok(Self { http, base })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `forwarded_for`: the browser's address chain (see [`forwarded_for`]), so that the
    /// gateway's per-address limits count each person rather than this app. The sign-up's
    /// answer also names the new user; the tokens are all this app keeps of it.
    pub async fn sign_up(
        &self,
        credentials: &Credentials,
        forwarded_for: &str,
    ) -> Result<AccessToken, Problem> {
        let request = self.http.post(self.url("/auth/sign-up"));
        read(
            request
                .header("x-forwarded-for", forwarded_for)
                .json(credentials),
        )
        .await
    }

    pub async fn sign_in(
        &self,
        credentials: &Credentials,
        forwarded_for: &str,
    ) -> Result<AccessToken, Problem> {
        let request = self.http.post(self.url("/auth/sign-in"));
        read(
            request
                .header("x-forwarded-for", forwarded_for)
                .json(credentials),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<AccessToken, Problem> {
        let body = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        read(self.http.post(self.url("/auth/refresh")).json(&body)).await
    }

    pub async fn sign_out(&self, token: &str) -> Result<(), Problem> {
        let request = self.http.post(self.url("/auth/sign-out"));
        send(request.bearer_auth(token)).await.map(drop)
    }

    pub async fn me(&self, token: &str) -> Result<User, Problem> {
        self.get(token, "/auth/me", &()).await
    }

    pub async fn balance(&self, token: &str) -> Result<Balance, Problem> {
        self.get(token, "/wallet/balance", &()).await
    }

    pub async fn balance_history(&self, token: &str, days: u32) -> Result<BalanceHistory, Problem> {
        let query = HistoryParams { days: Some(days) };
        self.get(token, "/wallet/balance/history", &query).await
    }

    pub async fn transactions(
        &self,
        token: &str,
        filter: &TransactionFilter,
    ) -> Result<TransactionPage, Problem> {
        self.get(token, "/wallet/transactions", filter).await
    }

    /// `POST /wallet/transactions`; `key` makes a re-posted form harmless.
    pub async fn transact(
        &self,
        token: &str,
        body: &NewTransaction,
        key: &str,
    ) -> Result<Transaction, Problem> {
        let request = self.http.post(self.url("/wallet/transactions"));
        let request = request.header("idempotency-key", key).json(body);
        read(request.bearer_auth(token)).await
    }

    pub async fn statement(
        &self,
        token: &str,
        period: &PeriodParams,
    ) -> Result<StatementAnswer, Problem> {
        let request = self.http.get(self.url("/statements")).query(period);
        let response = send(request.bearer_auth(token)).await?;
        if response.status() == StatusCode::ACCEPTED {
            return Ok(StatementAnswer::Job(body(response).await?));
        }
        Ok(StatementAnswer::Now(body(response).await?))
    }

    pub async fn job(&self, token: &str, id: Uuid) -> Result<Job, Problem> {
        self.get(token, &format!("/statements/jobs/{id}"), &())
            .await
    }

    /// The CSV of a finished job, as the gateway streams it.
    pub async fn download(&self, token: &str, id: Uuid) -> Result<reqwest::Response, Problem> {
        let path = format!("/statements/jobs/{id}/download");
        send(self.http.get(self.url(&path)).bearer_auth(token)).await
    }

    pub async fn orders(&self, token: &str, filter: &OrderFilter) -> Result<OrderPage, Problem> {
        self.get(token, "/orders", filter).await
    }

    pub async fn order(&self, token: &str, id: Uuid) -> Result<Order, Problem> {
        self.get(token, &format!("/orders/{id}"), &()).await
    }

    /// `POST /orders/{id}/{action}` (`pay`, `cancel`).
    pub async fn order_action(&self, token: &str, id: Uuid, action: &str) -> Result<(), Problem> {
        let path = format!("/orders/{id}/{action}");
        send(self.http.post(self.url(&path)).bearer_auth(token))
            .await
            .map(drop)
    }

    pub async fn vouchers(&self, token: &str, page: &PageParams) -> Result<VoucherPage, Problem> {
        self.get(token, "/vouchers", page).await
    }

    /// `GET path` with the query `query` (`&()` for none), as the token's holder.
    async fn get<T: DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
        query: &impl Serialize,
    ) -> Result<T, Problem> {
        let request = self.http.get(self.url(path)).query(query);
        read(request.bearer_auth(token)).await
    }
}

/// The `X-Forwarded-For` this app sends: the chain it was given, with the address of the
/// peer that connected to it appended, as any proxy does. The gateway believes only the
/// hops its `TRUSTED_PROXIES` vouch for, reading from the right, so nothing a browser
/// writes here can pick its own address unless the operator trusts it.
pub fn forwarded_for(incoming: &axum::http::HeaderMap, peer: std::net::IpAddr) -> String {
    let mut hops: Vec<String> = incoming
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .map(str::to_owned)
        .collect();
    hops.push(peer.to_canonical().to_string());
    hops.join(", ")
}

/// Sends, and turns anything but a 2xx into a [`Problem`].
async fn send(request: RequestBuilder) -> Result<reqwest::Response, Problem> {
    let response = request.send().await.map_err(|error| {
        tracing::warn!(error = %error.without_url(), "the API did not answer");
        Problem::unavailable()
    })?;
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let mut problem = response
        .json::<Problem>()
        .await
        .unwrap_or_else(|_| Problem::unavailable());
    problem.status = status;
    Err(problem)
}

async fn read<T: DeserializeOwned>(request: RequestBuilder) -> Result<T, Problem> {
    body(send(request).await?).await
}

async fn body<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, Problem> {
    response.json().await.map_err(|error| {
        tracing::error!(error = %error.without_url(), "the API answered something unexpected");
        Problem::unavailable()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_is_appended_to_the_forwarded_chain() {
        let mut headers = axum::http::HeaderMap::new();
        let peer = std::net::IpAddr::from([10, 0, 0, 7]);
        assert_eq!(forwarded_for(&headers, peer), "10.0.0.7");
        headers.append(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.1".parse().unwrap(),
        );
        headers.append("x-forwarded-for", "192.0.2.4".parse().unwrap());
        assert_eq!(
            forwarded_for(&headers, peer),
            "203.0.113.9, 198.51.100.1, 192.0.2.4, 10.0.0.7"
        );
    }

    #[test]
    fn a_problem_reads_as_a_sentence_with_its_field_errors() {
        let problem: Problem = serde_json::from_value(serde_json::json!({
            "type": "/problems/validation-failed", "status": 422,
            "detail": "the request is invalid",
            "errors": {"password": ["must be at least 8 characters"]}
        }))
        .unwrap_or_else(|_| Problem::unavailable());
        assert_eq!(
            problem.message(),
            "The request is invalid. password: must be at least 8 characters."
        );
    }
}
