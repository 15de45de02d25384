//! Several instances of every program side by side, as replicas run in a deployment: they
//! start together on empty databases, share the load, and restart one at a time under load
//! without losing or duplicating anything.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use stack::testing::{TestNodes, spawn_nodes};

use crate::helpers::{PASSWORD, eventually, unique_email};

/// A signed-up user: id and access token.
struct User {
    id: uuid::Uuid,
    token: String,
}

async fn sign_up(client: &reqwest::Client, gateway: &str) -> User {
    let response = client
        .post(format!("{gateway}/auth/sign-up"))
        .json(&json!({"email": unique_email(), "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    User {
        id: body["user"]["id"].as_str().unwrap().parse().unwrap(),
        token: body["access_token"].as_str().unwrap().to_owned(),
    }
}

/// `POST /wallet/transactions` with an idempotency key; the status, or `None` when the
/// gateway could not be reached.
async fn transact(
    client: &reqwest::Client,
    gateway: &str,
    user: &User,
    key: &str,
    body: &Value,
) -> Option<StatusCode> {
    let response = client
        .post(format!("{gateway}/wallet/transactions"))
        .bearer_auth(&user.token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .ok()?;
    Some(response.status())
}

async fn get_json(client: &reqwest::Client, gateway: &str, path: &str, user: &User) -> Value {
    let response = client
        .get(format!("{gateway}{path}"))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

/// The wallet's balance, ledger sum and row count of `user`, from its database.
async fn audit(nodes: &TestNodes, user: &User) -> wallet_service::ledger::Audit {
    let url = nodes.config.wallet.service.database_url.expose_secret();
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let audit = wallet_service::ledger::audit(&pool, user.id).await.unwrap();
    pool.close().await;
    audit
}

/// Waits until `user`'s statement of today has `count` lines, read through `gateway`.
async fn statement_lines(client: &reqwest::Client, gateway: &str, user: &User, count: usize) {
    eventually(Duration::from_secs(30), "every statement line", || async {
        let body = get_json(client, gateway, "/statements", user).await;
        (body["lines"].as_array().unwrap().len() == count).then_some(())
    })
    .await;
}

/// How many migrations were applied to the database at `url`, and how many distinct ones.
async fn applied_migrations(url: &SecretString) -> (i64, i64) {
    let pool = sqlx::PgPool::connect(url.expose_secret()).await.unwrap();
    let counts = sqlx::query_as(
        "select count(*), count(distinct version) from _sqlx_migrations where success",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    counts
}

#[tokio::test]
async fn three_instances_of_every_program_start_together_and_give_exactly_one_instances_results() {
    let nodes = spawn_nodes(3, |_| {}).await.unwrap();
    let config = &nodes.config;
    for (url, migrator) in [
        (&config.auth.service.database_url, &auth_service::MIGRATOR),
        (
            &config.wallet.service.database_url,
            &wallet_service::MIGRATOR,
        ),
        (
            &config.statement.service.database_url,
            &statement_service::MIGRATOR,
        ),
        (&config.order.service.database_url, &order_service::MIGRATOR),
    ] {
        let expected = i64::try_from(migrator.iter().count()).unwrap();
        assert_eq!(applied_migrations(url).await, (expected, expected));
    }

    // A mixed load through two of the gateways: each user's deposits alternate between them,
    // with a withdrawal every third one.
    let gateways = nodes.gateways();
    let client = reqwest::Client::new();
    let mut users = Vec::new();
    for _ in 0..6 {
        users.push(sign_up(&client, &gateways[0]).await);
    }
    let requests = users.iter().enumerate().map(|(u, user)| {
        let (client, gateways) = (&client, &gateways);
        async move {
            let mut expected = 0;
            for round in 0..12_i64 {
                let gateway = &gateways[usize::try_from(round).unwrap() % 2];
                let amount = 100 * (round + 1);
                let key = format!("deposit-{u}-{round}");
                let body = json!({"type": "deposit", "amount": amount});
                let status = transact(client, gateway, user, &key, &body).await;
                assert_eq!(status, Some(StatusCode::CREATED));
                expected += amount;
                if round % 3 == 2 {
                    let key = format!("withdraw-{u}-{round}");
                    let body = json!({"type": "withdraw", "amount": 150});
                    let status = transact(client, gateway, user, &key, &body).await;
                    assert_eq!(status, Some(StatusCode::CREATED));
                    expected -= 150;
                }
            }
            expected
        }
    });
    let expected = futures_util::future::join_all(requests).await;

    // Then each user orders one unit of a seller's product, half through each gateway:
    // reserved, paid through the broker by whichever wallet instance takes the request.
    let seller = sign_up(&client, &gateways[0]).await;
    let product: Value = client
        .post(format!("{}/products", gateways[0]))
        .bearer_auth(&seller.token)
        .json(&json!({"name": "A ticket", "price": 250, "stock": 10}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut orders = Vec::new();
    for (u, user) in users.iter().enumerate() {
        let response = client
            .post(format!("{}/orders", gateways[u % 2]))
            .bearer_auth(&user.token)
            .json(&json!({"items": [{"product_id": product["id"], "quantity": 1}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let order: Value = response.json().await.unwrap();
        orders.push(order["id"].as_str().unwrap().to_owned());
    }
    for (user, order) in users.iter().zip(&orders) {
        eventually(Duration::from_secs(30), "the order to be paid", || async {
            let body = get_json(&client, &gateways[1], &format!("/orders/{order}"), user).await;
            (body["status"] == "paid").then_some(())
        })
        .await;
    }
    let stock = get_json(
        &client,
        &gateways[2],
        &format!("/products/{}", product["id"].as_str().unwrap()),
        &seller,
    )
    .await;
    assert_eq!(
        (
            stock["stock"].clone(),
            stock["reserved"].clone(),
            stock["sold"].clone()
        ),
        (json!(4), json!(0), json!(6))
    );

    for (user, expected) in users.iter().zip(expected) {
        let expected = expected - 250;
        for gateway in &gateways {
            let body = get_json(&client, gateway, "/wallet/balance", user).await;
            assert_eq!(body["balance"], expected);
        }
        let audit = audit(&nodes, user).await;
        assert_eq!(
            (audit.balance, audit.ledger_sum, audit.transactions),
            (expected, expected, 17)
        );
        statement_lines(&client, &gateways[2], user, 17).await;
    }
    nodes.stop().await.unwrap();
}

#[tokio::test]
async fn restarting_instances_one_at_a_time_under_load_loses_and_duplicates_nothing() {
    let mut nodes = spawn_nodes(3, |config| {
        // Production's relay poll: rows committed by an instance stopped before it published
        // them are picked up by the others.
        for settings in [
            &mut config.wallet.service,
            &mut config.statement.service,
            &mut config.order.service,
        ] {
            settings.outbox_poll = Duration::from_secs(1);
        }
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let live = Arc::new(Mutex::new(nodes.gateways()));
    let mut users = Vec::new();
    for _ in 0..4 {
        users.push(Arc::new(sign_up(&client, &nodes.gateways()[0]).await));
    }

    // Clients deposit without pause. A request that fails (its gateway stopping) is retried
    // on another gateway with the same idempotency key, as a client behind a load balancer
    // would, until it is accepted.
    let stop_load = platform::shutdown::CancellationToken::new();
    let progress = Arc::new(AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for (u, user) in users.iter().enumerate() {
        let (client, live, user, stop_load, progress) = (
            client.clone(),
            live.clone(),
            user.clone(),
            stop_load.clone(),
            progress.clone(),
        );
        clients.spawn(async move {
            let mut accepted = 0_i64;
            let mut round = 0_usize;
            while !stop_load.is_cancelled() {
                let key = format!("deposit-{u}-{round}");
                let body = json!({"type": "deposit", "amount": 100});
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut attempt = 0;
                loop {
                    let gateway = {
                        let live = live.lock().unwrap();
                        live[(round + attempt) % live.len()].clone()
                    };
                    match transact(&client, &gateway, &user, &key, &body).await {
                        Some(StatusCode::CREATED | StatusCode::OK) => break,
                        other => {
                            assert!(Instant::now() < deadline, "{key} never accepted: {other:?}");
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                accepted += 100;
                round += 1;
                progress.fetch_add(1, Ordering::Relaxed);
            }
            (u, accepted, round)
        });
    }

    // Each node in turn: taken out of the client's list, stopped (draining what it is doing),
    // and started again on new ports.
    // Between steps, the clients get 40 more deposits accepted.
    let load_goes_on = || async {
        let before = progress.load(Ordering::Relaxed);
        eventually(Duration::from_secs(30), "40 more deposits", || async {
            (progress.load(Ordering::Relaxed) >= before + 40).then_some(())
        })
        .await;
    };
    for index in 0..3 {
        load_goes_on().await;
        let stopping = format!(
            "http://{}",
            nodes.nodes[index].as_ref().unwrap().gateway_addr
        );
        live.lock().unwrap().retain(|gateway| *gateway != stopping);
        nodes.stop_node(index).await.unwrap();
        nodes.start_node(index).await.unwrap();
        *live.lock().unwrap() = nodes.gateways();
    }
    load_goes_on().await;
    stop_load.cancel();

    let gateway = nodes.gateways()[0].clone();
    while let Some(joined) = clients.join_next().await {
        let (u, accepted, rounds) = joined.unwrap();
        let user = &users[u];
        assert!(rounds > 0, "user {u} made no deposit");
        let body = get_json(&client, &gateway, "/wallet/balance", user).await;
        assert_eq!(body["balance"], accepted, "user {u}");
        let audit = audit(&nodes, user).await;
        let rows = i64::try_from(rounds).unwrap();
        assert_eq!(
            (audit.balance, audit.ledger_sum, audit.transactions),
            (accepted, accepted, rows),
            "user {u}"
        );
        statement_lines(&client, &gateway, user, rounds).await;
    }
    nodes.stop().await.unwrap();
}
