//! gateway: the HTTP/JSON front door of the platform.
//!
//! It signs users in (through auth-service), verifies access tokens locally, and forwards
//! each request to a service over gRPC, mapping the answer (or the gRPC error) to HTTP.
//!
//! Layout:
//! - [`config`]: settings from the environment; [`state`]: what handlers reach.
//! - [`routes`]: one module per area, thin handlers; [`openapi`]: the document and Swagger UI.
//! - [`json`], [`auth_user`]: extractors whose rejections are problem details.
//! - [`problem`]: problem details and the single gRPC → HTTP status mapping.
//! - [`token_verifier`]: local JWT verification and the revocation list.
//! - [`sign_in_limiter`]: sign-in and sign-up counting, per client address as
//!   [`client_address`] finds it; [`services`]: the gRPC clients;
//!   [`answer`]: what the services answer, checked against their contract.
//! - [`cors`]: CORS for the origins in `CORS_ALLOWED_ORIGINS` (none by default).
//! - [`request_metrics`]: request counts and latencies for `/metrics` (on the main address,
//!   or on `METRICS_ADDR` alone).

pub mod answer;
pub mod auth_user;
pub mod client_address;
pub mod config;
pub mod cors;
pub mod json;
pub mod openapi;
pub mod problem;
pub mod query;
pub mod request_metrics;
pub mod routes;
pub mod services;
pub mod sign_in_limiter;
pub mod state;
pub mod token_verifier;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware;
use axum::serve::ListenerExt;
use platform::grpc::REQUEST_ID_HEADER;
use platform::lifecycle::BackgroundTasks;
use platform::shutdown::CancellationToken;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use config::Config;

use crate::problem::{ApiError, fill_bare_errors};
use crate::services::Services;
use crate::sign_in_limiter::SignInLimiter;
use crate::state::AppState;
use crate::token_verifier::TokenVerifier;

/// A built gateway: listener bound, router assembled.
pub struct Application {
    listener: TcpListener,
    /// `METRICS_ADDR`'s listener, when metrics are served apart.
    metrics_listener: Option<TcpListener>,
    state: AppState,
    shutdown_grace: std::time::Duration,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen_addr).await?;
        Self::build_with_listener(config, listener).await
    }

    /// Prepares the gateway on an already bound listener (tests bind port 0), and binds
    /// `METRICS_ADDR` when it is set.
    pub async fn build_with_listener(
        config: Config,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|error| {
                anyhow::anyhow!("cannot listen on METRICS_ADDR {addr}: {error}")
            })?),
            None => None,
        };
        let state = AppState {
            services: Arc::new(Services::connect(&config)),
            verifier: Arc::new(TokenVerifier::default()),
            sign_in_limiter: Arc::new(SignInLimiter::new(
                config.sign_in_limits,
                config.sign_up_limits,
            )),
            metrics: request_metrics::prometheus(),
            metrics_on_main: metrics_listener.is_none(),
            trusted_proxies: Arc::new(config.trusted_proxies),
            request_timeout: config.request_timeout,
            cors_allowed_origins: Arc::new(config.cors_allowed_origins),
        };
        Ok(Self {
            listener,
            metrics_listener,
            state,
            shutdown_grace: config.shutdown_grace,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where `/metrics` is served apart (`METRICS_ADDR`), if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Serves until `shutdown`, then lets requests in flight and the background tasks finish
    /// (for at most the grace period).
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let stop = shutdown.child_token();
        let mut tasks = BackgroundTasks::new(stop.clone());
        let verifier = self.state.verifier.clone();
        let services = self.state.services.clone();
        let stop_following = stop.clone();
        tasks.spawn(async move { verifier.stay_current(services, stop_following).await });
        tasks.spawn(request_metrics::keep_up(
            self.state.metrics.clone(),
            stop.clone(),
        ));
        if let Some(listener) = self.metrics_listener {
            tracing::info!(addr = %listener.local_addr()?, "serving /metrics apart");
            let metrics = axum::Router::new()
                .route(
                    "/metrics",
                    axum::routing::get(|State(state): State<AppState>| async move {
                        routes::operations::render_metrics(&state)
                    }),
                )
                .with_state(self.state.clone());
            let stop_metrics = stop.clone();
            tasks.spawn(async move {
                let served = axum::serve(listener, metrics)
                    .with_graceful_shutdown(stop_metrics.cancelled_owned())
                    .await;
                if let Err(error) = served {
                    tracing::error!(%error, "the metrics listener failed");
                }
            });
        }
        tracing::info!(addr = %self.listener.local_addr()?, "gateway ready");
        // Without TCP_NODELAY, an answer hyper writes in two pieces (headers, then a body
        // of a few KiB) waits for the client's delayed ACK: 40 ms.
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let served = axum::serve(
            listener,
            router(self.state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop.cancelled_owned())
        .await;
        tasks.drain(self.shutdown_grace).await;
        Ok(served?)
    }
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(routes::auth::sign_up))
        .routes(routes!(routes::auth::sign_in))
        .routes(routes!(routes::auth::refresh))
        .routes(routes!(routes::auth::sign_out))
        .routes(routes!(routes::auth::me))
        .routes(routes!(routes::wallet::balance))
        .routes(routes!(routes::wallet::balance_history))
        .routes(routes!(
            routes::wallet::create_transaction,
            routes::wallet::list_transactions
        ))
        .routes(routes!(routes::wallet::get_transaction))
        .routes(routes!(routes::statements::statement))
        .routes(routes!(routes::statements::job))
        .routes(routes!(routes::statements::download))
        .routes(routes!(
            routes::orders::create_order,
            routes::orders::list_orders
        ))
        .routes(routes!(routes::orders::get_order))
        .routes(routes!(routes::orders::pay_order))
        .routes(routes!(routes::orders::cancel_order))
        .routes(routes!(routes::orders::ship_order))
        .routes(routes!(routes::orders::deliver_order))
        .routes(routes!(routes::orders::list_vouchers))
        .routes(routes!(routes::orders::list_sales))
        .routes(routes!(routes::admin::list_orders))
        .routes(routes!(routes::admin::list_users))
        .routes(routes!(
            routes::products::create_product,
            routes::products::list_products
        ))
        .routes(routes!(
            routes::products::get_product,
            routes::products::update_product,
            routes::products::withdraw_product
        ))
        .routes(routes!(routes::operations::healthz))
        .routes(routes!(routes::operations::readyz))
        .routes(routes!(routes::operations::metrics))
}

