//! Passwords: length rules and argon2id hashing.
//!
//! Hashing is deliberately slow (argon2 0.6 defaults, the OWASP parameters: argon2id,
//! 19 MiB, 2 passes), so it runs on tokio's blocking pool and never on the async runtime.
//! At most one hash per core runs at a time: more would not finish sooner, and each needs
//! 19 MiB, so a burst of sign-ins would otherwise cost 19 MiB per request in flight.
//!
//! Each hashing permit comes with its own 19 MiB block buffer, kept and reused from one
//! hash to the next (`Argon2::hash_password_into_with_memory`). argon2's own
//! `hash_password` / `verify_password` allocate and free 19 MiB per hash, and how much of
//! that the process gives back then depends on its allocator and its threads: glibc kept a
//! block per thread that had hashed (auth-service at 711 MB after 40 concurrent sign-ups;
//! the all-in-one `stack` from 40 MB to 889 MB over 2,000 sign-ups). With the buffers
//! kept, hashing holds one buffer per core, whatever the allocator, and allocates nothing
//! large per hash (see docs/benchmarks.md).
//!
//! The PHC strings are argon2's own (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`, a
//! random 16-byte salt per hash from the OS RNG): hashes made here verify with argon2's
//! `verify_password`, and any argon2 PHC string verifies here, with the parameters it names
//! (at most the 19 MiB of a buffer) and a constant-time comparison.
//!
//! Waiting for a hashing slot is bounded (`PASSWORD_HASH_MAX_WAIT_MS`): past it the request
//! is refused as busy ([`HashingError::Busy`], gRPC `UNAVAILABLE`, which the gateway answers
//! with 503 and `Retry-After`), rather than queueing until the client's own deadline passes
//! and it gets a 504 for a hash that still runs after it gave up.
//!
//! Signing in with an unknown email verifies against a dummy hash so it costs the same time
//! as a wrong password and does not reveal which emails have accounts.

use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::thread::available_parallelism;
use std::time::Duration;

use anyhow::Context;
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::password_hash::try_generate_salt;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
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

/// The block buffers not in use. A buffer is taken only by the holder of a hashing permit
/// and given back before the permit, and a new one is made only when this is empty: so it
/// never holds more buffers than there are permits, and all of them once every permit has
/// been used at once.
static BUFFERS: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// The blocks (1 KiB each) a hash with the parameters of new hashes works in: 19,456.
const BLOCKS: usize = Params::DEFAULT.block_count();

/// A buffer from the pool, or a new one when all are in use. Only a permit holder calls it.
fn take_buffer() -> anyhow::Result<Vec<Block>> {
    // A panic while the lock was held cannot leave the list half-changed: go on with it.
    let pooled = BUFFERS.lock().unwrap_or_else(PoisonError::into_inner).pop();
    match pooled {
        Some(buffer) => Ok(buffer),
        None => new_buffer(),
    }
}

/// A buffer of [`BLOCKS`] blocks; an allocation failure is an error, not an abort.
fn new_buffer() -> anyhow::Result<Vec<Block>> {
    let mut buffer = Vec::new();
    buffer
        .try_reserve_exact(BLOCKS)
        .context("cannot allocate the argon2 block buffer")?;
    buffer.resize(BLOCKS, Block::new());
    Ok(buffer)
}

fn give_back(buffer: Vec<Block>) {
    BUFFERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(buffer);
}

/// Why a hash did not happen.
#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    /// Every slot stayed taken for the whole wait: too many hashes asked for at once.
    #[error("no hashing slot was free within {0:?}")]
    Busy(Duration),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Runs `work` on the blocking pool once a hashing slot is free (waiting at most `wait`),
