//! The `transaction.created` event of each ledger row, as queued in the outbox.

// A test (and its helpers) should panic on anything unexpected.
#![allow(clippy::unwrap_used)]

mod support;

use chrono::SecondsFormat;
use serde_json::{Value, json};
use uuid::Uuid;
use wallet_service::create::create_transaction;
use wallet_service::error::LedgerError;
use wallet_service::transaction::{
    NewTransaction, RawRequest, Transaction, TransactionSource, TransactionType,
};

fn request(kind: &str, amount: Option<i64>, parent: Option<Uuid>) -> RawRequest {
    let kind: TransactionType = kind.parse().unwrap();
    RawRequest {
        amount,
        parent_transaction_id: parent.map(|id| id.to_string()),
        description: Some("groceries \"weekly\" ✓".into()),
        reference: Some("ref-7".into()),
        ..RawRequest::new(kind)
    }
}

/// The data the event of `transaction` must carry: every column, the time in the format of
/// the envelopes' times.
fn expected_data(transaction: &Transaction) -> Value {
    json!({
        "id": transaction.id,
        "user_id": transaction.user_id,
        "type": transaction.kind,
        "amount": transaction.amount,
        "currency": transaction.currency,
        "balance_after": transaction.balance_after,
        "parent_transaction_id": transaction.parent_transaction_id,
        "description": transaction.description,
        "source": transaction.source,
        "reference": transaction.reference,
        "created_at": transaction.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
    })
}

#[tokio::test]
async fn each_event_carries_its_ledger_row_and_a_refused_request_queues_none() {
    let wallet = support::TestWallet::start().await;
    let user = Uuid::new_v4();
    let create = |raw: RawRequest, key: Option<&'static str>| {
        let outbox = wallet.outbox();
        async move {
            let new = NewTransaction::parse(user, &raw, TransactionSource::Api).unwrap();
            create_transaction(&outbox, &new, key).await
        }
    };
    // Without and with an Idempotency-Key: two ways to the ledger.
    let deposit = create(request("deposit", Some(10_000), None), None)
        .await
        .unwrap();
    let purchase = create(request("purchase", Some(2_500), None), Some("key-1"))
        .await
        .unwrap();
    let cancellation = create(request("cancellation", None, Some(purchase.id)), None)
        .await
        .unwrap();
    let refused = create(request("withdraw", Some(1_000_000), None), None).await;
    assert!(matches!(refused, Err(LedgerError::InsufficientFunds)));

    let rows: Vec<(Uuid, String, String, Value)> =
        sqlx::query_as("select message_id, exchange, routing_key, payload from outbox order by id")
            .fetch_all(&wallet.pool)
            .await
            .unwrap();
    let ledger = [deposit, purchase, cancellation];
    assert_eq!(rows.len(), ledger.len());
    for ((message_id, exchange, routing_key, payload), transaction) in rows.iter().zip(&ledger) {
        assert_eq!(exchange, "wallet.events");
        assert_eq!(routing_key, "transaction.created");
        assert_eq!(payload["id"], json!(message_id));
        assert_eq!(payload["type"], "transaction.created");
        assert_eq!(payload["source"], "/wallet-service");
        assert_eq!(payload["data"], expected_data(transaction));
        assert_eq!(payload["time"], payload["data"]["created_at"]);
    }
    assert_eq!(ledger[2].balance_after, 10_000);
    assert_eq!(wallet.ledger_rows(user).await, 3);
    wallet.stop().await;
}
