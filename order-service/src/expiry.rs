//! Expiry of unpaid orders. Each order stores its `expires_at`; a periodic job looks for
//! orders past it, so expiry needs no timer in memory and survives any restart: an order
//! that fell due while the service was down expires at the first sweep after it is back.

use platform::outbox::Outbox;

use crate::error::OrderError;
use crate::orders;

/// Orders expired per database transaction.
const BATCH: i64 = 100;

/// Expires every unpaid order that is due, a batch at a time; returns how many.
pub async fn sweep(outbox: &Outbox) -> Result<usize, OrderError> {
    let mut expired = 0;
    loop {
        let batch = orders::expire_due(outbox, BATCH).await?;
        expired += batch;
        // Only a full batch leaves more due right now.
        if i64::try_from(batch).unwrap_or(i64::MAX) < BATCH {
            if expired > 0 {
                tracing::info!(expired, "unpaid orders expired");
            }
            return Ok(expired);
        }
    }
}
