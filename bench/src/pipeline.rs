//! End-to-end figures through the broker: how long a deposit takes to reach the statement,
//! and how fast orders are paid.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::latency::percentile_ms;

/// Deposits at `rate` per second for `seconds`, spread over the users of `tokens`; for each, the time from its HTTP response to
/// its statement line (found by polling the statement database every 2 ms).
pub async fn statement_lag(
    url: &str,
    tokens: &[&str],
    statement_database: &str,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<(usize, f64, f64)> {
    let client = reqwest::Client::new();
    let pool = sqlx::PgPool::connect(statement_database).await?;
    let (answered, mut answers) = mpsc::unbounded_channel::<(Uuid, Instant)>();
    let total = rate * seconds;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(
        1.0 / f64::from(u32::try_from(rate)?),
    ));
    let sender = {
        let url = format!("{url}/wallet/transactions");
        let tokens: Vec<String> = tokens.iter().map(|token| (*token).to_owned()).collect();
        tokio::spawn(async move {
            for n in 0..total {
                ticker.tick().await;
                let client = client.clone();
                let url = url.clone();
                let token = tokens[usize::try_from(n).unwrap_or_default() % tokens.len()].clone();
                let answered = answered.clone();
                tokio::spawn(async move {
                    let response = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&serde_json::json!({"type": "deposit", "amount": 1}))
                        .send()
                        .await;
                    let at = Instant::now();
                    if let Ok(response) = response
                        && let Ok(body) = response.json::<Value>().await
                        && let Some(id) = body["id"].as_str().and_then(|id| id.parse().ok())
                    {
                        let _ = answered.send((id, at));
                    }
                });
            }
        })
    };
    let mut waiting: HashMap<Uuid, Instant> = HashMap::new();
    let mut lags = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(seconds + 30);
    while (lags.len() < usize::try_from(total)? || !waiting.is_empty()) && Instant::now() < deadline
    {
        while let Ok((id, at)) = answers.try_recv() {
            waiting.insert(id, at);
        }
        if sender.is_finished() && waiting.is_empty() && answers.is_empty() {
            break;
        }
        if !waiting.is_empty() {
            let ids: Vec<Uuid> = waiting.keys().copied().collect();
            let found: Vec<Uuid> = sqlx::query_scalar(
                "select transaction_id from statement_lines where transaction_id = any($1)",
            )
            .bind(&ids)
            .fetch_all(&pool)
            .await?;
            let now = Instant::now();
            for id in found {
                if let Some(at) = waiting.remove(&id) {
                    lags.push(now.saturating_duration_since(at));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    pool.close().await;
    let count = lags.len();
    Ok((
        count,
        percentile_ms(&mut lags, 500),
        percentile_ms(&mut lags, 990),
    ))
}

/// Places `count` orders of one unit of a 1-cent product, `connections` at a time, spread
/// over `products` products of the seller's (1: every order takes the same hot row; more:
/// the orders spread their row locks), and waits until none is pending; returns orders per
/// second from the first `POST /orders` to the last `paid`.
pub async fn orders(
    url: &str,
    token: &str,
    seller_token: &str,
    count: u64,
    connections: usize,
    products: u64,
) -> anyhow::Result<f64> {
    let client = reqwest::Client::new();
    let mut product_ids = Vec::new();
    for n in 0..products.max(1) {
        let product: Value = client
            .post(format!("{url}/products"))
            .bearer_auth(seller_token)
            .json(&serde_json::json!({"name": format!("Benchmark item {n}"), "price": 1, "stock": count}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        product_ids.push(product["id"].clone());
    }
    let started = Instant::now();
    let placed: Vec<bool> = futures_util::stream::iter(0..count)
        .map(|n| {
            let index = usize::try_from(n).unwrap_or_default() % product_ids.len();
            let body =
                serde_json::json!({"items": [{"product_id": product_ids[index], "quantity": 1}]});
            let request = client
                .post(format!("{url}/orders"))
                .bearer_auth(token)
                .json(&body);
            async move {
                matches!(request.send().await, Ok(response) if response.status().as_u16() == 201)
            }
        })
        .buffer_unordered(connections)
        .collect()
        .await;
    anyhow::ensure!(placed.iter().all(|ok| *ok), "some orders were refused");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let pending: Value = client
            .get(format!("{url}/orders?status=pending_payment&limit=1"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        if pending["items"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "orders still pending after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let failed: Value = client
        .get(format!("{url}/orders?status=payment_failed&limit=1"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(
        failed["items"].as_array().is_some_and(Vec::is_empty),
        "some orders could not be paid"
    );
    Ok(f64::from(u32::try_from(count)?) / elapsed.as_secs_f64())
}
