//! The background work of a program (consumers, the outbox relay, periodic jobs, health
//! reporting) and its end: every task is tracked, told to stop by the shutdown token, given a
//! grace period to finish what it is doing, and cancelled after it. Nothing outlives the
//! program's `run`.
//!
//! A `JoinSet` tracks the tasks (rather than a `TaskTracker`) because it can also abort those
//! that outlive the grace period.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A program's background tasks.
pub struct BackgroundTasks {
    tasks: JoinSet<()>,
    shutdown: CancellationToken,
}

impl BackgroundTasks {
    /// Tasks that stop when `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            tasks: JoinSet::new(),
            shutdown,
        }
    }

    /// Runs `task`, which must end soon after the shutdown token is cancelled.
    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// Tells every task to stop, waits up to `grace` for them to end, then cancels the rest.
    /// Returns how many had to be cancelled.
    pub async fn drain(mut self, grace: Duration) -> usize {
        self.shutdown.cancel();
        let all_ended = async {
            while let Some(ended) = self.tasks.join_next().await {
                if let Err(error) = ended {
                    tracing::error!(%error, "a background task failed");
                }
            }
        };
        if tokio::time::timeout(grace, all_ended).await.is_ok() {
            return 0;
        }
        let left = self.tasks.len();
        tracing::warn!(
            left,
            ?grace,
            "background tasks outlived the grace period; cancelling them"
        );
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        left
    }
}

/// The async runtime of a program that mostly waits on others (the web app on the API,
/// statement-service on its database): one worker thread unless `TOKIO_WORKER_THREADS` asks
/// for more. Each worker thread keeps the memory it freed in an allocator cache of its own
/// until it allocates again, so after a large answer (a 10,000-line statement) a second
/// worker left each of the two several MB larger, with the same page times
/// (docs/benchmarks.md).
pub fn one_worker_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        runtime.worker_threads(1);
    }
    runtime.enable_all().build()
}

/// A program's `main` once its configuration is read: sets up logging and span export (see
/// [`crate::telemetry::init`]; inside the runtime, where the exporter's channel lives), runs
/// `work` until Ctrl-C or SIGTERM cancels the token it is given, and flushes the last spans.
pub async fn run_program<Fut>(
    format: crate::telemetry::LogFormat,
    program: &str,
    work: impl FnOnce(CancellationToken) -> Fut,
) -> anyhow::Result<()>
where
    Fut: Future<Output = anyhow::Result<()>>,
{
    let telemetry = crate::telemetry::init(format, program)?;
    let ran = work(crate::shutdown::on_signal()).await;
    telemetry.shutdown().await;
    ran
}

/// The `main` of an HTTP program (the gateway, the web app): [`run_program`], or, for
/// `<program> healthcheck`, a look at the running program's `/healthz` on `listen_addr`.
pub async fn run_http_program<Fut>(
    format: crate::telemetry::LogFormat,
    program: &str,
    listen_addr: std::net::SocketAddr,
    work: impl FnOnce(CancellationToken) -> Fut,
) -> anyhow::Result<()>
where
    Fut: Future<Output = anyhow::Result<()>>,
{
    if crate::healthcheck::requested() {
        crate::telemetry::install(format, None)?;
        return crate::healthcheck::http(listen_addr, "/healthz").await;
    }
    run_program(format, program, work).await
}

/// Runs `job` every `period` until `shutdown`. A run in flight when shutdown comes finishes
/// (within the grace period of the task's drain); a failed run is logged and tried again at
/// the next period.
pub async fn periodically<F, Fut, T, E>(
    period: Duration,
    what: &'static str,
    job: F,
    shutdown: CancellationToken,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    T: std::fmt::Debug,
    E: Display,
{
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
        match job().await {
            Ok(done) => tracing::debug!(?done, "{what}: done"),
            Err(error) => tracing::warn!(%error, "cannot {what}; trying again later"),
        }
    }
}
