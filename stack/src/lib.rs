//! stack: the whole platform, all six programs, in one process.
//!
//! - [`RunningStack`] builds every program (each service creates and migrates its database),
//!   starts them with the web app, and stops them together: the native quick start (`cargo run -p stack`).
//! - [`testing`] starts the same stack on free ports with fresh databases and a fresh
//!   RabbitMQ vhost, for the black-box tests.

pub mod testing;

use std::net::SocketAddr;
use std::time::Duration;

use platform::config::ConfigError;
use platform::grpc::InternalToken;
use platform::shutdown::CancellationToken;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Every program's settings. The services' listen addresses are where the gateway dials.
#[derive(Debug, Clone)]
pub struct StackConfig {
    pub gateway: gateway::Config,
    pub auth: auth_service::Config,
    pub wallet: wallet_service::Config,
    pub statement: statement_service::Config,
    pub order: order_service::Config,
    /// The web app; its `gateway_url` is replaced by the gateway started here.
    pub web: web::Config,
}

impl StackConfig {
    /// Reads every program's variables; generates the internal credential when
    /// `INTERNAL_API_TOKEN` is unset (the programs share the process, so nobody else needs it).
    pub fn from_env() -> Result<Self, ConfigError> {
        let token = InternalToken::from_env_or_generate()?;
        Ok(Self {
            gateway: gateway::Config::from_env(token.clone())?,
            auth: auth_service::Config::from_env(token.clone())?,
            wallet: wallet_service::Config::from_env(token.clone())?,
            statement: statement_service::Config::from_env(token.clone())?,
            order: order_service::Config::from_env(token)?,
            web: web::Config::from_env()?,
        })
    }
}

/// The six programs, running.
pub struct RunningStack {
    pub gateway_addr: SocketAddr,
    /// Where the web app serves its pages.
    pub web_addr: SocketAddr,
    /// Where the gateway serves `/metrics` apart (`METRICS_ADDR`), if it does.
    pub metrics_addr: Option<SocketAddr>,
    pub auth_addr: SocketAddr,
    pub wallet_addr: SocketAddr,
    pub statement_addr: SocketAddr,
    pub order_addr: SocketAddr,
    shutdown: CancellationToken,
    programs: JoinSet<(&'static str, anyhow::Result<()>)>,
}

/// How long programs get to stop after a stop request: each drains its own work within its
/// grace period (`SHUTDOWN_GRACE_SECS`); this is the backstop beyond it.
const DRAIN: Duration = Duration::from_secs(30);

impl RunningStack {
    /// Binds every listen address (port 0 picks a free port), builds the services (databases
    /// created and migrated), then the gateway pointed at them, and starts all five. They
    /// stop when `shutdown` is cancelled.
    pub async fn start(
        mut config: StackConfig,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let auth_listener = TcpListener::bind(config.auth.service.grpc_addr).await?;
        let wallet_listener = TcpListener::bind(config.wallet.service.grpc_addr).await?;
        let statement_listener = TcpListener::bind(config.statement.service.grpc_addr).await?;
        let order_listener = TcpListener::bind(config.order.service.grpc_addr).await?;
        let gateway_listener = TcpListener::bind(config.gateway.listen_addr).await?;
        let web_listener = TcpListener::bind(config.web.listen_addr)
            .await
            .map_err(|error| {
                anyhow::anyhow!(
                    "cannot listen on WEB_ADDR {}: {error}",
                    config.web.listen_addr
                )
            })?;

        let auth_addr = auth_listener.local_addr()?;
        let wallet_addr = wallet_listener.local_addr()?;
        let statement_addr = statement_listener.local_addr()?;
        let order_addr = order_listener.local_addr()?;
        config.gateway.auth_addr = auth_addr.to_string();
        config.gateway.wallet_addr = wallet_addr.to_string();
        config.gateway.statement_addr = statement_addr.to_string();
        config.statement.auth_addr = auth_addr.to_string();
        config.gateway.order_addr = order_addr.to_string();

        let (auth, wallet, statement, order) = tokio::try_join!(
            auth_service::build(config.auth, auth_listener),
            wallet_service::build(config.wallet, wallet_listener),
            statement_service::build(config.statement, statement_listener),
            order_service::build(config.order, order_listener),
        )?;
        let gateway =
            gateway::Application::build_with_listener(config.gateway, gateway_listener).await?;
        let gateway_addr = gateway.local_addr()?;
        let metrics_addr = gateway.metrics_addr();
        // The web app calls the gateway started here (an unspecified address is this
        // machine).
        config.web.gateway_url = format!("http://{}", platform::grpc::dial_address(gateway_addr));
        let web = web::Application::build_with_listener(config.web, web_listener)?;
        let web_addr = web.local_addr()?;

        let mut programs = JoinSet::new();
        let stop = shutdown.clone();
        programs.spawn(async move { ("auth-service", auth.run_until_stopped(stop).await) });
        let stop = shutdown.clone();
        programs.spawn(async move { ("wallet-service", wallet.run_until_stopped(stop).await) });
        let stop = shutdown.clone();
        programs
            .spawn(async move { ("statement-service", statement.run_until_stopped(stop).await) });
        let stop = shutdown.clone();
        programs.spawn(async move { ("order-service", order.run_until_stopped(stop).await) });
        let stop = shutdown.clone();
        programs.spawn(async move { ("gateway", gateway.run_until_stopped(stop).await) });
        let stop = shutdown.clone();
        programs.spawn(async move { ("web", web.run_until_stopped(stop).await) });

        Ok(Self {
            gateway_addr,
            web_addr,
            metrics_addr,
            auth_addr,
            wallet_addr,
            statement_addr,
            order_addr,
            shutdown,
            programs,
        })
    }

