//! web: the platform's web app for people, the sixth program.
//!
//! Server-rendered HTML over the gateway's public HTTP API (`GATEWAY_URL`), like any
//! client: no database, no business rule. Plain forms, no script at all, so the Content
//! Security Policy can forbid every script.
//!
//! Layout:
//! - [`config`]: settings from the environment.
//! - [`api`]: the gateway's API, one method per call, refusals as problems.
//! - [`session`]: token cookies, refresh, and the CSRF check on every post;
//!   [`token_claims`]: who the token names, for what pages show.
//! - [`pages`]: the pages; [`chart`]: the balance chart as SVG; [`money`]: amounts.
//! - Static files (`static/`) are compiled into the binary.

pub mod api;
pub mod chart;
pub mod config;
pub mod money;
pub mod pages;
pub mod session;
pub mod token_claims;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use platform::shutdown::CancellationToken;
use tokio::net::TcpListener;

pub use config::Config;

use crate::pages::{admin, auth, layout, orders, sales, selling, shop, statements, wallet};
use crate::session::Session;

/// What every handler reaches.
#[derive(Clone)]
pub struct AppState {
    pub api: api::Api,
}

/// A built web app: listener bound, router assembled.
pub struct Application {
    listener: TcpListener,
    router: Router,
    shutdown_grace: std::time::Duration,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .map_err(|error| {
                anyhow::anyhow!("cannot listen on WEB_ADDR {}: {error}", config.listen_addr)
            })?;
        Self::build_with_listener(config, listener)
    }

    /// Prepares the app on an already bound listener (tests bind port 0).
    pub fn build_with_listener(config: Config, listener: TcpListener) -> anyhow::Result<Self> {
        let state = AppState {
            api: api::Api::new(config.gateway_url, config.request_timeout)?,
        };
        Ok(Self {
            listener,
            router: router(state),
            shutdown_grace: config.shutdown_grace,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`, then lets requests in flight finish (within the grace
    /// period).
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(addr = %self.listener.local_addr()?, "web app ready");
        // The peer's address goes to the gateway with sign-ins and sign-ups (its limits
        // count per address).
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        // As the gateway: no waiting for the browser's delayed ACK between header and body.
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let served = axum::serve(listener, service)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let grace = self.shutdown_grace;
        tokio::select! {
            result = served => Ok(result?),
            () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("requests still in flight after the grace period were dropped");
                Ok(())
            }
        }
    }
}

/// Every route and its middleware.
pub fn router(state: AppState) -> Router {
    let pages = Router::new()
        .route("/", get(home))
        .route("/sign-in", get(auth::sign_in_page).post(auth::sign_in))
        .route("/sign-up", get(auth::sign_up_page).post(auth::sign_up))
        .route("/sign-out", post(auth::sign_out))
        .route("/wallet", get(wallet::wallet_page))
        .route("/wallet/deposit", post(wallet::deposit))
        .route("/wallet/withdraw", post(wallet::withdraw))
        .route("/wallet/transactions/{id}/undo", post(wallet::undo))
        .route("/statements", get(statements::statements_page))
        .route("/statements/jobs/{id}", get(statements::job_page))
        .route("/statements/jobs/{id}/download", get(statements::download))
        .route("/orders", get(orders::orders_page))
        .route("/orders/{id}", get(orders::order_page))
        .route("/orders/{id}/{action}", post(orders::order_action))
        .route("/vouchers", get(orders::vouchers_page))
        .route("/shop", get(shop::shop_page))
        .route("/shop/{id}", get(shop::product_page))
        .route("/shop/{id}/buy", post(shop::buy))
        .route("/selling", get(selling::selling_page))
        .route("/selling/products", post(selling::create))
        .route(
            "/selling/products/{id}",
            get(selling::edit_page).post(selling::update),
        )
        .route("/selling/products/{id}/withdraw", post(selling::withdraw))
        .route("/sales", get(sales::sales_page))
        .route("/admin", get(admin::orders_page))
        .route("/admin/orders/{id}/{action}", post(admin::order_action))
        .route("/admin/users", get(admin::users_page))
        .fallback(|| async { layout::refused(StatusCode::NOT_FOUND, "There is no such page.") })
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::middleware,
        ))
        .layer(middleware::from_fn(no_store));
    Router::new()
        .route("/static/app.css", get(stylesheet))
        .route("/static/icon.svg", get(icon))
        .route("/healthz", get(|| async { "ok" }))
        .merge(pages)
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn home(session: Session) -> Redirect {
    if session.access.is_some() {
        Redirect::to("/wallet")
    } else {
        Redirect::to("/sign-in")
    }
}

/// The page's rules for the browser: no script at all, styles and images from here only,
/// forms post here only, never inside a frame, no type sniffing.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Pages carry a person's data: never kept by the browser or a proxy.
async fn no_store(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn stylesheet() -> impl IntoResponse {
    static_file("text/css; charset=utf-8", include_str!("../static/app.css"))
}

async fn icon() -> impl IntoResponse {
    static_file("image/svg+xml", include_str!("../static/icon.svg"))
}

fn static_file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
}
