//! Transaction requests published straight to RabbitMQ, against the real broker and database.

// A test (and its helpers) should panic on anything unexpected.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use lapin::options::BasicGetOptions;
use platform::testing::poison;
use proto::messaging::wallet::ORDER_OUTCOMES as ORDER_OUTCOMES_EXCHANGE;
use proto::messaging::wallet::{LEGACY_REQUESTS, ORDER_PAYMENTS, TRANSACTION_REQUESTS};
use proto::{TransactionSource, TransactionType};
use serde_json::json;
use support::{TestWallet, eventually, platform_properties, properties};
use uuid::Uuid;
use wallet_service::requests::{self, Request};
use wallet_service::transaction::RawRequest;

const REQUESTS_QUEUE: &str = TRANSACTION_REQUESTS.name;
const COMPAT_QUEUE: &str = LEGACY_REQUESTS.name;

fn deposit(user: Uuid, amount: i64, reference: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"user_id": user, "type": "deposit", "amount": amount, "currency": "EUR", "reference": reference})).unwrap()
}

#[tokio::test]
async fn a_published_deposit_is_applied_and_announced() {
    let wallet = TestWallet::start().await;
    let mut events = wallet.event_queue().await;
    let user = Uuid::new_v4();
    wallet
        .publish(
            REQUESTS_QUEUE,
            &deposit(user, 1250, "ref-1"),
            properties("msg-1"),
        )
        .await;

    let (key, event) = events
        .next(Duration::from_secs(10))
        .await
        .expect("an outcome");
    assert_eq!(key, "transaction.created");
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["type"], "transaction.created");
    assert_eq!(event["source"], "/wallet-service");
    assert_eq!(event["data"]["user_id"], json!(user));
    assert_eq!(event["data"]["amount"], 1250);
    assert_eq!(event["data"]["balance_after"], 1250);
    assert_eq!(event["data"]["source"], "event");
    assert_eq!(event["data"]["reference"], "ref-1");
    assert_eq!(wallet.balance(user).await, 1250);
    wallet.stop().await;
}

/// Order-service binds to `wallet.order-outcomes` only, so it must get the outcomes of order
/// payments there, and nothing else; everyone else still gets everything on `wallet.events`.
#[tokio::test]
async fn only_the_outcomes_of_order_payments_go_to_the_order_outcomes_exchange() {
    let wallet = TestWallet::start().await;
    let mut everything = wallet.event_queue().await;
    let mut for_orders = wallet.events_of(ORDER_OUTCOMES_EXCHANGE).await;
    let user = Uuid::new_v4();
    let order = Uuid::new_v4();
    let payment = |attempt: i32| {
        serde_json::to_vec(&json!({"specversion": "1.0", "id": Uuid::new_v4(),
            "source": "/order-service", "type": "order.payment_requested",
            "time": "2026-11-29T10:00:00Z", "datacontenttype": "application/json",
            "data": {"order_id": order, "user_id": user, "attempt": attempt, "amount": 600,
                "currency": "EUR", "reference": format!("order:{order}")}}))
        .unwrap()
    };
    let within = Duration::from_secs(10);

    wallet
        .publish(
            REQUESTS_QUEUE,
            &deposit(user, 1000, "ref-1"),
            properties("msg-1"),
        )
        .await;
    let (_, deposited) = everything.next(within).await.expect("the deposit");
    assert_eq!(deposited["data"]["type"], "deposit");
    // One attempt after the other: the first is paid, the second finds too little money.
    let queue = ORDER_PAYMENTS.name;
    wallet
        .publish(queue, &payment(1), platform_properties("p1"))
        .await;
    let (_, paid) = everything.next(within).await.expect("the purchase");
    wallet
        .publish(queue, &payment(2), platform_properties("p2"))
        .await;
    let (_, refused) = everything.next(within).await.expect("the refusal");
    assert_eq!(paid["data"]["type"], "purchase");
    assert_eq!(refused["type"], "transaction.rejected");

    // The deposit was published first: had it been routed here, it would come first.
    let (key, first) = for_orders.next(within).await.expect("the purchase");
    assert_eq!((key.as_str(), &first), ("transaction.created", &paid));
    assert_eq!(first["data"]["reference"], format!("order:{order}"));
    let (key, second) = for_orders.next(within).await.expect("the refusal");
    assert_eq!((key.as_str(), &second), ("transaction.rejected", &refused));
    assert_eq!(second["data"]["reason"], "insufficient-funds");
    assert_eq!(wallet.balance(user).await, 400);
    wallet.stop().await;
}

