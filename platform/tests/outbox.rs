//! The outbox's wake-up, on the real PostgreSQL and RabbitMQ: a row committed through an
//! outbox transaction is published at once, while a row written by a path that forgets the
//! wake-up waits for the fallback poll. Tests lengthen that poll beyond their deadlines, so
//! such a path fails its test (this test shows it would). And the relay publishes in the
//! order rows were written, across its batches.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use platform::amqp::try_connect;
use platform::cloud_event::outbox_event;
use platform::outbox::Outbox;
use platform::testing::{Vhost, database_url, next_json, unique_id, watch_exchange};
use secrecy::ExposeSecret;
use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;

const EXCHANGE: &str = "outbox-test";

/// A database with an outbox table, a vhost with the exchange, a consumer of everything
/// published to it, and a relay running.
struct Relayed {
    vhost: Vhost,
    database: secrecy::SecretString,
    pool: sqlx::PgPool,
    broker: lapin::Connection,
    published: lapin::Consumer,
    outbox: Outbox,
    stop: CancellationToken,
    relay: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Relayed {
    async fn start() -> Self {
        let id = unique_id();
        let vhost = Vhost::create(&format!("t_{id}")).await.unwrap();
        let database = database_url(&format!("t_{id}_outbox"));
        let pool = platform::database::connect_and_migrate(
            &database,
            2,
            &sqlx::migrate::Migrator::DEFAULT,
        )
        .await
        .unwrap();
        sqlx::query(
            "create table outbox (
                 id bigint generated always as identity primary key,
                 message_id uuid not null unique, exchange text not null, routing_key text not null,
                 correlation_id text, payload jsonb not null,
                 created_at timestamptz not null default now(), published_at timestamptz)",
        )
        .execute(&pool)
        .await
        .unwrap();
        let broker = try_connect(&vhost.amqp_url, "outbox-test").await.unwrap();
        let channel = broker.create_channel().await.unwrap();
        platform::amqp::declare_topic_exchange(&channel, EXCHANGE)
            .await
            .unwrap();
        let published = watch_exchange(&channel, EXCHANGE).await.unwrap();
        // As every test sets it: no poll within the test's deadlines.
        let outbox = Outbox::new(pool.clone(), Duration::from_secs(3600));
        let stop = CancellationToken::new();
        let relay = {
            let (outbox, stop) = (outbox.clone(), stop.clone());
            let url = vhost.amqp_url.expose_secret().to_owned();
            tokio::spawn(async move {
                let connection = try_connect(&url.into(), "outbox-relay").await.unwrap();
                outbox.relay(&connection, &stop).await
            })
        };
        Self {
            vhost,
            database,
            pool,
            broker,
            published,
            outbox,
            stop,
            relay,
        }
    }

    async fn next(&mut self) -> (String, serde_json::Value) {
        next_json(&mut self.published, Duration::from_secs(5))
            .await
            .unwrap()
            .expect("an event published within 5 s")
    }

    async fn stop(self) {
        self.stop.cancel();
        self.relay.await.unwrap().unwrap();
        self.pool.close().await;
        let _ = self.broker.close(200, "done".into()).await;
        platform::database::drop_database(&self.database)
            .await
            .unwrap();
        self.vhost.delete().await.unwrap();
    }
}

#[tokio::test]
async fn rows_beyond_one_relay_batch_are_published_in_the_order_they_were_written() {
    let mut relayed = Relayed::start().await;
    // More than two of the relay's batches, written in one transaction.
    let count = 450;
    let mut tx = relayed.outbox.begin().await.unwrap();
    for n in 0..count {
        let event = outbox_event(EXCHANGE, "test", "numbered", serde_json::json!({ "n": n }));
        tx.enqueue(&event).await.unwrap();
    }
    tx.commit().await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..count {
        let (_, event) = relayed.next().await;
        seen.push(event["data"]["n"].as_i64().unwrap());
    }
    assert_eq!(seen, (0..count).collect::<Vec<_>>());
    let unpublished: i64 =
        sqlx::query_scalar("select count(*) from outbox where published_at is null")
            .fetch_one(&relayed.pool)
            .await
            .unwrap();
    assert_eq!(unpublished, 0);
    relayed.stop().await;
}

#[tokio::test]
async fn a_commit_that_forgets_the_wake_up_is_not_published_within_a_tests_deadline() {
    let mut relayed = Relayed::start().await;
    let (outbox, pool) = (relayed.outbox.clone(), relayed.pool.clone());
    let database = relayed.database.clone();

    // Once this is published, the relay has looked at the table and waits for a wake-up.
    let mut tx = outbox.begin().await.unwrap();
    tx.enqueue(&outbox_event(
        EXCHANGE,
        "test",
        "first",
        serde_json::json!({}),
    ))
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (first, _) = relayed.next().await;
    assert_eq!(first, "first");

    // The relay marks it published, then looks again and waits. (The test runs on one
    // thread with the relay: whenever the test runs and every pooled connection is idle, the
    // relay is parked in that wait, not in the middle of a look.)
    let mut plain = PgConnection::connect(database.expose_secret())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let marked: bool = sqlx::query_scalar(
            "select published_at is not null from outbox where routing_key = 'first'",
        )
        .fetch_one(&mut plain)
        .await
        .unwrap();
        if marked && pool.num_idle() == usize::try_from(pool.size()).unwrap() {
            break;
        }
        assert!(Instant::now() < deadline, "the relay did not settle");
        tokio::task::yield_now().await;
    }

    // A write path that forgets the wake-up: a plain statement, outside the outbox handle.
    let forgotten = outbox_event(EXCHANGE, "test", "forgotten", serde_json::json!({}));
    sqlx::query(
        "insert into outbox (message_id, exchange, routing_key, payload) values ($1, $2, $3, $4)",
    )
    .bind(forgotten.message_id)
    .bind(&forgotten.exchange)
    .bind(&forgotten.routing_key)
    .bind(&forgotten.payload)
    .execute(&mut plain)
    .await
    .unwrap();
    let nothing = next_json(&mut relayed.published, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        nothing.is_none(),
        "published without a wake-up: {nothing:?}"
    );

    // Through the outbox: published at once, and the forgotten row with it.
    let mut tx = outbox.begin().await.unwrap();
    tx.enqueue(&outbox_event(
        EXCHANGE,
        "test",
        "woken",
        serde_json::json!({}),
    ))
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let (key, _) = relayed.next().await;
        keys.push(key);
    }
    assert_eq!(keys, ["forgotten", "woken"]);

    plain.close().await.unwrap();
    relayed.stop().await;
}
