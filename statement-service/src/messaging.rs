//! The statement service's RabbitMQ side: its queues, their consumers and the outbox relay,
//! on one supervised connection.

use platform::amqp::{self, BrokerStatus};
use platform::consumer::{consume, consume_batches};
use platform::shutdown::CancellationToken;
use secrecy::SecretString;
use sqlx::PgPool;

use crate::email::EmailHandler;
use crate::jobs::JobHandler;
use crate::wallet_events::{self, TransactionCreatedHandler};
use crate::{email, events, jobs};

pub async fn run(
    pool: PgPool,
    url: SecretString,
    emails: Option<std::sync::Arc<EmailHandler>>,
    status: BrokerStatus,
    shutdown: CancellationToken,
) {
    let stop = shutdown.clone();
    amqp::supervise(
        url,
        "statement-service".into(),
        status,
        shutdown,
        move |connection| {
            let pool = pool.clone();
            let shutdown = stop.clone();
            let emails = emails.clone();
            async move {
                let channel = connection.create_channel().await?;
                amqp::declare_topic_exchange(&channel, wallet_events::WALLET_EXCHANGE).await?;
                amqp::declare_topic_exchange(&channel, events::EXCHANGE).await?;
                amqp::declare_subscription(
                    &channel,
                    wallet_events::QUEUE,
                    wallet_events::WALLET_EXCHANGE,
                    &[wallet_events::ROUTING_KEY],
                )
                .await?;
                amqp::declare_queue_with_dlq(&channel, jobs::QUEUE).await?;
                amqp::declare_queue_with_dlq(&channel, email::QUEUE).await?;
                let lines = TransactionCreatedHandler { pool: pool.clone() };
                let job_handler = JobHandler {
                    pool: pool.clone(),
                    email: emails.is_some(),
                };
                let sending = async {
                    match &emails {
                        Some(handler) => {
                            consume(&connection, email::QUEUE, 2, handler.as_ref(), &shutdown).await
                        }
                        None => {
                            shutdown.cancelled().await;
                            Ok(())
                        }
                    }
                };
                tokio::try_join!(
                    platform::outbox::relay(pool, &connection, &shutdown),
                    consume_batches(&connection, wallet_events::QUEUE, 128, &lines, &shutdown),
                    consume(&connection, jobs::QUEUE, 2, &job_handler, &shutdown),
                    sending,
                )?;
                Ok(())
            }
        },
    )
    .await;
}
