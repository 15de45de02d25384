//! The wallet's trust boundary on RabbitMQ, against the real broker and database: another
//! system's broker user (with the permissions compose gives other systems) cannot pose as
//! order-service, and cannot make the wallet publish into the platform's queues.

// A test (and its helpers) should panic on anything unexpected.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use platform::testing::poison::{next_dead_letter_reason, publish_one};
use proto::messaging::wallet::{LEGACY_REQUESTS, ORDER_PAYMENTS, TRANSACTION_REQUESTS};
use serde_json::json;
use support::{TestWallet, platform_properties, properties, publisher};
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(10);

fn order_event(kind: &str, data: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"specversion": "1.0", "id": Uuid::new_v4(),
        "source": "/order-service", "type": kind, "time": "2026-11-29T10:00:00Z",
        "datacontenttype": "application/json", "data": data}))
    .unwrap()
}

/// Before: anyone who could publish put an `order.cancelled` carrying a paid order's payment
/// on `wallet.order-payments` (through the default exchange), and the wallet refunded it.
#[tokio::test]
async fn a_forged_order_cancelled_from_another_broker_user_refunds_nothing() {
    let wallet = TestWallet::start().await;
    let mut events = wallet.event_queue().await;
    let user = Uuid::new_v4();
    let order = Uuid::new_v4();
    let deposit = json!({"user_id": user, "type": "deposit", "amount": 1000});
    wallet
        .publish(
            TRANSACTION_REQUESTS.name,
            &serde_json::to_vec(&deposit).unwrap(),
            properties("deposit"),
        )
        .await;
    events.next(WITHIN).await.expect("the deposit");
    let payment = json!({"order_id": order, "user_id": user, "attempt": 1, "amount": 600,
        "currency": "EUR", "reference": format!("order:{order}")});
    let paying = order_event("order.payment_requested", &payment);
    wallet
        .publish(ORDER_PAYMENTS.name, &paying, platform_properties("pay"))
        .await;
    let (_, paid) = events.next(WITHIN).await.expect("the purchase");
    assert_eq!(paid["data"]["type"], "purchase");
    assert_eq!(wallet.balance(user).await, 400);

    // The order's cancellation, as order-service would send it, but from another system.
    let cancelled = order_event(
        "order.cancelled",
        &json!({"order_id": order, "user_id": user, "status": "cancelled", "subtotal": 600,
            "discount": 0, "total": 600, "currency": "EUR", "voucher_code": null,
            "payment_transaction_id": paid["data"]["id"], "refund_transaction_id": null}),
    );
    let (other, connection, channel) = publisher(&wallet).await;
    let forged = properties("forged-refund").with_user_id(other.name.as_str().into());
    publish_one(&channel, ORDER_PAYMENTS.name, &cancelled, forged).await;
    let reason =
        next_dead_letter_reason(&channel_of(&wallet).await, "wallet.order-payments.dlq").await;
    assert_eq!(reason, "untrusted-publisher");
    assert_eq!(wallet.balance(user).await, 400);
    assert_eq!(wallet.ledger_rows(user).await, 2);

    // The same event from order-service (the platform's user) is a refund: only the
    // publisher made the difference.
    wallet
        .publish(
            ORDER_PAYMENTS.name,
            &cancelled,
            platform_properties("refund"),
        )
        .await;
    let (_, refund) = events.next(WITHIN).await.expect("the refund");
    assert_eq!(refund["data"]["type"], "cancellation");
    assert_eq!(wallet.balance(user).await, 1000);

    let _ = connection.close(200, "done".into()).await;
    other.delete().await.unwrap();
    wallet.stop().await;
}

async fn channel_of(wallet: &TestWallet) -> lapin::Channel {
    wallet.broker.create_channel().await.unwrap()
}