/// with that slot's block buffer. The slot goes with the work, so a caller that gives up waiting does not free it
/// before the hash ends. The buffer goes back to the pool before the slot is freed (if
/// `work` panics, it is dropped and a later hash makes a new one).
async fn hashing<T: Send + 'static>(
    wait: Duration,
    work: impl FnOnce(&mut [Block]) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, HashingError> {
    // `timeout` tries the semaphore once before it looks at the clock, so a free slot is
    // taken even with a wait of zero.
    let slot = tokio::time::timeout(wait, HASHING.clone().acquire_owned())
        .await
        .map_err(|_| HashingError::Busy(wait))?
        .map_err(anyhow::Error::from)?;
    let result = tokio::task::spawn_blocking(move || {
        let mut buffer = take_buffer()?;
        let result = work(&mut buffer);
        give_back(buffer);
        drop(slot);
        result
    })
    .await
    .map_err(anyhow::Error::from)??;
    Ok(result)
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`), waiting at
/// most `wait` for a hashing slot.
pub async fn hash(password: Password, wait: Duration) -> Result<String, HashingError> {
    hashing(wait, move |memory| {
        hash_in(memory, password.0.expose_secret().as_bytes())
    })
    .await
}

/// Whether `candidate` matches `stored` (a PHC string), or, when there is no account
/// (`stored` is `None`), spends the same time and answers `false`. Waits at most `wait` for
/// a hashing slot.
pub async fn verify(
    candidate: SecretString,
    stored: Option<Arc<str>>,
    wait: Duration,
) -> Result<bool, HashingError> {
    hashing(wait, move |memory| {
        let (phc, exists) = match &stored {
            Some(stored) => (stored.as_ref(), true),
            None => (DUMMY_HASH.as_str(), false),
        };
        let matches = verify_in(memory, candidate.expose_secret().as_bytes(), phc)?;
        Ok(matches && exists)
    })
    .await
}

/// What argon2's `hash_password` does (argon2id, version 0x13, default parameters, a
/// 16-byte salt from the OS RNG, a 32-byte output), working in `memory`.
fn hash_in(memory: &mut [Block], password: &[u8]) -> anyhow::Result<String> {
    fn unwritable(error: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!("cannot write the password hash: {error}")
    }
    let argon2 = Argon2::default();
    let salt = try_generate_salt()
        .map_err(|error| anyhow::anyhow!("cannot draw a salt from the OS: {error}"))?;
    let mut output = [0_u8; Params::DEFAULT_OUTPUT_LEN];
    argon2
        .hash_password_into_with_memory(password, &salt, &mut output, memory)
        .map_err(|error| anyhow::anyhow!("cannot hash the password: {error}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::default().ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(argon2.params()).map_err(unwritable)?,
        salt: Some(Salt::new(&salt).map_err(unwritable)?),
        hash: Some(Output::new(&output).map_err(unwritable)?),
    };
    Ok(phc.to_string())
}

/// What argon2's `verify_password` does (the algorithm, version and parameters the PHC
/// string names; argon2's defaults for those it leaves out), working in `memory`: a hash
/// that needs more memory than that is an error. The outputs are compared in constant time.
fn verify_in(memory: &mut [Block], candidate: &[u8], phc: &str) -> anyhow::Result<bool> {
    fn malformed(error: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!("stored password hash is malformed: {error}")
    }
    let stored = PasswordHash::new(phc).map_err(malformed)?;
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return Err(malformed("it has no salt or no hash"));
    };
    let algorithm = Algorithm::try_from(stored.algorithm.as_str()).map_err(malformed)?;
    let version = match stored.version {
        Some(version) => Version::try_from(version).map_err(malformed)?,
        None => Version::default(),
    };
    // Its output length is the stored hash's.
    let params = Params::try_from(&stored).map_err(malformed)?;
    let mut computed = [0_u8; Output::MAX_LENGTH];
    let computed = computed
        .get_mut(..expected.len())
        .context("stored password hash is malformed: its hash is too long")?;
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(candidate, salt, computed, memory)
        .map_err(|error| anyhow::anyhow!("cannot verify the password: {error}"))?;
    Ok(computed.ct_eq(expected.as_bytes()).into())
}

/// A hash of a random password with the same parameters as real ones. Computed once, in a
/// buffer of its own that is freed after (at start-up, see [`warm_up`]), so that the pool
/// only ever holds the buffers of permits.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let random = uuid::Uuid::new_v4().to_string();
    new_buffer()
        .and_then(|mut memory| hash_in(&mut memory, random.as_bytes()))
        .unwrap_or_default()
});

/// Computes the dummy hash now, at start-up, rather than during the first sign-in.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long enough never to be reached in these tests.
    const WAIT: Duration = Duration::from_secs(60);

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
            jobs.spawn(hashing(WAIT, move |_memory| {
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
        let hash: Arc<str> = hash(Password::parse("correct horse battery").unwrap(), WAIT)
            .await
            .unwrap()
            .into();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let right = SecretString::from("correct horse battery");
        let wrong = SecretString::from("correct horse battery!");
        assert!(
            verify(right.clone(), Some(hash.clone()), WAIT)
                .await
                .unwrap()
        );
        assert!(!verify(wrong, Some(hash), WAIT).await.unwrap());
        assert!(!verify(right, None, WAIT).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_made_here_verify_with_argon2_itself() {
        use argon2::PasswordVerifier;
        let hash = hash(Password::parse("correct horse battery").unwrap(), WAIT)
            .await
            .unwrap();
        let parsed = PasswordHash::new(&hash).unwrap();
        let argon2 = Argon2::default();
        assert!(
            argon2
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        assert!(
            argon2
                .verify_password(b"correct horse battery!", &parsed)
                .is_err()
        );
        // Same parameters and format as argon2's own, and a fresh salt each time.
        let theirs = argon2::PasswordHasher::hash_password(&argon2, b"x").unwrap();
        assert_eq!(parsed.algorithm, theirs.algorithm);
        assert_eq!(parsed.version, theirs.version);
        assert_eq!(parsed.params, theirs.params);
        assert_eq!(parsed.salt.unwrap().len(), theirs.salt.unwrap().len());
        assert_eq!(parsed.hash.unwrap().len(), theirs.hash.unwrap().len());
        let again = self::hash(Password::parse("correct horse battery").unwrap(), WAIT)
            .await
            .unwrap();
        assert_ne!(again, hash);
    }

    #[tokio::test]
    async fn hashes_made_by_argon2_itself_verify_here() {
        use argon2::PasswordHasher;
        let theirs: Arc<str> = Argon2::default()
            .hash_password(b"correct horse battery")
            .unwrap()
            .to_string()
            .into();
        assert!(theirs.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let right = SecretString::from("correct horse battery");
        let wrong = SecretString::from("Correct horse battery");
        assert!(verify(right, Some(theirs.clone()), WAIT).await.unwrap());
        assert!(!verify(wrong, Some(theirs), WAIT).await.unwrap());
    }

    #[tokio::test]
    async fn a_wrong_password_is_refused() {
        let hash: Arc<str> = hash(Password::parse("correct horse battery").unwrap(), WAIT)
            .await
            .unwrap()
            .into();
        for wrong in ["", "correct horse batter", "correct horse battery ", "x"] {
            let wrong = SecretString::from(wrong);
            assert!(!verify(wrong, Some(hash.clone()), WAIT).await.unwrap());
        }
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_an_error() {
        let right = SecretString::from("correct horse battery");
        let stored: Arc<str> = "$argon2id$v=19$m=19456,t=2,p=1".into();
        assert!(verify(right, Some(stored), WAIT).await.is_err());
    }

    #[tokio::test]
    async fn the_pool_never_holds_more_buffers_than_permits() {
        use std::collections::HashSet;
        let permits = available_parallelism().map_or(1, std::num::NonZero::get);
        let pooled = || BUFFERS.lock().unwrap().len();
        let mut jobs = tokio::task::JoinSet::new();
        for _ in 0..16 {
            jobs.spawn(hashing(WAIT, move |memory| {
                assert_eq!(memory.len(), BLOCKS);
                // Every test shares the pool, and none may push it past the permits.
                assert!(BUFFERS.lock().unwrap().len() < permits);
                Ok(memory.as_ptr().addr())
            }));
        }
        let mut buffers = HashSet::new();
        while let Some(result) = jobs.join_next().await {
            buffers.insert(result.unwrap().unwrap());
        }
        // The 16 jobs shared at most one buffer per permit: buffers are reused, not made anew.
        assert!(
            (1..=permits).contains(&buffers.len()),
            "{} buffers for {permits} permits",
            buffers.len()
        );
        assert!(pooled() <= permits);
        // Real hashes take their buffers from the same pool.
        let mut hashes = tokio::task::JoinSet::new();
        for _ in 0..4 {
            hashes.spawn(hash(
                Password::parse("correct horse battery").unwrap(),
                WAIT,
            ));
        }
        while let Some(result) = hashes.join_next().await {
            result.unwrap().unwrap();
        }
        assert!(pooled() <= permits);
    }

    #[tokio::test]
    async fn waiting_for_a_slot_is_bounded_and_answered_busy() {
        // Take every slot, then ask for one more with a short wait.
        let permits = available_parallelism().map_or(1, std::num::NonZero::get);
        let held = HASHING
            .clone()
            .acquire_many_owned(u32::try_from(permits).unwrap_or(1))
            .await
            .expect("the slots");
        let started = std::time::Instant::now();
        let outcome = hashing(Duration::from_millis(50), |_memory| Ok(())).await;
        assert!(matches!(outcome, Err(HashingError::Busy(_))), "{outcome:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(held);
        assert!(hashing(Duration::ZERO, |_memory| Ok(())).await.is_ok());
    }
}
