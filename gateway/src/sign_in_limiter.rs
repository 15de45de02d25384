//! Sign-in failures, counted per email and per client address, and sign-ups, counted per
//! client address.
//!
//! **Sign-in.** An attempt is charged as a failure *before* the password is checked, and the
//! charge is taken back when the outcome is not a failure: a success clears the email's
//! count (not the address's: one address may be guessing at many accounts), and an attempt
//! that ends without an answer from the auth service (an error, a timeout, a client that went
//! away) is refunded. So at most the limit of guesses per email can be in flight or failed
//! within a window, however many arrive at once: 40 parallel wrong passwords get the limit of
//! 401s and 429s for the rest. Only failures count in the end, so a user who types the right
//! password is never slowed down; that is why this is a small fixed-window counter rather
//! than a rate-limiting crate such as `governor` (behind `tower_governor`), which charges
//! every request for good.
//!
//! **Sign-up.** Every attempt counts against its client address, whatever its outcome: a
//! valid one costs a password hash even when the email turns out to be taken.
//!
//! **Bounded memory.** Emails are kept as a 64-bit keyed hash (SipHash with this process's
//! random keys, so nobody can aim collisions), never as text, so a key is the same size
//! whatever a client sends. IPv6 addresses count per /64 network, the block one subscriber
//! gets. At most [`MAX_TRACKED_KEYS`] keys are tracked; when the table is full of unexpired
//! windows, attempts that would need a new key are refused with 429 until the oldest window
//! ends. That fails closed: someone flooding with distinct emails from many addresses can
//! delay other sign-ins for a window, but can never push a victim's count out of the table
//! and so reset it.
//!
//! Counts live in this gateway's memory; each gateway instance enforces the limits on the
//! traffic it sees. The client address comes from [`crate::client_address`].

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::config::{SignInLimits, SignUpLimits};

/// Most keys (emails, addresses) tracked at once: about 80 bytes each, a few MB in all.
pub const MAX_TRACKED_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// Keyed hash of the normalised email.
    Email(u64),
    SignInAddress(IpAddr),
    SignUpAddress(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

pub struct SignInLimiter {
    sign_in: SignInLimits,
    sign_up: SignUpLimits,
    capacity: usize,
    hasher: RandomState,
    windows: Mutex<HashMap<Key, Window>>,
}

/// A sign-in attempt, charged as a failure until its outcome is known. Dropping it without
/// an outcome refunds the charge.
#[must_use = "an attempt is refunded when dropped without an outcome"]
pub struct Attempt<'a> {
    limiter: &'a SignInLimiter,
    /// The keys charged, with the start of the window each charge went to.
    charged: Vec<(Key, Instant)>,
    settled: bool,
}

impl Attempt<'_> {
    /// The password was wrong: the charge stays.
    pub fn failed(mut self) {
        self.settled = true;
    }

    /// The password was right: the address's charge is refunded and the email's count
    /// cleared.
    pub fn succeeded(mut self) {
        self.settled = true;
        let mut windows = self.limiter.lock();
        for (key, started) in &self.charged {
            match key {
                Key::Email(_) => {
                    windows.remove(key);
                }
                _ => refund(&mut windows, *key, *started),
            }
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            let mut windows = self.limiter.lock();
            for (key, started) in &self.charged {
                refund(&mut windows, *key, *started);
            }
        }
    }
}

fn refund(windows: &mut HashMap<Key, Window>, key: Key, started: Instant) {
    // Only from the window that was charged: a new window owes nothing.
    if let Some(window) = windows
        .get_mut(&key)
        .filter(|window| window.started == started)
    {
        window.count = window.count.saturating_sub(1);
        if window.count == 0 {
            windows.remove(&key);
        }
    }
}

impl SignInLimiter {
    pub fn new(sign_in: SignInLimits, sign_up: SignUpLimits) -> Self {
        Self::with_capacity(sign_in, sign_up, MAX_TRACKED_KEYS)
    }

