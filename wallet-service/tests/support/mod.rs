//! A wallet-service of its own for each test: a fresh database, a fresh RabbitMQ vhost, the
//! service started on a free port, and a broker connection to drive it.

#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use platform::config::ServiceSettings;
use platform::grpc::InternalToken;
use platform::outbox::Outbox;
use platform::shutdown::CancellationToken;
use platform::telemetry::LogFormat;
use platform::testing::{Vhost, database_url, unique_id};
use secrecy::ExposeSecret;
use serde_json::Value;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use wallet_service::Config;

pub struct TestWallet {
    pub config: Config,
    pub pool: PgPool,
    pub broker: Connection,
    pub vhost: Vhost,
    running: Option<Running>,
    others: Vec<Running>,
}

impl TestWallet {
    pub async fn start() -> Self {
        Self::start_after(async |_| {}).await
    }

    /// Starts once `prepare` has run on the test's fresh vhost (to leave there what an
    /// earlier version would have).
    pub async fn start_after(prepare: impl AsyncFnOnce(&Connection)) -> Self {
        let id = unique_id();
        let vhost = Vhost::create(&format!("t_{id}")).await.unwrap();
        let config = Config {
            service: ServiceSettings {
                database_url: database_url(&format!("t_{id}_wallet")),
                database_max_connections: 8,
                grpc_addr: ([127, 0, 0, 1], 0).into(),
                amqp_url: vhost.amqp_url.clone(),
                internal_token: InternalToken::generate(),
                log_format: LogFormat::Text,
                shutdown_grace: Duration::from_secs(10),
                // No poll: a commit that forgets to wake the outbox relay makes the test
                // time out.
                outbox_poll: Duration::from_secs(3600),
            },
            group_commit: wallet_service::group_commit::Settings::default(),
        };
        let broker = Connection::connect(
            vhost.amqp_url.expose_secret(),
            ConnectionProperties::default(),
        )
        .await
        .unwrap();
        prepare(&broker).await;
        let (pool, running) = launch(&config, &broker).await;
        Self {
            config,
            pool,
            broker,
            vhost,
            running: Some(running),
            others: Vec::new(),
        }
    }

    /// Starts a wallet-service again on the test's database and vhost.
    pub async fn run(&mut self) {
        let (pool, running) = launch(&self.config, &self.broker).await;
        self.pool = pool;
        self.running = Some(running);
    }

    /// Starts one more instance on the same database and vhost.
    pub async fn add_instance(&mut self) {
        let (_, running) = launch(&self.config, &self.broker).await;
        self.others.push(running);
    }

    /// Stops the running wallet-service, as a crash would from the broker's point of view.
    pub async fn kill(&mut self) {
        let (stop, task) = self.running.take().unwrap();
        stop.cancel();
        task.await.unwrap().unwrap();
    }

    pub async fn stop(mut self) {
        if self.running.is_some() {
            self.kill().await;
        }
        for (stop, task) in self.others.drain(..) {
            stop.cancel();
            task.await.unwrap().unwrap();
        }
        self.pool.close().await;
        let _ = self.broker.close(200, "done".into()).await;
        platform::database::drop_database(&self.config.service.database_url)
            .await
            .unwrap();
        self.vhost.delete().await.unwrap();
    }

    /// Publishes `body` to `queue` through the default exchange.
    pub async fn publish(&self, queue: &str, body: &[u8], properties: BasicProperties) {
        let channel = self.broker.create_channel().await.unwrap();
        channel.confirm_select(Default::default()).await.unwrap();
        platform::testing::poison::publish_one(&channel, queue, body, properties).await;
        let _ = channel.close(200, "done".into()).await;
    }

    /// A queue that receives every event of `wallet.events`, declared before publishing.
    pub async fn event_queue(&self) -> Events {
        self.events_of("wallet.events").await
    }

    /// A queue that receives every event published to (or forwarded into) `exchange`.
    pub async fn events_of(&self, exchange: &str) -> Events {
        Events::watch(&self.broker, exchange).await
    }

    /// An outbox handle on the service's database, for calling the wallet's functions
    /// directly (its wake-ups reach no relay: read the outbox table).
    pub fn outbox(&self) -> Outbox {
        Outbox::new(self.pool.clone(), platform::outbox::FALLBACK_POLL)
    }

