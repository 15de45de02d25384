//! The consumer's gate, against the real RabbitMQ: on a queue only the platform publishes to,
//! a message from another broker user is dead-lettered as `untrusted-publisher` before any
//! handler sees it; a message over the size limit is dead-lettered unread; and a long reason
//! is cut to its limit.

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;
use std::time::Duration;

use lapin::message::Delivery;
use lapin::options::{BasicGetOptions, ConfirmSelectOptions};
use lapin::types::AMQPValue;
use lapin::{BasicProperties, Connection};
use platform::amqp::{Publishers, Queue, QueueKind, try_connect};
use platform::consumer::{
    Handler, MAX_MESSAGE_BYTES, MAX_REASON_BYTES, ORIGINAL_USER_HEADER, REASON_HEADER, Verdict,
    consume,
};
use platform::testing::poison::publish_one;
use platform::testing::{Vhost, eventually, platform_user, unique_id};
use tokio_util::sync::CancellationToken;

const INTERNAL: Queue = Queue {
    name: "internal",
    exchange: None,
    routing_keys: &[],
    publishers: Publishers::Platform,
    kind: QueueKind::Quorum,
};

const PUBLIC: Queue = Queue {
    name: "public",
    exchange: None,
    routing_keys: &[],
    publishers: Publishers::Anyone,
    kind: QueueKind::Quorum,
};

/// Records the bodies it is given; a body starting with `reject` is invalid, with the rest
/// of the body as the reason.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Vec<u8>>>,
}

impl Handler for Recorder {
    async fn handle(&self, delivery: &Delivery) -> anyhow::Result<Verdict> {
        self.seen.lock().unwrap().push(delivery.data.clone());
        Ok(match delivery.data.strip_prefix(b"reject") {
            Some(reason) => Verdict::Invalid(String::from_utf8_lossy(reason).into_owned()),
            None => Verdict::Done,
        })
    }
}

/// A vhost with both queues declared and consumed by `recorder`, as the platform's user.
struct Setup {
    vhost: Vhost,
    platform: Connection,
    channel: lapin::Channel,
}

impl Setup {
    async fn start() -> Self {
        let vhost = Vhost::create(&format!("t_{}", unique_id())).await.unwrap();
        let platform = try_connect(&vhost.amqp_url, "trust-test").await.unwrap();
        let channel = platform.create_channel().await.unwrap();
        for queue in [&INTERNAL, &PUBLIC] {
            platform::amqp::declare_queue(&channel, queue)
                .await
                .unwrap();
        }
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        Self {
            vhost,
            platform,
            channel,
        }
    }

    /// The next dead-lettered copy from `queue`, with its reason.
    async fn next_dead_letter(&self, queue: &str) -> (Delivery, String) {
        let dlq = format!("{queue}.dlq");
        let message = eventually(Duration::from_secs(10), "a dead letter", || async {
            self.channel
                .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
        })
        .await;
        let reason = header(&message.delivery, REASON_HEADER).expect("a reason");
        (message.delivery, reason)
    }

    async fn stop(self) {
        let _ = self.platform.close(200, "done".into()).await;
        self.vhost.delete().await.unwrap();
    }
}

fn header(delivery: &Delivery, name: &str) -> Option<String> {
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(value) => Some(value.to_string()),
        _ => None,
    }
}

fn with_id(id: &str) -> BasicProperties {
    BasicProperties::default().with_message_id(id.into())
}

