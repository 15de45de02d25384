//! gRPC clients of the four services, all carrying the internal credential, and the request
//! id and trace context of the HTTP request that caused each call (see
//! `platform::grpc::serving`).

use std::time::Duration;

use platform::grpc::{WithInternalToken, channel};
use proto::auth::v1::auth_service_client::AuthServiceClient;
use proto::order::v1::order_service_client::OrderServiceClient;
use proto::statement::v1::statement_service_client::StatementServiceClient;
use proto::wallet::v1::wallet_service_client::WalletServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;

use crate::config::Config;

pub type Authenticated = InterceptedService<Channel, WithInternalToken>;

#[derive(Clone)]
pub struct Services {
    pub auth: AuthServiceClient<Authenticated>,
    pub wallet: WalletServiceClient<Authenticated>,
    pub statement: StatementServiceClient<Authenticated>,
    pub order: OrderServiceClient<Authenticated>,
    /// Health clients of every service, by name, for `/readyz`.
    pub health: Vec<(&'static str, HealthClient<Authenticated>)>,
}

impl Services {
    pub fn connect(config: &Config) -> Self {
        let dial = |addr: &str| {
            InterceptedService::new(
                channel(addr, config.request_timeout),
                WithInternalToken::new(config.internal_token.clone()),
            )
        };
        let auth = dial(&config.auth_addr);
        let wallet = dial(&config.wallet_addr);
        let statement = dial(&config.statement_addr);
        let order = dial(&config.order_addr);
        let health = [
            ("auth", auth.clone()),
            ("wallet", wallet.clone()),
            ("statement", statement.clone()),
            ("order", order.clone()),
        ]
        .into_iter()
        .map(|(name, channel)| (name, HealthClient::new(channel)))
        .collect();
        Self {
            auth: AuthServiceClient::new(auth),
            wallet: WalletServiceClient::new(wallet),
            statement: StatementServiceClient::new(statement),
            order: OrderServiceClient::new(order),
            health,
        }
    }
}

/// How long `/readyz` waits for each service.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(2);