/// The whole HTTP surface with its middleware.
///
/// Layers are listed innermost first: the body limit and timeout sit closest to the
/// handlers; bare errors from any of them become problem details; the request id is set
/// outermost so every log line and response carries it.
pub fn router(state: AppState) -> axum::Router {
    let request_id = axum::http::HeaderName::from_static(REQUEST_ID_HEADER);
    let (api, document) = api_router().split_for_parts();
    // Outside the request id and problem layers: a preflight is answered here, before any
    // route (which would refuse OPTIONS), and every answer, errors too, carries the headers.
    let cors = (!state.cors_allowed_origins.is_empty()).then(|| state.cors_allowed_origins.layer());
    let router = api
        .merge(SwaggerUi::new("/docs").url("/openapi.json", document))
        .fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "not-found",
                "no such route",
            )
        })
        .layer(DefaultBodyLimit::max(json::BODY_LIMIT_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            state.request_timeout,
        ))
        .layer(middleware::from_fn(request_metrics::record))
        .layer(middleware::from_fn(pass_request_id))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "an internal error occurred",
            ))
        }))
        .layer(middleware::map_response(fill_bare_errors))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
                // A 5xx is not logged again as a failure: the response line above has its
                // status, and its cause is logged where it arose (a failed service call at
                // ERROR, in `problem`). At ERROR here, each `/readyz` 503 while the services
                // start was an error line.
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG))
                .make_span_with(|request: &Request| {
                    let request_id = platform::grpc::request_id(request.headers()).unwrap_or("-");
                    // The path only: query strings and headers (tokens!) stay out of logs.
                    let span = tracing::info_span!(
                        "http",
                        method = request.method().as_str(),
                        path = request.uri().path(),
                        request_id,
                        service.name = "gateway",
                        otel.kind = "server",
                    );
                    // The client's `traceparent` is continued; without one, a trace starts here.
                    platform::trace_context::continue_from_headers(&span, request.headers());
                    span
                }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// Passes the request id (set by the request-id layer) and the trace context of the
/// request's `http` span on to every gRPC call the request makes, and answers with the
/// span's `traceparent` when a trace is recorded, so that a client can find the trace of its
/// request.
async fn pass_request_id(request: Request, next: middleware::Next) -> axum::response::Response {
    let caller = platform::grpc::Caller {
        request_id: platform::grpc::request_id(request.headers())
            .unwrap_or_default()
            .to_owned(),
        trace: platform::trace_context::current(),
    };
    let trace = caller.trace.clone();
    let mut response = platform::grpc::serving(caller, next.run(request)).await;
    platform::trace_context::write_headers(response.headers_mut(), trace);
    response
}
