//! The consumer of `transaction.created`: one statement line per transaction, recorded with
//! the event's `balance_after` (never by asking the wallet), once per message id.

use chrono::{DateTime, Utc};
use lapin::message::Delivery;
use platform::cloud_event::ReceivedEvent;
use platform::consumer::{Handler, Verdict};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::lines::{self, NewLine};

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

pub struct TransactionCreatedHandler {
    pub pool: PgPool,
}

impl Handler for TransactionCreatedHandler {
    async fn handle(&self, delivery: &Delivery) -> anyhow::Result<Verdict> {
        let event: ReceivedEvent<Transaction> = match serde_json::from_slice(&delivery.data) {
            Ok(event) => event,
            Err(error) => {
                return Ok(Verdict::Invalid(format!(
                    "not a transaction.created event: {error}"
                )));
            }
        };
        if event.kind != ROUTING_KEY {
            return Ok(Verdict::Invalid(format!(
                "unexpected event type {:?}",
                event.kind
            )));
        }
        let message_id = event.message_id(delivery);
        let transaction = event.data;
        let line = NewLine {
            transaction_id: transaction.id,
            user_id: transaction.user_id,
            kind: transaction.kind,
            amount: transaction.amount,
            currency: transaction.currency,
            balance_after: transaction.balance_after,
            description: transaction.description,
            occurred_at: transaction.created_at,
        };
        let mut tx = self.pool.begin().await?;
        if platform::inbox::record(&mut tx, &message_id, QUEUE).await? {
            lines::record(&mut tx, &line).await?;
        }
        tx.commit().await?;
        Ok(Verdict::Done)
    }
}
