//! The consumer of `transaction.created`: one statement line per transaction, recorded with
//! the event's `balance_after` (never by asking the wallet), once per message id.

use lapin::message::Delivery;
use platform::cloud_event::ReceivedEvent;
use platform::consumer::BatchHandler;
pub use proto::messaging::statement::TRANSACTIONS;
use proto::messaging::wallet::{TRANSACTION_CREATED, TransactionCreated};
use sqlx::PgPool;

use crate::lines::{self, Received};

/// Why this transaction cannot become a statement line, if it cannot: values the wallet
/// never sends.
fn problem(transaction: &TransactionCreated) -> Option<String> {
    if transaction.amount <= 0 {
        return Some(format!("amount {} is not positive", transaction.amount));
    }
    if transaction.balance_after < 0 {
        return Some(format!(
            "balance_after {} is negative",
            transaction.balance_after
        ));
    }
    let currency = &transaction.currency;
    let is_code = currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase());
    if !is_code {
        return Some(format!("currency {currency:?} is not a three-letter code"));
    }
    // A line's day is a statement's day: outside 1970-9999 no statement could show it.
    if let Err(reason) = platform::timestamp::accepted_instant(transaction.created_at) {
        return Some(format!("created_at {reason}"));
    }
    None
}

pub struct TransactionCreatedHandler {
    pub pool: PgPool,
}

impl BatchHandler for TransactionCreatedHandler {
    type Message = Received;

    fn read(&self, delivery: &Delivery) -> Result<Received, String> {
        let event: ReceivedEvent<TransactionCreated> = serde_json::from_slice(&delivery.data)
            .map_err(|error| format!("not a transaction.created event: {error}"))?;
        if event.kind != TRANSACTION_CREATED {
            return Err(format!("unexpected event type {:?}", event.kind));
        }
        if let Some(problem) = problem(&event.data) {
            return Err(problem);
        }
        Ok(Received {
            message_id: event.message_id(delivery),
            line: event.data,
        })
    }

    async fn apply(&self, events: &[Received]) -> anyhow::Result<()> {
        lines::record_once(&self.pool, TRANSACTIONS.name, events).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proto::{TransactionSource, TransactionType};
    use uuid::Uuid;

    use super::*;

    fn deposit() -> TransactionCreated {
        TransactionCreated {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            kind: TransactionType::Deposit,
            amount: 100,
            currency: "EUR".into(),
            balance_after: 100,
            parent_transaction_id: None,
            description: None,
            source: TransactionSource::Api,
            reference: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_wallet_transaction_is_accepted() {
        for &kind in TransactionType::ALL {
            let transaction = TransactionCreated { kind, ..deposit() };
            assert_eq!(problem(&transaction), None, "{kind}");
        }
    }

    #[test]
    fn values_the_wallet_never_sends_are_refused_with_the_reason() {
        let mut gift = serde_json::to_value(deposit()).unwrap();
        gift["type"] = "gift".into();
        let refused = serde_json::from_value::<TransactionCreated>(gift).unwrap_err();
        assert!(
            refused.to_string().contains("unknown variant `gift`"),
            "{refused}"
        );
        let cases = [
            (
                TransactionCreated {
                    amount: 0,
                    ..deposit()
                },
                "amount 0 is not positive",
            ),
            (
                TransactionCreated {
                    balance_after: -1,
                    ..deposit()
                },
                "balance_after -1 is negative",
            ),
            (
                TransactionCreated {
                    currency: "EURO".into(),
                    ..deposit()
                },
                "currency \"EURO\" is not a three-letter code",
            ),
            (
                TransactionCreated {
                    currency: "eur".into(),
                    ..deposit()
                },
                "currency \"eur\" is not a three-letter code",
            ),
            (
                TransactionCreated {
                    created_at: chrono::DateTime::UNIX_EPOCH - chrono::Duration::microseconds(1),
                    ..deposit()
                },
                "created_at must be between 1970-01-01 and 9999-12-31 (UTC)",
            ),
        ];
        for (transaction, reason) in cases {
            assert_eq!(problem(&transaction).as_deref(), Some(reason));
        }
    }
}
