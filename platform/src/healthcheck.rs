//! The `healthcheck` subcommand of every program, for container health checks (the images
//! carry no curl): it asks the program's own server and exits 0 when it is healthy.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::grpc::{InternalToken, WithInternalToken, channel, dial_address};

/// Whether `argv` asks for the health check rather than the program itself.
pub fn requested() -> bool {
    std::env::args().nth(1).as_deref() == Some("healthcheck")
}

/// Asks a gRPC service's health endpoint; `Ok` when it reports SERVING.
pub async fn grpc(addr: SocketAddr, token: InternalToken) -> anyhow::Result<()> {
    let mut client = HealthClient::with_interceptor(
        channel(&addr.to_string(), Duration::from_secs(3)),
        WithInternalToken::new(token),
    );
    let response = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner();
    anyhow::ensure!(
        response.status == ServingStatus::Serving as i32,
        "the service reports it is not serving"
    );
    Ok(())
}

/// Asks an HTTP server's `path`; `Ok` on a 200 answer.
pub async fn http(addr: SocketAddr, path: &str) -> anyhow::Result<()> {
    let addr = dial_address(addr);
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        anyhow::Ok(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(3), exchange).await??;
    let status_line = response
        .split(|&byte| byte == b'\r')
        .next()
        .unwrap_or_default();
    anyhow::ensure!(
        status_line.windows(5).any(|window| window == b" 200 "),
        "unexpected answer: {}",
        String::from_utf8_lossy(status_line)
    );
    Ok(())
}
