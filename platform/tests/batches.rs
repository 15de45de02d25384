//! `consumer::consume_batches` against the real RabbitMQ and PostgreSQL: the messages waiting
//! are applied together, each valid one once; an unreadable one and one holding a value the
//! database refuses are dead-lettered with their reasons; a transient failure is retried;
//! and every message is acknowledged.

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use platform::amqp::{Publishers, Queue, QueueKind, try_connect};
use platform::consumer::{BatchHandler, consume_batches};
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

#[tokio::test]
async fn waiting_messages_are_applied_together_and_bad_ones_dead_lettered_with_their_reason() {
    let vhost = Vhost::create(&format!("t_{}", unique_id())).await.unwrap();
    let broker = try_connect(&vhost.amqp_url, "batches-consumer")
        .await
        .unwrap();
    let channel = broker.create_channel().await.unwrap();
    platform::amqp::declare_queue_with_dlq(&channel, QUEUE)
        .await
        .unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut bodies: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|n| format!("message {n}").into_bytes())
        .collect();
    bodies[7] = vec![0xff, 0xfe];
    bodies[12] = b"a\0b".to_vec();
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
