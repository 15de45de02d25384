//! A closed-loop HTTP load: each connection sends its next request when the last answered.
//! `TOKENS` is a comma-separated list of access tokens.

use std::time::{Duration, Instant};

use crate::latency::percentile_ms;

pub async fn run(
    url: &str,
    tokens: &[&str],
    connections: usize,
    seconds: u64,
    body: Option<String>,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers = (0..connections).map(|connection| {
        // One client (one connection) per worker, as wrk does.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .expect("an HTTP client");
        let url = url.to_owned();
        // Connection `n` acts for user `n` (modulo the tokens): one wallet each, as real
        // traffic spreads over many wallets.
        let token = tokens[connection % tokens.len()].to_owned();
        let body = body.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0_u64;
            while Instant::now() < deadline {
                let request = match &body {
                    Some(body) => client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.clone()),
                    None => client.get(&url),
                };
                let sent = Instant::now();
                match request.bearer_auth(&token).send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        })
    });
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in futures_util::future::join_all(workers).await {
        let (mut done, failed) = worker?;
        latencies.append(&mut done);
        errors += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ok = latencies.len();
    let rps = f64::from(u32::try_from(ok).unwrap_or(u32::MAX)) / elapsed;
    let p50 = percentile_ms(&mut latencies, 500);
    let p99 = percentile_ms(&mut latencies, 990);
    Ok(format!("{ok} {errors} {rps:.0} {p50:.2} {p99:.2}"))
}
