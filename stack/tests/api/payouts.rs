//! Sellers paid on delivery: each seller's share of a delivered order credited once, through
//! `order.delivered` and the wallet.

use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, eventually, problem, unique_email};

const SETTLED: Duration = Duration::from_secs(10);

async fn spawn_with_admin() -> (TestApp, User) {
    let email = unique_email();
    let listed = email.clone();
    let app = TestApp::spawn_with(|config| config.auth.admin_emails = vec![listed]).await;
    let admin = app.user_with_email(email).await;
    (app, admin)
}

async fn deposit(app: &TestApp, user: &User, amount: i64) {
    app.transacted(&user.token, &json!({"type": "deposit", "amount": amount}))
        .await;
}

/// `POST /orders` of `lines` (product, quantity) that must be accepted, waited for until
/// `paid`.
async fn paid_order(app: &TestApp, buyer: &User, body: Value) -> Value {
    let response = app.post_json("/orders", &body, Some(&buyer.token)).await;
    assert_eq!(response.status(), StatusCode::CREATED, "{body}");
    let placed: Value = response.json().await.unwrap();
    let id = placed["id"].as_str().unwrap().to_owned();
    eventually(SETTLED, "the order to be paid", || async {
        let order: Value = app
            .get_json(&format!("/orders/{id}"), Some(&buyer.token))
            .await;
        (order["status"] == "paid").then_some(order)
    })
    .await
}

async fn act(app: &TestApp, user: &User, id: &str, action: &str) -> reqwest::Response {
    app.post_json(
        &format!("/orders/{id}/{action}"),
        &json!({}),
        Some(&user.token),
    )
    .await
}

/// The buyer's 5.00 EUR voucher, earned by an order of another seller's product.
async fn voucher(app: &TestApp, admin: &User, buyer: &User) -> String {
    let earner = app.product(10_500, 1).await;
    deposit(app, buyer, 10_500).await;
    let order = paid_order(
        app,
        buyer,
        json!({"items": [{"product_id": earner["id"], "quantity": 1}]}),
    )
    .await;
    let shipped = act(app, admin, order["id"].as_str().unwrap(), "ship").await;
    assert_eq!(shipped.status(), StatusCode::OK);
    eventually(SETTLED, "the voucher", || async {
        let vouchers: Value = app.get_json("/vouchers", Some(&buyer.token)).await;
        vouchers["items"][0]["code"].as_str().map(str::to_owned)
    })
    .await
}

/// The wallet's order-sourced deposits with this reference.
async fn payouts_in_ledger(app: &TestApp, reference: &str) -> i64 {
    let url = app.stack.config.wallet.service.database_url.expose_secret();
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let count: i64 = sqlx::query_scalar(
        "select count(*) from transactions
         where type = 'deposit' and source = 'order' and reference = $1",
    )
    .bind(reference)
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    count
}

