//! `consumer::consume_batches` against the real RabbitMQ and PostgreSQL: the messages waiting
//! are applied together, each valid one once; an unreadable one and one holding a value the
//! database refuses are dead-lettered with their reasons; a transient failure is retried;
//! and every message is acknowledged. In lanes, the messages of other keys go on while one
//! key's batch is held, each key in order, and no acknowledgement runs ahead of the held
//! message.

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use platform::amqp::{Publishers, Queue, QueueKind, try_connect};
use platform::consumer::{BatchHandler, consume_batches, consume_in_lanes};
use platform::testing::poison::{next_dead_letter_reason, queue_length};
use platform::testing::{Vhost, eventually, unique_id};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

const QUEUE: &str = "batches";
/// Published to by the test, as another system would.
const CONTRACT: Queue = Queue {
    name: QUEUE,
    exchange: None,
    routing_keys: &[],
    publishers: Publishers::Anyone,
    kind: QueueKind::Quorum,
};
/// The batch size; the consumer takes twice as many messages unacknowledged.
const BATCH: u16 = 8;
/// As many as the consumer takes at once, so all of them wait while the first batch is held.
const MESSAGES: usize = 16;

/// Applies messages by sending their text through PostgreSQL (which refuses a NUL
/// character), and records each batch it applied. Its first call waits for `release`, then
/// fails as a lost connection would.
struct Recorder {
    pool: PgPool,
    release: Semaphore,
    held: AtomicBool,
    applied: Mutex<Vec<Vec<String>>>,
}

impl BatchHandler for Recorder {
    type Message = String;

    fn read(&self, delivery: &lapin::message::Delivery) -> Result<String, String> {
        String::from_utf8(delivery.data.clone()).map_err(|_| "not UTF-8".to_owned())
    }

    async fn apply(&self, messages: &[String]) -> anyhow::Result<()> {
        if !self.held.swap(true, Ordering::SeqCst) {
            let _released = self.release.acquire().await?;
            anyhow::bail!(sqlx::Error::PoolTimedOut);
        }
        let texts: Vec<String> = sqlx::query_scalar("select unnest($1::text[])")
            .bind(messages)
            .fetch_all(&self.pool)
            .await?;
        self.applied.lock().unwrap().push(texts);
        Ok(())
    }
}

