//! The platform for black-box tests: all six programs on free loopback ports, each service
//! with a fresh database and all of them on a fresh RabbitMQ vhost (see
//! [`platform::testing`]), so tests run in parallel without seeing each other.
//! [`TestStack::stop`] stops the programs and removes both.

use std::time::{Duration, Instant};

use platform::config::ServiceSettings;
use platform::grpc::InternalToken;
use platform::shutdown::CancellationToken;
use platform::telemetry::LogFormat;
use platform::testing::{Vhost, database_url, show_warnings_on_failure, unique_id};
use secrecy::SecretString;

use crate::{RunningStack, StackConfig};

pub struct TestStack {
    /// `http://127.0.0.1:<port>` of the gateway.
    pub base_url: String,
    /// `http://127.0.0.1:<port>` of the web app.
    pub web_url: String,
    /// The configuration the programs were started with (after `customize`).
    pub config: StackConfig,
    pub stack: RunningStack,
    vhost: Vhost,
}

/// Starts the platform with test settings, adjusted by `customize`, and waits until the
/// gateway reports ready.
pub async fn spawn(customize: impl FnOnce(&mut StackConfig)) -> anyhow::Result<TestStack> {
    show_warnings_on_failure();
    let id = unique_id();
    let vhost = Vhost::create(&format!("t_{id}")).await?;
    let mut config = test_config(&id, &vhost.amqp_url);
    customize(&mut config);
    let stack = RunningStack::start(config.clone(), CancellationToken::new()).await?;
    let base_url = format!("http://{}", stack.gateway_addr);
    let web_url = format!("http://{}", stack.web_addr);
    let test_stack = TestStack {
        base_url,
        web_url,
        config,
        stack,
        vhost,
    };
    test_stack.wait_until_ready().await?;
    Ok(test_stack)
}

/// Several copies of the platform ("nodes": one instance of each program each) sharing the
/// same databases and vhost, as replicas do in a deployment.
pub struct TestNodes {
    /// The configuration every node was started with (listen addresses on port 0).
    pub config: StackConfig,
    /// The running nodes; `None` where one was stopped.
    pub nodes: Vec<Option<RunningStack>>,
    vhost: Vhost,
}

/// Starts `count` nodes at once on empty databases (so their migrations race), and waits
/// until every gateway reports ready.
pub async fn spawn_nodes(
    count: usize,
    customize: impl FnOnce(&mut StackConfig),
) -> anyhow::Result<TestNodes> {
    show_warnings_on_failure();
    let id = unique_id();
    let vhost = Vhost::create(&format!("t_{id}")).await?;
    let mut config = test_config(&id, &vhost.amqp_url);
    customize(&mut config);
    let starts = (0..count).map(|_| RunningStack::start(config.clone(), CancellationToken::new()));
    let nodes = futures_util::future::try_join_all(starts).await?;
    for node in &nodes {
        wait_until_ready(&format!("http://{}", node.gateway_addr)).await?;
    }
    Ok(TestNodes {
        config,
        nodes: nodes.into_iter().map(Some).collect(),
        vhost,
    })
}

impl TestNodes {
    /// `http://127.0.0.1:<port>` of the gateway of each running node.
    pub fn gateways(&self) -> Vec<String> {
        self.nodes
            .iter()
            .flatten()
            .map(|node| format!("http://{}", node.gateway_addr))
            .collect()
    }

    /// Stops node `index` (its programs drain their work in flight).
    pub async fn stop_node(&mut self, index: usize) -> anyhow::Result<()> {
        match self.nodes[index].take() {
            Some(node) => node.stop().await,
            None => Ok(()),
        }
    }

    /// Starts node `index` again, on new ports, and waits until it is ready.
    pub async fn start_node(&mut self, index: usize) -> anyhow::Result<()> {
        let node = RunningStack::start(self.config.clone(), CancellationToken::new()).await?;
        wait_until_ready(&format!("http://{}", node.gateway_addr)).await?;
        self.nodes[index] = Some(node);
        Ok(())
    }

