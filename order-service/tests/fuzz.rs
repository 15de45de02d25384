//! Random bodies and properties on every queue the wallet and order services consume: each
//! message ends in that queue's dead-letter queue with a reason, nothing is left behind, and
//! the consumers keep working.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use platform::testing::{eventually, poison};
use support::Services;

const QUEUES: [&str; 5] = [
    "wallet.transaction-requests",
    "wallet_queue",
    "wallet.order-payments",
    "order.payment-outcomes",
    "order.voucher-issuing",
];
const PER_QUEUE: u32 = 40;

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

    // The consumers are still at work: an order is paid end to end.
    services.assert_an_order_is_paid(400).await;
    let _ = broker.close(200, "done".into()).await;
    services.stop().await;
}