    pub async fn balance(&self, user: uuid::Uuid) -> i64 {
        sqlx::query_scalar("select coalesce((select balance from wallets where user_id = $1), 0)")
            .bind(user)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// The name of the service's database.
    pub fn database_name(&self) -> String {
        let url = self.config.service.database_url.expose_secret();
        url.rsplit('/').next().unwrap().to_owned()
    }

    /// How many messages wait in `queue`.
    pub async fn queue_length(&self, queue: &str) -> u32 {
        let channel = self.broker.create_channel().await.unwrap();
        let length = platform::testing::poison::queue_length(&channel, queue).await;
        let _ = channel.close(200, "done".into()).await;
        length
    }

    pub async fn ledger_rows(&self, user: uuid::Uuid) -> i64 {
        sqlx::query_scalar("select count(*) from transactions where user_id = $1")
            .bind(user)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

type Running = (CancellationToken, JoinHandle<anyhow::Result<()>>);

/// Starts a wallet-service and waits until it has declared its queues.
async fn launch(config: &Config, broker: &Connection) -> (PgPool, Running) {
    let listener = tokio::net::TcpListener::bind(config.service.grpc_addr)
        .await
        .unwrap();
    let app = wallet_service::build(config.clone(), listener)
        .await
        .unwrap();
    let pool = app.pool().clone();
    let stop = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(stop.clone()));
    eventually(Duration::from_secs(10), "the request queues", || {
        // A failed passive declare closes its channel: a new channel for every attempt.
        async move {
            let channel = broker.create_channel().await.unwrap();
            channel
                .queue_declare(
                    // Declared last, so the exchanges and the other queues exist (and a
                    // request queue a test left there beforehand was declared again).
                    proto::messaging::wallet::ORDER_PAYMENTS.name.into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .ok()
                .map(|_| ())
        }
    })
    .await;
    (pool, (stop, task))
}

pub struct Events {
    consumer: lapin::Consumer,
    _channel: lapin::Channel,
}

impl Events {
    /// Every event published to (or forwarded into) `exchange` from now on, on a channel of
    /// `broker`. The exchange must exist.
    pub async fn watch(broker: &Connection, exchange: &str) -> Self {
        let channel = broker.create_channel().await.unwrap();
        let consumer = platform::testing::watch_exchange(&channel, exchange)
            .await
            .unwrap();
        Self {
            consumer,
            _channel: channel,
        }
    }

    /// Adds the `reference` of each outcome to `seen` until it holds `count` (an event
    /// delivered twice, as at-least-once allows, counts once).
    pub async fn collect_references(
        &mut self,
        seen: &mut std::collections::HashSet<String>,
        count: usize,
        each_within: Duration,
    ) {
        while seen.len() < count {
            let (_, event) = self.next(each_within).await.expect("another outcome");
            seen.insert(event["data"]["reference"].as_str().unwrap().to_owned());
        }
    }

    /// The next event (its routing key and CloudEvent body), waiting at most `within`.
    pub async fn next(&mut self, within: Duration) -> Option<(String, Value)> {
        platform::testing::next_json(&mut self.consumer, within)
            .await
            .unwrap()
    }
}

/// A broker user of the test's own with the permissions compose gives other systems, and
/// a channel of its (with publisher confirms). Delete the user when done.
pub async fn publisher(
    wallet: &TestWallet,
) -> (platform::testing::BrokerUser, Connection, lapin::Channel) {
    let user = wallet
        .vhost
        .add_user(&platform::testing::publisher_permissions())
        .await
        .unwrap();
    let connection = Connection::connect(
        user.amqp_url.expose_secret(),
        ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel.confirm_select(Default::default()).await.unwrap();
    (user, connection, channel)
}

/// `properties` of a message the platform itself publishes (`user_id` its broker user).
pub fn platform_properties(message_id: &str) -> BasicProperties {
    properties(message_id).with_user_id(platform::testing::platform_user().into())
}

pub fn properties(message_id: &str) -> BasicProperties {
    BasicProperties::default()
        .with_message_id(message_id.into())
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
}

pub use platform::testing::eventually;
