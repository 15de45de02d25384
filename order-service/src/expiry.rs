//! Expiry of unpaid orders. Each order stores its `expires_at`; this loop looks for orders
//! past it, so expiry needs no timer in memory and survives any restart: an order that fell
//! due while the service was down expires at the first sweep after it is back.

use std::time::Duration;

use platform::shutdown::CancellationToken;
use sqlx::PgPool;

use crate::orders;

/// Orders expired per database transaction.
const BATCH: i64 = 100;

/// Sweeps every `interval` until `shutdown`. Database failures are logged and retried at the
/// next sweep.
pub async fn run(pool: PgPool, interval: Duration, shutdown: CancellationToken) {
    loop {
        loop {
            match orders::expire_due(&pool, BATCH).await {
                Ok(expired) => {
                    if expired > 0 {
                        tracing::info!(expired, "unpaid orders expired");
                    }
                    // Only a full batch leaves more due right now.
                    if i64::try_from(expired).unwrap_or(i64::MAX) < BATCH {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, "cannot expire orders; retrying");
                    break;
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