#[tokio::test]
async fn the_same_message_id_published_five_times_is_applied_once() {
    let wallet = TestWallet::start().await;
    let mut events = wallet.event_queue().await;
    let user = Uuid::new_v4();
    for _ in 0..5 {
        wallet
            .publish(
                REQUESTS_QUEUE,
                &deposit(user, 100, "once"),
                properties("the-same-id"),
            )
            .await;
    }
    // A different message afterwards. Deliveries are handled concurrently, so its outcome
    // may come before or after the first one's: read until both are out.
    wallet
        .publish(
            REQUESTS_QUEUE,
            &deposit(user, 1, "marker"),
            properties("marker"),
        )
        .await;
    let mut references = Vec::new();
    while !(references.contains(&"once".to_owned()) && references.contains(&"marker".to_owned())) {
        let (_, event) = events
            .next(Duration::from_secs(10))
            .await
            .expect("an outcome");
        references.push(event["data"]["reference"].as_str().unwrap().to_owned());
    }
    references.sort();
    assert_eq!(references, ["marker", "once"]);
    assert_eq!(wallet.balance(user).await, 101);
    assert_eq!(wallet.ledger_rows(user).await, 2);
    wallet.stop().await;
}

#[tokio::test]
async fn a_thousand_requests_give_a_thousand_outcomes_and_exact_balances() {
    let wallet = TestWallet::start().await;
    let mut events = wallet.event_queue().await;
    let users: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
    for n in 0..1000_i64 {
        let user = users[usize::try_from(n % 10).unwrap()];
        // Every tenth request withdraws more than anyone has: rejected, not lost.
        let body = if n % 10 == 9 {
            serde_json::to_vec(&json!({"user_id": user, "type": "withdraw", "amount": 1_000_000, "reference": format!("r{n}")})).unwrap()
        } else {
            deposit(user, n + 1, &format!("r{n}"))
        };
        wallet
            .publish(REQUESTS_QUEUE, &body, properties(&format!("m{n}")))
            .await;
    }
    let mut created = HashSet::new();
    let mut rejected = HashSet::new();
    while created.len() + rejected.len() < 1000 {
        let (key, event) = events
            .next(Duration::from_secs(30))
            .await
            .expect("all outcomes");
        match key.as_str() {
            "transaction.created" => {
                created.insert(event["data"]["reference"].as_str().unwrap().to_owned())
            }
            "transaction.rejected" => {
                assert_eq!(event["data"]["reason"], "insufficient-funds");
                rejected.insert(event["data"]["request_id"].as_str().unwrap().to_owned())
            }
            other => panic!("unexpected event {other}"),
        };
    }
    assert_eq!((created.len(), rejected.len()), (900, 100));
    for (index, user) in users.iter().enumerate() {
        let index = i64::try_from(index).unwrap();
        let expected: i64 = (0..1000_i64)
            .filter(|n| n % 10 == index && n % 10 != 9)
            .map(|n| n + 1)
            .sum();
        assert_eq!(wallet.balance(*user).await, expected, "user {index}");
    }
    wallet.stop().await;
}

