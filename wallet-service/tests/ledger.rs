//! Properties of the ledger over random sequences of operations, on the real database, one
//! request at a time and many at once through the group commit; and batches in which some
//! requests fail.

// A test (and its helpers) should panic on anything unexpected.
#![allow(clippy::unwrap_used)]

mod support;

use platform::outbox::Outbox;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestError, TestRunner};
use uuid::Uuid;
use wallet_service::create::create_transaction;
use wallet_service::error::LedgerError;
use wallet_service::group_commit::{self, Create, GroupCommit};
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

/// The request `op` makes for `user`, whose earlier transactions are `ids`; `None` for an undo
/// with nothing to undo.
fn request(user: Uuid, op: &Op, ids: &[String]) -> Option<NewTransaction> {
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
        Op::Cancel(_) | Op::Reverse(_) => return None,
    };
    Some(NewTransaction::parse(user, &raw, TransactionSource::Api).expect("valid by construction"))
}

async fn run(outbox: &Outbox, ops: &[Op]) -> Result<(), TestCaseError> {
    let pool = outbox.pool();
    let user = Uuid::new_v4();
    let mut ids: Vec<String> = Vec::new();
    for op in ops {
        let Some(new) = request(user, op, &ids) else {
            continue;
        };
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

/// Runs `case` on 48 random sequences of operations, on the test's (multi-threaded) runtime.
fn run_cases<F>(case: impl Fn(Vec<Op>) -> F) -> Result<(), TestError<Vec<Op>>>
where
    F: Future<Output = Result<(), TestCaseError>>,
{
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    });
    tokio::task::block_in_place(|| {
        runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
            handle.block_on(case(ops))
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_balance_always_equals_the_ledger_sum_and_is_never_negative() {
    let wallet = support::TestWallet::start().await;
    let outbox = wallet.outbox();
    let outbox = &outbox;
    let outcome = run_cases(|ops| async move { run(outbox, &ops).await });
    wallet.stop().await;
    outcome.unwrap();
}

/// Runs `ops` in rounds of up to eight submitted at once through `batches`, so that they share
/// database transactions; the n-th operation is of the (n modulo `wallets`)-th of `wallets`
/// new wallets. After each round, every wallet's audit holds and its ledger replays.
async fn run_concurrently(
    outbox: &Outbox,
    batches: &GroupCommit,
    ops: &[Op],
    wallets: usize,
) -> Result<(), TestCaseError> {
    let pool = outbox.pool();
    let users: Vec<Uuid> = (0..wallets).map(|_| Uuid::new_v4()).collect();
    let mut ids: Vec<Vec<String>> = vec![Vec::new(); wallets];
    for (number, round) in ops.chunks(8).enumerate() {
        let requests = round.iter().enumerate().filter_map(|(at, op)| {
            let wallet = (number * 8 + at) % wallets;
            Some((wallet, request(users[wallet], op, &ids[wallet])?))
        });
        let outcomes = futures_util::future::join_all(requests.map(|(wallet, new)| async move {
            (wallet, batches.create_transaction(new, None).await)
        }))
        .await;
        for (wallet, outcome) in outcomes {
            match outcome {
                Ok(transaction) => {
                    prop_assert!(transaction.balance_after >= 0);
                    ids[wallet].push(transaction.id.to_string());
                }
                Err(error) => prop_assert!(error.refusal().is_some(), "{error:#}"),
            }
        }
        for (user, ids) in users.iter().zip(&ids) {
            let audit = audit(pool, *user).await.expect("audit");
            prop_assert!(audit.balance >= 0, "negative balance {audit:?}");
            prop_assert_eq!(audit.balance, audit.ledger_sum, "after {:?}", round);
            prop_assert_eq!(audit.transactions, i64::try_from(ids.len()).unwrap());
            check_replay(pool, *user).await?;
        }
    }
    Ok(())
}

/// Each ledger row's `balance_after` is the one before it plus its own effect, in the order
/// they were written: the answers of a batch are those of its requests one after the other.
async fn check_replay(pool: &sqlx::PgPool, user: Uuid) -> Result<(), TestCaseError> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "select case t.type
                 when 'deposit' then t.amount
                 when 'cancellation' then t.amount
                 when 'reversal' then case p.type when 'deposit' then -t.amount else t.amount end
                 else -t.amount end,
             t.balance_after
         from transactions t left join transactions p on p.id = t.parent_transaction_id
         where t.user_id = $1 order by t.created_at, t.id",
    )
    .bind(user)
    .fetch_all(pool)
    .await
    .expect("ledger");
    let mut balance = 0;
    for (effect, balance_after) in rows {
        balance += effect;
        prop_assert_eq!(balance, balance_after);
    }
    Ok(())
}

/// How many ledger rows of `user` there are, and in how many database transactions they
/// were written (rows of one transaction share its `xmin`).
async fn rows_and_commits(pool: &sqlx::PgPool, user: Uuid) -> (i64, i64) {
    sqlx::query_as(
        "select count(*), count(distinct xmin::text) from transactions where user_id = $1",
    )
    .bind(user)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Runs the random cases through one lane that waits for more, so that a round's requests
/// share batches, over `wallets` wallets; returns how many ledger rows they wrote in how many
/// database transactions.
async fn run_in_batches(wallets: usize) -> (i64, i64) {
    let wallet = support::TestWallet::start().await;
    let outbox = wallet.outbox();
    let batches = GroupCommit::start(
        &outbox,
        group_commit::Settings {
            max_size: 64,
            max_wait: std::time::Duration::from_millis(2),
            lanes: 1,
            request_lanes: 1,
        },
    );
    let (outbox, batches) = (&outbox, &batches);
    let outcome =
        run_cases(|ops| async move { run_concurrently(outbox, batches, &ops, wallets).await });
    let rows_and_commits =
        sqlx::query_as("select count(*), count(distinct xmin::text) from transactions")
            .fetch_one(outbox.pool())
            .await
            .unwrap();
    wallet.stop().await;
    outcome.unwrap();
    rows_and_commits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_submitted_at_once_share_commits_and_keep_the_ledger_exact() {
    let (rows, commits) = run_in_batches(1).await;
    assert!(commits < rows, "{rows} rows in {commits} commits: no batch");
}

/// As above, over eight wallets: a round is then mostly one request per wallet, which a batch
/// applies in one statement (`ledger::apply_many`), mixed with undos applied one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_of_many_wallets_at_once_share_statements_and_keep_every_ledger_exact() {
    let (rows, commits) = run_in_batches(8).await;
    assert!(commits < rows, "{rows} rows in {commits} commits: no batch");
}

#[tokio::test]
async fn two_hundred_withdrawals_at_once_through_the_group_commit_never_overdraw() {
    let wallet = support::TestWallet::start().await;
    let outbox = wallet.outbox();
    let batches = GroupCommit::start(&outbox, group_commit::Settings::default());
    let user = Uuid::new_v4();
    let deposit = parse(user, TransactionType::Deposit, Some(1_000), None);
    create_transaction(&outbox, &deposit, None).await.unwrap();
    let withdraw = parse(user, TransactionType::Withdraw, Some(10), None);
    let outcomes = futures_util::future::join_all(
        (0..200).map(|_| batches.create_transaction(withdraw.clone(), None)),
    )
    .await;
    let accepted = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let refused = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Err(LedgerError::InsufficientFunds)))
        .count();
    assert_eq!((accepted, refused), (100, 100));
    let audit = audit(outbox.pool(), user).await.unwrap();
    assert_eq!((audit.balance, audit.ledger_sum), (0, 0));
    let (rows, commits) = rows_and_commits(outbox.pool(), user).await;
    assert!(commits < rows, "{rows} rows in {commits} commits: no batch");
    wallet.stop().await;
}

