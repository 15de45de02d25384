//! The outbox's wake-up, on the real PostgreSQL and RabbitMQ: a row committed through an
//! outbox transaction is published at once, while a row written by a path that forgets the
//! wake-up waits for the fallback poll. Tests lengthen that poll beyond their deadlines, so
//! such a path fails its test (this test shows it would).

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

#[tokio::test]
async fn a_commit_that_forgets_the_wake_up_is_not_published_within_a_tests_deadline() {
    let id = unique_id();
    let vhost = Vhost::create(&format!("t_{id}")).await.unwrap();
    let database = database_url(&format!("t_{id}_outbox"));
    let pool =
        platform::database::connect_and_migrate(&database, 2, &sqlx::migrate::Migrator::DEFAULT)
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
    let mut published = watch_exchange(&channel, EXCHANGE).await.unwrap();
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
    let (first, _) = next_json(&mut published, Duration::from_secs(5))
        .await
        .unwrap()
        .expect("the first event");
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
    let nothing = next_json(&mut published, Duration::from_secs(2))
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
        let (key, _) = next_json(&mut published, Duration::from_secs(5))
            .await
            .unwrap()
            .expect("published after the wake-up");
        keys.push(key);
    }
    assert_eq!(keys, ["forgotten", "woken"]);

    stop.cancel();
    relay.await.unwrap().unwrap();
    plain.close().await.unwrap();
    pool.close().await;
    let _ = broker.close(200, "done".into()).await;
    platform::database::drop_database(&database).await.unwrap();
    vhost.delete().await.unwrap();
}
