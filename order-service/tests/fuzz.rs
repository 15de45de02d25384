//! Random bodies and properties on every queue the wallet and order services consume: each
//! message ends in that queue's dead-letter queue with a reason, nothing is left behind, and
//! the consumers keep working.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use platform::testing::{eventually, poison};
use serde_json::{Value, json};
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

fn event(kind: &str, data: Value) -> Value {
    json!({"specversion": "1.0", "id": Uuid::new_v4(), "source": "/fuzz", "type": kind,
        "time": "2026-11-01T10:00:00Z", "datacontenttype": "application/json", "data": data})
}

fn request() -> Value {
    json!({"user_id": Uuid::new_v4(), "type": "deposit", "amount": 500, "currency": "EUR",
        "description": "fuzz", "reference": Uuid::new_v4()})
}

fn legacy_request() -> Value {
    json!({"pattern": "transaction_emitted", "data": {"userId": Uuid::new_v4(),
        "transaction": {"id": Uuid::new_v4(), "amount": 10.5, "operation": 0}}})
}

fn order_sent() -> Value {
    event("order.sent", json!({"order_id": Uuid::new_v4()}))
}

fn payment_requested() -> Value {
    event(
        "order.payment_requested",
        json!({"order_id": Uuid::new_v4(), "user_id": Uuid::new_v4(), "attempt": 1,
            "amount": 100, "currency": "EUR"}),
    )
}

fn purchase_created() -> Value {
    event(
        "transaction.created",
        json!({"id": Uuid::new_v4(), "user_id": Uuid::new_v4(), "type": "purchase",
            "amount": 100, "currency": "EUR", "balance_after": 0, "source": "order",
            "reference": format!("order:{}", Uuid::new_v4())}),
    )
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
    let (seed, mut rng) = poison::seeded();
    let (broker, channel) = services.publisher().await;
    for queue in QUEUES {
        poison::publish(&channel, queue, PER_QUEUE, &mut rng).await;
    }
    for queue in QUEUES {
        poison::assert_all_dead_lettered(&channel, queue, PER_QUEUE, seed).await;
    }

    // Valid messages with one value made hostile. Where the inbox is keyed by the message id,
    // each must be applied or dead-lettered, never retried for ever.
    let exact = [
        (
            "wallet.transaction-requests",
            &services.wallet_pool,
            request as fn() -> Value,
        ),
        ("wallet_queue", &services.wallet_pool, legacy_request),
        ("order.voucher-issuing", &services.order_pool, order_sent),
    ];
    for (queue, database, template) in exact {
        let published =
            poison::publish_mutated(&channel, queue, PER_QUEUE, &mut rng, template).await;
        poison::assert_each_applied_or_dead_lettered(&channel, database, queue, &published, seed)
            .await;
    }
    // The others record a derived id or none (an event about no order), so they are only
    // checked to drain.
    for (queue, template) in [
        ("wallet.order-payments", payment_requested as fn() -> Value),
        ("order.payment-outcomes", purchase_created),
    ] {
        poison::publish_mutated(&channel, queue, PER_QUEUE, &mut rng, template).await;
    }
    for queue in ["wallet.order-payments", "order.payment-outcomes"] {
        eventually(
            Duration::from_secs(20),
            &format!("{queue} drained"),
            || async { (services.queue_length(queue).await == 0).then_some(()) },
        )
        .await;
        poison::take_dead_letters(&channel, &format!("{queue}.dlq")).await;
    }

    // The consumers are still at work: an order is paid end to end.
    services.assert_an_order_is_paid(400).await;
    let _ = broker.close(200, "done".into()).await;
    services.stop().await;
}