    /// Stops every node, then drops the databases and the vhost.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for index in 0..self.nodes.len() {
            self.stop_node(index).await?;
        }
        drop_databases(&self.config).await?;
        self.vhost.delete().await
    }
}

async fn drop_databases(config: &StackConfig) -> anyhow::Result<()> {
    for url in [
        &config.auth.service.database_url,
        &config.wallet.service.database_url,
        &config.statement.service.database_url,
        &config.order.service.database_url,
    ] {
        platform::database::drop_database(url).await?;
    }
    Ok(())
}

impl TestStack {
    /// Stops every program, then drops the test databases and the vhost.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stack.stop().await?;
        drop_databases(&self.config).await?;
        self.vhost.delete().await
    }

    async fn wait_until_ready(&self) -> anyhow::Result<()> {
        wait_until_ready(&self.base_url).await
    }
}

/// Waits until the gateway at `base_url` answers `/readyz` with success.
async fn wait_until_ready(base_url: &str) -> anyhow::Result<()> {
    // Each answer is awaited a bounded time too, so the deadline holds.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = client.get(format!("{base_url}/readyz")).send().await;
        match answer {
            Ok(response) if response.status().is_success() => return Ok(()),
            _ if Instant::now() > deadline => {
                anyhow::bail!("the gateway did not become ready within 30 s")
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn test_config(id: &str, amqp_url: &SecretString) -> StackConfig {
    let token = InternalToken::generate();
    let database = |name: &str| database_url(&format!("t_{id}_{name}"));
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let service = |name: &str| ServiceSettings {
        database_url: database(name),
        database_max_connections: 8,
        grpc_addr: loopback,
        amqp_url: amqp_url.clone(),
        internal_token: token.clone(),
        log_format: LogFormat::Text,
        shutdown_grace: Duration::from_secs(10),
        // No poll: a commit that forgets to wake the outbox relay makes the test time out.
        outbox_poll: Duration::from_secs(3600),
    };
    StackConfig {
        gateway: gateway::Config {
            listen_addr: loopback,
            metrics_addr: None,
            trusted_proxies: gateway::client_address::TrustedProxies::default(),
            cors_allowed_origins: gateway::cors::AllowedOrigins::default(),
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
            // Tests sign many users up from 127.0.0.1; the sign-up test lowers this.
            sign_up_limits: gateway::config::SignUpLimits {
                per_address: 10_000,
                window: Duration::from_secs(3600),
            },
            shutdown_grace: Duration::from_secs(10),
        },
        auth: auth_service::Config {
            service: service("auth"),
            token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            token_issuer: auth_service::DEFAULT_ISSUER.to_owned(),
            token_audience: auth_service::DEFAULT_AUDIENCE.to_owned(),
            admin_emails: Vec::new(),
            hash_wait: Duration::from_secs(5),
            key_encryption_key: None,
            signing_key_activation: Duration::from_secs(120),
        },
        wallet: wallet_service::Config {
            service: service("wallet"),
            group_commit: wallet_service::group_commit::Settings::default(),
        },
        statement: statement_service::Config {
            service: service("statement"),
            sync_max_days: 15,
            sync_max_lines: 10_000,
            max_open_jobs: 5,
            file_retention: Duration::from_secs(30 * 86_400),
            prune_every: Duration::from_secs(3600),
            smtp: None,
            // Filled in with auth-service's real port at start.
            auth_addr: String::new(),
        },
        order: order_service::Config {
            service: service("orders"),
            payment_timeout: Duration::from_secs(900),
        },
        web: web::Config {
            listen_addr: loopback,
            // Filled in with the gateway's real port at start.
            gateway_url: String::new(),
            log_format: LogFormat::Text,
            request_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
        },
    }
}
