//! Passwords: length rules and argon2id hashing.
//!
//! Hashing is deliberately slow (argon2 0.6 defaults, the OWASP parameters: argon2id,
//! 19 MiB, 2 passes), so it runs on tokio's blocking pool and never on the async runtime.
//! At most one hash per core runs at a time: more would not finish sooner, and each holds
//! 19 MiB, so a burst of sign-ins would otherwise cost 19 MiB per request in flight.
//! Signing in with an unknown email verifies against a dummy hash so it costs the same time
//! as a wrong password and does not reveal which emails have accounts.

use std::sync::{Arc, LazyLock};
use std::thread::available_parallelism;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// A password that satisfies the sign-up rules. Never logged: `Debug` is redacted.
pub struct Password(SecretString);

impl Password {
    pub const MIN_CHARS: usize = 8;
    /// Caps the work an attacker can ask of the hasher.
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(format!("must be at least {} characters", Self::MIN_CHARS));
        }
        if chars > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        Ok(Self(SecretString::from(raw)))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The hashes that may run at once: one per core.
static HASHING: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    Arc::new(Semaphore::new(
        available_parallelism().map_or(1, std::num::NonZero::get),
    ))
});

/// Runs `work` on the blocking pool once a hashing slot is free. The slot goes with the
/// work, so a caller that gives up waiting does not free it before the hash ends.
async fn hashing<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let slot = HASHING.clone().acquire_owned().await?;
    tokio::task::spawn_blocking(move || {
        let result = work();
        drop(slot);
        result
    })
    .await?
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
pub async fn hash(password: Password) -> anyhow::Result<String> {
    hashing(move || {
        Argon2::default()
            .hash_password(password.0.expose_secret().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|error| anyhow::anyhow!("cannot hash the password: {error}"))
    })
    .await
}

/// Whether `candidate` matches `stored` (a PHC string), or, when there is no account
/// (`stored` is `None`), spends the same time and answers `false`.
pub async fn verify(candidate: SecretString, stored: Option<Arc<str>>) -> anyhow::Result<bool> {
    hashing(move || {
        let (phc, exists) = match &stored {
            Some(stored) => (stored.as_ref(), true),
            None => (DUMMY_HASH.as_str(), false),
        };
        let parsed = PasswordHash::new(phc)
            .map_err(|error| anyhow::anyhow!("stored password hash is malformed: {error}"))?;
        let matches = Argon2::default()
            .verify_password(candidate.expose_secret().as_bytes(), &parsed)
            .is_ok();
        Ok(matches && exists)
    })
    .await
}

/// A hash of a random password with the same parameters as real ones.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let random = uuid::Uuid::new_v4().to_string();
    Argon2::default()
        .hash_password(random.as_bytes())
        .map(|hash| hash.to_string())
        .unwrap_or_default()
});

/// Computes the dummy hash now, at start-up, rather than during the first sign-in.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_shorter_than_eight_characters_are_refused() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        // Characters, not bytes: seven accented letters are still too short.
        assert!(Password::parse("ééééééé").is_err());
    }

    #[test]
    fn password_debug_output_is_redacted() {
        let password = Password::parse("correct horse battery").unwrap();
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
    }

    #[tokio::test]
    async fn no_more_hashes_than_cores_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut jobs = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (running, most) = (running.clone(), most.clone());
            jobs.spawn(hashing(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }));
        }
        while let Some(result) = jobs.join_next().await {
            result.unwrap().unwrap();
        }
        let cores = available_parallelism().map_or(1, std::num::NonZero::get);
        // Without the limit, the blocking pool runs all 16 at once.
        let most = most.load(Ordering::SeqCst);
        assert!(
            (1..=cores).contains(&most),
            "{most} ran at once on {cores} cores"
        );
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hash: Arc<str> = hash(Password::parse("correct horse battery").unwrap())
            .await
            .unwrap()
            .into();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let right = SecretString::from("correct horse battery");
        let wrong = SecretString::from("correct horse battery!");
        assert!(verify(right.clone(), Some(hash.clone())).await.unwrap());
        assert!(!verify(wrong, Some(hash)).await.unwrap());
        assert!(!verify(right, None).await.unwrap());
    }
}
