//! The Ed25519 keys access tokens are signed with. They are created by this service on
//! first start and kept in its database; only the public halves are handed out, so the
//! gateway can verify tokens but never mint one.
//!
//! **At rest.** With `AUTH_KEY_ENCRYPTION_KEY` set, each key's 32-byte seed is stored sealed
//! (`sealed_seed`): XChaCha20-Poly1305 with a random 24-byte nonce, the key's `kid` as
//! associated data (a sealed seed copied onto another row does not open). A reader of the
//! database or of a backup then needs the environment too. Rows stored in clear before
//! (`seed`) stay readable and are sealed at the next start with the key set. Without the key
//! the seeds stay in clear, as before, with a warning at start; once any row is sealed, the
//! service refuses to start without the key (or with another one) rather than mint new keys.
//!
//! **Rotation.** `auth-service rotate-keys` adds a key ([`rotate`]). Every key stays
//! published (`GetVerificationKeys`), so tokens signed with an older one stay valid until they
//! expire. Running instances reload the active key every few seconds ([`load_active`]) and
//! sign with the newest key that has been published for the activation delay
//! (`SIGNING_KEY_ACTIVATION_SECS`, longer than the gateways' key refresh): by the time a token
//! carries the new `kid`, every gateway knows it.

use std::time::Duration;

use anyhow::Context;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::EncodingKey;
use secrecy::{ExposeSecret, SecretBox};
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

/// `AUTH_KEY_ENCRYPTION_KEY`: 32 random bytes that seal the signing keys at rest. Never
/// printed: `Debug` is redacted.
#[derive(Clone)]
pub struct KeyEncryptionKey(std::sync::Arc<SecretBox<[u8; 32]>>);

impl KeyEncryptionKey {
    pub const VARIABLE: &str = "AUTH_KEY_ENCRYPTION_KEY";

    /// Exactly 32 bytes, as 64 hexadecimal digits (`openssl rand -hex 32`) or in standard
    /// base64 (`openssl rand -base64 32`). The error never repeats the value.
    pub fn parse(raw: &str) -> Result<Self, String> {
        use base64::Engine;
        const HOW: &str = "must be 32 bytes as 64 hex digits or in base64 \
                           (generate one with `openssl rand -hex 32`)";
        let raw = raw.trim();
        let bytes = if raw.len() == 64 && raw.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&raw[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| HOW)?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(raw)
                .map_err(|_| HOW)?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| HOW)?;
        Ok(Self(std::sync::Arc::new(SecretBox::new(Box::new(key)))))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&(*self.0.expose_secret()).into())
    }

    /// nonce ‖ ciphertext ‖ tag of `seed`, bound to `kid`.
    fn seal(&self, kid: &str, seed: &[u8; 32]) -> anyhow::Result<Vec<u8>> {
        let nonce: [u8; 24] = rand::random();
        let sealed = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: seed,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("cannot seal a signing key"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    fn open(&self, kid: &str, sealed: &[u8]) -> anyhow::Result<[u8; 32]> {
        let refused = || {
            anyhow::anyhow!(
                "{} does not open the stored signing key {kid} (another key, or a damaged row)",
                Self::VARIABLE
            )
        };
        let (nonce, ciphertext) = sealed.split_at_checked(24).ok_or_else(refused)?;
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| refused())?;
        let seed = self
            .cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| refused())?;
        seed.try_into().map_err(|_| refused())
    }
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(<redacted>)")
    }
}

/// One stored key, its seed in clear or sealed.
#[derive(sqlx::FromRow)]
struct StoredKey {
    kid: String,
    seed: Option<Vec<u8>>,
    sealed_seed: Option<Vec<u8>>,
}

impl StoredKey {
    fn seed(&self, encryption: Option<&KeyEncryptionKey>) -> anyhow::Result<[u8; 32]> {
        match (&self.seed, &self.sealed_seed, encryption) {
            (Some(seed), _, _) => seed
                .as_slice()
                .try_into()
                .map_err(|_| anyhow::anyhow!("stored signing key has the wrong length")),
            (None, Some(sealed), Some(key)) => key.open(&self.kid, sealed),
            (None, Some(_), None) => anyhow::bail!(
                "the signing keys are stored encrypted: set {} to the key they were sealed with",
                KeyEncryptionKey::VARIABLE
            ),
            (None, None, _) => anyhow::bail!("stored signing key {} has no seed", self.kid),
        }
    }
}