fn parse(
    user: Uuid,
    kind: TransactionType,
    amount: Option<i64>,
    parent: Option<Uuid>,
) -> NewTransaction {
    let raw = RawRequest {
        amount,
        parent_transaction_id: parent.map(|id| id.to_string()),
        ..RawRequest::new(kind)
    };
    NewTransaction::parse(user, &raw, TransactionSource::Api).unwrap()
}

/// `user`'s history before the batch (made one request at a time), then the batch: requests
/// of which most fail, each for a reason of its own.
async fn failing_batch(outbox: &Outbox, user: Uuid) -> Vec<(NewTransaction, Option<String>)> {
    use TransactionType::{Cancellation, Deposit, Reversal, Withdraw};
    let alone = async |kind, amount, parent, key: Option<&str>| {
        let new = parse(user, kind, amount, parent);
        create_transaction(outbox, &new, key).await.unwrap().id
    };
    let deposit = alone(Deposit, Some(100), None, None).await;
    let withdraw = alone(Withdraw, Some(30), None, None).await;
    let undo = alone(Reversal, None, Some(withdraw), None).await;
    alone(Deposit, Some(5), None, Some("k1")).await;
    let keyed = |key: &str| Some(key.to_owned());
    vec![
        (parse(user, Withdraw, Some(500), None), None),
        // The key of the deposit of 5, with another body.
        (parse(user, Deposit, Some(50), None), keyed("k1")),
        (parse(user, Reversal, None, Some(withdraw)), None),
        (parse(user, Deposit, Some(10), None), None),
        (parse(user, Cancellation, None, Some(withdraw)), None),
        (parse(user, Reversal, None, Some(undo)), None),
        (parse(user, Withdraw, Some(500), None), keyed("k2")),
        (parse(user, Withdraw, Some(500), None), keyed("k2")),
        // The deposit of 5 again: its first answer.
        (parse(user, Deposit, Some(5), None), keyed("k1")),
        (parse(user, Withdraw, Some(115), None), keyed("k3")),
        (parse(user, Reversal, None, Some(deposit)), None),
        (parse(user, Withdraw, Some(1), None), None),
    ]
}

