//! RabbitMQ: a connection that keeps trying until the broker answers.
//!
//! Consumers and publishers supervise their own connection: when it drops they call
//! [`connect`] again, so a broker restart heals by itself.

use anyhow::Context;
use lapin::{Connection, ConnectionProperties};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use crate::database::backoff;

/// Connects to the broker, retrying with backoff until it answers or `shutdown` is
/// cancelled (then `None`).
pub async fn connect(
    url: &SecretString,
    name: &str,
    shutdown: &CancellationToken,
) -> Option<Connection> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_connect(url, name).await {
            Ok(connection) => return Some(connection),
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), attempt, "broker not reachable, retrying");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(backoff(attempt)) => {}
        }
    }
}

/// One attempt to connect, naming the connection after the program (it shows in the
/// management UI).
pub async fn try_connect(url: &SecretString, name: &str) -> anyhow::Result<Connection> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url.expose_secret(), properties)
        .await
        // lapin's error can quote the URL, password included; keep only its kind.
        .map_err(|error| anyhow::anyhow!("{}", redact(&error.to_string(), url)))
        .context("cannot connect to RabbitMQ")
}

fn redact(message: &str, url: &SecretString) -> String {
    message.replace(url.expose_secret(), "<AMQP_URL>")
}

/// Whether the program currently holds a working broker connection (for health reports).
#[derive(Debug, Clone, Default)]
pub struct BrokerStatus(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl BrokerStatus {
    pub fn is_connected(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set(&self, connected: bool) {
        self.0
            .store(connected, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Keeps a broker connection open until `shutdown`, reconnecting whenever it drops, and
/// reports its state in `status`.
pub async fn stay_connected(
    url: SecretString,
    name: String,
    status: BrokerStatus,
    shutdown: CancellationToken,
) {
    while let Some(connection) = connect(&url, &name, &shutdown).await {
        status.set(true);
        tracing::info!(connection = name, "connected to RabbitMQ");
        while connection.status().connected() {
            tokio::select! {
                () = shutdown.cancelled() => {
                    status.set(false);
                    let _closing = connection.close(200, "shutting down".into()).await;
                    return;
                }
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
        status.set(false);
        tracing::warn!(
            connection = name,
            "lost the RabbitMQ connection, reconnecting"
        );
    }
}