/// Prepares the keys at start, under an advisory lock so that instances starting together
/// agree: creates the first key if there is none and, with an encryption key, seals every
/// key still stored in clear. Fails when the stored keys cannot be read with `encryption`.
pub async fn prepare(pool: &PgPool, encryption: Option<&KeyEncryptionKey>) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    lock(&mut tx).await?;
    let stored: Vec<StoredKey> =
        sqlx::query_as("select kid, seed, sealed_seed from signing_keys order by created_at")
            .fetch_all(&mut *tx)
            .await?;
    if stored.is_empty() {
        insert_new(&mut tx, encryption).await?;
    }
    for key in &stored {
        // Reading every key now turns a wrong or missing encryption key into an error at
        // start, not at the first sign-in.
        let seed = key.seed(encryption)?;
        if let (Some(encryption), Some(_)) = (encryption, &key.seed) {
            sqlx::query("update signing_keys set seed = null, sealed_seed = $2 where kid = $1")
                .bind(&key.kid)
                .bind(encryption.seal(&key.kid, &seed)?)
                .execute(&mut *tx)
                .await?;
            tracing::info!(kid = key.kid, "sealed a signing key stored in clear");
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Adds a new signing key (sealed when `encryption` is set) and returns its `kid`. Instances
/// sign with it once it has been published for the activation delay.
pub async fn rotate(
    pool: &PgPool,
    encryption: Option<&KeyEncryptionKey>,
) -> anyhow::Result<String> {
    let mut tx = pool.begin().await?;
    lock(&mut tx).await?;
    let kid = insert_new(&mut tx, encryption).await?;
    tx.commit().await?;
    Ok(kid)
}

/// The key to sign with: the newest one published at least `activation` ago or, when none
/// is that old (the first key of a new database), the newest.
pub async fn load_active(
    pool: &PgPool,
    encryption: Option<&KeyEncryptionKey>,
    activation: Duration,
) -> anyhow::Result<ActiveKey> {
    let activation = i64::try_from(activation.as_millis()).unwrap_or(i64::MAX);
    let stored: StoredKey = sqlx::query_as(
        "select kid, seed, sealed_seed from signing_keys
         order by created_at <= now() - make_interval(secs => $1::float8 / 1000) desc,
                  created_at desc
         limit 1",
    )
    .bind(activation)
    .fetch_optional(pool)
    .await?
    .context("there is no signing key")?;
    let der = SigningKey::from_bytes(&stored.seed(encryption)?)
        .to_pkcs8_der()
        .context("cannot encode the signing key")?;
    Ok(ActiveKey {
        kid: stored.kid,
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

async fn lock(tx: &mut sqlx::PgConnection) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_xact_lock(hashtext('auth.signing_keys'))")
        .execute(tx)
        .await?;
    Ok(())
}

async fn insert_new(
    tx: &mut sqlx::PgConnection,
    encryption: Option<&KeyEncryptionKey>,
) -> anyhow::Result<String> {
    let seed: [u8; 32] = rand::random();
    let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    let kid = uuid::Uuid::new_v4().simple().to_string();
    let (clear, sealed) = match encryption {
        Some(key) => (None, Some(key.seal(&kid, &seed)?)),
        None => (Some(seed.to_vec()), None),
    };
    sqlx::query(
        "insert into signing_keys (kid, seed, sealed_seed, public_key) values ($1, $2, $3, $4)",
    )
    .bind(&kid)
    .bind(clear)
    .bind(sealed)
    .bind(public.as_slice())
    .execute(tx)
    .await?;
    tracing::info!(
        kid,
        sealed = encryption.is_some(),
        "created a token signing key"
    );
    Ok(kid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> KeyEncryptionKey {
        use base64::Engine;
        KeyEncryptionKey::parse(&base64::engine::general_purpose::STANDARD.encode([byte; 32]))
            .expect("a valid key")
    }

    #[test]
    fn a_sealed_seed_opens_only_with_its_key_and_its_kid() {
        let seed = [9; 32];
        let sealed = key(1).seal("k1", &seed).expect("sealed");
        assert!(!sealed.windows(32).any(|window| window == seed));
        assert_eq!(key(1).open("k1", &sealed).expect("opened"), seed);
        assert!(key(2).open("k1", &sealed).is_err());
        assert!(key(1).open("k2", &sealed).is_err());
        assert!(key(1).open("k1", &sealed[..10]).is_err());
    }

    #[test]
    fn a_malformed_encryption_key_is_refused_without_echoing_it() {
        for raw in [
            "not base64!",
            "c2hvcnQ=",
            &"ab".repeat(31),
            &"zz".repeat(32),
        ] {
            let error = KeyEncryptionKey::parse(raw).err().unwrap_or_default();
            assert!(error.contains("openssl rand -hex 32"), "{error}");
            assert!(!error.contains(raw), "{error}");
        }
    }

    #[test]
    fn an_encryption_key_may_be_hex_or_base64_and_both_give_the_same_key() {
        use base64::Engine;
        let seed = [7; 32];
        let base64 =
            KeyEncryptionKey::parse(&base64::engine::general_purpose::STANDARD.encode([0xab; 32]))
                .expect("base64 key");
        let hex = KeyEncryptionKey::parse(&"aB".repeat(32)).expect("hex key");
        let sealed = base64.seal("k1", &seed).expect("sealed");
        assert_eq!(
            hex.open("k1", &sealed).expect("opened with the hex form"),
            seed
        );
    }
}
