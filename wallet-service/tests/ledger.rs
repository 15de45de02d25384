//! Properties of the ledger over random sequences of operations, on the real database.

// A test (and its helpers) should panic on anything unexpected.
#![allow(clippy::unwrap_used)]

mod support;

use platform::outbox::Outbox;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use uuid::Uuid;
use wallet_service::create::create_transaction;
use wallet_service::ledger::audit;
use wallet_service::transaction::{NewTransaction, RawRequest, TransactionSource, TransactionType};

#[derive(Debug, Clone)]
enum Op {
    Deposit(i64),
    Withdraw(i64),
    Purchase(i64),
    /// Cancel the n-th earlier transaction (modulo how many there are).
    Cancel(usize),
    /// Reverse the n-th earlier transaction.
    Reverse(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1..2_000_i64).prop_map(Op::Deposit),
        (1..2_000_i64).prop_map(Op::Withdraw),
        (1..2_000_i64).prop_map(Op::Purchase),
        any::<usize>().prop_map(Op::Cancel),
        any::<usize>().prop_map(Op::Reverse),
    ]
}

async fn run(outbox: &Outbox, ops: &[Op]) -> Result<(), TestCaseError> {
    let pool = outbox.pool();
    let user = Uuid::new_v4();
    let mut ids: Vec<String> = Vec::new();
    for op in ops {
        let raw = match op {
            Op::Deposit(amount) => RawRequest {
                amount: Some(*amount),
                ..RawRequest::new(TransactionType::Deposit)
            },
            Op::Withdraw(amount) => RawRequest {
                amount: Some(*amount),
                ..RawRequest::new(TransactionType::Withdraw)
            },
            Op::Purchase(amount) => RawRequest {
                amount: Some(*amount),
                ..RawRequest::new(TransactionType::Purchase)
            },
            Op::Cancel(n) | Op::Reverse(n) if !ids.is_empty() => RawRequest {
                parent_transaction_id: Some(ids[n % ids.len()].clone()),
                ..RawRequest::new(if matches!(op, Op::Cancel(_)) {
                    TransactionType::Cancellation
                } else {
                    TransactionType::Reversal
                })
            },
            Op::Cancel(_) | Op::Reverse(_) => continue,
        };
        let new = NewTransaction::parse(user, &raw, TransactionSource::Api)
            .expect("valid by construction");
        // Rule failures (insufficient funds, a second undo, ...) are expected; the
        // invariants must hold whatever happened.
        if let Ok(transaction) = create_transaction(outbox, &new, None).await {
            prop_assert!(transaction.balance_after >= 0);
            ids.push(transaction.id.to_string());
        }
        let audit = audit(pool, user).await.expect("audit");
        prop_assert!(audit.balance >= 0, "negative balance {audit:?}");
        prop_assert_eq!(audit.balance, audit.ledger_sum, "after {:?}", op);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_balance_always_equals_the_ledger_sum_and_is_never_negative() {
    let wallet = support::TestWallet::start().await;
    let outbox = wallet.outbox();
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    });
    let outcome = tokio::task::block_in_place(|| {
        runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
            handle.block_on(run(&outbox, &ops))
        })
    });
    wallet.stop().await;
    outcome.unwrap();
}
