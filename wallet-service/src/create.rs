//! Creating a transaction through the API, with its optional `Idempotency-Key`.

use platform::outbox::Outbox;
use uuid::Uuid;

use crate::error::LedgerError;
use crate::idempotency::{self, Claim};
use crate::ledger;
use crate::transaction::{NewTransaction, Transaction};

/// Longest `Idempotency-Key` accepted.
pub const MAX_KEY_LEN: usize = 255;

pub async fn create_transaction(
    outbox: &Outbox,
    new: &NewTransaction,
    key: Option<&str>,
) -> Result<Transaction, LedgerError> {
    if let Some(key) = key
        && (key.is_empty()
            || key.len() > MAX_KEY_LEN
            || !key.bytes().all(|byte| byte.is_ascii_graphic()))
    {
        return Err(LedgerError::Invalid(vec![(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        )]));
    }
    let Some(key) = key else {
        // Nothing to remember: the ledger's one statement is the whole change, and a broken
        // rule writes nothing.
        let mut conn = outbox.pool().acquire().await?;
        let applied = outbox.after(ledger::apply(&mut conn, new)).await?;
        return Ok(applied.transaction);
    };
    let mut tx = outbox.begin().await?;
    match idempotency::claim(&mut tx, new.user_id, key, &new.fingerprint()).await? {
        Claim::New => {}
        Claim::Applied(id) => return ledger::find(&mut tx, new.user_id, id).await,
        Claim::Failed(error) => return Err(error),
    }
    // A broken rule leaves the claimed key in place, to store the outcome.
    match ledger::try_apply(&mut tx, new).await {
        Ok(applied) => {
            let transaction = applied.transaction;
            idempotency::record_success(&mut tx, new.user_id, key, transaction.id).await?;
            tx.commit().await?;
            Ok(transaction)
        }
        Err(error) => {
            let Some(refusal) = error.refusal() else {
                return Err(error);
            };
            idempotency::record_failure(&mut tx, new.user_id, key, refusal, &error.detail())
                .await?;
            tx.commit().await?;
            Err(error)
        }
    }
}

/// A transaction id given as text, for look-ups.
pub fn parse_id(raw: &str, field: &'static str) -> Result<Uuid, LedgerError> {
    Uuid::parse_str(raw).map_err(|_| LedgerError::Invalid(vec![(field, "must be a UUID".into())]))
}