type Outcome = Result<wallet_service::transaction::Transaction, LedgerError>;

/// Applies `batch` as one batch, and `alone` one request at a time; each one's outcomes.
async fn together_and_alone(
    outbox: &Outbox,
    batch: Vec<(NewTransaction, Option<String>)>,
    alone: Vec<(NewTransaction, Option<String>)>,
) -> (Vec<Outcome>, Vec<Outcome>) {
    let creates: Vec<Create> = batch
        .into_iter()
        .map(|(new, key)| Create::new(new, key))
        .collect();
    let together = group_commit::apply_together(outbox, &creates).await;
    let mut outcomes = Vec::new();
    for (new, key) in alone {
        outcomes.push(create_transaction(outbox, &new, key.as_deref()).await);
    }
    (together, outcomes)
}

/// What an answer says, without the ids and times that differ from one user to another.
fn answer(outcome: &Outcome) -> String {
    match outcome {
        Ok(transaction) => format!(
            "{} {} -> {}",
            transaction.kind, transaction.amount, transaction.balance_after
        ),
        Err(error) => format!("{}: {}", error.refusal().unwrap().as_str(), error.detail()),
    }
}

#[tokio::test]
async fn a_batch_answers_each_request_as_it_would_alone_when_some_fail() {
    let wallet = support::TestWallet::start().await;
    let outbox = wallet.outbox();
    let (batched, one_by_one) = (Uuid::new_v4(), Uuid::new_v4());
    let batch = failing_batch(&outbox, batched).await;
    let one_at_a_time = failing_batch(&outbox, one_by_one).await;
    let (together, alone) = together_and_alone(&outbox, batch, one_at_a_time).await;
    let together: Vec<String> = together.iter().map(answer).collect();
    let alone: Vec<String> = alone.iter().map(answer).collect();
    assert_eq!(together, alone);
    let slug = |answer: &String| answer.split(':').next().unwrap().to_owned();
    assert_eq!(
        together.iter().map(slug).collect::<Vec<_>>(),
        [
            "insufficient-funds",
            "idempotency-key-reused",
            "already-undone",
            "deposit 10 -> 115",
            "parent-not-undoable",
            "parent-not-undoable",
            "insufficient-funds",
            "insufficient-funds",
            "deposit 5 -> 105",
            "withdraw 115 -> 0",
            "insufficient-funds",
            "insufficient-funds",
        ]
    );
    for user in [batched, one_by_one] {
        let audit = audit(outbox.pool(), user).await.unwrap();
        assert_eq!((audit.balance, audit.ledger_sum), (0, 0), "{audit:?}");
        assert_eq!(audit.transactions, 6);
    }
    // The batch's two transactions were written by one database transaction.
    let (rows, commits) = rows_and_commits(outbox.pool(), batched).await;
    assert_eq!((rows, commits), (6, 5));
    wallet.stop().await;
}