#[tokio::test]
async fn poison_messages_are_dead_lettered_with_a_reason_and_the_consumer_keeps_going() {
    let wallet = TestWallet::start().await;
    let mut events = wallet.event_queue().await;
    let user = Uuid::new_v4();
    let poison: [(&str, Vec<u8>, &str); 7] = [
        ("bad-json", b"{not json".to_vec(), "invalid JSON body"),
        (
            "unknown-type",
            serde_json::to_vec(&json!({"user_id": user, "type": "gift", "amount": 5})).unwrap(),
            "type must be one of",
        ),
        (
            "missing-user",
            serde_json::to_vec(&json!({"type": "deposit", "amount": 5})).unwrap(),
            "user_id is missing",
        ),
        (
            "float-amount",
            serde_json::to_vec(&json!({"user_id": user, "type": "deposit", "amount": 10.5}))
                .unwrap(),
            "invalid JSON body",
        ),
        ("not-an-object", b"[1, 2, 3]".to_vec(), "invalid JSON body"),
        // Order payments are the order service's: nobody else may pose as one.
        (
            "order-reference",
            deposit(user, 5, &format!("order:{}", Uuid::new_v4())),
            "reserved for order payments",
        ),
        (
            "order:0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21:payment:1",
            deposit(user, 5, "posing"),
            "reserved for order payments",
        ),
    ];
    for (id, body, _) in &poison {
        wallet.publish(REQUESTS_QUEUE, body, properties(id)).await;
    }
    // No message id at all.
    wallet
        .publish(
            REQUESTS_QUEUE,
            &deposit(user, 5, "no-id"),
            lapin::BasicProperties::default().with_content_type("application/json".into()),
        )
        .await;
    wallet
        .publish(
            REQUESTS_QUEUE,
            &deposit(user, 700, "good"),
            properties("good"),
        )
        .await;

    let (_, event) = events
        .next(Duration::from_secs(10))
        .await
        .expect("the good message's outcome");
    assert_eq!(event["data"]["reference"], "good");
    assert_eq!(wallet.balance(user).await, 700);

    let channel = wallet.broker.create_channel().await.unwrap();
    let mut reasons = std::collections::HashMap::new();
    for _ in 0..8 {
        let letter = poison::next_dead_letter(&channel, "wallet.transaction-requests.dlq").await;
        let id = letter.message_id.unwrap_or_else(|| "none".to_owned());
        reasons.insert(id, letter.reason);
    }
    for (id, _, expected) in &poison {
        assert!(reasons[*id].contains(expected), "{id}: {}", reasons[*id]);
    }
    assert!(
        reasons["none"].contains("message_id"),
        "{}",
        reasons["none"]
    );
    wallet.stop().await;
}

#[tokio::test]
async fn the_legacy_envelope_applies_a_deposit_of_10_5_as_1050_minor_units() {
    let wallet = TestWallet::start().await;
    let mut events = wallet.event_queue().await;
    let user = Uuid::new_v4();
    let envelope = json!({"pattern": "transaction_emitted", "data": {"userId": user, "transaction": {"id": "legacy-1", "amount": 10.5, "operation": 0}}});
    wallet
        .publish(
            COMPAT_QUEUE,
            &serde_json::to_vec(&envelope).unwrap(),
            properties("legacy-msg-1"),
        )
        .await;
    let (_, event) = events
        .next(Duration::from_secs(10))
        .await
        .expect("an outcome");
    assert_eq!(event["data"]["amount"], 1050);
    assert_eq!(event["data"]["type"], "deposit");
    let deposit_id = event["data"]["id"].as_str().unwrap().to_owned();

    // Operation 3 reverses the deposit named by transaction.id.
    let reversal = json!({"pattern": "transaction_emitted", "data": {"userId": user, "transaction": {"id": deposit_id, "amount": 10.5, "operation": 3}}});
    wallet
        .publish(
            COMPAT_QUEUE,
            &serde_json::to_vec(&reversal).unwrap(),
            properties("legacy-msg-2"),
        )
        .await;
    let (_, event) = events
        .next(Duration::from_secs(10))
        .await
        .expect("an outcome");
    assert_eq!(event["data"]["type"], "reversal");
    assert_eq!(event["data"]["balance_after"], 0);
    assert_eq!(wallet.balance(user).await, 0);
    wallet.stop().await;
}

