//! Orders paid from the wallet through events, refunds, expiry and vouchers, end to end.

use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, eventually, problem, unique_email};

/// How long an order takes at most to be paid through the broker in these tests.
const SETTLED: Duration = Duration::from_secs(10);

/// A platform whose `admin` may ship and deliver orders.
async fn spawn_with_admin() -> (TestApp, User) {
    spawn_with_admin_and(|_| {}).await
}

async fn spawn_with_admin_and(customize: impl FnOnce(&mut stack::StackConfig)) -> (TestApp, User) {
    let email = unique_email();
    let listed = email.clone();
    let app = TestApp::spawn_with(|config| {
        config.auth.admin_emails = vec![listed];
        customize(config);
    })
    .await;
    let admin = app.user_with_email(email).await;
    (app, admin)
}

/// An order of `quantity` units of a new product of the test's seller, priced `unit_price`
/// (with stock for many such orders).
async fn one_item(app: &TestApp, unit_price: i64, quantity: i64) -> Value {
    let product = app.product(unit_price, 10_000).await;
    json!({"items": [{"product_id": product["id"], "quantity": quantity}]})
}

/// `POST /orders` that must be accepted; returns the order.
async fn place(app: &TestApp, user: &User, body: &Value) -> Value {
    let response = app.post_json("/orders", body, Some(&user.token)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn order(app: &TestApp, user: &User, id: &str) -> Value {
    let response = app.get(&format!("/orders/{id}"), Some(&user.token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Waits until the order has `status`, and returns it.
async fn settled(app: &TestApp, user: &User, id: &str, status: &str) -> Value {
    eventually(SETTLED, &format!("the order to be {status}"), || async {
        let order = order(app, user, id).await;
        (order["status"] == status).then_some(order)
    })
    .await
}

async fn deposit(app: &TestApp, user: &User, amount: i64) {
    app.transacted(&user.token, &json!({"type": "deposit", "amount": amount}))
        .await;
}

async fn act(app: &TestApp, user: &User, id: &str, action: &str) -> reqwest::Response {
    app.post_json(
        &format!("/orders/{id}/{action}"),
        &json!({}),
        Some(&user.token),
    )
    .await
}

async fn vouchers(app: &TestApp, user: &User) -> Vec<Value> {
    let response = app.get("/vouchers", Some(&user.token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

fn statuses(order: &Value) -> Vec<&str> {
    order["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["status"].as_str().unwrap())
        .collect()
}

/// Places and ships an order of `total` for `user`, and returns it once sent.
async fn shipped_order(app: &TestApp, admin: &User, user: &User, total: i64) -> Value {
    deposit(app, user, total).await;
    let placed = place(app, user, &one_item(app, total, 1).await).await;
    let id = placed["id"].as_str().unwrap();
    settled(app, user, id, "paid").await;
    let response = act(app, admin, id, "ship").await;
    assert_eq!(response.status(), StatusCode::OK);
    let sent: Value = response.json().await.unwrap();
    assert_eq!(sent["status"], "sent");
    sent
}

async fn order_database(app: &TestApp) -> sqlx::PgPool {
    let url = app.stack.config.order.service.database_url.expose_secret();
    sqlx::PgPool::connect(url).await.unwrap()
}

#[tokio::test]
async fn an_order_with_funds_is_paid_once_and_shows_in_the_statement() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    deposit(&app, &user, 10_000).await;

    let book = app.product(2_500, 5).await;
    let pen = app.product(150, 1).await;
    let placed = place(
        &app,
        &user,
        &json!({"items": [
            {"product_id": book["id"], "quantity": 2},
            {"product_id": pen["id"], "quantity": 1}
        ], "currency": "EUR"}),
    )
    .await;
    assert_eq!(placed["status"], "pending_payment");
    assert_eq!(placed["subtotal"], 5_150);
    assert_eq!(placed["discount"], 0);
    assert_eq!(placed["total"], 5_150);
    assert_eq!(placed["items"].as_array().unwrap().len(), 2);
    let id = placed["id"].as_str().unwrap();

    let paid = settled(&app, &user, id, "paid").await;
    assert_eq!(statuses(&paid), ["pending_payment", "paid"]);
    assert_eq!(app.balance(&user.token).await, 10_000 - 5_150);
    let purchases: Value = app
        .get_json("/wallet/transactions?type=purchase", Some(&user.token))
        .await;
    let purchases = purchases["items"].as_array().unwrap();
    assert_eq!(purchases.len(), 1);
    assert_eq!(purchases[0]["amount"], 5_150);
    assert_eq!(purchases[0]["source"], "order");
    assert_eq!(purchases[0]["reference"], format!("order:{id}"));
    assert_eq!(purchases[0]["id"], paid["payment_transaction_id"]);

    let line = eventually(SETTLED, "the statement line", || async {
        let statement: Value = app.get_json("/statements", Some(&user.token)).await;
        statement["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|line| line["type"] == "purchase")
            .cloned()
    })
    .await;
    assert_eq!(line["amount"], 5_150);
    assert_eq!(line["balance_after"], 10_000 - 5_150);
    assert_eq!(line["transaction_id"], paid["payment_transaction_id"]);
    app.stop().await;
}

#[tokio::test]
async fn an_order_without_funds_fails_and_is_paid_after_a_deposit() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let placed = place(&app, &user, &one_item(&app, 1_200, 1).await).await;
    let id = placed["id"].as_str().unwrap();
    let failed = settled(&app, &user, id, "payment_failed").await;
    assert_eq!(failed["payment_transaction_id"], Value::Null);

    deposit(&app, &user, 2_000).await;
    let response = act(&app, &user, id, "pay").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let paying: Value = response.json().await.unwrap();
    assert_eq!(paying["status"], "pending_payment");

    let paid = settled(&app, &user, id, "paid").await;
    assert_eq!(
        statuses(&paid),
        [
            "pending_payment",
            "payment_failed",
            "pending_payment",
            "paid"
        ]
    );
    assert_eq!(app.balance(&user.token).await, 800);
    // Paying a paid order again is an illegal transition.
    problem(act(&app, &user, id, "pay").await, StatusCode::CONFLICT).await;
    app.stop().await;
}

#[tokio::test]
async fn cancelling_a_paid_order_refunds_it_exactly() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    deposit(&app, &user, 7_777).await;
    let placed = place(&app, &user, &one_item(&app, 3_333, 2).await).await;
    let id = placed["id"].as_str().unwrap();
    let paid = settled(&app, &user, id, "paid").await;
    assert_eq!(app.balance(&user.token).await, 7_777 - 6_666);

    let response = act(&app, &user, id, "cancel").await;
    assert_eq!(response.status(), StatusCode::OK);
    let cancelled: Value = response.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");

    let refunded = eventually(SETTLED, "the refund", || async {
        let order = order(&app, &user, id).await;
        order["refund_transaction_id"].is_string().then_some(order)
    })
    .await;
    assert_eq!(app.balance(&user.token).await, 7_777);
    let refund: Value = app
        .get(
            &format!(
                "/wallet/transactions/{}",
                refunded["refund_transaction_id"].as_str().unwrap()
            ),
            Some(&user.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refund["type"], "cancellation");
    assert_eq!(refund["amount"], 6_666);
    assert_eq!(
        refund["parent_transaction_id"],
        paid["payment_transaction_id"]
    );
    let audit = app.wallet_audit(user.id).await;
    assert_eq!(audit.balance, 7_777);
    assert_eq!(audit.ledger_sum, 7_777);
    // The order's purchase cannot also be cancelled by hand: the order owns its refund.
    let by_hand = app
        .transact(
            &user.token,
            &json!({"type": "cancellation", "parent_transaction_id": paid["payment_transaction_id"]}),
            None,
        )
        .await;
    let refused = problem(by_hand, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused["type"], "/problems/not-undoable-here");
    app.stop().await;
}

#[tokio::test]
async fn an_order_over_100_eur_earns_one_voucher_when_sent_and_100_eur_earns_none() {
    let (app, admin) = spawn_with_admin().await;
    let user = app.user().await;

    let exactly = shipped_order(&app, &admin, &user, 10_000).await;
    let above = shipped_order(&app, &admin, &user, 10_001).await;

    let issued = eventually(SETTLED, "the voucher", || async {
        let vouchers = vouchers(&app, &user).await;
        (!vouchers.is_empty()).then_some(vouchers)
    })
    .await;
    assert_eq!(issued.len(), 1);
    let voucher = &issued[0];
    assert_eq!(voucher["order_id"], above["id"]);
    assert_eq!(voucher["amount"], 500);
    assert_eq!(voucher["currency"], "EUR");
    assert_eq!(voucher["redeemed_at"], Value::Null);
    let code = voucher["code"].as_str().unwrap();
    assert!(code.len() >= 10, "{code}");

    // Both `order.sent` events were consumed (the order of 100.00 EUR was considered too).
    let pool = order_database(&app).await;
    let consumed = || async {
        let count: i64 =
            sqlx::query_scalar("select count(*) from inbox where queue = 'order.voucher-issuing'")
                .fetch_one(&pool)
                .await
                .unwrap();
        count
    };
    eventually(SETTLED, "both order.sent events consumed", || async {
        (consumed().await == 2).then_some(())
    })
    .await;
    let none: i64 = sqlx::query_scalar("select count(*) from vouchers where order_id = $1")
        .bind(
            exactly["id"]
                .as_str()
                .unwrap()
                .parse::<uuid::Uuid>()
                .unwrap(),
        )
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(none, 0);
    pool.close().await;

    // Delivery after sending issues nothing more.
    let delivered = act(&app, &admin, above["id"].as_str().unwrap(), "deliver").await;
    assert_eq!(delivered.status(), StatusCode::OK);
    assert_eq!(vouchers(&app, &user).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn an_order_sent_event_delivered_five_times_still_issues_one_voucher() {
    let (app, admin) = spawn_with_admin().await;
    let user = app.user().await;
    let sent = shipped_order(&app, &admin, &user, 25_000).await;
    let order_id = sent["id"].as_str().unwrap();
    eventually(SETTLED, "the voucher", || async {
        (vouchers(&app, &user).await.len() == 1).then_some(())
    })
    .await;

    // The same event again, five times, under fresh message ids (as a republishing
    // producer would send it).
    let url = app.stack.config.order.service.amqp_url.expose_secret();
    let broker = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = broker.create_channel().await.unwrap();
    channel.confirm_select(Default::default()).await.unwrap();
    for _ in 0..5 {
        let id = uuid::Uuid::new_v4().to_string();
        let event = json!({"specversion": "1.0", "id": id, "source": "/order-service",
            "type": "order.sent", "time": "2026-11-21T18:00:00Z",
            "datacontenttype": "application/json", "data": sent_data(&sent, &user)});
        channel
            .basic_publish(
                "order.events".into(),
                "order.sent".into(),
                BasicPublishOptions::default(),
                &serde_json::to_vec(&event).unwrap(),
                BasicProperties::default()
                    .with_message_id(id.into())
                    // As order-service publishes it: its consumers trust only the platform.
                    .with_user_id(platform::testing::platform_user().into())
                    .with_content_type("application/json".into()),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let pool = order_database(&app).await;
    eventually(SETTLED, "all six order.sent events consumed", || async {
        let consumed: i64 =
            sqlx::query_scalar("select count(*) from inbox where queue = 'order.voucher-issuing'")
                .fetch_one(&pool)
                .await
                .unwrap();
        (consumed == 6).then_some(())
    })
    .await;
    let (vouchers_of_order, issued_events): (i64, i64) = sqlx::query_as(
        "select (select count(*) from vouchers where order_id = $1),
                (select count(*) from outbox where routing_key = 'voucher.issued')",
    )
    .bind(order_id.parse::<uuid::Uuid>().unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((vouchers_of_order, issued_events), (1, 1));
    assert_eq!(vouchers(&app, &user).await.len(), 1);
    pool.close().await;
    let _ = broker.close(200, "done".into()).await;
    app.stop().await;
}

/// The data of the `order.sent` event of `order` (an order of `user`, as the API shows it).
fn sent_data(order: &Value, user: &User) -> Value {
    json!({"order_id": order["id"], "user_id": user.id, "status": "sent",
        "subtotal": order["subtotal"], "discount": order["discount"], "total": order["total"],
        "currency": order["currency"], "voucher_code": order["voucher_code"],
        "payment_transaction_id": order["payment_transaction_id"],
        "refund_transaction_id": order["refund_transaction_id"]})
}

/// A user with one unredeemed 5.00 EUR voucher; returns its code.
async fn voucher_for(app: &TestApp, admin: &User, user: &User) -> String {
    shipped_order(app, admin, user, 10_500).await;
    let issued = eventually(SETTLED, "the voucher", || async {
        let vouchers = vouchers(app, user).await;
        vouchers.first().cloned()
    })
    .await;
    issued["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_voucher_takes_500_off_once_and_comes_back_when_its_order_is_cancelled() {
    let (app, admin) = spawn_with_admin().await;
    let user = app.user().await;
    let code = voucher_for(&app, &admin, &user).await;
    deposit(&app, &user, 5_000).await;

    let mut body = one_item(&app, 2_000, 1).await;
    body["voucher_code"] = json!(code.to_lowercase());
    let discounted = place(&app, &user, &body).await;
    assert_eq!(discounted["subtotal"], 2_000);
    assert_eq!(discounted["discount"], 500);
    assert_eq!(discounted["total"], 1_500);
    assert_eq!(discounted["voucher_code"], code);
    let id = discounted["id"].as_str().unwrap();
    settled(&app, &user, id, "paid").await;
    assert_eq!(app.balance(&user.token).await, 5_000 - 1_500);
    let redeemed = vouchers(&app, &user).await;
    assert_eq!(redeemed[0]["redeemed_order_id"], discounted["id"]);
    assert!(redeemed[0]["redeemed_at"].is_string());

    // Redeemed once: a second order with the code is refused.
    let again = app.post_json("/orders", &body, Some(&user.token)).await;
    let refused = problem(again, StatusCode::CONFLICT).await;
    assert_eq!(refused["type"], "/problems/voucher-already-redeemed");

    // Cancelling the order gives the voucher back, and it works again.
    assert_eq!(
        act(&app, &user, id, "cancel").await.status(),
        StatusCode::OK
    );
    let returned = vouchers(&app, &user).await;
    assert_eq!(returned[0]["redeemed_order_id"], Value::Null);
    assert_eq!(returned[0]["redeemed_at"], Value::Null);
    let reused = place(&app, &user, &body).await;
    assert_eq!(reused["discount"], 500);
    app.stop().await;
}

#[tokio::test]
async fn a_voucher_on_an_order_cheaper_than_it_pays_the_whole_order() {
    let (app, admin) = spawn_with_admin().await;
    let user = app.user().await;
    let code = voucher_for(&app, &admin, &user).await;
    let balance = app.balance(&user.token).await;
    let mut body = one_item(&app, 300, 1).await;
    body["voucher_code"] = json!(code);
    let free = place(&app, &user, &body).await;
    assert_eq!(
        (free["discount"].as_i64(), free["total"].as_i64()),
        (Some(300), Some(0))
    );
    assert_eq!(free["status"], "paid");
    assert_eq!(free["payment_transaction_id"], Value::Null);
    assert_eq!(app.balance(&user.token).await, balance);
    app.stop().await;
}

#[tokio::test]
async fn of_two_orders_racing_for_one_voucher_exactly_one_wins() {
    let (app, admin) = spawn_with_admin().await;
    let user = app.user().await;
    let code = voucher_for(&app, &admin, &user).await;
    let mut body = one_item(&app, 2_000, 1).await;
    body["voucher_code"] = json!(code);

    let attempts = (0..8).map(|_| app.post_json("/orders", &body, Some(&user.token)));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();
    let won = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let lost = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((won, lost), (1, 7), "{statuses:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_voucher_comes_back_when_its_order_expires() {
    let (app, admin) = spawn_with_admin_and(|config| {
        config.order.payment_timeout = Duration::from_secs(2);
    })
    .await;
    let user = app.user().await;
    let code = voucher_for(&app, &admin, &user).await;
    let (broker, mut events) = watch_order_events(&app).await;
    // The wallet is empty now: the order cannot be paid and expires.
    let mut body = one_item(&app, 50_000, 1).await;
    body["voucher_code"] = json!(code);
    let placed = place(&app, &user, &body).await;
    let id = placed["id"].as_str().unwrap();
    let expired = settled(&app, &user, id, "expired").await;
    assert_eq!(
        statuses(&expired),
        ["pending_payment", "payment_failed", "expired"]
    );
    // Its events, the last one published when the expiry committed.
    for kind in [
        "order.created",
        "order.payment_requested",
        "order.payment_failed",
        "order.expired",
    ] {
        assert_eq!(
            next_event(&mut events).await,
            (kind.to_owned(), id.to_owned())
        );
    }
    let _ = broker.close(200, "done".into()).await;
    let returned = vouchers(&app, &user).await;
    assert_eq!(returned[0]["redeemed_order_id"], Value::Null);
    problem(act(&app, &user, id, "pay").await, StatusCode::CONFLICT).await;
    problem(act(&app, &user, id, "cancel").await, StatusCode::CONFLICT).await;
    app.stop().await;
}

#[tokio::test]
async fn customers_cannot_ship_or_deliver_and_see_only_their_own_orders() {
    let (app, admin) = spawn_with_admin().await;
    let user = app.user().await;
    let other = app.user().await;
    deposit(&app, &user, 1_000).await;
    let placed = place(&app, &user, &one_item(&app, 1_000, 1).await).await;
    let id = placed["id"].as_str().unwrap();
    settled(&app, &user, id, "paid").await;

    for action in ["ship", "deliver"] {
        let refused = problem(act(&app, &user, id, action).await, StatusCode::FORBIDDEN).await;
        assert_eq!(refused["type"], "/problems/forbidden");
    }
    let hidden = problem(
        app.get(&format!("/orders/{id}"), Some(&other.token)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(hidden["type"], "/problems/order-not-found");
    for action in ["pay", "cancel"] {
        problem(act(&app, &other, id, action).await, StatusCode::NOT_FOUND).await;
    }
    problem(
        app.get("/orders/not-a-uuid", Some(&user.token)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let listed: Value = app.get_json("/orders", Some(&other.token)).await;
    assert_eq!(listed["items"], json!([]));
    assert_eq!(act(&app, &admin, id, "ship").await.status(), StatusCode::OK);
    let listed: Value = app.get_json("/orders?status=sent", Some(&user.token)).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["id"], placed["id"]);
    app.stop().await;
}

#[tokio::test]
async fn illegal_transitions_are_409() {
    let (app, admin) = spawn_with_admin().await;
    let user = app.user().await;
    let sent = shipped_order(&app, &admin, &user, 1_000).await;
    let id = sent["id"].as_str().unwrap();

    for (who, action) in [(&user, "cancel"), (&user, "pay"), (&admin, "ship")] {
        let conflict = problem(act(&app, who, id, action).await, StatusCode::CONFLICT).await;
        assert_eq!(conflict["type"], "/problems/illegal-transition");
        assert!(conflict["detail"].as_str().unwrap().contains("sent"));
    }
    assert_eq!(
        act(&app, &admin, id, "deliver").await.status(),
        StatusCode::OK
    );
    problem(act(&app, &admin, id, "deliver").await, StatusCode::CONFLICT).await;

    // Unpaid orders cannot be shipped.
    let unpaid = place(&app, &user, &one_item(&app, 99_999, 1).await).await;
    let unpaid_id = unpaid["id"].as_str().unwrap();
    settled(&app, &user, unpaid_id, "payment_failed").await;
    problem(
        act(&app, &admin, unpaid_id, "ship").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        act(&app, &user, unpaid_id, "cancel").await.status(),
        StatusCode::OK
    );
    problem(
        act(&app, &user, unpaid_id, "cancel").await,
        StatusCode::CONFLICT,
    )
    .await;
    let unknown = uuid::Uuid::new_v4();
    problem(
        act(&app, &admin, &unknown.to_string(), "ship").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn invalid_orders_get_a_problem_naming_each_field() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let book = app.product(100, 10_000).await;
    let dear = app.product(1_000_000_000, 10).await;
    let line = |product: &Value, quantity: i64| json!({"items": [{"product_id": product["id"], "quantity": quantity}]});
    let cases = [
        (json!({"items": []}), "items"),
        (line(&book, 0), "items.quantity"),
        (line(&book, 1001), "items.quantity"),
        (line(&dear, 2), "items"),
        (
            json!({"items": [{"product_id": "not-a-uuid", "quantity": 1}]}),
            "items.product_id",
        ),
        (
            json!({"items": [{"product_id": book["id"], "quantity": 1}, {"product_id": book["id"], "quantity": 2}]}),
            "items.product_id",
        ),
        (
            json!({"items": [{"product_id": book["id"], "quantity": 1}], "currency": "USD"}),
            "currency",
        ),
    ];
    for (body, field) in cases {
        let response = app.post_json("/orders", &body, Some(&user.token)).await;
        let refused = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(refused["errors"][field].is_array(), "{body}: {refused}");
    }
    let mut unknown_voucher = line(&book, 1);
    unknown_voucher["voucher_code"] = json!("NOSUCHVOUCHER123");
    let refused = problem(
        app.post_json("/orders", &unknown_voucher, Some(&user.token))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["type"], "/problems/voucher-not-found");
    // The catalogue sets prices: a client's price or name is refused, not ignored.
    for field in ["unit_price", "name"] {
        let mut body = line(&book, 1);
        body["items"][0][field] = json!(1);
        let refused = problem(
            app.post_json("/orders", &body, Some(&user.token)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(refused["type"], "/problems/validation-failed");
        assert!(
            refused["detail"].as_str().unwrap().contains(field),
            "{refused}"
        );
    }
    let unknown = json!({"items": [{"product_id": uuid::Uuid::new_v4(), "quantity": 1}]});
    let refused = problem(
        app.post_json("/orders", &unknown, Some(&user.token)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["type"], "/problems/product-not-found");
    let seller = app.seller().await;
    let refused = problem(
        app.post_json("/orders", &line(&book, 1), Some(&seller.token))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["type"], "/problems/own-product");
    let listed: Value = app.get_json("/orders", Some(&user.token)).await;
    assert_eq!(listed["items"], json!([]));
    let untouched: Value = app
        .get_json(&format!("/products/{}", book["id"].as_str().unwrap()), None)
        .await;
    assert_eq!(untouched["reserved"], 0);
    app.stop().await;
}

/// A queue of this test's own that receives every event of `order.events`.
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

/// The next event's type and order id, within `SETTLED`.
async fn next_event(events: &mut lapin::Consumer) -> (String, String) {
    let (_, event) = platform::testing::next_json(events, SETTLED)
        .await
        .unwrap()
        .expect("an order event in time");
    let order_id = event["data"]["order_id"].as_str().unwrap().to_owned();
    (event["type"].as_str().unwrap().to_owned(), order_id)
}

/// Every change publishes its event when it commits, not at the outbox's next poll (which
/// the tests set beyond their deadlines). Each step waits for its events before the next
/// step, so that no later change's commit carries them out.
#[tokio::test]
async fn each_order_event_is_published_as_its_change_commits() {
    let (app, admin) = spawn_with_admin().await;
    let user = app.user().await;
    let (broker, mut events) = watch_order_events(&app).await;
    deposit(&app, &user, 10_001).await;
    let placed = place(&app, &user, &one_item(&app, 10_001, 1).await).await;
    let id = placed["id"].as_str().unwrap().to_owned();
    for kind in ["order.created", "order.payment_requested", "order.paid"] {
        assert_eq!(next_event(&mut events).await, (kind.to_owned(), id.clone()));
    }
    let response = act(&app, &admin, &id, "ship").await;
    assert_eq!(response.status(), StatusCode::OK);
    for kind in ["order.sent", "voucher.issued"] {
        assert_eq!(next_event(&mut events).await, (kind.to_owned(), id.clone()));
    }
    let _ = broker.close(200, "done".into()).await;
    app.stop().await;
}