#[tokio::test]
async fn an_internal_queue_takes_only_messages_from_the_platforms_broker_user() {
    let setup = Setup::start().await;
    // Another system: it may publish (through the default exchange) everywhere.
    let other = setup
        .vhost
        .add_user(&serde_json::json!({"configure": "", "write": ".*", "read": ""}))
        .await
        .unwrap();
    let outsider = try_connect(&other.amqp_url, "outsider").await.unwrap();
    let outside = outsider.create_channel().await.unwrap();
    outside
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    // Forged as best it can: without user_id, and with its own (RabbitMQ refuses any other).
    publish_one(&outside, INTERNAL.name, b"forged-1", with_id("f1")).await;
    let own = with_id("f2").with_user_id(other.name.as_str().into());
    publish_one(&outside, INTERNAL.name, b"forged-2", own).await;
    // Public queues take it.
    publish_one(&outside, PUBLIC.name, b"request", with_id("p1")).await;
    // The platform, naming itself.
    let trusted = with_id("t1").with_user_id(platform_user().into());
    publish_one(&setup.channel, INTERNAL.name, b"event", trusted).await;

    let recorder = Recorder::default();
    let shutdown = CancellationToken::new();
    let consuming = async {
        tokio::try_join!(
            consume(&setup.platform, &INTERNAL, 4, &recorder, &shutdown),
            consume(&setup.platform, &PUBLIC, 4, &recorder, &shutdown),
        )
    };
    let checking = async {
        let mut forged = Vec::new();
        for _ in 0..2 {
            let (copy, reason) = setup.next_dead_letter(INTERNAL.name).await;
            assert_eq!(reason, "untrusted-publisher");
            // The copy is the platform's; the original publisher is kept for people.
            assert_eq!(
                copy.properties.user_id().as_ref().unwrap().as_str(),
                platform_user()
            );
            forged.push((copy.data.clone(), header(&copy, ORIGINAL_USER_HEADER)));
        }
        forged.sort();
        assert_eq!(
            forged,
            [
                (b"forged-1".to_vec(), None),
                (b"forged-2".to_vec(), Some(other.name.clone()))
            ]
        );
        eventually(Duration::from_secs(10), "the valid messages", || async {
            (recorder.seen.lock().unwrap().len() == 2).then_some(())
        })
        .await;
        shutdown.cancel();
    };
    let (consumed, ()) = tokio::join!(consuming, checking);
    consumed.unwrap();
    let mut seen = recorder.seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, [b"event".to_vec(), b"request".to_vec()]);

    let _ = outsider.close(200, "done".into()).await;
    other.delete().await.unwrap();
    setup.stop().await;
}

#[tokio::test]
async fn an_oversized_message_is_dead_lettered_unread_and_a_long_reason_is_cut() {
    let setup = Setup::start().await;
    let oversized = vec![b'x'; MAX_MESSAGE_BYTES + 1];
    publish_one(&setup.channel, PUBLIC.name, &oversized, with_id("big")).await;
    // Exactly at the limit: read.
    let largest = vec![b'y'; MAX_MESSAGE_BYTES];
    publish_one(&setup.channel, PUBLIC.name, &largest, with_id("largest")).await;
    // A handler's reason quoting 1,000 characters of the message, two bytes each.
    let long = format!("reject{}", "é".repeat(1000));
    publish_one(
        &setup.channel,
        PUBLIC.name,
        long.as_bytes(),
        with_id("long"),
    )
    .await;

    let recorder = Recorder::default();
    let shutdown = CancellationToken::new();
    let consuming = consume(&setup.platform, &PUBLIC, 1, &recorder, &shutdown);
    let checking = async {
        let mut reasons = std::collections::BTreeMap::new();
        for _ in 0..2 {
            let (copy, reason) = setup.next_dead_letter(PUBLIC.name).await;
            let id = copy.properties.message_id().as_ref().unwrap().to_string();
            reasons.insert(id, (reason, copy.data.len()));
        }
        shutdown.cancel();
        reasons
    };
    let (consumed, reasons) = tokio::join!(consuming, checking);
    consumed.unwrap();

    let (reason, size) = &reasons["big"];
    assert!(reason.starts_with("message too large"), "{reason}");
    assert_eq!(*size, MAX_MESSAGE_BYTES + 1, "the copy keeps the body");
    let (reason, _) = &reasons["long"];
    assert_eq!(*reason, "é".repeat(MAX_REASON_BYTES / 2));
    // The handler never saw the oversized one.
    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|body| body.len() <= MAX_MESSAGE_BYTES));
    setup.stop().await;
}
