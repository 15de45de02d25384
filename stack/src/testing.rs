//! The platform for black-box tests: all five programs on free loopback ports, each service
//! with a fresh database and all of them on a fresh RabbitMQ vhost, so tests run in parallel
//! without seeing each other. [`TestStack::stop`] stops the programs and removes both.
//!
//! Settings (all optional): `TEST_POSTGRES_URL` (server to create databases on, default
//! `postgres://postgres@127.0.0.1:5432`), `TEST_AMQP_URL` (broker, default
//! `amqp://guest:guest@127.0.0.1:5672`), `TEST_RABBITMQ_API` (management API used to create
//! vhosts, default `http://127.0.0.1:15672/api` as guest; `rabbitmqctl` is used when it does
//! not answer).

use std::time::{Duration, Instant};

use anyhow::Context;
use platform::config::{ServiceSettings, optional};
use platform::grpc::InternalToken;
use platform::shutdown::CancellationToken;
use platform::telemetry::LogFormat;
use secrecy::SecretString;

use crate::{RunningStack, StackConfig};

pub struct TestStack {
    /// `http://127.0.0.1:<port>` of the gateway.
    pub base_url: String,
    /// The configuration the programs were started with (after `customize`).
    pub config: StackConfig,
    pub stack: RunningStack,
    vhost: String,
}

/// Starts the platform with test settings, adjusted by `customize`, and waits until the
/// gateway reports ready.
pub async fn spawn(customize: impl FnOnce(&mut StackConfig)) -> anyhow::Result<TestStack> {
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let vhost = format!("t_{id}");
    create_vhost(&vhost).await?;
    let mut config = test_config(&id, &vhost);
    customize(&mut config);
    let stack = RunningStack::start(config.clone(), CancellationToken::new()).await?;
    let base_url = format!("http://{}", stack.gateway_addr);
    let test_stack = TestStack {
        base_url,
        config,
        stack,
        vhost,
    };
    test_stack.wait_until_ready().await?;
    Ok(test_stack)
}

impl TestStack {
    /// Stops every program, then drops the test databases and the vhost.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stack.stop().await?;
        for url in [
            &self.config.auth.database_url,
            &self.config.wallet.database_url,
            &self.config.statement.database_url,
            &self.config.order.database_url,
        ] {
            platform::database::drop_database(url).await?;
        }
        delete_vhost(&self.vhost).await
    }

    async fn wait_until_ready(&self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = client.get(format!("{}/readyz", self.base_url)).send().await;
            match answer {
                Ok(response) if response.status().is_success() => return Ok(()),
                _ if Instant::now() > deadline => {
                    anyhow::bail!("the gateway did not become ready within 30 s")
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

fn test_config(id: &str, vhost: &str) -> StackConfig {
    let token = InternalToken::generate();
    let postgres = optional("TEST_POSTGRES_URL")
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_owned());
    let amqp =
        optional("TEST_AMQP_URL").unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672".to_owned());
    let database = |name: &str| SecretString::from(format!("{postgres}/t_{id}_{name}"));
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let service = |name: &str| ServiceSettings {
        database_url: database(name),
        grpc_addr: loopback,
        amqp_url: SecretString::from(format!("{amqp}/{vhost}")),
        internal_token: token.clone(),
        log_format: LogFormat::Text,
    };
    StackConfig {
        gateway: gateway::Config {
            listen_addr: loopback,
            // Filled in with the services' real ports at start.
            auth_addr: String::new(),
            wallet_addr: String::new(),
            statement_addr: String::new(),
            order_addr: String::new(),
            internal_token: token.clone(),
            log_format: LogFormat::Text,
            request_timeout: Duration::from_secs(10),
            sign_in_limits: gateway::config::SignInLimits {
                per_email: 5,
                per_address: 20,
                window: Duration::from_secs(900),
            },
        },
        auth: auth_service::Config {
            database_url: database("auth"),
            grpc_addr: loopback,
            internal_token: token.clone(),
            log_format: LogFormat::Text,
            token_ttl: Duration::from_secs(900),
            token_issuer: auth_service::DEFAULT_ISSUER.to_owned(),
            token_audience: auth_service::DEFAULT_AUDIENCE.to_owned(),
            admin_emails: Vec::new(),
        },
        wallet: service("wallet"),
        statement: service("statement"),
        order: service("orders"),
    }
}

fn management_api() -> String {
    optional("TEST_RABBITMQ_API").unwrap_or_else(|| "http://127.0.0.1:15672/api".to_owned())
}

async fn create_vhost(vhost: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let api = management_api();
    let created = client
        .put(format!("{api}/vhosts/{vhost}"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await;
    match created {
        Ok(response) if response.status().is_success() => {
            client
                .put(format!("{api}/permissions/{vhost}/guest"))
                .basic_auth("guest", Some("guest"))
                .json(&serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"}))
                .send()
                .await?
                .error_for_status()
                .context("cannot grant guest access to the test vhost")?;
            Ok(())
        }
        _ => {
            rabbitmqctl(&["add_vhost", vhost])?;
            rabbitmqctl(&["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"])
        }
    }
}

async fn delete_vhost(vhost: &str) -> anyhow::Result<()> {
    let deleted = reqwest::Client::new()
        .delete(format!("{}/vhosts/{vhost}", management_api()))
        .basic_auth("guest", Some("guest"))
        .send()
        .await;
    match deleted {
        Ok(response) if response.status().is_success() => Ok(()),
        _ => rabbitmqctl(&["delete_vhost", vhost]),
    }
}

fn rabbitmqctl(args: &[&str]) -> anyhow::Result<()> {
    let status = std::process::Command::new("rabbitmqctl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .context("the RabbitMQ management API does not answer and rabbitmqctl cannot run")?;
    anyhow::ensure!(status.success(), "rabbitmqctl {} failed", args.join(" "));
    Ok(())
}
