//! The common life of a gRPC service, so that each service's start-up says only what is its
//! own: [`Service::build`] connects to the database (creating it if missing) and applies the
//! migrations on an already bound listener; the service then adds its periodic jobs, its
//! broker work, its outbox and its gRPC routes; [`Service::run_until_stopped`] serves with
//! the internal credential and the health service, runs the background work, and on shutdown
//! drains it (see [`crate::lifecycle`]). [`main`] is every service's `main`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use lapin::Connection;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::amqp::BrokerStatus;
use crate::config::{ConfigError, ServiceSettings};
use crate::grpc::InternalToken;
use crate::lifecycle::BackgroundTasks;
use crate::outbox::Outbox;

/// Published outbox rows are removed this often (those older than a week).
/// How often the rows nobody needs any more (published outbox rows, old idempotency keys,
/// expired revocations) are deleted.
const PRUNING: Duration = Duration::from_secs(3600);

type Start = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// A gRPC service being built, then run.
pub struct Service {
    name: &'static str,
    settings: ServiceSettings,
    listener: TcpListener,
    pool: PgPool,
    routes: Routes,
    broker: Option<BrokerStatus>,
    /// Background work, started when the service runs.
    background: Vec<Start>,
}

impl Service {
    /// Connects to the service's database (created if missing), applies `migrator`'s
    /// migrations, and prepares to serve on `listener` (tests bind port 0).
    pub async fn build(
        name: &'static str,
        settings: ServiceSettings,
        migrator: &Migrator,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let pool = crate::database::connect_and_migrate(
            &settings.database_url,
            settings.database_max_connections,
            migrator,
        )
        .await?;
        Ok(Self {
            name,
            settings,
            listener,
            pool,
            routes: Routes::default(),
            broker: None,
            background: Vec::new(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `routes` (the service's gRPC API).
    pub fn grpc(&mut self, routes: Routes) {
        self.routes = routes;
    }

    /// The service's outbox; its published rows are pruned every hour.
    pub fn outbox(&mut self) -> Outbox {
        let outbox = Outbox::new(self.pool.clone(), self.settings.outbox_poll);
        let pruned = outbox.clone();
        self.every(PRUNING, "prune the outbox", move || {
            let outbox = pruned.clone();
            async move { outbox.prune(crate::outbox::KEEP_PUBLISHED).await }
        });
        outbox
    }

    /// Runs `statement`, a `delete` of rows nobody needs any more, on the service's database
    /// every hour while the service runs.
    pub fn prune_hourly(&mut self, what: &'static str, statement: &'static str) {
        let pool = self.pool.clone();
        self.every(PRUNING, what, move || {
            let pool = pool.clone();
            async move {
                let done: sqlx::Result<_> = sqlx::query(statement).execute(&pool).await;
                done.map(|done| done.rows_affected())
            }
        });
    }

    /// Runs `job` every `period` while the service runs (see
    /// [`crate::lifecycle::periodically`]).
    pub fn every<F, Fut, T, E>(&mut self, period: Duration, what: &'static str, job: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: std::fmt::Debug + 'static,
        E: std::fmt::Display + 'static,
    {
        self.background.push(Box::new(move |shutdown| {
            Box::pin(crate::lifecycle::periodically(period, what, job, shutdown))
        }));
    }

    /// Runs `work` on a connection to the broker of `AMQP_URL`, reconnecting whenever the
    /// connection or `work` fails (see [`crate::amqp::supervise`]). The service reports
    /// itself healthy only while connected.
    pub fn on_broker<W, Fut>(&mut self, mut work: W)
    where
        W: FnMut(Arc<Connection>, CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let status = BrokerStatus::default();
        self.broker = Some(status.clone());
        let url = self.settings.amqp_url.clone();
        let name = self.name;
        self.background.push(Box::new(move |shutdown| {
            let stop = shutdown.clone();
            // The consumers and the relay run in this task: their spans name the program.
            Box::pin(crate::telemetry::in_program(
                name,
                crate::amqp::supervise(url, name.to_owned(), status, shutdown, move |connection| {
                    work(connection, stop.clone())
                }),
            ))
        }));
    }

    /// Serves until `shutdown` is cancelled, then lets the background work finish (for at
    /// most the grace period) and cancels what is left.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        // A child: if serving fails, the background work stops too, not the caller's token.
        let stop = shutdown.child_token();
        let mut tasks = BackgroundTasks::new(stop.clone());
        for start in self.background {
            tasks.spawn(start(stop.clone()));
        }
        let (reporter, health) = tonic_health::server::health_reporter();
        let pool = self.pool.clone();
        let broker = self.broker.clone();
        tasks.spawn(crate::grpc::report_health(
            reporter,
            move || {
                let pool = pool.clone();
                let broker = broker.clone();
                async move {
                    let broker_up = broker.as_ref().is_none_or(BrokerStatus::is_connected);
                    broker_up && crate::database::is_reachable(&pool).await
                }
            },
            stop.clone(),
        ));
        tracing::info!(addr = %self.listener.local_addr()?, "{} ready", self.name);
        let served = crate::grpc::serve(
            self.name,
            self.listener,
            self.routes,
            health,
            self.settings.internal_token,
            stop,
        )
        .await;
        tasks.drain(self.settings.shutdown_grace).await;
        served
    }
}

/// The `main` of a gRPC service: reads the configuration (with the internal credential
/// `INTERNAL_API_TOKEN`), sets up logging, answers the `healthcheck` subcommand, or binds the
/// service's address, builds it and runs it until Ctrl-C or SIGTERM.
pub fn main<C, B, Fut>(
    config_from_env: impl FnOnce(InternalToken) -> Result<C, ConfigError>,
    settings_of: impl Fn(&C) -> &ServiceSettings,
    build: B,
) -> anyhow::Result<()>
where
    B: FnOnce(C, TcpListener) -> Fut,
    Fut: Future<Output = anyhow::Result<Service>>,
{
    main_on(
        tokio::runtime::Runtime::new()?,
        config_from_env,
        settings_of,
        build,
    )
}

/// [`main`] on `runtime`, for a service that chooses its worker threads (see
/// [`crate::lifecycle::one_worker_runtime`]).
pub fn main_on<C, B, Fut>(
    runtime: tokio::runtime::Runtime,
    config_from_env: impl FnOnce(InternalToken) -> Result<C, ConfigError>,
    settings_of: impl Fn(&C) -> &ServiceSettings,
    build: B,
) -> anyhow::Result<()>
where
    B: FnOnce(C, TcpListener) -> Fut,
    Fut: Future<Output = anyhow::Result<Service>>,
{
    let config = config_from_env(InternalToken::from_env()?)?;
    let settings = settings_of(&config).clone();
    runtime.block_on(async move {
        if crate::healthcheck::requested() {
            crate::telemetry::install(settings.log_format, None)?;
            return crate::healthcheck::grpc(settings.grpc_addr, settings.internal_token).await;
        }
        let program = crate::telemetry::program_name();
        crate::lifecycle::run_program(settings.log_format, &program, |shutdown| async move {
            let listener = TcpListener::bind(settings.grpc_addr).await?;
            build(config, listener)
                .await?
                .run_until_stopped(shutdown)
                .await
        })
        .await
    })
}
