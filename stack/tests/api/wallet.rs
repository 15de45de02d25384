//! The wallet through the gateway: every rule and every error status.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem};

#[tokio::test]
async fn each_transaction_type_moves_the_balance_by_the_rules() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let token = &user.token;

    let body: Value = app.get_json("/wallet/balance", Some(token)).await;
    assert_eq!(body["balance"], 0);
    assert_eq!(body["currency"], "EUR");

    let deposit = app.transacted(token, &json!({"type": "deposit", "amount": 10_000, "currency": "EUR", "description": "salary"})).await;
    assert_eq!(deposit["type"], "deposit");
    assert_eq!(deposit["amount"], 10_000);
    assert_eq!(deposit["currency"], "EUR");
    assert_eq!(deposit["balance_after"], 10_000);
    assert_eq!(deposit["description"], "salary");
    assert_eq!(deposit["source"], "api");
    assert_eq!(deposit["parent_transaction_id"], Value::Null);
    assert_eq!(deposit["reference"], Value::Null);

    let withdraw = app
        .transacted(token, &json!({"type": "withdraw", "amount": 1_000}))
        .await;
    assert_eq!(withdraw["balance_after"], 9_000);
    let purchase = app
        .transacted(token, &json!({"type": "purchase", "amount": 2_500}))
        .await;
    assert_eq!(purchase["balance_after"], 6_500);

    let cancellation = app
        .transacted(
            token,
            &json!({"type": "cancellation", "parent_transaction_id": purchase["id"]}),
        )
        .await;
    assert_eq!(cancellation["amount"], 2_500);
    assert_eq!(cancellation["balance_after"], 9_000);
    assert_eq!(cancellation["parent_transaction_id"], purchase["id"]);

    let reversal = app
        .transacted(
            token,
            &json!({"type": "reversal", "parent_transaction_id": withdraw["id"], "amount": 1_000}),
        )
        .await;
    assert_eq!(reversal["balance_after"], 10_000);
    let reversal = app
        .transacted(
            token,
            &json!({"type": "reversal", "parent_transaction_id": deposit["id"]}),
        )
        .await;
    assert_eq!(reversal["balance_after"], 0);

    assert_eq!(app.balance(token).await, 0);
    let audit = app.wallet_audit(user.id).await;
    assert_eq!(
        (audit.balance, audit.ledger_sum, audit.transactions),
        (0, 0, 6)
    );
    app.stop().await;
}