/// An exclusive, server-named queue to reply to, on its own channel.
async fn reply_queue(wallet: &TestWallet) -> (lapin::Channel, String) {
    let channel = wallet.broker.create_channel().await.unwrap();
    let queue = channel
        .queue_declare(
            "".into(),
            lapin::options::QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .unwrap();
    (channel, queue.name().to_string())
}

async fn next_reply(channel: &lapin::Channel, queue: &str) -> lapin::message::BasicGetMessage {
    eventually(Duration::from_secs(10), "the reply", || async move {
        channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
    })
    .await
}

#[tokio::test]
async fn the_outcome_is_also_sent_to_reply_to_with_the_correlation_id() {
    let wallet = TestWallet::start().await;
    let (channel, reply_to) = reply_queue(&wallet).await;
    let user = Uuid::new_v4();
    let props = properties("with-reply")
        .with_reply_to(reply_to.as_str().into())
        .with_correlation_id("corr-42".into());
    let body =
        serde_json::to_vec(&json!({"user_id": user, "type": "withdraw", "amount": 5})).unwrap();
    wallet.publish(REQUESTS_QUEUE, &body, props).await;
    let reply = next_reply(&channel, &reply_to).await;
    assert_eq!(
        reply
            .delivery
            .properties
            .correlation_id()
            .as_ref()
            .unwrap()
            .as_str(),
        "corr-42"
    );
    let event: serde_json::Value = serde_json::from_slice(&reply.delivery.data).unwrap();
    assert_eq!(event["type"], "transaction.rejected");
    assert_eq!(event["data"]["reason"], "insufficient-funds");
    assert_eq!(event["data"]["request_id"], "with-reply");
    wallet.stop().await;
}

/// The reply is a copy of the event on `wallet.events` (the same CloudEvent, the same id),
/// under a message id of its own.
#[tokio::test]
async fn the_reply_to_an_applied_request_is_the_event_itself() {
    let wallet = TestWallet::start().await;
    let mut events = wallet.event_queue().await;
    let (channel, reply_to) = reply_queue(&wallet).await;
    let user = Uuid::new_v4();
    let props = properties("deposit-with-reply").with_reply_to(reply_to.as_str().into());
    wallet
        .publish(REQUESTS_QUEUE, &deposit(user, 700, "ref-r"), props)
        .await;
    let (_, event) = events
        .next(Duration::from_secs(10))
        .await
        .expect("an outcome");
    let reply = next_reply(&channel, &reply_to).await;
    let copy: serde_json::Value = serde_json::from_slice(&reply.delivery.data).unwrap();
    assert_eq!(copy, event);
    assert_eq!(event["type"], "transaction.created");
    assert_eq!(event["data"]["balance_after"], 700);
    let message_id = reply.delivery.properties.message_id().clone().unwrap();
    assert_ne!(message_id.as_str(), event["id"].as_str().unwrap());
    wallet.stop().await;
}

#[tokio::test]
async fn killing_the_service_mid_stream_loses_nothing_and_applies_nothing_twice() {
    let mut wallet = TestWallet::start().await;
    let mut events = wallet.event_queue().await;
    let user = Uuid::new_v4();
    for n in 0..600_i64 {
        wallet
            .publish(
                REQUESTS_QUEUE,
                &deposit(user, 1, &format!("r{n}")),
                properties(&format!("m{n}")),
            )
            .await;
    }
    let mut seen = HashSet::new();
    events
        .collect_references(&mut seen, 100, Duration::from_secs(20))
        .await;
    // Stop the consumers and the relay in the middle of the stream, then start again.
    wallet.kill().await;
    wallet.run().await;
    events
        .collect_references(&mut seen, 600, Duration::from_secs(20))
        .await;
    assert_eq!(wallet.ledger_rows(user).await, 600);
    assert_eq!(wallet.balance(user).await, 600);
    // The relay marks a batch sent just after the broker confirmed it.
    eventually(
        Duration::from_secs(10),
        "every outbox row marked sent",
        || async {
            let unpublished: i64 =
                sqlx::query_scalar("select count(*) from outbox where published_at is null")
                    .fetch_one(&wallet.pool)
                    .await
                    .unwrap();
            (unpublished == 0).then_some(())
        },
    )
    .await;
    wallet.stop().await;
}

#[tokio::test]
async fn the_service_recovers_by_itself_when_the_broker_drops_its_connection() {
    let wallet = TestWallet::start().await;
    let mut events = wallet.event_queue().await;
    let user = Uuid::new_v4();
    for n in 0..50_i64 {
        wallet
            .publish(
                REQUESTS_QUEUE,
                &deposit(user, 1, &format!("a{n}")),
                properties(&format!("a{n}")),
            )
            .await;
    }
    // As `rabbitmqctl close_all_connections` or a broker restart would. The management API
    // lists a new connection only after its next statistics round, hence the wait.
    eventually(
        Duration::from_secs(20),
        "the service's connection to be closed",
        || async {
            let closed = wallet
                .vhost
                .close_connections("wallet-service")
                .await
                .unwrap();
            (closed >= 1).then_some(())
        },
    )
    .await;
    for n in 0..50_i64 {
        wallet
            .publish(
                REQUESTS_QUEUE,
                &deposit(user, 1, &format!("b{n}")),
                properties(&format!("b{n}")),
            )
            .await;
    }
    let mut seen = HashSet::new();
    events
        .collect_references(&mut seen, 100, Duration::from_secs(30))
        .await;
    assert_eq!(wallet.ledger_rows(user).await, 100);
    assert_eq!(wallet.balance(user).await, 100);
    wallet.stop().await;
}

#[tokio::test]
async fn the_service_recovers_by_itself_when_its_database_sessions_are_cut() {
    let wallet = TestWallet::start().await;
    let mut events = wallet.event_queue().await;
    let user = Uuid::new_v4();
    let database = wallet.database_name();
    for n in 0..200_i64 {
        wallet
            .publish(
                REQUESTS_QUEUE,
                &deposit(user, 1, &format!("r{n}")),
                properties(&format!("m{n}")),
            )
            .await;
        if n % 50 == 25 {
            // As a database restart would, from the service's side.
            platform::testing::terminate_database_sessions(&database)
                .await
                .unwrap();
        }
    }
    let mut seen = HashSet::new();
    events
        .collect_references(&mut seen, 200, Duration::from_secs(30))
        .await;
    assert_eq!(wallet.ledger_rows(user).await, 200);
    assert_eq!(wallet.balance(user).await, 200);
    let dead: u32 = wallet.queue_length("wallet.transaction-requests.dlq").await;
    assert_eq!(dead, 0, "nothing valid is dead-lettered");
    wallet.stop().await;
}

#[tokio::test]
async fn two_instances_share_the_work_without_applying_anything_twice() {
    let mut wallet = TestWallet::start().await;
    wallet.add_instance().await;
    let mut events = wallet.event_queue().await;
    let users: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    for n in 0..500_usize {
        let body = deposit(users[n % 5], 2, &format!("r{n}"));
        wallet
            .publish(REQUESTS_QUEUE, &body, properties(&format!("m{n}")))
            .await;
        // Every message also a second time, as a publisher retrying would.
        wallet
            .publish(REQUESTS_QUEUE, &body, properties(&format!("m{n}")))
            .await;
    }
    let mut seen = HashSet::new();
    events
        .collect_references(&mut seen, 500, Duration::from_secs(30))
        .await;
    for user in &users {
        assert_eq!(wallet.ledger_rows(*user).await, 100);
        assert_eq!(wallet.balance(*user).await, 200);
    }
    // The relay marks a batch sent just after the broker confirmed it.
    eventually(
        Duration::from_secs(10),
        "every outbox row marked sent",
        || async {
            let unpublished: i64 =
                sqlx::query_scalar("select count(*) from outbox where published_at is null")
                    .fetch_one(&wallet.pool)
                    .await
                    .unwrap();
            (unpublished == 0).then_some(())
        },
    )
    .await;
    wallet.stop().await;
}

/// Requests that wait in the queue reach the wallet many at a time: each batch is applied in
/// one database transaction, and one wallet's requests in the order they were published (a
/// withdrawal applied before its deposit would be refused).
#[tokio::test]
async fn waiting_requests_share_commits_and_keep_each_wallets_order() {
    let mut wallet = TestWallet::start().await;
    wallet.kill().await;
    let users = [Uuid::new_v4(), Uuid::new_v4()];
    for n in 0..30 {
        for user in users {
            let withdraw = serde_json::to_vec(&json!({"user_id": user, "type": "withdraw",
                "amount": 10, "reference": format!("w{n}")}))
            .unwrap();
            let (deposit_id, withdraw_id) = (format!("d{n}-{user}"), format!("w{n}-{user}"));
            let deposit = deposit(user, 10, &format!("d{n}"));
            wallet
                .publish(REQUESTS_QUEUE, &deposit, properties(&deposit_id))
                .await;
            wallet
                .publish(REQUESTS_QUEUE, &withdraw, properties(&withdraw_id))
                .await;
        }
    }
    // Published again: applied once, even within one batch.
    let again = format!("d0-{}", users[0]);
    wallet
        .publish(
            REQUESTS_QUEUE,
            &deposit(users[0], 10, "d0"),
            properties(&again),
        )
        .await;
    wallet.run().await;
    let pool = wallet.pool.clone();
    for user in users {
        eventually(Duration::from_secs(30), "every request applied", || {
            let wallet = &wallet;
            async move { (wallet.ledger_rows(user).await == 60).then_some(()) }
        })
        .await;
        let ledger: Vec<(Option<String>, i64)> = sqlx::query_as(
            "select reference, balance_after from transactions where user_id = $1
             order by created_at, id",
        )
        .bind(user)
        .fetch_all(&pool)
        .await
        .unwrap();
        let expected: Vec<(Option<String>, i64)> = (0..30)
            .flat_map(|n| [(Some(format!("d{n}")), 10), (Some(format!("w{n}")), 0)])
            .collect();
        assert_eq!(ledger, expected);
        assert_eq!(wallet.balance(user).await, 0);
    }
    let (rows, commits): (i64, i64) =
        sqlx::query_as("select count(*), count(distinct xmin::text) from transactions")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(commits < rows, "{rows} rows in {commits} commits: no batch");
    wallet.stop().await;
}

/// A request of `user` from the request queue, as the consumer reads it: its message id is
/// `<user>:<id>` (message ids are global), its reference `id`.
fn request(id: &str, user: Uuid, kind: TransactionType, amount: Option<i64>) -> Request {
    let mut raw = RawRequest::new(kind);
    raw.amount = amount;
    raw.reference = Some(id.to_owned());
    Request {
        message_id: format!("{user}:{id}"),
        user_id: user,
        raw,
        reply_to: None,
        correlation_id: None,
        source: TransactionSource::Event,
    }
}

/// `user`'s rows: (ledger rows, inbox rows of its requests, events waiting in the outbox).
async fn row_counts(pool: &sqlx::PgPool, user: Uuid) -> (i64, i64, i64) {
    sqlx::query_as(
        "select (select count(*) from transactions where user_id = $1),
                (select count(*) from inbox where message_id like $1::text || ':%'),
                (select count(*) from outbox where payload->'data'->>'user_id' = $1::text)",
    )
    .bind(user)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A batch whose one-statement requests meet a message id recorded before, and one recorded
/// earlier in the same batch: neither is applied again, and the batch stays one database
/// transaction (a duplicate used to be a unique violation, which would abort it).
#[tokio::test]
async fn a_batch_applies_new_requests_once_beside_duplicates_in_one_transaction() {
    use TransactionType::{Deposit, Withdraw};
    let wallet = TestWallet::start().await;
    let outbox = wallet.outbox();
    let user = Uuid::new_v4();
    let old = request("old", user, Deposit, Some(100));
    requests::apply_all(&outbox, REQUESTS_QUEUE, [&old])
        .await
        .unwrap();
    let batch = [
        old.clone(),
        request("new-1", user, Deposit, Some(10)),
        // Too little money: recorded, and rejected.
        request("new-2", user, Withdraw, Some(500)),
        request("new-1", user, Deposit, Some(10)),
        request("new-3", user, Withdraw, Some(110)),
        old.clone(),
    ];
    requests::apply_all(&outbox, REQUESTS_QUEUE, &batch)
        .await
        .unwrap();

    // Ledger: old, new-1, new-3. Inbox: all four. Events: three created, one rejected.
    assert_eq!(row_counts(&wallet.pool, user).await, (3, 4, 4));
    let audit = wallet_service::ledger::audit(&wallet.pool, user)
        .await
        .unwrap();
    assert_eq!((audit.balance, audit.ledger_sum), (0, 0));
    let (rows, commits): (i64, i64) = sqlx::query_as(
        "select count(*), count(distinct xmin::text) from transactions
         where user_id = $1 and reference in ('new-1', 'new-3')",
    )
    .bind(user)
    .fetch_one(&wallet.pool)
    .await
    .unwrap();
    assert_eq!((rows, commits), (2, 1), "the batch was one transaction");
    let rejected: (String, String) = sqlx::query_as(
        "select payload->'data'->>'reference', payload->'data'->>'reason' from outbox
         where routing_key = 'transaction.rejected'",
    )
    .fetch_one(&wallet.pool)
    .await
    .unwrap();
    assert_eq!(rejected, ("new-2".into(), "insufficient-funds".into()));

    // The whole batch redelivered (a crash before its acknowledgement): nothing changes.
    requests::apply_all(&outbox, REQUESTS_QUEUE, &batch)
        .await
        .unwrap();
    assert_eq!(row_counts(&wallet.pool, user).await, (3, 4, 4));
    assert_eq!(wallet.balance(user).await, 0);
    wallet.stop().await;
}

/// What an outcome event says, without the ids and times that differ between users.
fn outcome(routing_key: &str, event: &serde_json::Value) -> String {
    let data = &event["data"];
    match routing_key {
        "transaction.created" => format!(
            "{} {} -> {}",
            data["type"].as_str().unwrap(),
            data["amount"],
            data["balance_after"]
        ),
        _ => format!(
            "{} rejected: {}",
            data["reference"].as_str().unwrap(),
            data["reason"].as_str().unwrap()
        ),
    }
}

/// `user`'s outcomes, in the order they were queued, and the replies' routing keys.
async fn outcomes(pool: &sqlx::PgPool, user: Uuid) -> Vec<String> {
    let rows: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "select routing_key, payload from outbox where payload->'data'->>'user_id' = $1::text
         order by id",
    )
    .bind(user)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.iter()
        .map(|(key, event)| match key.as_str() {
            "transaction.created" | "transaction.rejected" => outcome(key, event),
            reply => format!("reply to {reply}"),
        })
        .collect()
}

/// Requests of every kind in one batch (one statement each where they can, the longer way
/// otherwise) give each the outcome it gets alone, in the same order.
#[tokio::test]
async fn a_batch_gives_each_request_the_outcome_it_gets_alone() {
    use TransactionType::{Deposit, Reversal, Withdraw};
    let wallet = TestWallet::start().await;
    let outbox = wallet.outbox();
    let mix = async |user: Uuid| -> Vec<Request> {
        let first = request("first", user, Deposit, Some(100));
        requests::apply_all(&outbox, REQUESTS_QUEUE, [&first])
            .await
            .unwrap();
        let parent: Uuid = sqlx::query_scalar("select id from transactions where user_id = $1")
            .bind(user)
            .fetch_one(&wallet.pool)
            .await
            .unwrap();
        let undo = |id: &str| {
            let mut undo = request(id, user, Reversal, None);
            undo.raw.parent_transaction_id = Some(parent.to_string());
            undo
        };
        let mut replied = request("replied", user, Withdraw, Some(110));
        replied.reply_to = Some("my-replies".into());
        vec![
            request("too-much", user, Withdraw, Some(500)),
            request("deposit", user, Deposit, Some(10)),
            undo("undo"),
            // Enough money for the undo again: refused as already undone.
            request("more", user, Deposit, Some(100)),
            undo("undo-again"),
            replied,
            request("no-amount", user, Deposit, None),
            request("deposit", user, Deposit, Some(10)),
            first,
            request("last", user, Withdraw, Some(1)),
        ]
    };
    let (batched, alone) = (Uuid::new_v4(), Uuid::new_v4());
    let batch = mix(batched).await;
    requests::apply_all(&outbox, REQUESTS_QUEUE, &batch)
        .await
        .unwrap();
    for request in mix(alone).await {
        requests::apply(&outbox, REQUESTS_QUEUE, &request)
            .await
            .unwrap();
    }
    let expected = [
        "deposit 100 -> 100",
        "too-much rejected: insufficient-funds",
        "deposit 10 -> 110",
        "reversal 100 -> 10",
        "deposit 100 -> 110",
        "undo-again rejected: already-undone",
        "withdraw 110 -> 0",
        "reply to my-replies",
        "no-amount rejected: validation-failed",
        "last rejected: insufficient-funds",
    ];
    assert_eq!(outcomes(&wallet.pool, batched).await, expected);
    assert_eq!(outcomes(&wallet.pool, alone).await, expected);
    for user in [batched, alone] {
        let audit = wallet_service::ledger::audit(&wallet.pool, user)
            .await
            .unwrap();
        assert_eq!(
            (audit.balance, audit.ledger_sum, audit.transactions),
            (0, 0, 5)
        );
    }
    wallet.stop().await;
}

/// Requests of three wallets in one batch, interleaved as they arrived: the n-th request of
/// every wallet shares one statement, yet each wallet gets the outcomes of its requests one
/// after the other, and a message id another wallet's request used first is not applied.
#[tokio::test]
async fn a_batch_of_several_wallets_keeps_each_wallets_order() {
    use TransactionType::{Deposit, Withdraw};
    let wallet = TestWallet::start().await;
    let outbox = wallet.outbox();
    let mut users: [Uuid; 3] = std::array::from_fn(|_| Uuid::new_v4());
    // In the order the batch applies wallets in.
    users.sort();
    let mut batch = Vec::new();
    for (id, kind, amount) in [
        ("in", Deposit, 100),
        ("out", Withdraw, 60),
        ("again", Withdraw, 60),
        ("more", Deposit, 5),
    ] {
        for user in users {
            batch.push(request(id, user, kind, Some(amount)));
        }
    }
    let mut reused = request("reused", users[1], Deposit, Some(1_000));
    reused.message_id = batch[0].message_id.clone();
    batch.push(reused);
    requests::apply_all(&outbox, REQUESTS_QUEUE, &batch)
        .await
        .unwrap();

    for user in users {
        assert_eq!(
            outcomes(&wallet.pool, user).await,
            [
                "deposit 100 -> 100",
                "withdraw 60 -> 40",
                "again rejected: insufficient-funds",
                "deposit 5 -> 45",
            ]
        );
    }
    let (rows, commits): (i64, i64) =
        sqlx::query_as("select count(*), count(distinct xmin::text) from transactions")
            .fetch_one(&wallet.pool)
            .await
            .unwrap();
    assert_eq!((rows, commits), (9, 1), "the batch was one transaction");
    wallet.stop().await;
}
