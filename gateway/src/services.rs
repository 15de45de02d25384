//! gRPC clients of the four services, all carrying the internal credential, and the request
//! id of the HTTP request that caused each call.

use std::time::Duration;

use platform::grpc::{REQUEST_ID_HEADER, WithInternalToken, channel};
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

/// Wraps `message` for a gRPC call, passing the HTTP request id along.
pub fn request<T>(request_id: &RequestId, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = request_id.0.parse() {
        request.metadata_mut().insert(REQUEST_ID_HEADER, value);
    }
    request
}

/// The request id of the current HTTP request (set by the request-id layer).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let id = parts
            .headers
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        Ok(Self(id.to_owned()))
    }
}

/// How long `/readyz` waits for each service.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(2);