    /// A limiter tracking at most `capacity` keys (tests use a small one).
    pub fn with_capacity(sign_in: SignInLimits, sign_up: SignUpLimits, capacity: usize) -> Self {
        Self {
            sign_in,
            sign_up,
            capacity,
            hasher: RandomState::new(),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Charges a sign-in attempt for `email` from `address`, or `Err(retry_after)` when
    /// either has reached its limit (failures and attempts in flight together).
    pub fn begin_sign_in(
        &self,
        email: &str,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<Attempt<'_>, Duration> {
        let mut keys = vec![(Key::Email(self.email_key(email)), self.sign_in.per_email)];
        if let Some(address) = address {
            keys.push((
                Key::SignInAddress(address_key(address)),
                self.sign_in.per_address,
            ));
        }
        let charged = self.charge(&keys, self.sign_in.window, now)?;
        Ok(Attempt {
            limiter: self,
            charged,
            settled: false,
        })
    }

    /// Charges a sign-up from `address`, or `Err(retry_after)` past its limit. Sign-ups are
    /// never refunded (see the module doc).
    pub fn begin_sign_up(&self, address: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let Some(address) = address else {
            return Ok(());
        };
        let key = Key::SignUpAddress(address_key(address));
        self.charge(&[(key, self.sign_up.per_address)], self.sign_up.window, now)
            .map(drop)
    }

    /// Adds one to every key's window, or to none when one of them is at its `max` (or the
    /// table is full).
    fn charge(
        &self,
        keys: &[(Key, u32)],
        length: Duration,
        now: Instant,
    ) -> Result<Vec<(Key, Instant)>, Duration> {
        let mut windows = self.lock();
        let mut wait = Duration::ZERO;
        let mut new_keys = 0;
        for (key, max) in keys {
            match windows.get(key) {
                Some(window) if window.started + length > now => {
                    if window.count >= *max {
                        wait = wait.max(window.started + length - now);
                    }
                }
                Some(_) => {}
                None => new_keys += 1,
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        if windows.len() + new_keys > self.capacity {
            self.sweep(&mut windows, now);
            if windows.len() + new_keys > self.capacity {
                return Err(self.until_first_window_ends(&windows, now));
            }
        }
        let mut charged = Vec::with_capacity(keys.len());
        for (key, _) in keys {
            let window = windows.entry(*key).or_insert(Window {
                started: now,
                count: 0,
            });
            if window.started + length <= now {
                *window = Window {
                    started: now,
                    count: 0,
                };
            }
            window.count += 1;
            charged.push((*key, window.started));
        }
        Ok(charged)
    }

    /// Forgets the windows that have ended.
    fn sweep(&self, windows: &mut HashMap<Key, Window>, now: Instant) {
        windows.retain(|key, window| window.started + self.length_of(key) > now);
    }

    fn until_first_window_ends(&self, windows: &HashMap<Key, Window>, now: Instant) -> Duration {
        windows
            .iter()
            .map(|(key, window)| {
                (window.started + self.length_of(key)).saturating_duration_since(now)
            })
            .min()
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_secs(1))
    }

    fn length_of(&self, key: &Key) -> Duration {
        match key {
            Key::SignUpAddress(_) => self.sign_up.window,
            Key::Email(_) | Key::SignInAddress(_) => self.sign_in.window,
        }
    }

    fn email_key(&self, email: &str) -> u64 {
        // The auth service lowercases and trims emails too, so these name one account.
        self.hasher.hash_one(email.trim().to_lowercase())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Window>> {
        // A panic while holding the lock cannot leave the counts inconsistent.
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// IPv4 addresses as they are; IPv6 ones by their /64 network (one subscriber's block), so
/// that an attacker cannot get a fresh count per address of its network.
fn address_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1_u128 << 64) - 1);
            IpAddr::V6(network.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> SignInLimiter {
        limiter_with_capacity(MAX_TRACKED_KEYS)
    }

    fn limiter_with_capacity(capacity: usize) -> SignInLimiter {
        SignInLimiter::with_capacity(
            SignInLimits {
                per_email: 3,
                per_address: 5,
                window: Duration::from_secs(60),
            },
            SignUpLimits {
                per_address: 2,
                window: Duration::from_secs(60),
            },
            capacity,
        )
    }

    const HOME: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    fn fail(limiter: &SignInLimiter, email: &str, address: Option<IpAddr>, now: Instant) {
        limiter
            .begin_sign_in(email, address, now)
            .expect("not limited yet")
            .failed();
    }

    #[test]
    fn an_email_is_blocked_after_its_limit_of_failures_until_the_window_ends() {
        let limiter = limiter();
        let start = Instant::now();
        for _ in 0..3 {
            fail(&limiter, "ann@example.org", None, start);
        }
        let later = start + Duration::from_secs(20);
        assert_eq!(
            limiter.begin_sign_in("ANN@example.org ", None, later).err(),
            Some(Duration::from_secs(40))
        );
        assert!(
            limiter
                .begin_sign_in("bob@example.org", None, later)
                .is_ok()
        );
        assert!(
            limiter
                .begin_sign_in("ann@example.org", None, start + Duration::from_secs(60))
                .is_ok()
        );
    }

    #[test]
    fn attempts_in_flight_count_so_parallel_guesses_get_at_most_the_limit() {
        let limiter = limiter();
        let now = Instant::now();
        let in_flight: Vec<_> = (0..40)
            .filter_map(|_| limiter.begin_sign_in("ann@example.org", None, now).ok())
            .collect();
        assert_eq!(in_flight.len(), 3);
        for attempt in in_flight {
            attempt.failed();
        }
        assert!(limiter.begin_sign_in("ann@example.org", None, now).is_err());
    }

    #[test]
    fn a_success_or_an_attempt_without_an_outcome_is_refunded() {
        let limiter = limiter();
        let now = Instant::now();
        fail(&limiter, "ann@example.org", HOME, now);
        fail(&limiter, "ann@example.org", HOME, now);
        limiter
            .begin_sign_in("ann@example.org", HOME, now)
            .expect("a third try")
            .succeeded();
        // The email's count is cleared, and errors (dropped attempts) cost nothing.
        for _ in 0..5 {
            drop(
                limiter
                    .begin_sign_in("ann@example.org", HOME, now)
                    .expect("allowed"),
            );
        }
        fail(&limiter, "ann@example.org", HOME, now);
        fail(&limiter, "ann@example.org", HOME, now);
        assert!(limiter.begin_sign_in("ann@example.org", HOME, now).is_ok());
    }

    #[test]
    fn an_address_is_blocked_after_failures_across_many_emails() {
        let limiter = limiter();
        let now = Instant::now();
        for n in 0..5 {
            fail(&limiter, &format!("user{n}@example.org"), HOME, now);
        }
        assert!(limiter.begin_sign_in("new@example.org", HOME, now).is_err());
        assert!(limiter.begin_sign_in("new@example.org", None, now).is_ok());
    }

    #[test]
    fn sign_ups_are_counted_per_address_and_ipv6_per_64_network() {
        let limiter = limiter();
        let now = Instant::now();
        let first: IpAddr = "2001:db8:1:2::1".parse().expect("IPv6");
        let neighbour: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("IPv6");
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().expect("IPv6");
        assert!(limiter.begin_sign_up(Some(first), now).is_ok());
        assert!(limiter.begin_sign_up(Some(neighbour), now).is_ok());
        assert_eq!(
            limiter.begin_sign_up(Some(first), now),
            Err(Duration::from_secs(60))
        );
        assert!(limiter.begin_sign_up(Some(elsewhere), now).is_ok());
        assert!(
            limiter
                .begin_sign_up(Some(first), now + Duration::from_secs(60))
                .is_ok()
        );
    }

    #[test]
    fn a_full_table_refuses_new_keys_and_keeps_the_counts_it_has() {
        let limiter = limiter_with_capacity(4);
        let now = Instant::now();
        for n in 0..4 {
            fail(&limiter, &format!("user{n}@example.org"), None, now);
        }
        // No room for a fifth email: refused until the oldest window ends.
        assert_eq!(
            limiter.begin_sign_in("new@example.org", None, now).err(),
            Some(Duration::from_secs(60))
        );
        // Known emails still count.
        fail(&limiter, "user0@example.org", None, now);
        // Once the windows end, they are swept and there is room again.
        let later = now + Duration::from_secs(61);
        assert!(
            limiter
                .begin_sign_in("new@example.org", None, later)
                .is_ok()
        );
    }

    #[test]
    fn a_long_email_is_kept_as_its_hash_and_still_counted() {
        let limiter = limiter();
        let now = Instant::now();
        let long = format!("{}@example.org", "a".repeat(60_000));
        for _ in 0..3 {
            fail(&limiter, &long, None, now);
        }
        assert!(
            limiter
                .begin_sign_in(&long.to_uppercase(), None, now)
                .is_err()
        );
        assert!(
            limiter
                .lock()
                .keys()
                .all(|key| matches!(key, Key::Email(_)))
        );
    }
}
