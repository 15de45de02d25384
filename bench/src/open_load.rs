//! An open-loop HTTP load: requests start on a fixed schedule, `rate` per second, whether or
//! not earlier ones have been answered (a closed loop sends the next request only when the
//! last answered, so a slow answer also slows the load and hides its own queueing). Each
//! latency runs from the request's scheduled start, so time spent waiting for a connection
//! or behind a late tick counts too.
//!
//! Idle keep-alive connections are reused; when none is idle, another is opened, up to
//! `MAX_CONNECTIONS`; a request that finds that many open is counted as an error.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use tokio::time::MissedTickBehavior;

use crate::http_load::{authority_and_path, send};
use crate::latency::percentile_ms;

const MAX_CONNECTIONS: usize = 1024;

/// POSTs `body` (or GETs, when it is empty) to `url` at `rate` per second for `seconds`,
/// request n acting with token n (modulo the tokens). Prints
/// `sent ok errors p50_ms p99_ms p999_ms`.
pub async fn run(
    url: &str,
    tokens: &[&str],
    rate: u64,
    seconds: u64,
    body: String,
) -> anyhow::Result<String> {
    let (authority, path) = authority_and_path(url)?;
    // An empty body: GET requests (reads), else POSTs of it.
    let body = (!body.is_empty()).then(|| Bytes::from(body));
    let bearers: Vec<String> = tokens
        .iter()
        .map(|token| format!("Bearer {token}"))
        .collect();
    let idle: Arc<Mutex<Vec<SendRequest<Full<Bytes>>>>> = Arc::default();
    // Connections open, idle or in use.
    let open = Arc::new(AtomicUsize::new(0));
    let period = Duration::from_secs_f64(1.0 / f64::from(u32::try_from(rate.max(1))?));
    let mut ticker = tokio::time::interval(period);
    // A late tick starts the requests it missed at once: the schedule, not the timer, sets
    // the rate.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let total = rate * seconds;
    let mut requests = Vec::new();
    let started = Instant::now();
    for n in 0..total {
        ticker.tick().await;
        let scheduled = started + period.mul_f64(f64::from(u32::try_from(n)?));
        let index = usize::try_from(n)? % bearers.len();
        let bearer = bearers[index].clone();
        let (authority, path, body) = (authority.clone(), path.clone(), body.clone());
        let (idle, open) = (idle.clone(), open.clone());
        requests.push(tokio::spawn(async move {
            let taken = idle.lock().map_or(None, |mut idle| idle.pop());
            if taken.is_none() && open.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
                open.fetch_sub(1, Ordering::Relaxed);
                return None;
            }
            let mut sender = taken;
            let ok = matches!(
                send(&mut sender, &authority, &path, &bearer, body).await,
                Ok(true)
            );
            let latency = scheduled.elapsed();
            match sender {
                Some(connection) if !connection.is_closed() => {
                    if let Ok(mut idle) = idle.lock() {
                        idle.push(connection);
                    }
                }
                _ => {
                    open.fetch_sub(1, Ordering::Relaxed);
                }
            }
            ok.then_some(latency)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0_usize;
    for request in futures_util::future::join_all(requests).await {
        match request? {
            Some(latency) => latencies.push(latency),
            None => errors += 1,
        }
    }
    let ok = latencies.len();
    let p50 = percentile_ms(&mut latencies, 500);
    let p99 = percentile_ms(&mut latencies, 990);
    let p999 = percentile_ms(&mut latencies, 999);
    Ok(format!("{total} {ok} {errors} {p50:.2} {p99:.2} {p999:.2}"))
}
