//! Failed sign-ins, counted per email and per client address.
//!
//! Only failures count (a user who types the right password is never slowed down), which
//! is why this is a small fixed-window counter rather than a rate-limiting crate such as
//! `governor` (behind `tower_governor`): those charge every request before its outcome is
//! known, so they would slow down users who sign in correctly. Counts live in this gateway's memory; each
//! gateway instance enforces the limit on the traffic it sees.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::SignInLimits;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Email(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

pub struct SignInLimiter {
    limits: SignInLimits,
    windows: Mutex<HashMap<Key, Window>>,
}

/// Past this many tracked keys, expired windows are swept on the next failure.
const SWEEP_THRESHOLD: usize = 10_000;

impl SignInLimiter {
    pub fn new(limits: SignInLimits) -> Self {
        Self {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` when this email or address has failed too often recently.
    pub fn check(
        &self,
        email: &str,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), Duration> {
        let windows = self.lock();
        let mut wait = Duration::ZERO;
        for (key, max) in self.keys(email, address) {
            if let Some(window) = windows.get(&key) {
                let ends = window.started + self.limits.window;
                if window.failures >= max && ends > now {
                    wait = wait.max(ends - now);
                }
            }
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    pub fn record_failure(&self, email: &str, address: Option<IpAddr>, now: Instant) {
        let mut windows = self.lock();
        if windows.len() > SWEEP_THRESHOLD {
            let length = self.limits.window;
            windows.retain(|_, window| window.started + length > now);
        }
        for (key, _) in self.keys(email, address) {
            let window = windows.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if window.started + self.limits.window <= now {
                *window = Window {
                    started: now,
                    failures: 0,
                };
            }
            window.failures += 1;
        }
    }

    /// A successful sign-in clears the email's count (not the address's: one address may be
    /// guessing at many accounts).
    pub fn record_success(&self, email: &str) {
        self.lock().remove(&Key::Email(normalize(email)));
    }

    fn keys(&self, email: &str, address: Option<IpAddr>) -> Vec<(Key, u32)> {
        let mut keys = vec![(Key::Email(normalize(email)), self.limits.per_email)];
        if let Some(address) = address {
            keys.push((Key::Address(address), self.limits.per_address));
        }
        keys
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Window>> {
        // A panic while holding the lock cannot leave the counts inconsistent.
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn normalize(email: &str) -> String {
    email.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> SignInLimiter {
        SignInLimiter::new(SignInLimits {
            per_email: 3,
            per_address: 5,
            window: Duration::from_secs(60),
        })
    }

    const HOME: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn an_email_is_blocked_after_its_limit_of_failures_until_the_window_ends() {
        let limiter = limiter();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("ann@example.org", None, start).is_ok());
            limiter.record_failure("ann@example.org", None, start);
        }
        let later = start + Duration::from_secs(20);
        assert_eq!(
            limiter.check("ANN@example.org ", None, later),
            Err(Duration::from_secs(40))
        );
        assert!(limiter.check("bob@example.org", None, later).is_ok());
        assert!(
            limiter
                .check("ann@example.org", None, start + Duration::from_secs(60))
                .is_ok()
        );
    }

    #[test]
    fn an_address_is_blocked_after_failures_across_many_emails() {
        let limiter = limiter();
        let now = Instant::now();
        for n in 0..5 {
            limiter.record_failure(&format!("user{n}@example.org"), HOME, now);
        }
        assert!(limiter.check("new@example.org", HOME, now).is_err());
        assert!(limiter.check("new@example.org", None, now).is_ok());
    }

    #[test]
    fn a_success_clears_the_email_count() {
        let limiter = limiter();
        let now = Instant::now();
        limiter.record_failure("ann@example.org", None, now);
        limiter.record_failure("ann@example.org", None, now);
        limiter.record_success("ann@example.org");
        limiter.record_failure("ann@example.org", None, now);
        limiter.record_failure("ann@example.org", None, now);
        assert!(limiter.check("ann@example.org", None, now).is_ok());
    }
}
