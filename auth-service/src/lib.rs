//! auth-service: accounts, passwords and access tokens, over gRPC (`auth.v1`).
//!
//! Layout:
//! - [`config`]: settings from the environment.
//! - [`email`], [`password`]: parsed input types; argon2id hashing on the blocking pool.
//! - [`signing_keys`], [`access_token`]: the Ed25519 keys this service owns (sealed at rest,
//!   rotated by `auth-service rotate-keys`) and the JWTs it signs.
//! - [`accounts`]: sign-up, sign-in, look-up. [`revocations`]: signed-out tokens.
//!   [`refresh_tokens`]: rotating, single-use refresh tokens in families.
//! - [`grpc`]: the thin gRPC layer; [`error`]: domain errors mapped to gRPC statuses once.

pub mod access_token;
pub mod accounts;
pub mod config;
pub mod email;
pub mod error;
pub mod grpc;
pub mod password;
pub mod refresh_tokens;
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

/// How often a running instance looks for a newly activated signing key.
const KEY_RELOAD: Duration = Duration::from_secs(5);

/// The auth service on `listener`, ready to run: database migrated, signing keys prepared
/// (sealed when `AUTH_KEY_ENCRYPTION_KEY` is set) and the active one loaded.
pub async fn build(config: Config, listener: TcpListener) -> anyhow::Result<Service> {
    let mut service = Service::build("auth-service", config.service, &MIGRATOR, listener).await?;
    let pool = service.pool().clone();
    let encryption = config.key_encryption_key;
    if encryption.is_none() {
        tracing::warn!(
            "{} is not set: token signing keys are stored in clear in the auth database",
            signing_keys::KeyEncryptionKey::VARIABLE
        );
    }
    signing_keys::prepare(&pool, encryption.as_ref()).await?;
    let activation = config.signing_key_activation;
    let key = signing_keys::load_active(&pool, encryption.as_ref(), activation).await?;
    let issuer = Arc::new(access_token::TokenIssuer::new(
        key,
        config.token_issuer,
        config.token_audience,
        config.token_ttl,
    ));
    tokio::task::spawn_blocking(password::warm_up).await?;
    let (reloaded, reloading) = (pool.clone(), issuer.clone());
    service.every(KEY_RELOAD, "load the active signing key", move || {
        let (pool, issuer, encryption) = (reloaded.clone(), reloading.clone(), encryption.clone());
        async move {
            let key = signing_keys::load_active(&pool, encryption.as_ref(), activation).await?;
            issuer.set_key(key);
            anyhow::Ok(())
        }
    });
    service.prune_hourly("prune expired revocations", revocations::PRUNE_EXPIRED);
    service.prune_hourly(
        "prune expired refresh tokens",
        refresh_tokens::PRUNE_EXPIRED,
    );
    service.grpc(tonic::service::Routes::new(AuthServiceServer::new(
        grpc::AuthApi {
            pool,
            issuer,
            admin_emails: config.admin_emails.into(),
            hash_wait: config.hash_wait,
            refresh_ttl: config.refresh_token_ttl,
        },
    )));
    Ok(service)
}

/// `auth-service rotate-keys`: adds a signing key to the database of `config` and returns
/// its `kid`. Running instances sign with it once it has been published for
/// `SIGNING_KEY_ACTIVATION_SECS`; tokens signed with older keys stay valid until they expire.
pub async fn rotate_keys(config: &Config) -> anyhow::Result<String> {
    let pool =
        platform::database::connect_and_migrate(&config.service.database_url, 1, &MIGRATOR).await?;
    let encryption = config.key_encryption_key.as_ref();
    // Seals any key still in clear too, as a start would.
    signing_keys::prepare(&pool, encryption).await?;
    let kid = signing_keys::rotate(&pool, encryption).await?;
    pool.close().await;
    Ok(kid)
}