/// Users' histories before the batch (made one request at a time), then the batch: one
/// request for each of most wallets (applied together in one statement), two for one wallet
/// and one with a key (applied one by one).
async fn batch_of_many_wallets(
    outbox: &Outbox,
    users: &[Uuid; 7],
) -> Vec<(NewTransaction, Option<String>)> {
    use TransactionType::{Deposit, Purchase, Withdraw};
    for (user, amount) in [
        (users[0], 100),
        (users[1], 50),
        (users[3], 10),
        (users[5], 5),
    ] {
        let deposit = parse(user, Deposit, Some(amount), None);
        create_transaction(outbox, &deposit, None).await.unwrap();
    }
    vec![
        (parse(users[0], Withdraw, Some(30), None), None),
        (parse(users[1], Withdraw, Some(80), None), None),
        // A wallet's first transaction creates it.
        (parse(users[2], Deposit, Some(20), None), None),
        (parse(users[3], Purchase, Some(10), None), None),
        // No wallet holds nothing.
        (parse(users[4], Withdraw, Some(5), None), None),
        (parse(users[5], Deposit, Some(7), None), None),
        (parse(users[5], Withdraw, Some(12), None), None),
        (
            parse(users[6], Deposit, Some(3), None),
            Some("k".to_owned()),
        ),
    ]
}

#[tokio::test]
async fn a_batch_of_many_wallets_answers_each_request_as_it_would_alone() {
    let wallet = support::TestWallet::start().await;
    let outbox = wallet.outbox();
    let batched: [Uuid; 7] = std::array::from_fn(|_| Uuid::new_v4());
    let one_by_one: [Uuid; 7] = std::array::from_fn(|_| Uuid::new_v4());
    let batch = batch_of_many_wallets(&outbox, &batched).await;
    let one_at_a_time = batch_of_many_wallets(&outbox, &one_by_one).await;
    let (together, alone) = together_and_alone(&outbox, batch, one_at_a_time).await;
    let answers = |outcomes: &[Result<_, _>]| outcomes.iter().map(answer).collect::<Vec<_>>();
    assert_eq!(answers(&together), answers(&alone));
    let slug = |answer: &String| answer.split(':').next().unwrap().to_owned();
    assert_eq!(
        answers(&together).iter().map(slug).collect::<Vec<_>>(),
        [
            "withdraw 30 -> 70",
            "insufficient-funds",
            "deposit 20 -> 20",
            "purchase 10 -> 0",
            "insufficient-funds",
            "deposit 7 -> 12",
            "withdraw 12 -> 0",
            "deposit 3 -> 3",
        ]
    );
    for user in batched.iter().chain(&one_by_one) {
        let audit = audit(outbox.pool(), *user).await.unwrap();
        assert_eq!(audit.balance, audit.ledger_sum, "{audit:?}");
    }
    // The batch's six transactions: one database transaction, and each one's event with its
    // own id, balance after and time.
    let applied: Vec<Uuid> = together
        .iter()
        .filter_map(|outcome| Some(outcome.as_ref().ok()?.id))
        .collect();
    let (commits, events): (i64, i64) = sqlx::query_as(
        "select count(distinct t.xmin::text), count(o.id)
         from transactions t left join outbox o
           on (o.payload->'data'->>'id')::uuid = t.id
          and (o.payload->'data'->>'balance_after')::bigint = t.balance_after
          and (o.payload->'data'->>'created_at')::timestamptz = t.created_at
          and o.payload->>'time' = o.payload->'data'->>'created_at'
         where t.id = any($1)",
    )
    .bind(&applied)
    .fetch_one(outbox.pool())
    .await
    .unwrap();
    assert_eq!((applied.len(), commits, events), (6, 1, 6));
    wallet.stop().await;
}

#[tokio::test]
async fn applying_two_requests_of_one_wallet_in_one_statement_is_refused_before_anything_is_sent() {
    let wallet = support::TestWallet::start().await;
    let outbox = wallet.outbox();
    let user = Uuid::new_v4();
    let deposit = parse(user, TransactionType::Deposit, Some(10), None);
    let mut conn = outbox.pool().acquire().await.unwrap();
    let span = tracing::Span::none();
    let twice = [(&deposit, &span), (&deposit, &span)];
    let outcome = wallet_service::ledger::apply_many(&mut conn, &twice).await;
    assert!(
        matches!(outcome, Err(LedgerError::Internal(_))),
        "{outcome:?}"
    );
    let audit = audit(outbox.pool(), user).await.unwrap();
    assert_eq!((audit.balance, audit.transactions), (0, 0));
    wallet.stop().await;
}
