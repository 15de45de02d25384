//! A service's shutdown drains its background work, on the real PostgreSQL and RabbitMQ: a
//! periodic job in flight when shutdown comes finishes, work that outlives the grace period
//! is cancelled, nothing the service started is left running once `run_until_stopped`
//! returns, and the broker connection closes before the work that uses it is dropped.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use platform::config::ServiceSettings;
use platform::grpc::InternalToken;
use platform::service::Service;
use platform::telemetry::LogFormat;
use platform::testing::{Vhost, database_url, eventually, unique_id};
use secrecy::SecretString;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

static NO_MIGRATIONS: Migrator = Migrator::DEFAULT;

async fn service(grace: Duration) -> Service {
    service_on(grace, platform::config::DEFAULT_AMQP_URL.into()).await
}

async fn service_on(grace: Duration, amqp_url: SecretString) -> Service {
    let settings = ServiceSettings {
        database_url: database_url(&format!("t_{}_lifecycle", unique_id())),
        database_max_connections: 2,
        grpc_addr: ([127, 0, 0, 1], 0).into(),
        amqp_url,
        internal_token: InternalToken::generate(),
        log_format: LogFormat::Text,
        shutdown_grace: grace,
        outbox_poll: platform::outbox::FALLBACK_POLL,
    };
    let listener = TcpListener::bind(settings.grpc_addr).await.unwrap();
    Service::build("lifecycle-test", settings, &NO_MIGRATIONS, listener)
        .await
        .unwrap()
}

/// Cancels `shutdown` and waits for the service's run to end well, within 5 s.
async fn stop(shutdown: &CancellationToken, running: JoinHandle<anyhow::Result<()>>) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the service stops within 5 s")
        .unwrap()
        .unwrap();
}

/// Sets its flag when dropped: the future holding it ended or was cancelled.
struct Dropped(Arc<AtomicBool>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_periodic_job_in_flight_at_shutdown_finishes_and_nothing_is_left_running() {
    let mut service = service(Duration::from_secs(10)).await;
    let database = service.settings().database_url.clone();
    let started = Arc::new(Notify::new());
    let finished = Arc::new(AtomicUsize::new(0));
    // Held by the job: once the service is done, only this test holds it.
    let held = Arc::new(());
    let (job_started, job_finished, job_held) = (started.clone(), finished.clone(), held.clone());
    service.every(Duration::from_millis(10), "a slow job", move || {
        let (started, finished, _held) =
            (job_started.clone(), job_finished.clone(), job_held.clone());
        async move {
            started.notify_one();
            tokio::time::sleep(Duration::from_millis(300)).await;
            finished.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::convert::Infallible>(())
        }
    });
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(service.run_until_stopped(shutdown.clone()));
    started.notified().await;
    let runs_begun_before_shutdown = finished.load(Ordering::SeqCst) + 1;
    stop(&shutdown, running).await;
    // The run in flight completed instead of being cut, and no run began after shutdown.
    assert_eq!(finished.load(Ordering::SeqCst), runs_begun_before_shutdown);
    assert_eq!(
        Arc::strong_count(&held),
        1,
        "the job is still held by a task"
    );
    platform::database::drop_database(&database).await.unwrap();
}

#[tokio::test]
async fn work_that_outlives_the_grace_period_is_cancelled() {
    let grace = Duration::from_millis(300);
    let mut service = service(grace).await;
    let database = service.settings().database_url.clone();
    let cancelled = Arc::new(AtomicBool::new(false));
    let stuck = cancelled.clone();
    service.every(Duration::from_millis(10), "a stuck job", move || {
        let guard = Dropped(stuck.clone());
        async move {
            let _guard = guard;
            std::future::pending::<Result<(), std::convert::Infallible>>().await
        }
    });
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(service.run_until_stopped(shutdown.clone()));
    // Let the job start (the first run is after one period).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let asked = Instant::now();
    stop(&shutdown, running).await;
    let took = asked.elapsed();
    assert!(
        took >= grace,
        "stopped after {took:?}, before the grace period"
    );
    eventually(
        Duration::from_secs(1),
        "the stuck job's cancellation",
        || async { cancelled.load(Ordering::SeqCst).then_some(()) },
    )
    .await;
    platform::database::drop_database(&database).await.unwrap();
}

/// Counts the events logged at ERROR, from any thread (lapin logs from its own).
struct Errors(Arc<std::sync::Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Errors {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::ERROR {
            let mut text = String::new();
            event.record(
                &mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
                    text.push_str(&format!("{}={value:?} ", field.name()));
                },
            );
            self.0
                .lock()
                .unwrap()
                .push(format!("{}: {text}", event.metadata().target()));
        }
    }
}

/// Records, when dropped, whether its broker connection was still open.
struct OpenAtDrop {
    connection: Arc<lapin::Connection>,
    open: Arc<std::sync::Mutex<Option<bool>>>,
}

impl Drop for OpenAtDrop {
    fn drop(&mut self) {
        *self.open.lock().unwrap() = Some(self.connection.status().connected());
    }
}

/// A channel dropped while its connection is open closes itself; when the connection closed
/// right after, that close raced it, and lapin logged "invalid channel state" as an error at
/// every shutdown of the services. The work, its channels with it, is dropped once the
/// connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_shutdown_the_broker_connection_closes_before_the_work_and_its_channels_go() {
    use tracing_subscriber::layer::SubscriberExt;
    let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    // Global, to hear lapin's own thread: this test is a process of its own under nextest.
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(Errors(errors.clone())),
    )
    .unwrap();
    let vhost = Vhost::create(&format!("t_{}_lifecycle", unique_id()))
        .await
        .unwrap();
    let mut service = service_on(Duration::from_secs(10), vhost.amqp_url.clone()).await;
    let database = service.settings().database_url.clone();
    let open_at_drop = Arc::new(std::sync::Mutex::new(None));
    let working = Arc::new(Notify::new());
    let (open, ready) = (open_at_drop.clone(), working.clone());
    service.on_broker(move |connection, _shutdown| {
        let (open, ready) = (open.clone(), ready.clone());
        async move {
            let _channel = connection.create_channel().await?;
            let _guard = OpenAtDrop { connection, open };
            ready.notify_one();
            std::future::pending().await
        }
    });
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(service.run_until_stopped(shutdown.clone()));
    working.notified().await;
    stop(&shutdown, running).await;
    assert_eq!(*open_at_drop.lock().unwrap(), Some(false));
    assert_eq!(*errors.lock().unwrap(), Vec::<String>::new());
    platform::database::drop_database(&database).await.unwrap();
    vhost.delete().await.unwrap();
}
