//! The common life of a gRPC service: report health from its dependencies, announce
//! readiness, serve until shutdown.

use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::amqp::BrokerStatus;
use crate::grpc::InternalToken;

/// Serves `routes` on `listener` with the health service, which reports SERVING while the
/// database answers and (when given) the broker connection is up.
pub async fn serve(
    name: &str,
    listener: TcpListener,
    routes: Routes,
    pool: PgPool,
    broker: Option<BrokerStatus>,
    token: InternalToken,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(crate::grpc::report_health(
        reporter,
        move || {
            let pool = pool.clone();
            let broker = broker.clone();
            async move {
                let broker_up = broker.as_ref().is_none_or(BrokerStatus::is_connected);
                broker_up && crate::database::is_reachable(&pool).await
            }
        },
        shutdown.clone(),
    ));
    tracing::info!(addr = %listener.local_addr()?, "{name} ready");
    crate::grpc::serve(listener, routes, health, token, shutdown).await
}
