//! Retrying what fails for a while (a broker or database that is down), with the `backon`
//! crate's exponential backoff: 200 ms, 400 ms, ... capped at 5 s, with jitter so that many
//! instances that lost their broker together do not reconnect in step.

use std::time::Duration;

use backon::ExponentialBuilder;

/// The platform's backoff, retrying for ever (callers stop on shutdown).
pub fn policy() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
}