#[tokio::test]
async fn rule_violations_get_their_exact_status_and_problem_type() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let token = &user.token;
    let deposit = app
        .transacted(token, &json!({"type": "deposit", "amount": 500}))
        .await;
    let purchase = app
        .transacted(token, &json!({"type": "purchase", "amount": 200}))
        .await;
    let cancellation = app
        .transacted(
            token,
            &json!({"type": "cancellation", "parent_transaction_id": purchase["id"]}),
        )
        .await;

    let expect = |body: Value, status: StatusCode, kind: &'static str| {
        let app = &app;
        async move {
            let problem = problem(app.transact(token, &body, None).await, status).await;
            assert_eq!(problem["type"], format!("/problems/{kind}"), "{body}");
            problem
        }
    };
    expect(
        json!({"type": "withdraw", "amount": 501}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient-funds",
    )
    .await;
    expect(
        json!({"type": "purchase", "amount": 501}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient-funds",
    )
    .await;
    expect(
        json!({"type": "cancellation", "parent_transaction_id": purchase["id"]}),
        StatusCode::CONFLICT,
        "already-undone",
    )
    .await;
    expect(
        json!({"type": "cancellation", "parent_transaction_id": uuid::Uuid::new_v4()}),
        StatusCode::NOT_FOUND,
        "parent-not-found",
    )
    .await;
    expect(
        json!({"type": "cancellation", "parent_transaction_id": deposit["id"]}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "parent-not-undoable",
    )
    .await;
    expect(
        json!({"type": "reversal", "parent_transaction_id": purchase["id"]}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "parent-not-undoable",
    )
    .await;
    expect(
        json!({"type": "reversal", "parent_transaction_id": cancellation["id"]}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "parent-not-undoable",
    )
    .await;
    expect(
        json!({"type": "cancellation", "parent_transaction_id": cancellation["id"]}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "parent-not-undoable",
    )
    .await;
    expect(
        json!({"type": "reversal", "parent_transaction_id": deposit["id"], "amount": 499}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "amount-mismatch",
    )
    .await;
    for amount in [json!(0), json!(-1), json!(1_000_000_001)] {
        let problem = expect(
            json!({"type": "deposit", "amount": amount}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        )
        .await;
        assert!(problem["errors"]["amount"].is_array(), "{problem}");
    }
    for amount in [json!(1.5), json!("100"), json!(null)] {
        expect(
            json!({"type": "deposit", "amount": amount}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        )
        .await;
    }
    let problem = expect(
        json!({"type": "deposit", "amount": 5, "currency": "USD"}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    assert!(problem["errors"]["currency"].is_array());
    expect(
        json!({"type": "gift", "amount": 5}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    expect(
        json!({"type": "cancellation", "parent_transaction_id": "not-a-uuid"}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    expect(
        json!({"type": "deposit", "amount": 5, "parent_transaction_id": deposit["id"]}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    expect(
        json!({"type": "deposit", "amount": 5, "colour": "red"}),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;

    // Nothing above changed the wallet.
    assert_eq!(app.balance(token).await, 500);
    let audit = app.wallet_audit(user.id).await;
    assert_eq!(
        (audit.balance, audit.ledger_sum, audit.transactions),
        (500, 500, 3)
    );
    app.stop().await;
}

#[tokio::test]
async fn another_users_transactions_are_not_found() {
    let app = TestApp::spawn().await;
    let ann = app.user().await;
    let bob = app.user().await;
    let purchase = app
        .transacted(&ann.token, &json!({"type": "deposit", "amount": 500}))
        .await;
    let id = purchase["id"].as_str().unwrap();

    problem(
        app.get(&format!("/wallet/transactions/{id}"), Some(&bob.token))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get("/wallet/transactions/not-a-uuid", Some(&bob.token))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let response = app
        .transact(
            &bob.token,
            &json!({"type": "reversal", "parent_transaction_id": id}),
            None,
        )
        .await;
    problem(response, StatusCode::NOT_FOUND).await;
    assert_eq!(
        app.get(&format!("/wallet/transactions/{id}"), Some(&ann.token))
            .await
            .status(),
        StatusCode::OK
    );
    let page: Value = app.get_json("/wallet/transactions", Some(&bob.token)).await;
    assert_eq!(page, json!({"items": [], "next_cursor": null}));
    app.stop().await;
}

#[tokio::test]
async fn transactions_list_newest_first_in_pages_with_filters() {
    let app = TestApp::spawn().await;
    let token = &app.user().await.token;
    let mut ids = Vec::new();
    for amount in 1..=7 {
        let kind = if amount % 3 == 0 {
            "withdraw"
        } else {
            "deposit"
        };
        ids.push(
            app.transacted(token, &json!({"type": kind, "amount": amount}))
                .await["id"]
                .clone(),
        );
    }
    ids.reverse();

    let mut seen = Vec::new();
    let mut path = "/wallet/transactions?limit=3".to_owned();
    loop {
        let page: Value = app.get_json(&path, Some(token)).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|item| item["id"].clone()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/wallet/transactions?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    let withdraws: Value = app
        .get_json("/wallet/transactions?type=withdraw", Some(token))
        .await;
    assert_eq!(withdraws["items"].as_array().unwrap().len(), 2);
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    let todays: Value = app
        .get_json(
            &format!("/wallet/transactions?from={today}&to={today}"),
            Some(token),
        )
        .await;
    assert_eq!(todays["items"].as_array().unwrap().len(), 7);
    let none: Value = app
        .get_json(
            &format!("/wallet/transactions?from={tomorrow}"),
            Some(token),
        )
        .await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);

    for bad in [
        "limit=0",
        "limit=201",
        "limit=abc",
        "type=gift",
        "from=yesterday",
        "cursor=garbage",
    ] {
        let response = app
            .get(&format!("/wallet/transactions?{bad}"), Some(token))
            .await;
        problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn two_hundred_concurrent_withdrawals_never_overdraw() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    app.transacted(&user.token, &json!({"type": "deposit", "amount": 500}))
        .await;

    let withdraw = json!({"type": "withdraw", "amount": 10});
    let withdrawals = (0..200).map(|_| app.transact(&user.token, &withdraw, None));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(withdrawals)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|status| **status == StatusCode::CREATED)
            .count(),
        50
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|status| **status == StatusCode::UNPROCESSABLE_ENTITY)
            .count(),
        150
    );
    assert_eq!(app.balance(&user.token).await, 0);
    let audit = app.wallet_audit(user.id).await;
    assert_eq!(
        (audit.balance, audit.ledger_sum, audit.transactions),
        (0, 0, 51)
    );
    app.stop().await;
}

#[tokio::test]
async fn twenty_concurrent_cancellations_of_one_purchase_apply_once() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    app.transacted(&user.token, &json!({"type": "deposit", "amount": 1_000}))
        .await;
    let purchase = app
        .transacted(&user.token, &json!({"type": "purchase", "amount": 300}))
        .await;

    let body = json!({"type": "cancellation", "parent_transaction_id": purchase["id"]});
    let attempts = (0..20).map(|_| app.transact(&user.token, &body, None));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|status| **status == StatusCode::CREATED)
            .count(),
        1
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|status| **status == StatusCode::CONFLICT)
            .count(),
        19
    );
    assert_eq!(app.balance(&user.token).await, 1_000);
    let audit = app.wallet_audit(user.id).await;
    assert_eq!(
        (audit.balance, audit.ledger_sum, audit.transactions),
        (1_000, 1_000, 3)
    );
    app.stop().await;
}

#[tokio::test]
async fn one_idempotency_key_sent_twenty_times_at_once_applies_once_with_identical_answers() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let body = json!({"type": "deposit", "amount": 700, "description": "retry me"});
    let attempts = (0..20).map(|_| async {
        let response = app.transact(&user.token, &body, Some("key-1")).await;
        (response.status(), response.json::<Value>().await.unwrap())
    });
    let answers = futures_util::future::join_all(attempts).await;
    assert!(
        answers.iter().all(|answer| *answer == answers[0]),
        "{answers:?}"
    );
    assert_eq!(answers[0].0, StatusCode::CREATED);
    assert_eq!(app.balance(&user.token).await, 700);

    // The same key with another body is refused; other users' keys are their own.
    let other = app
        .transact(
            &user.token,
            &json!({"type": "deposit", "amount": 701}),
            Some("key-1"),
        )
        .await;
    let problem_body = problem(other, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_body["type"], "/problems/idempotency-key-reused");
    let bob = app.user().await;
    assert_eq!(
        app.transact(&bob.token, &body, Some("key-1"))
            .await
            .status(),
        StatusCode::CREATED
    );
    let audit = app.wallet_audit(user.id).await;
    assert_eq!((audit.balance, audit.transactions), (700, 1));
    app.stop().await;
}

#[tokio::test]
async fn money_out_of_a_wallet_never_used_is_refused_and_leaves_nothing_behind() {
    let app = TestApp::spawn().await;
    let token = &app.user().await.token;
    for body in [
        json!({"type": "withdraw", "amount": 1}),
        json!({"type": "purchase", "amount": 1}),
    ] {
        let refused = problem(
            app.transact(token, &body, None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(refused["type"], "/problems/insufficient-funds");
    }
    assert_eq!(app.balance(token).await, 0);
    // The first deposit creates the wallet in the same statement that credits it.
    let deposit = app
        .transacted(token, &json!({"type": "deposit", "amount": 300}))
        .await;
    assert_eq!(deposit["balance_after"], 300);
    assert_eq!(app.balance(token).await, 300);
    app.stop().await;
}

#[tokio::test]
async fn a_failed_request_is_answered_the_same_way_when_retried_with_its_key() {
    let app = TestApp::spawn().await;
    let token = &app.user().await.token;
    let withdraw = json!({"type": "withdraw", "amount": 100});
    let first = problem(
        app.transact(token, &withdraw, Some("w-1")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first["type"], "/problems/insufficient-funds");
    app.transacted(token, &json!({"type": "deposit", "amount": 1_000}))
        .await;
    // Funds are there now, but the key's first answer stands: no surprise second effect.
    let again = problem(
        app.transact(token, &withdraw, Some("w-1")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(again, first);
    assert_eq!(app.balance(token).await, 1_000);
    // A new key is a new request.
    assert_eq!(
        app.transact(token, &withdraw, Some("w-2")).await.status(),
        StatusCode::CREATED
    );
    app.stop().await;
}

/// Publishes a transaction request to `wallet.transaction-requests`, as another system does,
/// with its outcome sent to `reply_to`.
async fn request_through_the_broker(
    channel: &lapin::Channel,
    message_id: &str,
    body: &Value,
    reply_to: &str,
) {
    channel
        .basic_publish(
            "".into(),
            "wallet.transaction-requests".into(),
            lapin::options::BasicPublishOptions::default(),
            &serde_json::to_vec(body).unwrap(),
            lapin::BasicProperties::default()
                .with_message_id(message_id.into())
                .with_content_type("application/json".into())
                .with_reply_to(reply_to.into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

/// The next outcome (a CloudEvent) on the reply queue.
async fn next_outcome(channel: &lapin::Channel, queue: &str) -> Value {
    let message = crate::helpers::eventually(
        std::time::Duration::from_secs(10),
        "an outcome on the reply queue",
        || async {
            channel
                .basic_get(
                    queue.into(),
                    lapin::options::BasicGetOptions { no_ack: true },
                )
                .await
                .unwrap()
        },
    )
    .await;
    serde_json::from_slice(&message.delivery.data).unwrap()
}

#[tokio::test]
async fn a_transaction_is_undone_only_through_the_way_in_that_made_it() {
    use secrecy::ExposeSecret;
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let token = &user.token;
    let broker = lapin::Connection::connect(
        app.stack.config.wallet.service.amqp_url.expose_secret(),
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let channel = broker.create_channel().await.unwrap();
    channel.confirm_select(Default::default()).await.unwrap();
    let replies = "test.undo-replies";
    channel
        .queue_declare(
            replies.into(),
            lapin::options::QueueDeclareOptions::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let deposit = app
        .transacted(token, &json!({"type": "deposit", "amount": 1_000}))
        .await;

    // Another system withdraws 300 from the user's wallet through the broker.
    request_through_the_broker(
        &channel,
        "other-system-withdraw-1",
        &json!({"user_id": user.id, "type": "withdraw", "amount": 300, "reference": "payout-1"}),
        replies,
    )
    .await;
    let withdrawal = next_outcome(&channel, replies).await;
    assert_eq!(withdrawal["type"], "transaction.created", "{withdrawal}");
    assert_eq!(withdrawal["data"]["source"], "event");
    let withdrawal_id = withdrawal["data"]["id"].clone();

    // The user cannot take it back over HTTP, with or without an Idempotency-Key.
    let reversal = json!({"type": "reversal", "parent_transaction_id": withdrawal_id});
    for key in [None, Some("undo-1")] {
        let refused = problem(
            app.transact(token, &reversal, key).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(refused["type"], "/problems/not-undoable-here", "{refused}");
        assert_eq!(
            refused["detail"],
            "this transaction cannot be undone from here (api): it was made by another system \
             through the broker; only a request from the broker can undo it"
        );
    }
    assert_eq!(app.balance(token).await, 700);

    // Nor can a broker request undo what the user did through the API.
    request_through_the_broker(
        &channel,
        "other-system-reversal-of-api-deposit",
        &json!({"user_id": user.id, "type": "reversal", "parent_transaction_id": deposit["id"]}),
        replies,
    )
    .await;
    let rejected = next_outcome(&channel, replies).await;
    assert_eq!(rejected["type"], "transaction.rejected", "{rejected}");
    assert_eq!(rejected["data"]["reason"], "not-undoable-here");
    assert_eq!(app.balance(token).await, 700);

    // The system that made the withdrawal can reverse it; the user can reverse their deposit.
    request_through_the_broker(
        &channel,
        "other-system-reversal-1",
        &json!({"user_id": user.id, "type": "reversal", "parent_transaction_id": withdrawal_id}),
        replies,
    )
    .await;
    let reversed = next_outcome(&channel, replies).await;
    assert_eq!(reversed["type"], "transaction.created", "{reversed}");
    assert_eq!(reversed["data"]["balance_after"], 1_000);
    let undone = app
        .transacted(
            token,
            &json!({"type": "reversal", "parent_transaction_id": deposit["id"]}),
        )
        .await;
    assert_eq!(undone["balance_after"], 0);
    let audit = app.wallet_audit(user.id).await;
    assert_eq!(
        (audit.balance, audit.ledger_sum, audit.transactions),
        (0, 0, 4)
    );
    broker.close(200, "done".into()).await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn the_balance_history_has_each_days_closing_balance_and_checks_its_range() {
    use secrecy::ExposeSecret;
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let token = &user.token;
    app.transacted(token, &json!({"type": "deposit", "amount": 1_000}))
        .await;
    // A transaction five days ago, which the API cannot make: straight into the ledger.
    let url = app.stack.config.wallet.service.database_url.expose_secret();
    let wallet = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::query(
        "insert into transactions (id, user_id, type, amount, currency, balance_after, source, created_at)
         values (gen_random_uuid(), $1, 'deposit', 4200, 'EUR', 4200, 'api',
                 date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' - interval '5 days' + interval '1 hour')",
    )
    .bind(user.id)
    .execute(&wallet)
    .await
    .unwrap();
    wallet.close().await;
    app.transacted(token, &json!({"type": "withdraw", "amount": 300}))
        .await;

    let history: Value = app
        .get_json("/wallet/balance/history?days=7", Some(token))
        .await;
    assert_eq!(history["currency"], "EUR");
    let today = chrono::Utc::now().date_naive();
    let expected: Vec<Value> = (0..7u64)
        .map(|n| {
            let date = today - chrono::Days::new(6 - n);
            let balance = match n {
                0 => 0,
                6 => 700,
                _ => 4_200,
            };
            json!({"date": date.to_string(), "balance": balance})
        })
        .collect();
    assert_eq!(history["days"], Value::Array(expected));

    let month: Value = app.get_json("/wallet/balance/history", Some(token)).await;
    assert_eq!(month["days"].as_array().map(Vec::len), Some(30));

    for days in ["0", "367"] {
        let response = app
            .get(&format!("/wallet/balance/history?days={days}"), Some(token))
            .await;
        let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["errors"]["days"][0], "must be between 1 and 366");
    }
    let response = app.get("/wallet/balance/history", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}
