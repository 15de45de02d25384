//! The consumer of `transaction.created`: one statement line per transaction, recorded with
//! the event's `balance_after` (never by asking the wallet), once per message id.

use chrono::{DateTime, Utc};
use lapin::message::Delivery;
use platform::cloud_event::ReceivedEvent;
use platform::consumer::BatchHandler;
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::lines::{self, NewLine, Received};

/// The statement service's queue of wallet events, bound to `wallet.events`.
pub const QUEUE: &str = "statement.transactions";
pub const WALLET_EXCHANGE: &str = "wallet.events";
pub const ROUTING_KEY: &str = "transaction.created";

#[derive(Deserialize)]
struct Transaction {
    id: Uuid,
    user_id: Uuid,
    #[serde(rename = "type")]
    kind: String,
    amount: i64,
    currency: String,
    balance_after: i64,
    description: Option<String>,
    created_at: DateTime<Utc>,
}

/// The transaction types the wallet records.
const TYPES: [&str; 5] = [
    "deposit",
    "withdraw",
    "purchase",
    "cancellation",
    "reversal",
];

impl Transaction {
    /// Why this transaction cannot become a statement line, if it cannot.
    fn problem(&self) -> Option<String> {
        if !TYPES.contains(&self.kind.as_str()) {
            return Some(format!("unknown transaction type {:?}", self.kind));
        }
        if self.amount <= 0 {
            return Some(format!("amount {} is not positive", self.amount));
        }
        if self.balance_after < 0 {
            return Some(format!("balance_after {} is negative", self.balance_after));
        }
        let is_code =
            self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_uppercase());
        if !is_code {
            return Some(format!(
                "currency {:?} is not a three-letter code",
                self.currency
            ));
        }
        None
    }
}

pub struct TransactionCreatedHandler {
    pub pool: PgPool,
}

impl BatchHandler for TransactionCreatedHandler {
    type Message = Received;

    fn read(&self, delivery: &Delivery) -> Result<Received, String> {
        let event: ReceivedEvent<Transaction> = serde_json::from_slice(&delivery.data)
            .map_err(|error| format!("not a transaction.created event: {error}"))?;
        if event.kind != ROUTING_KEY {
            return Err(format!("unexpected event type {:?}", event.kind));
        }
        if let Some(problem) = event.data.problem() {
            return Err(problem);
        }
        let message_id = event.message_id(delivery);
        let transaction = event.data;
        Ok(Received {
            message_id,
            line: NewLine {
                transaction_id: transaction.id,
                user_id: transaction.user_id,
                kind: transaction.kind,
                amount: transaction.amount,
                currency: transaction.currency,
                balance_after: transaction.balance_after,
                description: transaction.description,
                occurred_at: transaction.created_at,
            },
        })
    }

    async fn apply(&self, events: &[Received]) -> anyhow::Result<()> {
        lines::record_once(&self.pool, QUEUE, events).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deposit() -> Transaction {
        Transaction {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            kind: "deposit".into(),
            amount: 100,
            currency: "EUR".into(),
            balance_after: 100,
            description: None,
            created_at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_wallet_transaction_is_accepted() {
        for kind in TYPES {
            let transaction = Transaction {
                kind: kind.into(),
                ..deposit()
            };
            assert_eq!(transaction.problem(), None, "{kind}");
        }
    }

    #[test]
    fn values_the_wallet_never_sends_are_refused_with_the_reason() {
        let cases = [
            (
                Transaction {
                    kind: "gift".into(),
                    ..deposit()
                },
                "unknown transaction type \"gift\"",
            ),
            (
                Transaction {
                    amount: 0,
                    ..deposit()
                },
                "amount 0 is not positive",
            ),
            (
                Transaction {
                    balance_after: -1,
                    ..deposit()
                },
                "balance_after -1 is negative",
            ),
            (
                Transaction {
                    currency: "EURO".into(),
                    ..deposit()
                },
                "currency \"EURO\" is not a three-letter code",
            ),
            (
                Transaction {
                    currency: "eur".into(),
                    ..deposit()
                },
                "currency \"eur\" is not a three-letter code",
            ),
        ];
        for (transaction, reason) in cases {
            assert_eq!(transaction.problem().as_deref(), Some(reason));
        }
    }
}