#[tokio::test]
async fn a_delivered_order_of_two_sellers_with_a_voucher_pays_each_their_share_once() {
    let (app, admin) = spawn_with_admin().await;
    let buyer = app.user().await;
    let code = voucher(&app, &admin, &buyer).await;
    let (first, second) = (app.user().await, app.user().await);
    let ticket = app.product_of(&first, 1_000, 5).await;
    let poster = app.product_of(&second, 250, 5).await;

    // 1,500 less the 500 voucher: the buyer pays 1,000, shared 2:1.
    deposit(&app, &buyer, 1_000).await;
    let order = paid_order(
        &app,
        &buyer,
        json!({"items": [{"product_id": ticket["id"], "quantity": 1},
                         {"product_id": poster["id"], "quantity": 2}], "voucher_code": code}),
    )
    .await;
    assert_eq!(
        (order["subtotal"].as_i64(), order["total"].as_i64()),
        (Some(1_500), Some(1_000))
    );
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(
        act(&app, &admin, &id, "ship").await.status(),
        StatusCode::OK
    );
    // Sent is not delivered: nobody is paid yet.
    let sales: Value = app.get_json("/sales", Some(&first.token)).await;
    assert_eq!(sales["items"][0]["status"], "sent");
    assert_eq!(sales["items"][0]["payout"], Value::Null);
    let (broker, mut events) = watch_order_events(&app).await;
    assert_eq!(
        act(&app, &admin, &id, "deliver").await.status(),
        StatusCode::OK
    );

    for (seller, share) in [(&first, 667), (&second, 333)] {
        eventually(SETTLED, "the seller's payout", || async {
            (app.balance(&seller.token).await == share).then_some(())
        })
        .await;
    }
    let delivered = next_delivered(&mut events).await;
    let payouts = &delivered["data"]["payouts"];
    let total: i64 = payouts
        .as_array()
        .unwrap()
        .iter()
        .map(|payout| payout["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 1_000);
    let credit: Value = app
        .get_json("/wallet/transactions?type=deposit", Some(&first.token))
        .await;
    assert_eq!(credit["items"].as_array().unwrap().len(), 1);
    assert_eq!(credit["items"][0]["amount"], 667);
    assert_eq!(credit["items"][0]["source"], "order");
    let reference = format!("order:{id}:payout:{}", first.id);
    assert_eq!(credit["items"][0]["reference"], reference);

    let sales: Value = app.get_json("/sales", Some(&first.token)).await;
    let sale = &sales["items"][0];
    assert_eq!(sales["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        (sale["order_id"].as_str(), sale["status"].as_str()),
        (Some(id.as_str()), Some("delivered"))
    );
    assert_eq!(
        (sale["subtotal"].as_i64(), sale["payout"].as_i64()),
        (Some(1_000), Some(667))
    );
    assert_eq!(sale["items"].as_array().unwrap().len(), 1);
    assert_eq!(sale["items"][0]["product_id"], ticket["id"]);
    let theirs: Value = app.get_json("/sales", Some(&second.token)).await;
    assert_eq!(theirs["items"][0]["payout"], 333);
    assert_eq!(theirs["items"][0]["items"][0]["quantity"], 2);
    let none: Value = app.get_json("/sales", Some(&buyer.token)).await;
    assert_eq!(none["items"], json!([]));

    // The same event five times more, under fresh message ids; then one for another order,
    // so that once its payout shows, the five before it were handled.
    let channel = broker.create_channel().await.unwrap();
    channel.confirm_select(Default::default()).await.unwrap();
    for _ in 0..5 {
        publish(&channel, &delivered["data"]).await;
    }
    let marker_order = uuid::Uuid::new_v4();
    let mut marker = delivered["data"].clone();
    marker["order_id"] = json!(marker_order);
    marker["payouts"] = json!([{"seller_id": second.id, "amount": 1}]);
    publish(&channel, &marker).await;
    let marker_reference = format!("order:{marker_order}:payout:{}", second.id);
    eventually(SETTLED, "the marker's payout", || async {
        (payouts_in_ledger(&app, &marker_reference).await == 1).then_some(())
    })
    .await;
    assert_eq!(payouts_in_ledger(&app, &reference).await, 1);
    let second_reference = format!("order:{id}:payout:{}", second.id);
    assert_eq!(payouts_in_ledger(&app, &second_reference).await, 1);
    assert_eq!(app.balance(&first.token).await, 667);
    assert_eq!(app.balance(&second.token).await, 333 + 1);
    let _ = broker.close(200, "done".into()).await;
    app.stop().await;
}

#[tokio::test]
async fn a_cancelled_order_pays_no_seller() {
    let (app, admin) = spawn_with_admin().await;
    let buyer = app.user().await;
    let seller = app.user().await;
    let ticket = app.product_of(&seller, 800, 1).await;
    deposit(&app, &buyer, 800).await;
    let order = paid_order(
        &app,
        &buyer,
        json!({"items": [{"product_id": ticket["id"], "quantity": 1}]}),
    )
    .await;
    let id = order["id"].as_str().unwrap();
    let sales: Value = app.get_json("/sales", Some(&seller.token)).await;
    assert_eq!(sales["items"][0]["status"], "paid");

    assert_eq!(
        act(&app, &buyer, id, "cancel").await.status(),
        StatusCode::OK
    );
    for action in ["ship", "deliver"] {
        let refused = problem(act(&app, &admin, id, action).await, StatusCode::CONFLICT).await;
        assert_eq!(refused["type"], "/problems/illegal-transition");
    }
    eventually(SETTLED, "the refund", || async {
        (app.balance(&buyer.token).await == 800).then_some(())
    })
    .await;
    // A refunded order is no sale, and nobody was credited.
    let sales: Value = app.get_json("/sales", Some(&seller.token)).await;
    assert_eq!(sales["items"], json!([]));
    assert_eq!(app.balance(&seller.token).await, 0);
    let reference = format!("order:{id}:payout:{}", seller.id);
    assert_eq!(payouts_in_ledger(&app, &reference).await, 0);
    problem(
        app.get("/sales?limit=0", Some(&seller.token)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(app.get("/sales", None).await, StatusCode::UNAUTHORIZED).await;
    app.stop().await;
}

async fn watch_order_events(app: &TestApp) -> (Connection, lapin::Consumer) {
    let url = app.stack.config.order.service.amqp_url.expose_secret();
    let broker = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = broker.create_channel().await.unwrap();
    let consumer = platform::testing::watch_exchange(&channel, "order.events")
        .await
        .unwrap();
    (broker, consumer)
}

/// The next `order.delivered` event.
async fn next_delivered(events: &mut lapin::Consumer) -> Value {
    loop {
        let (_, event) = platform::testing::next_json(events, SETTLED)
            .await
            .unwrap()
            .expect("order.delivered in time");
        if event["type"] == "order.delivered" {
            return event;
        }
    }
}

/// Publishes `order.delivered` with `data` under a fresh message id, as a republishing
/// producer would.
async fn publish(channel: &lapin::Channel, data: &Value) {
    let id = uuid::Uuid::new_v4().to_string();
    let event = json!({"specversion": "1.0", "id": id, "source": "/order-service",
        "type": "order.delivered", "time": "2026-11-21T18:00:00Z",
        "datacontenttype": "application/json", "data": data});
    channel
        .basic_publish(
            "order.events".into(),
            "order.delivered".into(),
            BasicPublishOptions::default(),
            &serde_json::to_vec(&event).unwrap(),
            // As the platform's own producer: the wallet's queue takes only its messages.
            BasicProperties::default()
                .with_message_id(id.into())
                .with_content_type("application/json".into())
                .with_user_id(platform::testing::platform_user().into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}
