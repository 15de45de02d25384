//! Random bodies and properties on every queue the wallet and order services consume: each
//! message ends in that queue's dead-letter queue with a reason, nothing is left behind, and
//! the consumers keep working.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use platform::testing::eventually;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::Services;
use uuid::Uuid;

const QUEUES: [&str; 5] = [
    "wallet.transaction-requests",
    "wallet_queue",
    "wallet.order-payments",
    "order.payment-outcomes",
    "order.voucher-issuing",
];
const PER_QUEUE: u32 = 40;

/// A body no consumer can process, whatever the queue: invalid UTF-8, JSON that is not an
/// object, or an object whose keys are none the consumers need.
fn poison_body(rng: &mut StdRng) -> Vec<u8> {
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
            serde_json::to_vec(&object).unwrap()
        }
        _ => {
            // Truncated JSON.
            let full = br#"{"specversion":"1.0","type":"order.sent","data":{"order_id":"#;
            full[..rng.random_range(1..full.len())].to_vec()
        }
    }
}

fn random_properties(rng: &mut StdRng) -> BasicProperties {
    let mut properties = BasicProperties::default();
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

#[tokio::test]
async fn random_messages_on_every_consumed_queue_are_dead_lettered_and_nothing_stalls() {
    let services = Services::start(Duration::from_secs(900), true).await;
    for queue in QUEUES {
        eventually(Duration::from_secs(10), "the queues", || async {
            services.queue_exists(queue).await.then_some(())
        })
        .await;
    }
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed} (set FUZZ_SEED to replay)");
    let mut rng = StdRng::seed_from_u64(seed);

    let (broker, channel) = services.publisher().await;
    for queue in QUEUES {
        for _ in 0..PER_QUEUE {
            channel
                .basic_publish(
                    "".into(),
                    queue.into(),
                    BasicPublishOptions::default(),
                    &poison_body(&mut rng),
                    random_properties(&mut rng),
                )
                .await
                .unwrap()
                .await
                .unwrap();
        }
    }

    for queue in QUEUES {
        let dlq = format!("{queue}.dlq");
        eventually(
            Duration::from_secs(20),
            &format!("{queue}'s messages dead-lettered (seed {seed})"),
            || async {
                let dead = services.queue_length(&dlq).await;
                assert!(dead <= PER_QUEUE, "{dlq} holds {dead} (seed {seed})");
                (dead == PER_QUEUE).then_some(())
            },
        )
        .await;
        assert_eq!(services.queue_length(queue).await, 0, "{queue}");
        for _ in 0..PER_QUEUE {
            let reason = support::next_dead_letter_reason(&channel, &dlq).await;
            assert!(!reason.is_empty(), "{dlq} (seed {seed})");
        }
    }

    // The consumers are still at work: an order is paid end to end.
    services.assert_an_order_is_paid(400).await;
    let _ = broker.close(200, "done".into()).await;
    services.stop().await;
}
