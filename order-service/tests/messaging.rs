//! Bad messages on the order queues: each is dead-lettered with its reason, and the
//! consumers go on with the next.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use lapin::options::{BasicGetOptions, BasicPublishOptions};
use lapin::types::AMQPValue;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use platform::testing::eventually;
use secrecy::ExposeSecret;
use support::Services;
use uuid::Uuid;

#[tokio::test]
async fn poison_messages_on_every_order_queue_are_dead_lettered_with_a_reason() {
    let services = Services::start(Duration::from_secs(900), true).await;
    let broker = Connection::connect(
        services.vhost.amqp_url.expose_secret(),
        ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let channel = broker.create_channel().await.unwrap();
    channel.confirm_select(Default::default()).await.unwrap();
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
        channel
            .basic_publish(
                "".into(),
                (*queue).into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_message_id(Uuid::new_v4().to_string().into()),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    for queue in [
        "wallet.order-payments",
        "order.payment-outcomes",
        "order.voucher-issuing",
    ] {
        let dlq = format!("{queue}.dlq");
        let mut reasons = Vec::new();
        for _ in 0..2 {
            let message = eventually(Duration::from_secs(10), "a dead-lettered message", || {
                let channel = channel.clone();
                let dlq = dlq.clone();
                async move {
                    channel
                        .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: true })
                        .await
                        .unwrap()
                }
            })
            .await;
            let headers = message.delivery.properties.headers().clone().unwrap();
            match headers.inner().get("x-dead-letter-reason") {
                Some(AMQPValue::LongString(reason)) => reasons.push(reason.to_string()),
                other => panic!("no reason header: {other:?}"),
            }
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
    let user = Uuid::new_v4();
    services.deposit(user, 1_000).await;
    let order = services.place_order(user, 600).await.unwrap();
    let id: Uuid = order.id.parse().unwrap();
    eventually(Duration::from_secs(10), "the order to be paid", || async {
        (services.order_status(id).await == "paid").then_some(())
    })
    .await;
    let _ = broker.close(200, "done".into()).await;
    services.stop().await;
}
