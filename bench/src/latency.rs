//! Percentiles of recorded latencies.

use std::time::Duration;

/// The percentile `per_mille`/1000 (500 is the median, 990 the 99th) of `samples`, in
/// milliseconds; sorts them.
pub fn percentile_ms(samples: &mut [Duration], per_mille: usize) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_unstable();
    let last = samples.len() - 1;
    let index = (last * per_mille + 500) / 1000;
    samples[index.min(last)].as_secs_f64() * 1000.0
}
