//! Message fuzzing, for a service's queues:
//! - random bodies and properties that no consumer can process, each of which must end in the
//!   queue's dead-letter queue with a reason while the queue drains;
//! - valid messages with one value made hostile, each of which must be applied (recorded in
//!   the service's inbox) or dead-lettered, exactly once, never retried for ever.
//!
//! The seed is printed so a failure can be replayed with `FUZZ_SEED`.

use std::collections::BTreeMap;
use std::time::Duration;

use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use super::eventually;

/// A random generator seeded from `FUZZ_SEED`, or at random; prints the seed.
pub fn seeded() -> (u64, StdRng) {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed} (set FUZZ_SEED to replay)");
    (seed, StdRng::seed_from_u64(seed))
}

/// A body no consumer can process, whatever the queue: invalid UTF-8, JSON that is not an
/// object, an object whose keys are none the consumers need, or truncated JSON.
pub fn body(rng: &mut StdRng) -> Vec<u8> {
    match rng.random_range(0..4) {
        0 => {
            let mut bytes = vec![0xFF];
            bytes.extend((0..rng.random_range(0..300)).map(|_| rng.random::<u8>()));
            bytes
        }
        1 => {
            let values = ["null", "true", "-0", "1e999", "[]", "[{}]", "\"\\u0000\""];
            values[rng.random_range(0..values.len())]
                .as_bytes()
                .to_vec()
        }
        2 => {
            let mut object = serde_json::Map::new();
            for _ in 0..rng.random_range(0..6) {
                let key = format!("k_{}", rng.random::<u32>());
                let value = match rng.random_range(0..4) {
                    0 => serde_json::json!(rng.random::<i64>()),
                    1 => serde_json::json!(Uuid::new_v4()),
                    2 => serde_json::json!([rng.random::<bool>()]),
                    _ => serde_json::json!({"nested": rng.random::<f64>()}),
                };
                object.insert(key, value);
            }
            serde_json::Value::Object(object).to_string().into_bytes()
        }
        _ => {
            let full = br#"{"specversion":"1.0","type":"order.sent","data":{"order_id":"#;
            full[..rng.random_range(1..full.len())].to_vec()
        }
    }
}

/// The valid message `template` with one value, anywhere in it, replaced by a hostile one
/// (a NUL character, a long or empty string, an extreme number, another type) or removed.
/// The result may still be valid: a consumer must apply it or dead-letter it, never stall.
pub fn mutated(template: &serde_json::Value, rng: &mut StdRng) -> serde_json::Value {
    let mut message = template.clone();
    let mut paths = Vec::new();
    collect_paths(&message, &mut Vec::new(), &mut paths);
    let path = &paths[rng.random_range(0..paths.len())];
    let (last, parents) = path.split_last().expect("a path has at least one key");
    let mut parent = &mut message;
    for key in parents {
        parent = &mut parent[key.as_str()];
    }
    let object = parent.as_object_mut().expect("paths lead through objects");
    if rng.random_bool(0.15) {
        object.remove(last);
    } else {
        object.insert(last.clone(), hostile_value(rng));
    }
    message
}

/// The paths of every key of every object in `value`.
fn collect_paths(
    value: &serde_json::Value,
    prefix: &mut Vec<String>,
    paths: &mut Vec<Vec<String>>,
) {
    if let serde_json::Value::Object(object) = value {
        for (key, child) in object {
            prefix.push(key.clone());
            paths.push(prefix.clone());
            collect_paths(child, prefix, paths);
            prefix.pop();
        }
    }
}

fn hostile_value(rng: &mut StdRng) -> serde_json::Value {
    use serde_json::json;
    match rng.random_range(0..16) {
        0 => json!(null),
        1 => json!(rng.random::<bool>()),
        2 => json!(-1),
        3 => json!(0),
        4 => json!(i64::MAX),
        5 => json!(i64::MIN),
        6 => json!(1.5e300),
        7 => json!(""),
        8 => json!("a\u{0}b"),
        9 => json!("x".repeat(rng.random_range(256..20_000))),
        10 => json!("EURO"),
        11 => json!(Uuid::nil()),
        12 => json!(Uuid::new_v4()),
        13 => json!("2026-13-45T99:00:00Z"),
        14 => json!([]),
        _ => json!({}),
    }
}

