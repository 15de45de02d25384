//! Bad messages on the order queues: each is dead-lettered with its reason, and the
//! consumers go on with the next; and messages from a broker user other than the platform's
//! have no effect.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use lapin::options::{BasicPublishOptions, QueueBindOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation};
use platform::testing::{eventually, platform_user, poison};
use secrecy::ExposeSecret;
use support::Services;
use uuid::Uuid;

#[tokio::test]
async fn poison_messages_on_every_order_queue_are_dead_lettered_with_a_reason() {
    let services = Services::start(Duration::from_secs(900), true).await;
    let (broker, channel) = services.publisher().await;
    let cases: [(&str, &[u8], &str); 6] = [
        ("wallet.order-payments", b"{not json", "not an order event"),
        (
            "wallet.order-payments",
            br#"{"id":"x","type":"order.shipped","data":{"order_id":"0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21","user_id":"0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21"}}"#,
            "unexpected event type",
        ),
        ("order.payment-outcomes", b"[1, 2]", "not a wallet event"),
        (
            "order.payment-outcomes",
            br#"{"id":"x","type":"transaction.deleted","data":{"user_id":"0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21","type":"purchase"}}"#,
            "unexpected event type",
        ),
        ("order.voucher-issuing", b"\"text\"", "not an order.sent event"),
        (
            "order.voucher-issuing",
            br#"{"id":"x","type":"order.paid","data":{"order_id":"0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21"}}"#,
            "unexpected event type",
        ),
    ];
    for (queue, body, _) in &cases {
        // From the platform's own broker user: these reach the handlers.
        let properties = BasicProperties::default()
            .with_message_id(Uuid::new_v4().to_string().into())
            .with_user_id(platform_user().into());
        poison::publish_one(&channel, queue, body, properties).await;
    }

    for queue in [
        "wallet.order-payments",
        "order.payment-outcomes",
        "order.voucher-issuing",
    ] {
        let dlq = format!("{queue}.dlq");
        let mut reasons = Vec::new();
        for _ in 0..2 {
            reasons.push(poison::next_dead_letter_reason(&channel, &dlq).await);
        }
        reasons.sort();
        let mut expected: Vec<&str> = cases
            .iter()
            .filter(|(name, _, _)| *name == queue)
            .map(|(_, _, reason)| *reason)
            .collect();
        expected.sort_unstable();
        for (reason, start) in reasons.iter().zip(&expected) {
            assert!(reason.starts_with(start), "{queue}: {reason}");
        }
    }

    // The consumers went on: an order is still paid.
    services.assert_an_order_is_paid(600).await;
    let _ = broker.close(200, "done".into()).await;
    services.stop().await;
}

/// Earlier versions bound the payment outcomes queue to `wallet.events`, where every deposit
/// goes; a restarted order-service removes those bindings and keeps its own.
#[tokio::test]
async fn an_upgraded_service_no_longer_receives_every_wallet_event() {
    let mut services = Services::start(Duration::from_secs(900), true).await;
    services.crash_order_service().await;
    let (broker, channel) = services.publisher().await;
    for key in ["transaction.created", "transaction.rejected"] {
        channel
            .queue_bind(
                "order.payment-outcomes".into(),
                "wallet.events".into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
    // Whether a deposit's event published to `wallet.events` reaches a queue (in this test,
    // only the old binding can take it there).
    let routed = || async {
        let body = br#"{"id":"x","type":"transaction.created","data":{"user_id":"0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21","type":"deposit","source":"api"}}"#;
        let mandatory = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let properties =
            BasicProperties::default().with_message_id(Uuid::new_v4().to_string().into());
        let confirmation = channel
            .basic_publish(
                "wallet.events".into(),
                "transaction.created".into(),
                mandatory,
                body,
                properties,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        // A message no queue took comes back with the confirmation.
        matches!(confirmation, Confirmation::Ack(None))
    };
    assert!(routed().await, "the old binding takes wallet events");

    services.start_order_service().await;
    eventually(
        Duration::from_secs(10),
        "the old bindings to go",
        || async { (!routed().await).then_some(()) },
    )
    .await;
    services.assert_an_order_is_paid(600).await;
    let _ = broker.close(200, "done".into()).await;
    services.stop().await;
}

/// Before: any broker user that could publish put a `transaction.created` of source `order`
/// and reference `order:<id>` on `order.payment-outcomes` (through the default exchange),
/// and the order became paid with no money taken.
#[tokio::test]
async fn a_forged_payment_from_another_broker_user_leaves_the_order_unpaid() {
    // No wallet: the order waits for its payment.
    let services = Services::start(Duration::from_secs(900), false).await;
    let user = Uuid::new_v4();
    let order = services.place_order(user, 2_500).await.unwrap();
    let order_id: Uuid = order.id.parse().unwrap();
    assert_eq!(services.order_status(order_id).await, "pending_payment");

    // Another system, with the permissions compose gives them.
    let other = services
        .vhost
        .add_user(&platform::testing::publisher_permissions())
        .await
        .unwrap();
    let outsider = lapin::Connection::connect(
        other.amqp_url.expose_secret(),
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let channel = outsider.create_channel().await.unwrap();
    channel.confirm_select(Default::default()).await.unwrap();
    let forged = serde_json::json!({"specversion": "1.0", "id": Uuid::new_v4(),
        "source": "/wallet-service", "type": "transaction.created",
        "time": "2026-11-29T10:00:00Z", "datacontenttype": "application/json",
        "data": {"id": Uuid::now_v7(), "user_id": user, "type": "purchase", "amount": 2_500,
            "currency": "EUR", "balance_after": 0, "parent_transaction_id": null,
            "description": null, "source": "order", "reference": format!("order:{order_id}"),
            "created_at": "2026-11-29T10:00:00Z"}});
    // Without user_id, and with its own: RabbitMQ lets it name no one else.
    for properties in [
        BasicProperties::default(),
        BasicProperties::default().with_user_id(other.name.as_str().into()),
    ] {
        let properties = properties.with_message_id(Uuid::new_v4().to_string().into());
        let body = serde_json::to_vec(&forged).unwrap();
        poison::publish_one(&channel, "order.payment-outcomes", &body, properties).await;
    }

    let (broker, checking) = services.publisher().await;
    for _ in 0..2 {
        let reason = poison::next_dead_letter_reason(&checking, "order.payment-outcomes.dlq").await;
        assert_eq!(reason, "untrusted-publisher");
    }
    assert_eq!(services.order_status(order_id).await, "pending_payment");
    let recorded: i64 = sqlx::query_scalar("select count(*) from inbox")
        .fetch_one(&services.order_pool)
        .await
        .unwrap();
    assert_eq!(recorded, 0, "the forged events left no trace");

    let _ = outsider.close(200, "done".into()).await;
    let _ = broker.close(200, "done".into()).await;
    other.delete().await.unwrap();
    services.stop().await;
}
