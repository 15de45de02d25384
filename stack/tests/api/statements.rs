//! Statements: lines from wallet events, short periods at once, long ones as jobs.

use std::time::Duration;

use chrono::{Duration as Days, NaiveDate, Utc};
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use uuid::Uuid;

use platform::testing::poison;

use crate::helpers::{TestApp, eventually, problem};
use crate::smtp_sink::{Mail, SmtpSink};

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// Waits until the statement of the default period has `count` lines, and returns it.
async fn statement_with(app: &TestApp, token: &str, query: &str, count: usize) -> Value {
    eventually(Duration::from_secs(10), "the statement lines", || async {
        let response = app.get(&format!("/statements{query}"), Some(token)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        (body["lines"].as_array().unwrap().len() == count).then_some(body)
    })
    .await
}

#[tokio::test]
async fn every_transaction_type_appears_as_a_line_with_its_balance_after() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let token = &user.token;
    let deposit = app
        .transacted(
            token,
            &json!({"type": "deposit", "amount": 10_000, "description": "salary"}),
        )
        .await;
    let withdraw = app
        .transacted(token, &json!({"type": "withdraw", "amount": 1_000}))
        .await;
    let purchase = app
        .transacted(token, &json!({"type": "purchase", "amount": 2_500}))
        .await;
    app.transacted(
        token,
        &json!({"type": "cancellation", "parent_transaction_id": purchase["id"]}),
    )
    .await;
    app.transacted(
        token,
        &json!({"type": "reversal", "parent_transaction_id": withdraw["id"]}),
    )
    .await;

    let statement = statement_with(&app, token, "", 5).await;
    assert_eq!(statement["from"], (today() - Days::days(15)).to_string());
    assert_eq!(statement["to"], today().to_string());
    assert_eq!(statement["currency"], "EUR");
    assert_eq!(statement["opening_balance"], 0);
    assert_eq!(statement["closing_balance"], 10_000);
    let lines: Vec<(String, i64, i64)> = statement["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            (
                line["type"].as_str().unwrap().to_owned(),
                line["amount"].as_i64().unwrap(),
                line["balance_after"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("deposit".to_owned(), 10_000, 10_000),
            ("withdraw".to_owned(), 1_000, 9_000),
            ("purchase".to_owned(), 2_500, 6_500),
            ("cancellation".to_owned(), 2_500, 9_000),
            ("reversal".to_owned(), 1_000, 10_000),
        ]
    );
    assert_eq!(statement["lines"][0]["transaction_id"], deposit["id"]);
    assert_eq!(statement["lines"][0]["description"], "salary");
    app.stop().await;
}

#[tokio::test]
async fn a_deposit_retried_with_its_idempotency_key_is_one_line() {
    let app = TestApp::spawn().await;
    let token = &app.user().await.token;
    let body = json!({"type": "deposit", "amount": 900});
    let first = app.transact(token, &body, Some("pay-day")).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let retry = app.transact(token, &body, Some("pay-day")).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.json::<Value>().await.unwrap()["id"], first["id"]);

    // Nothing else is written to the wallet after the deposit: its event must be published
    // because that deposit's own commit woke the outbox relay.
    let statement = statement_with(&app, token, "", 1).await;
    assert_eq!(statement["lines"][0]["transaction_id"], first["id"]);
    assert_eq!(statement["lines"][0]["balance_after"], 900);
    assert_eq!(statement["closing_balance"], 900);
    app.stop().await;
}

#[tokio::test]
async fn fifteen_days_are_answered_at_once_and_sixteen_become_a_job() {
    let app = TestApp::spawn().await;
    let token = &app.user().await.token;
    let to = today();
    let fifteen = app
        .get(
            &format!("/statements?from={}&to={to}", to - Days::days(15)),
            Some(token),
        )
        .await;
    assert_eq!(fifteen.status(), StatusCode::OK);

    let sixteen = app
        .get(
            &format!("/statements?from={}&to={to}", to - Days::days(16)),
            Some(token),
        )
        .await;
    assert_eq!(sixteen.status(), StatusCode::ACCEPTED);
    let location = sixteen.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = sixteen.json().await.unwrap();
    assert_eq!(body["status"], "pending");
    assert_eq!(
        location,
        format!("/statements/jobs/{}", body["job_id"].as_str().unwrap())
    );
    app.stop().await;
}

