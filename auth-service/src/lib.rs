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

use platform::service::Service;
use proto::auth::v1::auth_service_server::AuthServiceServer;
use tokio::net::TcpListener;

pub use config::Config;

pub const DEFAULT_ISSUER: &str = "wallet-platform-auth";
pub const DEFAULT_AUDIENCE: &str = "wallet-platform";

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The auth service on `listener`, ready to run: database migrated, signing key loaded.
pub async fn build(config: Config, listener: TcpListener) -> anyhow::Result<Service> {
    let mut service = Service::build("auth-service", config.service, &MIGRATOR, listener).await?;
    let pool = service.pool().clone();
    let key = signing_keys::load_or_create(&pool).await?;
    let issuer = access_token::TokenIssuer::new(
        key,
        config.token_issuer,
        config.token_audience,
        config.token_ttl,
    );
    tokio::task::spawn_blocking(password::warm_up).await?;
    let pruned = pool.clone();
    service.every(
        Duration::from_secs(3600),
        "prune expired revocations",
        move || {
            let pool = pruned.clone();
            async move { revocations::prune_expired(&pool).await }
        },
    );
    service.grpc(tonic::service::Routes::new(AuthServiceServer::new(
        grpc::AuthApi {
            pool,
            issuer: Arc::new(issuer),
            admin_emails: config.admin_emails.into(),
        },
    )));
    Ok(service)
}
