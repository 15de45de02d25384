//! The many-users journey of the memory measure (`bench/memory`, and the end of
//! `bench/run`): `USERS` users sign up, `CONCURRENCY` at a time, and each then makes ten
//! requests through the gateway, the way a new user's first visit goes: sign in, who am I,
//! balance, a deposit, the transaction list, today's statement, an order, the order list,
//! that order, and sign out.
//!
//! Each user is one keep-alive connection (a bare hyper HTTP/1.1 connection, as in
//! `http_load`), so the generator takes little of the 2 cores it shares with the platform.
//! Two of every user's eleven requests hash a password (sign-up, sign-in), which is what
//! the memory measure is about: argon2 takes 19 MiB per hash.

use std::time::Instant;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use serde_json::{Value, json};

use crate::http_load::connect;

/// What `run` did: every user's requests, counted whether they succeeded or not.
pub struct Report {
    pub users: u64,
    pub requests: u64,
    /// Users whose journey stopped at a failed request (the first error is printed).
    pub failed_users: u64,
    pub seconds: f64,
}

/// Runs the journey of `users` users, `concurrency` at a time, against the gateway at
/// `authority` (`host:port`).
pub async fn run(authority: &str, users: u64, concurrency: usize) -> anyhow::Result<Report> {
    // What the users order: one product of a seller's, with a unit for each of them (set up
    // before the clock starts, and not counted).
    let mut seller = User::new(authority);
    seller.sign_up().await?;
    let product = seller
        .call(
            Method::POST,
            "/products",
            Some(&json!({"name": "Benchmark item", "price": 1, "stock": users.max(1)})),
        )
        .await?;
    let product_id = &text(&product["id"])?;
    let started = Instant::now();
    let outcomes: Vec<(u64, anyhow::Result<()>)> = futures_util::stream::iter(0..users)
        .map(|_| async move {
            let mut user = User::new(authority);
            let outcome = user.journey(product_id).await;
            (user.requests, outcome)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut report = Report {
        users,
        requests: 0,
        failed_users: 0,
        seconds: started.elapsed().as_secs_f64(),
    };
    for (requests, outcome) in outcomes {
        report.requests += requests;
        if let Err(error) = outcome {
            if report.failed_users == 0 {
                eprintln!("journey: a user failed: {error:#}");
            }
            report.failed_users += 1;
        }
    }
    Ok(report)
}

/// One user, on its own connection.
struct User<'a> {
    authority: &'a str,
    sender: Option<SendRequest<Full<Bytes>>>,
    token: String,
    /// Requests sent, the sign-up included.
    requests: u64,
}

impl<'a> User<'a> {
    fn new(authority: &'a str) -> Self {
        Self {
            authority,
            sender: None,
            token: String::new(),
            requests: 0,
        }
    }

    /// Signs up a fresh user; returns the credentials.
    async fn sign_up(&mut self) -> anyhow::Result<Value> {
        let credentials = json!({
            "email": format!("memory-{}@example.org", uuid::Uuid::new_v4()),
            "password": "correct horse battery",
        });
        let signed_up = self
            .call(Method::POST, "/auth/sign-up", Some(&credentials))
            .await?;
        self.token = text(&signed_up["access_token"])?;
        Ok(credentials)
    }

    async fn journey(&mut self, product_id: &str) -> anyhow::Result<()> {
        let credentials = self.sign_up().await?;
        // 1. Sign in again, as a returning user does, and use that token from now on.
        let signed_in = self
            .call(Method::POST, "/auth/sign-in", Some(&credentials))
            .await?;
        self.token = text(&signed_in["access_token"])?;
        // 2–6. Who am I, balance, a deposit (amounts are integer minor units), the
        // transactions, today's statement.
        self.call(Method::GET, "/auth/me", None).await?;
        self.call(Method::GET, "/wallet/balance", None).await?;
        let deposit = json!({"type": "deposit", "amount": 1000});
        self.call(Method::POST, "/wallet/transactions", Some(&deposit))
            .await?;
        self.call(Method::GET, "/wallet/transactions", None).await?;
        self.call(Method::GET, "/statements", None).await?;
        // 7–9. An order of one 1-cent product (paid from the wallet in the background), the
        // orders, that order.
        let order = json!({"items": [{"product_id": product_id, "quantity": 1}]});
        let placed = self.call(Method::POST, "/orders", Some(&order)).await?;
        let id = text(&placed["id"])?;
        self.call(Method::GET, "/orders", None).await?;
        self.call(Method::GET, &format!("/orders/{id}"), None)
            .await?;
        // 10. Sign out: the gateway remembers the revoked token until it expires.
        self.call(Method::POST, "/auth/sign-out", None).await?;
        Ok(())
    }

    /// Sends one request (with the user's token once it has one) and returns its JSON
    /// answer (`null` for an empty body); an answer other than 2xx is an error.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        self.requests += 1;
        let connection = match &mut self.sender {
            Some(connection) => connection,
            None => self.sender.insert(connect(self.authority).await?),
        };
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, self.authority);
        if !self.token.is_empty() {
            request = request.header(AUTHORIZATION, format!("Bearer {}", self.token));
        }
        let request = match body {
            Some(body) => request
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?,
            None => request.body(Full::default())?,
        };
        let answer = async {
            connection.ready().await?;
            let response = connection.send_request(request).await?;
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, bytes))
        }
        .await;
        let (status, bytes) = match answer {
            Ok(answer) => answer,
            Err(error) => {
                // A broken connection is not reused.
                self.sender = None;
                return Err(error.context(format!("{method} {path}")));
            }
        };
        if !status.is_success() {
            bail!(
                "{method} {path}: {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).with_context(|| format!("{method} {path}: not JSON"))
    }
}

fn text(value: &Value) -> anyhow::Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("expected a string, got {value}"))
}
