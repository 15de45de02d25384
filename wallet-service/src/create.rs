//! Creating a transaction through the API, with its optional `Idempotency-Key`.

use platform::idempotency::{self, Claim};
use platform::outbox::Outbox;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::LedgerError;
use crate::idempotency::KEYS;
use crate::ledger;
use crate::transaction::{NewTransaction, Transaction};

/// Creates `new` in a database transaction of its own (or a lone statement, without a key).
/// [`crate::group_commit`] applies many through [`create_in`] in one transaction instead.
pub async fn create_transaction(
    outbox: &Outbox,
    new: &NewTransaction,
    key: Option<&str>,
) -> Result<Transaction, LedgerError> {
    check_key(key)?;
    let Some(key) = key else {
        // Nothing to remember: the ledger's one statement is the whole change, and a broken
        // rule writes nothing.
        let mut conn = outbox.pool().acquire().await?;
        let applied = outbox.after(ledger::apply(&mut conn, new)).await?;
        return Ok(applied.transaction);
    };
    let mut tx = outbox.begin().await?;
    let outcome = create_in(&mut tx, new, Some(key)).await;
    if outcome
        .as_ref()
        .is_err_and(|error| error.refusal().is_none())
    {
        return outcome;
    }
    // A refusal is committed too: the key keeps it (or, replayed, nothing was written).
    tx.commit().await?;
    outcome
}

/// Refuses a key that is empty, too long or not visible ASCII.
pub fn check_key(key: Option<&str>) -> Result<(), LedgerError> {
    key.map_or(Ok(()), idempotency::check)
        .map_err(|message| LedgerError::Invalid(vec![(idempotency::FIELD, message)]))
}

/// Creates `new` inside the caller's database transaction `conn`, which commits. A refusal
/// leaves the transaction usable and changes nothing but the key's stored outcome; an
/// internal error may leave it aborted, for the caller to roll back.
pub async fn create_in(
    conn: &mut PgConnection,
    new: &NewTransaction,
    key: Option<&str>,
) -> Result<Transaction, LedgerError> {
    let Some(key) = key else {
        return Ok(ledger::try_apply(conn, new).await?.transaction);
    };
    match KEYS
        .claim(conn, new.user_id, key, &new.fingerprint())
        .await?
    {
        Claim::New => {}
        Claim::Reused => return Err(LedgerError::IdempotencyKeyReused),
        Claim::Succeeded(id) => return ledger::find(conn, new.user_id, id).await,
        Claim::Refused { reason, message } => {
            return Err(LedgerError::Replayed {
                refusal: reason,
                message,
            });
        }
    }
    // A broken rule leaves the claimed key in place, to store the outcome.
    match ledger::try_apply(conn, new).await {
        Ok(applied) => {
            let transaction = applied.transaction;
            KEYS.record_success(conn, new.user_id, key, transaction.id)
                .await?;
            Ok(transaction)
        }
        Err(error) => {
            let Some(refusal) = error.refusal() else {
                return Err(error);
            };
            KEYS.record_refusal(conn, new.user_id, key, refusal, &error.detail())
                .await?;
            Err(error)
        }
    }
}

/// A transaction id given as text, for look-ups.
pub fn parse_id(raw: &str, field: &'static str) -> Result<Uuid, LedgerError> {
    Uuid::parse_str(raw).map_err(|_| LedgerError::Invalid(vec![(field, "must be a UUID".into())]))
}