    /// Runs until the shutdown token is cancelled or a program fails (then the others are
    /// stopped too and the failure is returned).
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut failure = None;
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => {}
            Some(joined) = self.programs.join_next() => {
                // A program that ended because shutdown was asked for did not fail.
                if !self.shutdown.is_cancelled() {
                    failure = Some(program_failure(joined));
                }
            }
        }
        self.shutdown.cancel();
        let drained = self.drain().await;
        match failure {
            Some(error) => Err(error),
            None => drained,
        }
    }

    /// Asks every program to stop and waits (a bounded time) until they have.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.drain().await
    }

    async fn drain(&mut self) -> anyhow::Result<()> {
        let all_stopped = async {
            let mut first_error = None;
            while let Some(joined) = self.programs.join_next().await {
                if let (Err(error), None) = (ok_or_failure(joined), &first_error) {
                    first_error = Some(error);
                }
            }
            first_error.map_or(Ok(()), Err)
        };
        match tokio::time::timeout(DRAIN, all_stopped).await {
            Ok(result) => {
                tracing::info!("all programs stopped");
                result
            }
            Err(_) => {
                self.programs.abort_all();
                anyhow::bail!("programs did not stop within {DRAIN:?}; aborted them")
            }
        }
    }
}

fn ok_or_failure(
    joined: Result<(&'static str, anyhow::Result<()>), tokio::task::JoinError>,
) -> anyhow::Result<()> {
    match joined {
        Ok((_, Ok(()))) => Ok(()),
        Ok((name, Err(error))) => Err(error.context(format!("{name} failed"))),
        Err(error) => Err(anyhow::anyhow!("a program panicked: {error}")),
    }
}

/// A program that ended before shutdown was asked for is a failure even if it returned Ok.
fn program_failure(
    joined: Result<(&'static str, anyhow::Result<()>), tokio::task::JoinError>,
) -> anyhow::Error {
    match joined {
        Ok((name, Ok(()))) => anyhow::anyhow!("{name} stopped unexpectedly"),
        other => ok_or_failure(other)
            .err()
            .unwrap_or_else(|| anyhow::anyhow!("a program stopped")),
    }
}