/// A fresh vhost holding the test's queue (and its dead-letter queue) with `bodies` in it,
/// published with confirms as message ids `m0`, `m1`, ...; and a connection (named `name`)
/// and channel to it.
async fn queue_holding(
    name: &str,
    bodies: &[Vec<u8>],
) -> (Vhost, lapin::Connection, lapin::Channel) {
    let vhost = Vhost::create(&format!("t_{}", unique_id())).await.unwrap();
    let broker = try_connect(&vhost.amqp_url, name).await.unwrap();
    let channel = broker.create_channel().await.unwrap();
    platform::amqp::declare_queue_with_dlq(&channel, QUEUE)
        .await
        .unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for (n, body) in bodies.iter().enumerate() {
        channel
            .basic_publish(
                "".into(),
                QUEUE.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_message_id(format!("m{n}").into()),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    (vhost, broker, channel)
}

#[tokio::test]
async fn waiting_messages_are_applied_together_and_bad_ones_dead_lettered_with_their_reason() {
    let mut bodies: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|n| format!("message {n}").into_bytes())
        .collect();
    bodies[7] = vec![0xff, 0xfe];
    bodies[12] = b"a\0b".to_vec();
    let (vhost, broker, channel) = queue_holding("batches-consumer", &bodies).await;

    let handler = Recorder {
        pool: PgPool::connect(platform::testing::database_url("postgres").expose_secret())
            .await
            .unwrap(),
        release: Semaphore::new(0),
        held: AtomicBool::new(false),
        applied: Mutex::default(),
    };
    let shutdown = CancellationToken::new();
    let consuming = consume_batches(&broker, &CONTRACT, BATCH, &handler, &shutdown);
    let checking = async {
        // The first batch is held until every message reached the consumer (none ready).
        eventually(
            Duration::from_secs(10),
            "every message delivered",
            || async { (queue_length(&channel, QUEUE).await == 0).then_some(()) },
        )
        .await;
        handler.release.add_permits(1);
        eventually(
            Duration::from_secs(10),
            "the valid messages applied",
            || async {
                let count: usize = handler.applied.lock().unwrap().iter().map(Vec::len).sum();
                (count == MESSAGES - 2).then_some(())
            },
        )
        .await;
        let dead = eventually(Duration::from_secs(10), "two dead letters", || async {
            let dead = queue_length(&channel, &format!("{QUEUE}.dlq")).await;
            (dead == 2).then_some(dead)
        })
        .await;
        shutdown.cancel();
        dead
    };
    let (consumed, dead) = tokio::join!(consuming, checking);
    consumed.unwrap();
    assert_eq!(dead, 2);

    let applied = handler.applied.lock().unwrap().clone();
    let mut texts: Vec<String> = applied.iter().flatten().cloned().collect();
    texts.sort();
    let mut expected: Vec<String> = (0..MESSAGES)
        .filter(|n| ![7, 12].contains(n))
        .map(|n| format!("message {n}"))
        .collect();
    expected.sort();
    assert_eq!(texts, expected, "each valid message applied once");
    assert!(
        applied.iter().any(|batch| batch.len() > 1),
        "messages waiting together were applied together: {applied:?}"
    );

    // With the consumer's connection gone, a message it did not acknowledge would be back.
    broker.close(200, "done".into()).await.unwrap();
    let checker = try_connect(&vhost.amqp_url, "batches-checker")
        .await
        .unwrap();
    let channel = checker.create_channel().await.unwrap();
    assert_eq!(queue_length(&channel, QUEUE).await, 0, "all acknowledged");
    // Dead-lettered in the order they came: m7, then m12.
    let dlq = format!("{QUEUE}.dlq");
    assert_eq!(next_dead_letter_reason(&channel, &dlq).await, "not UTF-8");
    let refused = next_dead_letter_reason(&channel, &dlq).await;
    assert!(
        refused.starts_with("the database refused a value: invalid byte sequence"),
        "{refused}"
    );
    checker.close(200, "done".into()).await.unwrap();
    vhost.delete().await.unwrap();
}

/// Applies messages `"<key> <text>"` in the lane of their key, recording what each key got in
/// order; a batch holding key 0 waits for `release`.
struct Keyed {
    release: Semaphore,
    applied: Mutex<Vec<(u128, String)>>,
}

impl BatchHandler for Keyed {
    type Message = (u128, String);

    fn read(&self, delivery: &lapin::message::Delivery) -> Result<(u128, String), String> {
        let text = String::from_utf8(delivery.data.clone()).map_err(|_| "not UTF-8")?;
        let key = text.split(' ').next().and_then(|key| key.parse().ok());
        Ok((key.ok_or("no key")?, text))
    }

    fn order_key(&self, message: &(u128, String)) -> u128 {
        message.0
    }

    async fn apply(&self, messages: &[(u128, String)]) -> anyhow::Result<()> {
        if messages.iter().any(|(key, _)| *key == 0) {
            let _released = self.release.acquire().await?;
        }
        self.applied
            .lock()
            .unwrap()
            .extend(messages.iter().cloned());
        Ok(())
    }
}

/// Lanes apply the batches of other keys while one is held, each key's messages in the order
/// they came. No acknowledgement runs ahead of the held message (one with `multiple` would
/// cover it); once it is applied, every message is acknowledged.
#[tokio::test]
async fn lanes_apply_other_keys_while_one_is_held_and_keep_each_keys_order() {
    // Key 0 first (lane 0, held); then keys 1 and 3, which share lane 1 of 2.
    let mut bodies = vec![b"0 held".to_vec()];
    let key = |n: u32| if n.is_multiple_of(2) { 1 } else { 3 };
    bodies.extend((0..10).map(|n| format!("{} {n}", key(n)).into_bytes()));
    let (vhost, broker, _channel) = queue_holding("lanes-consumer", &bodies).await;

    let handler = Keyed {
        release: Semaphore::new(0),
        applied: Mutex::default(),
    };
    let shutdown = CancellationToken::new();
    let consuming = consume_in_lanes(&broker, &CONTRACT, 4, 2, &handler, &shutdown);
    // The queue's (ready, unacknowledged) messages, as the management API last counted them
    // (its figures lag by a few seconds).
    let path = format!("/queues/{}/{QUEUE}", vhost.name);
    let counts = async || {
        let queue = platform::testing::management_get(&path).await.unwrap();
        (
            queue["messages_ready"].as_u64(),
            queue["messages_unacknowledged"].as_u64(),
        )
    };
    let checking = async {
        eventually(
            Duration::from_secs(10),
            "the other keys applied while key 0 is held",
            || async { (handler.applied.lock().unwrap().len() == 10).then_some(()) },
        )
        .await;
        eventually(
            Duration::from_secs(30),
            "every message delivered, none acknowledged",
            || async { (counts().await == (Some(0), Some(11))).then_some(()) },
        )
        .await;
        handler.release.add_permits(1);
        eventually(
            Duration::from_secs(30),
            "every message acknowledged",
            || async { (counts().await == (Some(0), Some(0))).then_some(()) },
        )
        .await;
        shutdown.cancel();
    };
    let (consumed, ()) = tokio::join!(consuming, checking);
    consumed.unwrap();

    let applied = handler.applied.lock().unwrap().clone();
    assert_eq!(applied.len(), 11);
    for key in [1, 3] {
        let texts: Vec<&str> = applied
            .iter()
            .filter(|(of, _)| *of == key)
            .map(|(_, text)| text.as_str())
            .collect();
        let expected: Vec<String> = (0..10_u32)
            .filter(|n| n.is_multiple_of(2) == (key == 1))
            .map(|n| format!("{key} {n}"))
            .collect();
        assert_eq!(texts, expected, "key {key} in order");
    }
    broker.close(200, "done".into()).await.unwrap();
    vhost.delete().await.unwrap();
}