/// Before: a request's `reply_to` could name any queue, and the wallet (as the platform)
/// published its outcome there.
#[tokio::test]
async fn a_reply_to_naming_a_platform_queue_is_dead_lettered_and_nothing_is_published_there() {
    let wallet = TestWallet::start().await;
    let mut events = wallet.event_queue().await;
    let (other, connection, channel) = publisher(&wallet).await;
    let user = Uuid::new_v4();
    let deposit =
        serde_json::to_vec(&json!({"user_id": user, "type": "deposit", "amount": 100})).unwrap();
    let legacy = serde_json::to_vec(&json!({"pattern": "transaction_emitted",
        "data": {"userId": user, "transaction": {"id": "l-1", "amount": 1, "operation": 0}}}))
    .unwrap();
    let targets = [
        (TRANSACTION_REQUESTS.name, &deposit, ORDER_PAYMENTS.name),
        (
            TRANSACTION_REQUESTS.name,
            &deposit,
            "statement.transactions",
        ),
        (
            TRANSACTION_REQUESTS.name,
            &deposit,
            "wallet.order-payments.dlq",
        ),
        (LEGACY_REQUESTS.name, &legacy, "order.payment-outcomes"),
    ];
    for (n, (queue, body, reply_to)) in targets.iter().enumerate() {
        let properties = properties(&format!("r{n}")).with_reply_to((*reply_to).into());
        publish_one(&channel, queue, body, properties).await;
    }

    let checking = channel_of(&wallet).await;
    for (queue, _, reply_to) in &targets[..3] {
        let reason = next_dead_letter_reason(&checking, &format!("{queue}.dlq")).await;
        assert!(
            reason.starts_with("reply_to may not name a platform queue"),
            "{reply_to}: {reason}"
        );
    }
    let reason = next_dead_letter_reason(&checking, "wallet_queue.dlq").await;
    assert!(reason.contains("order.payment-outcomes"), "{reason}");
    // Nothing applied, nothing announced, nothing published into the platform's queues.
    let marker =
        serde_json::to_vec(&json!({"user_id": user, "type": "deposit", "amount": 7})).unwrap();
    wallet
        .publish(TRANSACTION_REQUESTS.name, &marker, properties("marker"))
        .await;
    let (_, event) = events.next(WITHIN).await.expect("the marker's outcome");
    assert_eq!(event["data"]["amount"], 7);
    assert_eq!(wallet.balance(user).await, 7);
    // Replies go through the default exchange: the outbox holds none.
    let replies: i64 = sqlx::query_scalar("select count(*) from outbox where exchange = ''")
        .fetch_one(&wallet.pool)
        .await
        .unwrap();
    assert_eq!(replies, 0);
    assert_eq!(wallet.queue_length("wallet.order-payments.dlq").await, 0);

    let _ = connection.close(200, "done".into()).await;
    other.delete().await.unwrap();
    wallet.stop().await;
}

/// A request body over 64 KiB is dead-lettered unread, and a reason quoting a long value is
/// cut to 256 bytes; the consumer goes on.
#[tokio::test]
async fn an_oversized_request_is_dead_lettered_unread_and_a_long_reason_is_cut() {
    let wallet = TestWallet::start().await;
    let mut events = wallet.event_queue().await;
    let (other, connection, channel) = publisher(&wallet).await;
    let user = Uuid::new_v4();
    // Valid JSON, a deposit, but 100 KiB of description.
    let oversized = serde_json::to_vec(&json!({"user_id": user, "type": "deposit",
        "amount": 100, "description": "x".repeat(100 * 1024)}))
    .unwrap();
    publish_one(
        &channel,
        TRANSACTION_REQUESTS.name,
        &oversized,
        properties("big"),
    )
    .await;
    // A legacy pattern of 10,000 characters, which the reason quotes.
    let long = serde_json::to_vec(&json!({"pattern": "ü".repeat(10_000),
        "data": {"userId": user, "transaction": {"id": "p", "amount": 1, "operation": 0}}}))
    .unwrap();
    publish_one(&channel, LEGACY_REQUESTS.name, &long, properties("long")).await;

    let checking = channel_of(&wallet).await;
    let reason = next_dead_letter_reason(&checking, "wallet.transaction-requests.dlq").await;
    assert!(
        reason.starts_with("message too large:") && reason.contains("65536"),
        "{reason}"
    );
    let reason = next_dead_letter_reason(&checking, "wallet_queue.dlq").await;
    assert!(reason.starts_with("unknown pattern \"üü"), "{reason}");
    assert!(
        reason.len() <= 256 && reason.len() > 200,
        "{}",
        reason.len()
    );

    let marker =
        serde_json::to_vec(&json!({"user_id": user, "type": "deposit", "amount": 5})).unwrap();
    publish_one(
        &channel,
        TRANSACTION_REQUESTS.name,
        &marker,
        properties("marker"),
    )
    .await;
    let (_, event) = events.next(WITHIN).await.expect("the marker's outcome");
    assert_eq!(event["data"]["amount"], 5);
    assert_eq!(wallet.balance(user).await, 5);

    let _ = connection.close(200, "done".into()).await;
    other.delete().await.unwrap();
    wallet.stop().await;
}
