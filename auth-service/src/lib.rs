//! auth-service: accounts, passwords and access tokens, over gRPC (`auth.v1`).
//!
//! Layout:
//! - [`config`]: settings from the environment.
//! - [`email`], [`password`]: parsed input types; argon2id hashing on the blocking pool.
//! - [`signing_keys`], [`access_token`]: the Ed25519 keys this service owns and the JWTs it signs.
//! - [`accounts`]: sign-up, sign-in, look-up. [`revocations`]: signed-out tokens.
//! - [`grpc`]: the thin gRPC layer; [`error`]: domain errors mapped to gRPC statuses once.

pub mod access_token;
pub mod accounts;
pub mod config;
pub mod email;
pub mod error;
pub mod grpc;
pub mod password;
pub mod revocations;
pub mod signing_keys;

use std::sync::Arc;
use std::time::Duration;

use platform::shutdown::CancellationToken;
use proto::auth::v1::auth_service_server::AuthServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;

pub use config::Config;

pub const DEFAULT_ISSUER: &str = "wallet-platform-auth";
pub const DEFAULT_AUDIENCE: &str = "wallet-platform";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A built auth service: database migrated, keys loaded, listener bound.
pub struct Application {
    listener: TcpListener,
    pool: PgPool,
    api: grpc::AuthApi,
    config: Config,
}

impl Application {
    /// Binds `config.grpc_addr` and prepares the service.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.grpc_addr).await?;
        Self::build_with_listener(config, listener).await
    }

    /// Prepares the service on an already bound listener (tests bind port 0).
    pub async fn build_with_listener(
        config: Config,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let pool = platform::database::connect_and_migrate(
            &config.database_url,
            config.database_max_connections,
            &MIGRATOR,
        )
        .await?;
        let key = signing_keys::load_or_create(&pool).await?;
        let issuer = access_token::TokenIssuer::new(
            key,
            config.token_issuer.clone(),
            config.token_audience.clone(),
            config.token_ttl,
        );
        tokio::task::spawn_blocking(password::warm_up).await?;
        let api = grpc::AuthApi {
            pool: pool.clone(),
            issuer: Arc::new(issuer),
            admin_emails: config.admin_emails.clone().into(),
        };
        Ok(Self {
            listener,
            pool,
            api,
            config,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tokio::spawn(prune_revocations(self.pool.clone(), shutdown.clone()));
        let routes = tonic::service::Routes::new(AuthServiceServer::new(self.api));
        platform::service::serve(
            "auth-service",
            self.listener,
            routes,
            self.pool,
            None,
            self.config.internal_token,
            shutdown,
        )
        .await
    }
}

/// Hourly clean-up of revocations whose tokens have expired.
async fn prune_revocations(pool: PgPool, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
        match revocations::prune_expired(&pool).await {
            Ok(pruned) => tracing::debug!(pruned, "pruned expired revocations"),
            Err(error) => tracing::warn!(%error, "cannot prune expired revocations"),
        }
    }
}