#[tokio::test]
async fn malformed_reversed_and_too_long_periods_are_422() {
    let app = TestApp::spawn().await;
    let token = &app.user().await.token;
    for query in [
        "from=2026-11-02&to=2026-11-01",
        "from=2026-02-30",
        "from=yesterday",
        "to=21/11/2026",
        "from=2020-01-01&to=2026-01-02",
        "to=",
        "from=&to=2026-01-02",
    ] {
        let body = problem(
            app.get(&format!("/statements?{query}"), Some(token)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(body["type"], "/problems/validation-failed", "{query}");
        assert!(body["errors"].is_object(), "{query}: {body}");
    }
    // Exactly five years is allowed (as a job).
    let response = app
        .get("/statements?from=2021-01-02&to=2026-01-02", Some(token))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    app.stop().await;
}

#[tokio::test]
async fn a_period_without_transactions_is_an_empty_statement_carrying_the_balance() {
    let app = TestApp::spawn().await;
    let token = &app.user().await.token;
    let body: Value = app
        .get_json("/statements?from=2026-01-01&to=2026-01-02", Some(token))
        .await;
    assert_eq!(body["lines"], json!([]));
    assert_eq!(
        (
            body["opening_balance"].as_i64(),
            body["closing_balance"].as_i64()
        ),
        (Some(0), Some(0))
    );

    app.transacted(token, &json!({"type": "deposit", "amount": 4_200}))
        .await;
    statement_with(&app, token, "", 1).await;
    let tomorrow = today() + Days::days(1);
    let later: Value = app
        .get_json(
            &format!("/statements?from={tomorrow}&to={tomorrow}"),
            Some(token),
        )
        .await;
    assert_eq!(later["lines"], json!([]));
    assert_eq!(
        (
            later["opening_balance"].as_i64(),
            later["closing_balance"].as_i64()
        ),
        (Some(4_200), Some(4_200))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_long_period_becomes_a_job_whose_csv_matches_the_ledger() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let token = &user.token;
    let mut ledger = Vec::new();
    for n in 1..=12 {
        let kind = if n % 4 == 0 { "withdraw" } else { "deposit" };
        let description = if n == 3 { "tea, \"milk\"" } else { "plain" };
        ledger.push(
            app.transacted(
                token,
                &json!({"type": kind, "amount": n * 125, "description": description}),
            )
            .await,
        );
    }
    statement_with(&app, token, "", 12).await;

    let from = today() - Days::days(365);
    let accepted = app
        .get(&format!("/statements?from={from}"), Some(token))
        .await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let location = accepted.headers()["location"].to_str().unwrap().to_owned();
    let job = eventually(Duration::from_secs(20), "the job to finish", || async {
        let job: Value = app.get_json(&location, Some(token)).await;
        (job["status"] == "done").then_some(job)
    })
    .await;
    assert_eq!(job["line_count"], 12);
    assert_eq!(job["from"], from.to_string());
    assert_eq!(job["to"], today().to_string());
    assert_eq!(job["download_url"], format!("{location}/download"));

    let response = app
        .get(job["download_url"].as_str().unwrap(), Some(token))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let csv = response.text().await.unwrap();
    let mut expected =
        String::from("transaction_id,occurred_at,type,amount,balance_after,description\n");
    for transaction in &ledger {
        let at = chrono::DateTime::parse_from_rfc3339(transaction["created_at"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc);
        let description = transaction["description"].as_str().unwrap();
        let description = if description.contains(',') {
            format!("\"{}\"", description.replace('"', "\"\""))
        } else {
            description.to_owned()
        };
        expected.push_str(&format!(
            "{},{},{},{},{},{}\n",
            transaction["id"].as_str().unwrap(),
            at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            transaction["type"].as_str().unwrap(),
            proto::money::decimal(transaction["amount"].as_i64().unwrap()),
            proto::money::decimal(transaction["balance_after"].as_i64().unwrap()),
            description,
        ));
    }
    assert_eq!(csv, expected);
    app.stop().await;
}

#[tokio::test]
async fn another_users_job_is_not_found() {
    let app = TestApp::spawn().await;
    let ann = app.user().await;
    let bob = app.user().await;
    let accepted: Value = app
        .get_json(
            "/statements?from=2025-01-01&to=2025-12-31",
            Some(&ann.token),
        )
        .await;
    let job = format!("/statements/jobs/{}", accepted["job_id"].as_str().unwrap());
    problem(app.get(&job, Some(&bob.token)).await, StatusCode::NOT_FOUND).await;
    problem(
        app.get(&format!("{job}/download"), Some(&bob.token)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get("/statements/jobs/not-a-uuid", Some(&bob.token))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(
        app.get(&job, Some(&ann.token)).await.status(),
        StatusCode::OK
    );
    app.stop().await;
}

/// Publishes `event` on `wallet.events` as the wallet would.
async fn publish_wallet_event(connection: &Connection, message_id: &str, body: &[u8]) {
    let channel = connection.create_channel().await.unwrap();
    channel.confirm_select(Default::default()).await.unwrap();
    channel
        .basic_publish(
            "wallet.events".into(),
            "transaction.created".into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default()
                .with_message_id(message_id.into())
                // As the wallet publishes it: the consumer trusts only the platform's user.
                .with_user_id(platform::testing::platform_user().into())
                .with_content_type("application/json".into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

fn created_event(user: Uuid, id: Uuid, amount: i64, balance_after: i64, at: &str) -> Value {
    json!({"specversion": "1.0", "id": Uuid::new_v4(), "source": "/wallet-service", "type": "transaction.created",
        "time": at, "datacontenttype": "application/json",
        "data": {"id": id, "user_id": user, "type": "deposit", "amount": amount, "currency": "EUR",
            "balance_after": balance_after, "parent_transaction_id": null, "description": null,
            "source": "event", "reference": null, "created_at": at}})
}

#[tokio::test]
async fn duplicate_and_out_of_order_events_give_one_line_each_with_right_balances() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let broker = Connection::connect(
        app.stack.config.wallet.service.amqp_url.expose_secret(),
        ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let day = today() - Days::days(2);
    let events: Vec<(Uuid, Value)> = (1..=3)
        .map(|n| {
            let id = Uuid::now_v7();
            (
                id,
                created_event(user.id, id, 100, 100 * n, &format!("{day}T1{n}:00:00Z")),
            )
        })
        .collect();
    // Third first, then first twice (same message id), then second, then third again under
    // another message id (a republished event).
    let order = [(2, "m3"), (0, "m1"), (0, "m1"), (1, "m2"), (2, "m3-again")];
    for (index, message_id) in order {
        publish_wallet_event(
            &broker,
            message_id,
            &serde_json::to_vec(&events[index].1).unwrap(),
        )
        .await;
    }
    let statement = statement_with(&app, &user.token, &format!("?from={day}&to={day}"), 3).await;
    let balances: Vec<i64> = statement["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["balance_after"].as_i64().unwrap())
        .collect();
    assert_eq!(balances, [100, 200, 300]);
    assert_eq!(statement["closing_balance"], 300);
    let ids: Vec<&str> = statement["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["transaction_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        events
            .iter()
            .map(|(id, _)| id.to_string())
            .collect::<Vec<_>>()
    );
    broker.close(200, "done".into()).await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_with_its_reason_and_the_next_is_applied() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let broker = Connection::connect(
        app.stack.config.wallet.service.amqp_url.expose_secret(),
        ConnectionProperties::default(),
    )
    .await
    .unwrap();
    publish_wallet_event(&broker, "poison-1", b"{not json").await;
    publish_wallet_event(
        &broker,
        "poison-2",
        br#"{"type": "transaction.created", "data": {"id": 5}}"#,
    )
    .await;
    let good = created_event(
        user.id,
        Uuid::now_v7(),
        700,
        700,
        &format!("{}T08:00:00Z", today()),
    );
    // Well formed, but PostgreSQL refuses a NUL character in text: retrying cannot help.
    let mut nul = created_event(
        user.id,
        Uuid::now_v7(),
        50,
        50,
        &format!("{}T07:00:00Z", today()),
    );
    nul["data"]["description"] = json!("a\u{0}b");
    publish_wallet_event(&broker, "poison-3", &serde_json::to_vec(&nul).unwrap()).await;
    publish_wallet_event(&broker, "good", &serde_json::to_vec(&good).unwrap()).await;

    statement_with(&app, &user.token, "", 1).await;
    let channel = broker.create_channel().await.unwrap();
    for (expected, reason_starts) in [
        (
            "poison-1",
            "not a transaction.created event: key must be a string",
        ),
        (
            "poison-2",
            "not a transaction.created event: invalid type: integer `5`",
        ),
        (
            "poison-3",
            "the database refused a value: invalid byte sequence",
        ),
    ] {
        let dead = poison::next_dead_letter(&channel, "statement.transactions.dlq").await;
        assert_eq!(dead.message_id.as_deref(), Some(expected));
        assert!(
            dead.reason.starts_with(reason_starts),
            "{expected}: {}",
            dead.reason
        );
    }
    broker.close(200, "done".into()).await.unwrap();
    app.stop().await;
}

/// The platform with statement emails sent to a local SMTP sink.
async fn spawn_with_smtp() -> (SmtpSink, TestApp) {
    let sink = SmtpSink::start().await;
    let smtp = statement_service::email::SmtpSettings::parse(
        &format!("smtp://127.0.0.1:{}", sink.port),
        "statements@example.com",
    )
    .unwrap();
    let app = TestApp::spawn_with(|config| config.statement.smtp = Some(smtp)).await;
    (sink, app)
}

/// Deposits `amount`, waits for its line, asks for a 40-day statement (a job) and returns
/// the job's path and the first email the sink receives.
async fn emailed_statement(
    app: &TestApp,
    sink: &SmtpSink,
    token: &str,
    amount: i64,
) -> (String, Mail) {
    app.transacted(token, &json!({"type": "deposit", "amount": amount}))
        .await;
    statement_with(app, token, "", 1).await;
    let accepted: Value = app
        .get(
            &format!("/statements?from={}", today() - Days::days(40)),
            Some(token),
        )
        .await
        .json()
        .await
        .unwrap();
    let job = format!("/statements/jobs/{}", accepted["job_id"].as_str().unwrap());
    let mail = eventually(Duration::from_secs(20), "the statement email", || async {
        sink.received().into_iter().next()
    })
    .await;
    (job, mail)
}

async fn job_status(app: &TestApp, job: &str, token: &str) -> Value {
    let body: Value = app.get_json(job, Some(token)).await;
    body["status"].clone()
}

#[tokio::test]
async fn a_finished_job_is_emailed_to_the_user_with_the_csv_attached() {
    let (sink, app) = spawn_with_smtp().await;
    let user = app.user().await;
    let (job, mail) = emailed_statement(&app, &sink, &user.token, 1_234).await;
    assert_eq!(mail.to, vec![user.email.clone()]);
    assert!(
        mail.from.contains("statements@example.com"),
        "{}",
        mail.from
    );
    assert!(
        mail.data.contains("Subject: Your statement"),
        "{}",
        mail.data
    );
    assert!(
        mail.data.contains("Content-Disposition: attachment"),
        "{}",
        mail.data
    );
    assert!(
        mail.data.contains(&format!(
            "statement-{}-{}.csv",
            today() - Days::days(40),
            today()
        )),
        "{}",
        mail.data
    );
    assert!(
        mail.data.contains("12.34"),
        "the CSV is attached: {}",
        mail.data
    );
    assert_eq!(job_status(&app, &job, &user.token).await, "done");
    assert_eq!(sink.received().len(), 1);
    app.stop().await;
}

/// Random bodies and properties on statement-service's three queues: each message ends in
/// its queue's dead-letter queue with a reason, the queues drain, and every consumer still
/// works afterwards (a deposit becomes a line; a long statement is built and emailed).
#[tokio::test]
async fn random_messages_on_the_statement_queues_are_dead_lettered_and_nothing_stalls() {
    const QUEUES: [&str; 3] = [
        "statement.transactions",
        "statement.jobs",
        "statement.emails",
    ];
    const PER_QUEUE: u32 = 40;
    let (sink, app) = spawn_with_smtp().await;
    let broker = Connection::connect(
        app.stack.config.statement.service.amqp_url.expose_secret(),
        ConnectionProperties::default(),
    )
    .await
    .unwrap();
    for queue in QUEUES {
        eventually(Duration::from_secs(10), "the statement queues", || async {
            poison::queue_exists(&broker, queue).await.then_some(())
        })
        .await;
    }

    let (seed, mut rng) = poison::seeded();
    let channel = broker.create_channel().await.unwrap();
    channel.confirm_select(Default::default()).await.unwrap();
    for queue in QUEUES {
        poison::publish(&channel, queue, PER_QUEUE, &mut rng).await;
    }
    // Job messages naming no job, made hostile: none can be processed.
    for queue in ["statement.jobs", "statement.emails"] {
        poison::publish_mutated(
            &channel,
            queue,
            PER_QUEUE,
            &mut rng,
            || json!({"job_id": Uuid::new_v4()}),
        )
        .await;
    }
    poison::assert_all_dead_lettered(&channel, QUEUES[0], PER_QUEUE, seed).await;
    for queue in &QUEUES[1..] {
        poison::assert_all_dead_lettered(&channel, queue, 2 * PER_QUEUE, seed).await;
    }

    // Valid events with one value made hostile: each is applied or dead-lettered with its
    // reason, and none is retried for ever.
    let at = format!("{}T08:00:00Z", today());
    let published = poison::publish_mutated(&channel, QUEUES[0], PER_QUEUE, &mut rng, || {
        created_event(Uuid::new_v4(), Uuid::now_v7(), 100, 100, &at)
    })
    .await;
    let database = app
        .stack
        .config
        .statement
        .service
        .database_url
        .expose_secret();
    let pool = sqlx::PgPool::connect(database).await.unwrap();
    poison::assert_each_applied_or_dead_lettered(&channel, &pool, QUEUES[0], &published, seed)
        .await;
    pool.close().await;

    let user = app.user().await;
    let (job, mail) = emailed_statement(&app, &sink, &user.token, 4_321).await;
    assert_eq!(job_status(&app, &job, &user.token).await, "done");
    assert_eq!(mail.to, vec![user.email.clone()]);
    assert!(mail.data.contains("43.21"), "the CSV is attached");
    assert_eq!(sink.received().len(), 1);
    broker.close(200, "done".into()).await.unwrap();
    app.stop().await;
}

/// statement-service's own database, for tests that set up what the API cannot make fast.
async fn statement_database(app: &TestApp) -> sqlx::PgPool {
    let url = app
        .stack
        .config
        .statement
        .service
        .database_url
        .expose_secret();
    sqlx::PgPool::connect(url).await.unwrap()
}

/// Records `count` deposit lines of 1 cent for `user`, yesterday, straight into the
/// statement database (as if the wallet's events had arrived).
async fn insert_lines(pool: &sqlx::PgPool, user: Uuid, count: i32) {
    sqlx::query(
        "insert into statement_lines (transaction_id, user_id, type, amount, currency, balance_after, description, occurred_at)
         select gen_random_uuid(), $1, 'deposit', 1, 'EUR', n, 'line ' || n,
                date_trunc('day', now()) - interval '1 day' + n * interval '1 millisecond'
         from generate_series(1, $2) as n",
    )
    .bind(user)
    .bind(count)
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_fifteen_day_statement_of_20000_lines_or_over_4_mib_becomes_a_job_and_10000_short_lines_are_answered_at_once()
 {
    let app = TestApp::spawn().await;
    let pool = statement_database(&app).await;
    let big = app.user().await;
    insert_lines(&pool, big.id, 20_000).await;
    let response = app.get("/statements", Some(&big.token)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let job = eventually(Duration::from_secs(60), "the job to finish", || async {
        let job: Value = app.get_json(&location, Some(&big.token)).await;
        (job["status"] == "done").then_some(job)
    })
    .await;
    assert_eq!(job["line_count"], 20_000);
    assert_eq!(job["from"], (today() - Days::days(15)).to_string());
    assert_eq!(job["to"], today().to_string());
    let csv = app
        .get(&format!("{location}/download"), Some(&big.token))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 20_001);

    // At the limit, the statement is still answered at once.
    let limit = app.user().await;
    insert_lines(&pool, limit.id, 10_000).await;
    let response = app.get("/statements", Some(&limit.token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let statement: Value = response.json().await.unwrap();
    assert_eq!(statement["lines"].as_array().unwrap().len(), 10_000);
    assert_eq!(statement["closing_balance"], 10_000);

    // As many lines, with long descriptions: over the 4 MiB a gRPC answer may have, so a job.
    let long = app.user().await;
    insert_lines(&pool, long.id, 10_000).await;
    sqlx::query("update statement_lines set description = repeat('x', 500) where user_id = $1")
        .bind(long.id)
        .execute(&pool)
        .await
        .unwrap();
    let response = app.get("/statements", Some(&long.token)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_user_with_the_most_open_jobs_gets_429_with_retry_after_until_one_finishes() {
    let app = TestApp::spawn_with(|config| config.statement.max_open_jobs = 2).await;
    let pool = statement_database(&app).await;
    let ann = app.user().await;
    // Two jobs that no worker will take (no message was queued for them): pending for good.
    let mut pending = Vec::new();
    for _ in 0..2 {
        let id = Uuid::now_v7();
        sqlx::query(
            "insert into statement_jobs (id, user_id, period_from, period_to) values ($1, $2, '2025-01-01', '2025-12-31')",
        )
        .bind(id)
        .bind(ann.id)
        .execute(&pool)
        .await
        .unwrap();
        pending.push(id);
    }
    let long = "/statements?from=2025-01-01&to=2025-12-31";
    for path in [long, "/statements?from=2024-01-01&to=2024-12-31"] {
        let response = app.get(path, Some(&ann.token)).await;
        assert_eq!(response.headers()["retry-after"], "10", "{path}");
        let body = problem(response, StatusCode::TOO_MANY_REQUESTS).await;
        assert_eq!(body["type"], "/problems/too-many-jobs");
        assert_eq!(
            body["detail"],
            "you have 2 statement jobs pending or running, the most at once; ask again once one is done"
        );
    }
    let jobs: i64 = sqlx::query_scalar("select count(*) from statement_jobs where user_id = $1")
        .bind(ann.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(jobs, 2, "a refused request creates no job");

    // Short statements are not jobs: they are answered as before.
    let short = app
        .get(
            "/statements?from=2025-01-01&to=2025-01-02",
            Some(&ann.token),
        )
        .await;
    assert_eq!(short.status(), StatusCode::OK);
    // Other users have their own limit.
    let bob = app.user().await;
    assert_eq!(
        app.get(long, Some(&bob.token)).await.status(),
        StatusCode::ACCEPTED
    );
    // Once one of Ann's jobs is finished, she may ask again.
    sqlx::query("update statement_jobs set status = 'failed', finished_at = now() where id = $1")
        .bind(pending[0])
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        app.get(long, Some(&ann.token)).await.status(),
        StatusCode::ACCEPTED
    );
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn finished_jobs_and_their_csv_are_removed_after_the_retention_period() {
    let app = TestApp::spawn_with(|config| {
        config.statement.prune_every = Duration::from_millis(200);
    })
    .await;
    let pool = statement_database(&app).await;
    let user = app.user().await;
    let mut jobs = Vec::new();
    for from in ["2025-01-01", "2025-06-01"] {
        let accepted = app
            .get(
                &format!("/statements?from={from}&to=2025-12-31"),
                Some(&user.token),
            )
            .await;
        assert_eq!(accepted.status(), StatusCode::ACCEPTED);
        let location = accepted.headers()["location"].to_str().unwrap().to_owned();
        eventually(Duration::from_secs(20), "the job to finish", || async {
            let job: Value = app.get_json(&location, Some(&user.token)).await;
            (job["status"] == "done").then_some(())
        })
        .await;
        jobs.push(location);
    }
    let id = |location: &str| {
        location
            .rsplit('/')
            .next()
            .unwrap()
            .parse::<Uuid>()
            .unwrap()
    };
    // A pending job created long ago is not finished: it is kept.
    let old_pending = Uuid::now_v7();
    sqlx::query(
        "insert into statement_jobs (id, user_id, period_from, period_to, created_at) values ($1, $2, '2025-01-01', '2025-12-31', now() - interval '90 days')",
    )
    .bind(old_pending)
    .bind(user.id)
    .execute(&pool)
    .await
    .unwrap();
    // The first job finished just over 30 days ago (the default retention).
    sqlx::query(
        "update statement_jobs set finished_at = now() - interval '30 days 1 minute' where id = $1",
    )
    .bind(id(&jobs[0]))
    .execute(&pool)
    .await
    .unwrap();

    eventually(Duration::from_secs(10), "the expired job to go", || async {
        let status = app.get(&jobs[0], Some(&user.token)).await.status();
        (status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    problem(
        app.get(&format!("{}/download", jobs[0]), Some(&user.token))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let files: i64 = sqlx::query_scalar("select count(*) from statement_files where job_id = $1")
        .bind(id(&jobs[0]))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(files, 0);
    // The recent job and the pending one stay.
    let download = app
        .get(&format!("{}/download", jobs[1]), Some(&user.token))
        .await;
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(
        download.text().await.unwrap(),
        "transaction_id,occurred_at,type,amount,balance_after,description\n"
    );
    let pending: Value = app
        .get_json(
            &format!("/statements/jobs/{old_pending}"),
            Some(&user.token),
        )
        .await;
    assert_eq!(pending["status"], "pending");
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn twenty_concurrent_long_statements_open_exactly_the_limit_of_jobs() {
    let app = TestApp::spawn_with(|config| config.statement.max_open_jobs = 3).await;
    let pool = statement_database(&app).await;
    let user = app.user().await;
    // Workers cannot store a CSV while this lock is held: every accepted job stays open
    // (running or pending), so the count the limit checks cannot go down meanwhile.
    let mut hold = pool.begin().await.unwrap();
    sqlx::query("lock table statement_files in access exclusive mode")
        .execute(&mut *hold)
        .await
        .unwrap();
    let asks = (0..20).map(|n| {
        let path = format!("/statements?from=2025-01-{:02}&to=2025-12-31", n + 1);
        let app = &app;
        let token = &user.token;
        async move { app.get(&path, Some(token)).await.status() }
    });
    let statuses = futures_util::future::join_all(asks).await;
    let count = |wanted: StatusCode| statuses.iter().filter(|status| **status == wanted).count();
    assert_eq!(
        (
            count(StatusCode::ACCEPTED),
            count(StatusCode::TOO_MANY_REQUESTS)
        ),
        (3, 17),
        "{statuses:?}"
    );
    hold.rollback().await.unwrap();
    let jobs: i64 = sqlx::query_scalar("select count(*) from statement_jobs where user_id = $1")
        .bind(user.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(jobs, 3);
    // Once they are done, the user may ask again.
    eventually(Duration::from_secs(20), "the jobs to finish", || async {
        let done: i64 = sqlx::query_scalar(
            "select count(*) from statement_jobs where user_id = $1 and status = 'done'",
        )
        .bind(user.id)
        .fetch_one(&pool)
        .await
        .unwrap();
        (done == 3).then_some(())
    })
    .await;
    assert_eq!(
        app.get(
            "/statements?from=2024-01-01&to=2024-12-31",
            Some(&user.token)
        )
        .await
        .status(),
        StatusCode::ACCEPTED
    );
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_event_dated_outside_1970_to_9999_is_dead_lettered_and_records_no_line() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let broker = Connection::connect(
        app.stack.config.wallet.service.amqp_url.expose_secret(),
        ConnectionProperties::default(),
    )
    .await
    .unwrap();
    for (message_id, at) in [
        ("before-1970", "1969-12-31T23:59:59.999999Z"),
        ("year-zero", "0000-01-01T00:00:00Z"),
        ("after-9999", "9999-12-31T23:59:59-00:01"),
    ] {
        let event = created_event(user.id, Uuid::now_v7(), 100, 100, at);
        publish_wallet_event(&broker, message_id, &serde_json::to_vec(&event).unwrap()).await;
    }
    let channel = broker.create_channel().await.unwrap();
    let mut dead = Vec::new();
    for _ in 0..3 {
        let letter = poison::next_dead_letter(&channel, "statement.transactions.dlq").await;
        assert_eq!(
            letter.reason,
            "created_at must be between 1970-01-01 and 9999-12-31 (UTC)"
        );
        dead.push(letter.message_id.unwrap());
    }
    dead.sort();
    assert_eq!(dead, ["after-9999", "before-1970", "year-zero"]);
    let pool = statement_database(&app).await;
    let lines: i64 = sqlx::query_scalar("select count(*) from statement_lines where user_id = $1")
        .bind(user.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(lines, 0);
    pool.close().await;
    broker.close(200, "done".into()).await.unwrap();
    app.stop().await;
}
