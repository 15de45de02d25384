//! The Ed25519 keys access tokens are signed with. They are created by this service on
//! first start and kept in its database; only the public halves are handed out, so the
//! gateway can verify tokens but never mint one.

use anyhow::Context;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::EncodingKey;
use sqlx::PgPool;

/// The key new tokens are signed with.
pub struct ActiveKey {
    pub kid: String,
    pub encoding_key: EncodingKey,
}

/// A public key tokens may be verified with.
pub struct PublicKey {
    pub kid: String,
    pub bytes: Vec<u8>,
}

/// Loads the newest key, creating the first one if there is none. Instances starting
/// together serialise on an advisory lock so they agree on a single key.
pub async fn load_or_create(pool: &PgPool) -> anyhow::Result<ActiveKey> {
    let mut tx = pool.begin().await?;
    sqlx::query("select pg_advisory_xact_lock(hashtext('auth.signing_keys'))")
        .execute(&mut *tx)
        .await?;
    let newest: Option<(String, Vec<u8>)> =
        sqlx::query_as("select kid, seed from signing_keys order by created_at desc limit 1")
            .fetch_optional(&mut *tx)
            .await?;
    let (kid, seed) = match newest {
        Some(found) => found,
        None => {
            let seed: [u8; 32] = rand::random();
            let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
            let kid = uuid::Uuid::new_v4().simple().to_string();
            sqlx::query("insert into signing_keys (kid, seed, public_key) values ($1, $2, $3)")
                .bind(&kid)
                .bind(seed.as_slice())
                .bind(public.as_slice())
                .execute(&mut *tx)
                .await?;
            tracing::info!(kid, "created a token signing key");
            (kid, seed.to_vec())
        }
    };
    tx.commit().await?;
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| anyhow::anyhow!("stored signing key has the wrong length"))?;
    let der = SigningKey::from_bytes(&seed)
        .to_pkcs8_der()
        .context("cannot encode the signing key")?;
    Ok(ActiveKey {
        kid,
        encoding_key: EncodingKey::from_ed_der(der.as_bytes()),
    })
}

/// Every key a token in circulation may have been signed with.
pub async fn public_keys(pool: &PgPool) -> anyhow::Result<Vec<PublicKey>> {
    let rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("select kid, public_key from signing_keys order by created_at desc")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(kid, bytes)| PublicKey { kid, bytes })
        .collect())
}
