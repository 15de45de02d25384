//! A closed-loop HTTP load: each connection sends its next request when the last answered.
//! `TOKENS` is a comma-separated list of access tokens.
//!
//! Each connection is a bare HTTP/1.1 connection (hyper's, without a client pool on top):
//! the generator shares the 2 cores with the platform, so the less CPU it spends per
//! request, the less it takes from what it measures.

use std::time::{Duration, Instant};

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::latency::percentile_ms;

pub async fn run(
    url: &str,
    tokens: &[&str],
    connections: usize,
    seconds: u64,
    body: Option<String>,
) -> anyhow::Result<String> {
    let (authority, path) = authority_and_path(url)?;
    // Built once: each request shares these bytes.
    let body = body.map(Bytes::from);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers = (0..connections).map(|connection| {
        // Connection `n` acts for user `n` (modulo the tokens): one wallet each, as real
        // traffic spreads over many wallets.
        let bearer = format!("Bearer {}", tokens[connection % tokens.len()]);
        let (authority, path) = (authority.clone(), path.clone());
        let body = body.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0_u64;
            let mut sender = None;
            while Instant::now() < deadline {
                let sent = Instant::now();
                match send(&mut sender, &authority, &path, &bearer, body.clone()).await {
                    Ok(true) => latencies.push(sent.elapsed()),
                    Ok(false) => errors += 1,
                    Err(_) => {
                        // The connection broke: count it, and open a new one.
                        errors += 1;
                        sender = None;
                    }
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

/// The `host:port` and the path (with the query) of `url`.
pub fn authority_and_path(url: &str) -> anyhow::Result<(String, String)> {
    let uri: Uri = url.parse().context("URL")?;
    let authority = uri
        .authority()
        .context("the URL names no host")?
        .to_string();
    let path = uri
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .to_owned();
    Ok((authority, path))
}

/// Sends one request for `path` on `sender` (connecting to `authority` first if there is
/// none) and reads the whole answer; `Ok(true)` for a 2xx.
pub async fn send(
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    authority: &str,
    path: &str,
    bearer: &str,
    body: Option<Bytes>,
) -> anyhow::Result<bool> {
    let connection = match sender {
        Some(connection) => connection,
        None => sender.insert(connect(authority).await?),
    };
    let request = Request::builder()
        .uri(path)
        .header(HOST, authority)
        .header(AUTHORIZATION, bearer);
    let request = match body {
        Some(body) => request
            .method(Method::POST)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))?,
        None => request.method(Method::GET).body(Full::default())?,
    };
    connection.ready().await?;
    let response = connection.send_request(request).await?;
    let ok = response.status().is_success();
    response.into_body().collect().await?;
    Ok(ok)
}

pub async fn connect(address: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}
