//! How fast the web app answers its pages for a person with a long history: a new user gets
//! TRANSACTIONS deposits through the API, the statement side catches up, then each page is
//! fetched ROUNDS times, one request at a time, signed in by the access cookie. On loopback
//! with nothing else running, a request's time is the server's time.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures_util::future::try_join_all;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::latency::percentile_ms;

/// Deposits in flight while the history is made (one wallet: they queue on its row).
const WRITERS: u64 = 16;

/// One page's timings: its path, the median and the slowest, in milliseconds.
pub struct PageTiming {
    pub path: String,
    pub p50_ms: f64,
    pub max_ms: f64,
}

pub async fn run(
    web: &str,
    api: &str,
    statement_database: &str,
    transactions: u64,
    rounds: usize,
    paths: &[&str],
) -> anyhow::Result<Vec<PageTiming>> {
    let client = reqwest::Client::new();
    let signed_up: Value = client
        .post(format!("{api}/auth/sign-up"))
        .json(&json!({"email": format!("pages-{}@example.org", Uuid::new_v4()), "password": "correct horse battery"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = signed_up["access_token"]
        .as_str()
        .context("sign-up answered no token")?;
    let user: Uuid = signed_up["user"]["id"]
        .as_str()
        .context("sign-up answered no user id")?
        .parse()?;
    try_join_all((0..WRITERS).map(|writer| {
        let (client, token) = (client.clone(), token.to_owned());
        let count = transactions / WRITERS + u64::from(writer < transactions % WRITERS);
        async move {
            for _ in 0..count {
                client
                    .post(format!("{api}/wallet/transactions"))
                    .bearer_auth(&token)
                    .json(&json!({"type": "deposit", "amount": 1}))
                    .send()
                    .await?
                    .error_for_status()?;
            }
            anyhow::Ok(())
        }
    }))
    .await?;
    wait_for_statement_lines(statement_database, user, transactions).await?;

    let cookie = format!("wp_access={token}");
    let mut timings = Vec::new();
    for path in paths {
        let mut samples = Vec::with_capacity(rounds);
        // The first answer warms connections and caches; it is not counted.
        for round in 0..=rounds {
            let started = Instant::now();
            let response = client
                .get(format!("{web}{path}"))
                .header("cookie", &cookie)
                .send()
                .await?;
            let status = response.status();
            response.bytes().await?;
            ensure!(status.is_success(), "{path} answered {status}");
            if round > 0 {
                samples.push(started.elapsed());
            }
        }
        timings.push(PageTiming {
            path: (*path).to_owned(),
            p50_ms: percentile_ms(&mut samples, 500),
            max_ms: percentile_ms(&mut samples, 1000),
        });
    }
    Ok(timings)
}

/// Waits until statement-service recorded the user's `expected` lines (a minute at most).
async fn wait_for_statement_lines(url: &str, user: Uuid, expected: u64) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(url).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (lines,): (i64,) =
            sqlx::query_as("select count(*) from statement_lines where user_id = $1")
                .bind(user)
                .fetch_one(&pool)
                .await?;
        if u64::try_from(lines)? >= expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("statement-service recorded {lines} of {expected} lines in a minute");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
