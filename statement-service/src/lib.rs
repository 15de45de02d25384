//! statement-service: statements built from wallet events, over gRPC (`statement.v1`), with
//! long periods generated as background jobs from a RabbitMQ queue.
//!
//! Layout:
//! - [`period`]: statement periods (pure); [`lines`]: statement lines and statements.
//! - [`wallet_events`]: the `transaction.created` consumer that records lines.
//! - [`jobs`]: long statements as jobs; [`csv`]: their CSV; [`email`]: emailing them.
//! - [`events`]: `statement.generated`; [`messaging`]: queues, consumers and the relay on one
//!   broker connection.
//! - [`grpc`]: the thin gRPC layer; [`error`]: errors mapped to gRPC statuses once.

pub mod config;
pub mod csv;
pub mod email;
pub mod error;
pub mod events;
pub mod grpc;
pub mod jobs;
pub mod lines;
pub mod messaging;
pub mod period;
pub mod wallet_events;

use std::sync::Arc;
use std::time::Duration;

use platform::grpc::WithInternalToken;
use platform::service::Service;
use proto::auth::v1::auth_service_client::AuthServiceClient;
use proto::statement::v1::statement_service_server::StatementServiceServer;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;

pub use config::Config;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The statement service on `listener`, ready to run.
pub async fn build(config: Config, listener: TcpListener) -> anyhow::Result<Service> {
    let internal_token = config.service.internal_token.clone();
    let mut service =
        Service::build("statement-service", config.service, &MIGRATOR, listener).await?;
    let outbox = service.outbox();
    let emails = match config.smtp {
        Some(smtp) => {
            let auth = AuthServiceClient::new(InterceptedService::new(
                platform::grpc::channel(&config.auth_addr, Duration::from_secs(10)),
                WithInternalToken::new(internal_token),
            ));
            Some(Arc::new(email::EmailHandler::new(
                service.pool().clone(),
                smtp,
                auth,
            )?))
        }
        None => None,
    };
    let pool = service.pool().clone();
    let retention = config.file_retention;
    service.every(
        config.prune_every,
        "prune finished statement jobs",
        move || {
            let pool = pool.clone();
            async move { jobs::prune(&pool, retention).await }
        },
    );
    let messaging = outbox.clone();
    service.on_broker(move |connection, shutdown| {
        messaging::run(messaging.clone(), emails.clone(), connection, shutdown)
    });
    service.grpc(tonic::service::Routes::new(StatementServiceServer::new(
        grpc::StatementApi {
            outbox,
            sync_max_days: config.sync_max_days,
            sync_max_lines: config.sync_max_lines,
            max_open_jobs: config.max_open_jobs,
        },
    )));
    Ok(service)
}