/// Takes every message waiting in `dlq` and returns their message ids; a message without a
/// reason fails the test.
pub async fn take_dead_letters(channel: &Channel, dlq: &str) -> Vec<String> {
    let mut taken = Vec::new();
    while let Some(message) = channel
        .basic_get(dlq.into(), BasicGetOptions { no_ack: true })
        .await
        .expect("the broker answers basic.get")
    {
        let properties = &message.delivery.properties;
        reason(properties, dlq);
        let id = properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str().to_owned());
        taken.push(id.unwrap_or_default());
    }
    taken
}

/// Publishes `count` mutations of the messages `template` makes, each under a fresh message id
/// and random other properties, and returns them by message id.
pub async fn publish_mutated(
    channel: &Channel,
    queue: &str,
    count: u32,
    rng: &mut StdRng,
    template: impl Fn() -> serde_json::Value,
) -> BTreeMap<String, String> {
    let mut published = BTreeMap::new();
    for _ in 0..count {
        let message_id = Uuid::new_v4().to_string();
        let properties = properties(rng).with_message_id(message_id.clone().into());
        let body = mutated(&template(), rng).to_string();
        publish_one(channel, queue, body.as_bytes(), properties).await;
        published.insert(message_id, body);
    }
    published
}

/// Waits until each `published` message of `queue` was either applied (its id is in the
/// service's inbox, in `database`) or dead-lettered with a reason, and checks none was both:
/// a message the consumer retries for ever fails the test, which names it.
pub async fn assert_each_applied_or_dead_lettered(
    channel: &Channel,
    database: &sqlx::PgPool,
    queue: &str,
    published: &BTreeMap<String, String>,
    seed: u64,
) {
    let dlq = format!("{queue}.dlq");
    let ids: Vec<&String> = published.keys().collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut dead = Vec::new();
    // Not `eventually`: on time-out this names the messages that are stuck.
    loop {
        dead.extend(take_dead_letters(channel, &dlq).await);
        let applied: Vec<String> =
            sqlx::query_scalar("select message_id from inbox where message_id = any($1)")
                .bind(&ids)
                .fetch_all(database)
                .await
                .expect("the inbox can be read");
        let mut outcomes: Vec<&String> = applied.iter().chain(&dead).collect();
        outcomes.sort();
        if outcomes.len() >= ids.len() {
            assert_eq!(outcomes, ids, "each message of {queue} once (seed {seed})");
            return;
        }
        if std::time::Instant::now() > deadline {
            let stuck: Vec<&String> = published
                .iter()
                .filter(|(id, _)| !outcomes.contains(id))
                .map(|(_, body)| body)
                .collect();
            panic!("{queue}: neither applied nor dead-lettered (seed {seed}): {stuck:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Random properties: a message id or none, any content type, an empty `reply_to`, a stray
/// header, any priority. They carry the platform's `user_id`, as the services' own messages
/// do, so that the fuzzing reaches past the consumers' check of the publisher.
pub fn properties(rng: &mut StdRng) -> BasicProperties {
    let mut properties = BasicProperties::default().with_user_id(super::platform_user().into());
    if rng.random_bool(0.7) {
        properties = properties.with_message_id(Uuid::new_v4().to_string().into());
    }
    let content_types = [
        "application/json",
        "text/plain",
        "application/octet-stream",
        "",
    ];
    if rng.random_bool(0.5) {
        let content_type = content_types[rng.random_range(0..content_types.len())];
        properties = properties.with_content_type(ShortString::from(content_type));
    }
    if rng.random_bool(0.3) {
        properties = properties.with_reply_to("".into());
    }
    if rng.random_bool(0.3) {
        let mut headers = FieldTable::default();
        headers.insert(
            "x-random".into(),
            AMQPValue::LongLongInt(rng.random::<i64>()),
        );
        properties = properties.with_headers(headers);
    }
    properties.with_priority(rng.random_range(0..10))
}

/// Publishes `count` poison messages straight to `queue` (through the default exchange).
pub async fn publish(channel: &Channel, queue: &str, count: u32, rng: &mut StdRng) {
    for _ in 0..count {
        let body = body(rng);
        publish_one(channel, queue, &body, properties(rng)).await;
    }
}

/// Publishes one message straight to `queue`, waiting for its confirm when `channel` is in
/// confirm mode.
pub async fn publish_one(channel: &Channel, queue: &str, body: &[u8], properties: BasicProperties) {
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
        .expect("the broker takes the message")
        .await
        .expect("the broker confirms the message");
}

/// Waits until `<queue>.dlq` holds exactly `count` messages and `queue` none, then takes
/// them all and checks each carries an `x-dead-letter-reason`.
pub async fn assert_all_dead_lettered(channel: &Channel, queue: &str, count: u32, seed: u64) {
    let dlq = format!("{queue}.dlq");
    eventually(
        Duration::from_secs(20),
        &format!("{queue}'s messages dead-lettered (seed {seed})"),
        || async {
            let dead = queue_length(channel, &dlq).await;
            assert!(dead <= count, "{dlq} holds {dead} of {count} (seed {seed})");
            (dead == count).then_some(())
        },
    )
    .await;
    assert_eq!(queue_length(channel, queue).await, 0, "{queue} drained");
    for _ in 0..count {
        next_dead_letter_reason(channel, &dlq).await;
    }
}

/// Messages waiting in `queue`, which must exist.
pub async fn queue_length(channel: &Channel, queue: &str) -> u32 {
    declare_passively(channel, queue)
        .await
        .unwrap_or_else(|error| panic!("{queue} exists: {error}"))
        .message_count()
}

/// Whether `queue` exists. A passive declare of a missing queue closes its channel, so this
/// takes a channel of its own.
pub async fn queue_exists(connection: &Connection, queue: &str) -> bool {
    let channel = connection
        .create_channel()
        .await
        .expect("the broker opens a channel");
    let declared = declare_passively(&channel, queue).await.is_ok();
    let _ = channel.close(200, "done".into()).await;
    declared
}

async fn declare_passively(channel: &Channel, queue: &str) -> lapin::Result<lapin::Queue> {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
}

/// Takes the next message of `dlq` (waiting for one) and returns its `x-dead-letter-reason`.
pub async fn next_dead_letter_reason(channel: &Channel, dlq: &str) -> String {
    next_dead_letter(channel, dlq).await.reason
}

/// A message taken from a dead-letter queue.
#[derive(Debug)]
pub struct DeadLetter {
    /// Its `message_id`, if it had one.
    pub message_id: Option<String>,
    /// Its `x-dead-letter-reason` (a message without one fails the test).
    pub reason: String,
}

/// Takes the next message of `dlq`, waiting up to 10 s for one.
pub async fn next_dead_letter(channel: &Channel, dlq: &str) -> DeadLetter {
    let message = eventually(
        Duration::from_secs(10),
        "a dead-lettered message",
        || async {
            channel
                .basic_get(dlq.into(), BasicGetOptions { no_ack: true })
                .await
                .expect("the broker answers basic.get")
        },
    )
    .await;
    let properties = &message.delivery.properties;
    DeadLetter {
        message_id: properties.message_id().as_ref().map(ToString::to_string),
        reason: reason(properties, dlq),
    }
}

fn reason(properties: &BasicProperties, dlq: &str) -> String {
    let headers = properties.headers().as_ref();
    match headers.and_then(|headers| headers.inner().get("x-dead-letter-reason")) {
        Some(AMQPValue::LongString(reason)) if !reason.to_string().is_empty() => reason.to_string(),
        other => panic!("{dlq}: no reason header: {other:?}"),
    }
}
