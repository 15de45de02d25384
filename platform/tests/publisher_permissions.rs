//! The permissions compose gives other systems' broker user `publisher`
//! (`deploy/rabbitmq/publisher-permissions.json`), against the real RabbitMQ: what a
//! publisher needs is allowed, and nothing else; and RabbitMQ refuses a `user_id` that is not
//! the connection's own user, which is what the platform's consumers rely on.

#![allow(clippy::unwrap_used)]

use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use platform::amqp::try_connect;
use platform::testing::{BrokerUser, Vhost, platform_user, publisher_permissions, unique_id};
use proto::messaging::{statement, wallet};

/// Runs `attempt` on a fresh connection of `user` (a refusal closes the channel, and
/// sometimes the connection): whether the broker allowed it.
async fn allowed<F, Fut>(user: &BrokerUser, attempt: F) -> bool
where
    F: FnOnce(Channel) -> Fut,
    Fut: Future<Output = lapin::Result<()>>,
{
    let connection = try_connect(&user.amqp_url, "publisher").await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel.confirm_select(Default::default()).await.unwrap();
    let outcome = attempt(channel).await.is_ok();
    let _ = connection.close(200, "done".into()).await;
    outcome
}

async fn publish(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    properties: BasicProperties,
) -> lapin::Result<()> {
    let confirm = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            b"{}",
            properties,
        )
        .await?
        .await?;
    assert!(matches!(confirm, Confirmation::Ack(_)), "{confirm:?}");
    Ok(())
}

async fn server_named_queue(channel: &Channel) -> lapin::Result<String> {
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    let queue = channel
        .queue_declare("".into(), exclusive, FieldTable::default())
        .await?;
    Ok(queue.name().to_string())
}

#[tokio::test]
async fn a_publisher_may_send_requests_and_keep_reply_queues_and_nothing_else() {
    let vhost = Vhost::create(&format!("t_{}", unique_id())).await.unwrap();
    let platform: Connection = try_connect(&vhost.amqp_url, "platform").await.unwrap();
    let channel = platform.create_channel().await.unwrap();
    for queue in [&wallet::TRANSACTION_REQUESTS, &statement::JOBS] {
        platform::amqp::declare_queue(&channel, queue)
            .await
            .unwrap();
    }
    platform::amqp::declare_topic_exchange(&channel, wallet::EVENTS)
        .await
        .unwrap();
    let user = vhost.add_user(&publisher_permissions()).await.unwrap();
    let requests = wallet::TRANSACTION_REQUESTS.name;

    // What a publisher needs.
    assert!(
        allowed(&user, async |channel| {
            let replies = server_named_queue(&channel).await?;
            channel
                .basic_consume(
                    replies.as_str().into(),
                    "replies".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            let request = BasicProperties::default().with_reply_to(replies.as_str().into());
            publish(&channel, "", requests, request).await
        })
        .await,
        "a request with a reply queue of its own"
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for queue in ["wallet_queue", "publisher.replies"] {
        assert!(
            allowed(&user, async |channel| {
                channel
                    .queue_declare(queue.into(), durable, FieldTable::default())
                    .await
                    .map(|_| ())
            })
            .await,
            "declare {queue}"
        );
    }
    // Its own user id is accepted (and means nothing to the internal queues).
    let own = BasicProperties::default().with_user_id(user.name.as_str().into());
    assert!(
        allowed(&user, async |channel| publish(&channel, "", requests, own)
            .await)
        .await
    );

    // Nothing else.
    let platforms = BasicProperties::default().with_user_id(platform_user().into());
    assert!(
        !allowed(&user, async |channel| publish(
            &channel, "", requests, platforms
        )
        .await)
        .await,
        "posing as the platform's user"
    );
    assert!(
        !allowed(&user, async |channel| {
            channel
                .basic_consume(
                    requests.into(),
                    "thief".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map(|_| ())
        })
        .await,
        "consuming a platform queue"
    );
    assert!(
        !allowed(&user, async |channel| {
            channel
                .queue_declare(statement::JOBS.name.into(), durable, FieldTable::default())
                .await
                .map(|_| ())
        })
        .await,
        "declaring a platform queue"
    );
    assert!(
        !allowed(&user, async |channel| {
            let queue = server_named_queue(&channel).await?;
            channel
                .queue_bind(
                    queue.as_str().into(),
                    wallet::EVENTS.into(),
                    "#".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
        })
        .await,
        "following the platform's events"
    );
    assert!(
        !allowed(&user, async |channel| {
            let event = BasicProperties::default();
            publish(&channel, wallet::EVENTS, wallet::TRANSACTION_CREATED, event).await
        })
        .await,
        "publishing to an event exchange"
    );

    let _ = platform.close(200, "done".into()).await;
    user.delete().await.unwrap();
    vhost.delete().await.unwrap();
}
