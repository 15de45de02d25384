//! The catalogue end to end: products with versions, and orders of them reserving, selling
//! and giving back stock.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, eventually, problem};

const SETTLED: Duration = Duration::from_secs(10);

async fn product(app: &TestApp, id: &str) -> Value {
    let response = app.get(&format!("/products/{id}"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// `PATCH /products/{id}` with an optional `If-Match`.
async fn patch(
    app: &TestApp,
    seller: &User,
    id: &str,
    if_match: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = app
        .client
        .patch(app.url(&format!("/products/{id}")))
        .bearer_auth(&seller.token)
        .json(body);
    if let Some(etag) = if_match {
        request = request.header("if-match", etag);
    }
    request.send().await.unwrap()
}

async fn order_of(
    app: &TestApp,
    buyer: &User,
    product_id: &Value,
    quantity: i64,
) -> reqwest::Response {
    app.post_json(
        "/orders",
        &json!({"items": [{"product_id": product_id, "quantity": quantity}]}),
        Some(&buyer.token),
    )
    .await
}

async fn order_status(app: &TestApp, buyer: &User, id: &str) -> Value {
    app.get_json(&format!("/orders/{id}"), Some(&buyer.token))
        .await
}

async fn settled(app: &TestApp, buyer: &User, id: &str, status: &str) -> Value {
    eventually(SETTLED, &format!("the order to be {status}"), || async {
        let order = order_status(app, buyer, id).await;
        (order["status"] == status).then_some(order)
    })
    .await
}

async fn cancel(app: &TestApp, buyer: &User, order: &str) -> reqwest::Response {
    app.post_json(
        &format!("/orders/{order}/cancel"),
        &json!({}),
        Some(&buyer.token),
    )
    .await
}

fn counts(product: &Value) -> (i64, i64, i64, i64) {
    (
        product["stock"].as_i64().unwrap(),
        product["reserved"].as_i64().unwrap(),
        product["available"].as_i64().unwrap(),
        product["sold"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn a_seller_lists_edits_and_withdraws_a_product_that_anyone_can_browse() {
    let app = TestApp::spawn().await;
    let seller = app.user().await;
    let response = app
        .create_product(
            &seller,
            &json!({"name": "Concert ticket, row 3", "description": "Seat 12", "price": 4_500,
                "currency": "EUR", "stock": 2, "sku": "TICKET-R3"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["seller_id"], seller.id.to_string());
    assert_eq!(
        (created["sku"].as_str(), created["price"].as_i64()),
        (Some("TICKET-R3"), Some(4_500))
    );
    assert_eq!(counts(&created), (2, 0, 2, 0));
    assert_eq!(
        (created["status"].as_str(), created["version"].as_i64()),
        (Some("active"), Some(1))
    );

    // Public reads: no token needed.
    let response = app.get(&format!("/products/{id}"), None).await;
    assert_eq!(response.headers()["etag"], "\"1\"");
    let mine = app
        .get_json(&format!("/products?seller_id={}", seller.id), None)
        .await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let found = app.get_json("/products?q=TICKET", None).await;
    assert_eq!(found["items"][0]["id"], created["id"]);
    let none = app.get_json("/products?q=100%25", None).await;
    assert_eq!(none["items"], json!([]));
    let unknown = uuid::Uuid::new_v4();
    let missing = problem(
        app.get(&format!("/products/{unknown}"), None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(missing["type"], "/problems/product-not-found");

    let response = patch(&app, &seller, id, Some("\"1\""), &json!({"price": 5_000})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"2\"");
    let changed: Value = response.json().await.unwrap();
    assert_eq!(changed["price"], 5_000);
    assert_eq!(changed["name"], "Concert ticket, row 3");

    // Only the seller changes or withdraws it.
    let other = app.user().await;
    let refused = problem(
        patch(&app, &other, id, Some("\"2\""), &json!({"price": 1})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(refused["type"], "/problems/not-the-seller");
    let delete = |user: &User| {
        app.client
            .delete(app.url(&format!("/products/{id}")))
            .bearer_auth(user.token.clone())
            .send()
    };
    problem(delete(&other).await.unwrap(), StatusCode::FORBIDDEN).await;
    let withdrawn: Value = delete(&seller).await.unwrap().json().await.unwrap();
    assert_eq!(withdrawn["status"], "withdrawn");
    let listed = app.get_json("/products", None).await;
    assert_eq!(listed["items"], json!([]));
    let listed = app.get_json("/products?status=withdrawn", None).await;
    assert_eq!(listed["items"][0]["id"], created["id"]);
    let refused = problem(
        order_of(&app, &other, &created["id"], 1).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(refused["type"], "/problems/product-withdrawn");
    app.stop().await;
}

#[tokio::test]
async fn two_patches_with_one_if_match_are_one_200_and_one_412_and_none_is_428() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let created = app.product(1_000, 5).await;
    let id = created["id"].as_str().unwrap();

    let (cheaper, dearer) = (json!({"price": 1_100}), json!({"price": 1_200}));
    let (first, second) = tokio::join!(
        patch(&app, seller, id, Some("\"1\""), &cheaper),
        patch(&app, seller, id, Some("\"1\""), &dearer),
    );
    let mut statuses = [first.status(), second.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::PRECONDITION_FAILED]);
    let stale = if first.status() == StatusCode::OK {
        second
    } else {
        first
    };
    let stale = problem(stale, StatusCode::PRECONDITION_FAILED).await;
    assert_eq!(stale["type"], "/problems/version-mismatch");
    assert_eq!(product(&app, id).await["version"], 2);

    let required = problem(
        patch(&app, seller, id, None, &json!({"price": 1})).await,
        StatusCode::PRECONDITION_REQUIRED,
    )
    .await;
    assert_eq!(required["type"], "/problems/precondition-required");
    for etag in ["W/\"2\"", "*", "2"] {
        problem(
            patch(&app, seller, id, Some(etag), &json!({"price": 1})).await,
            StatusCode::PRECONDITION_FAILED,
        )
        .await;
        // The request's own checks come before the precondition (RFC 9110, 13.2.1).
        let invalid = problem(
            patch(&app, seller, id, Some(etag), &json!({"stock": -1})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(invalid["errors"]["stock"].is_array(), "{invalid}");
    }

    // Stock never goes below what orders hold.
    let buyer = app.user().await;
    assert_eq!(
        order_of(&app, &buyer, &created["id"], 3).await.status(),
        StatusCode::CREATED
    );
    let refused = problem(
        patch(&app, seller, id, Some("\"2\""), &json!({"stock": 2})).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(refused["type"], "/problems/stock-below-reserved");
    let response = patch(&app, seller, id, Some("\"2\""), &json!({"stock": 3})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let after: Value = response.json().await.unwrap();
    assert_eq!(counts(&after), (3, 3, 0, 0));
    assert_eq!(after["version"], 3);
    app.stop().await;
}

#[tokio::test]
async fn every_bad_product_input_gets_a_problem_naming_the_field() {
    let app = TestApp::spawn().await;
    let seller = app.user().await;
    let valid = json!({"name": "Ticket", "price": 100, "stock": 1});
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let cases = [
        (with("name", json!(" ")), "name"),
        (with("name", json!("x".repeat(201))), "name"),
        (with("price", json!(0)), "price"),
        (with("price", json!(-5)), "price"),
        (with("price", json!(1_000_000_001_i64)), "price"),
        (with("stock", json!(-1)), "stock"),
        (with("stock", json!(1_000_001)), "stock"),
        (with("currency", json!("USD")), "currency"),
        (with("sku", json!("")), "sku"),
        (with("description", json!("x".repeat(2_001))), "description"),
    ];
    for (body, field) in cases {
        let refused = problem(
            app.create_product(&seller, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(refused["errors"][field].is_array(), "{body}: {refused}");
    }
    // Wrong types, fractions of a cent and unknown fields are refused before the service.
    for body in [
        with("price", json!(12.5)),
        with("price", json!("100")),
        with("seller_id", json!(seller.id)),
        json!({"price": 100, "stock": 1}),
    ] {
        let refused = problem(
            app.create_product(&seller, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(refused["type"], "/problems/validation-failed", "{body}");
    }
    let unauthenticated = app.post_json("/products", &valid, None).await;
    problem(unauthenticated, StatusCode::UNAUTHORIZED).await;
    let listed = app.get_json("/products", None).await;
    assert_eq!(listed["items"], json!([]));

    let created = app.product_of(&seller, 100, 1).await;
    let id = created["id"].as_str().unwrap();
    for (body, field) in [
        (json!({}), "body"),
        (json!({"price": 0}), "price"),
        (json!({"stock": -1}), "stock"),
        (json!({"name": ""}), "name"),
    ] {
        let refused = problem(
            patch(&app, &seller, id, Some("\"1\""), &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(refused["errors"][field].is_array(), "{body}: {refused}");
    }
    for query in ["limit=0", "cursor=nope", "status=gone", "seller_id=nope"] {
        problem(
            app.get(&format!("/products?{query}"), None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    assert_eq!(product(&app, id).await["version"], 1);
    app.stop().await;
}

/// 200 buyers at once for 50 units: exactly 50 orders, 150 × 409, and every read during the
/// race shows a consistent product.
#[tokio::test]
async fn two_hundred_concurrent_orders_for_a_stock_of_50_create_exactly_50() {
    let app = TestApp::spawn().await;
    let hot = app.product(100, 50).await;
    let id = hot["id"].as_str().unwrap().to_owned();
    // Signed up a few at a time: 200 password hashes at once would wait longer for the
    // hashing slots than the test settings allow on a busy machine (503 busy).
    let buyers: Vec<User> = futures_util::stream::iter((0..200).map(|_| app.user()))
        .buffer_unordered(8)
        .collect()
        .await;
    // Every buyer can pay, so sales move units from stock to sold during the race too.
    let deposit = json!({"type": "deposit", "amount": 100});
    futures_util::future::join_all(
        buyers
            .iter()
            .map(|buyer| app.transacted(&buyer.token, &deposit)),
    )
    .await;

    let racing = futures_util::future::join_all(
        buyers
            .iter()
            .map(|buyer| order_of(&app, buyer, &hot["id"], 1)),
    );
    let watching = async {
        let mut reads = 0;
        loop {
            let read = product(&app, &id).await;
            let (stock, reserved, available, sold) = counts(&read);
            assert!(available >= 0, "{read}");
            assert_eq!(available, stock - reserved, "{read}");
            assert_eq!(stock + sold, 50, "{read}");
            reads += 1;
            if sold == 50 || reads > 2_000 {
                return reads;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let (answers, reads) = tokio::join!(racing, watching);
    let mut created = 0;
    let mut conflicts = 0;
    for answer in answers {
        match answer.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                let body: Value = answer.json().await.unwrap();
                assert_eq!(body["type"], "/problems/out-of-stock");
                assert!(body["detail"].as_str().unwrap().contains(&id), "{body}");
                conflicts += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created, conflicts), (50, 150));
    assert!(reads > 1);
    let sold_out = eventually(SETTLED, "all 50 sold", || async {
        let read = product(&app, &id).await;
        (read["sold"] == 50).then_some(read)
    })
    .await;
    assert_eq!(counts(&sold_out), (0, 0, 0, 50));
    app.stop().await;
}

#[tokio::test]
async fn expired_and_cancelled_orders_give_their_units_back_and_a_refunded_one_puts_them_on_sale() {
    let app = TestApp::spawn_with(|config| {
        config.order.payment_timeout = Duration::from_secs(2);
    })
    .await;
    let ticket = app.product(700, 3).await;
    let id = ticket["id"].as_str().unwrap();
    let poor = app.user().await;
    let rich = app.user().await;
    app.transacted(&rich.token, &json!({"type": "deposit", "amount": 2_100}))
        .await;

    // Unpaid (no funds): it holds 2 units until it expires.
    let response = order_of(&app, &poor, &ticket["id"], 2).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let unpaid: Value = response.json().await.unwrap();
    assert_eq!(counts(&product(&app, id).await), (3, 2, 1, 0));
    settled(&app, &poor, unpaid["id"].as_str().unwrap(), "expired").await;
    assert_eq!(counts(&product(&app, id).await), (3, 0, 3, 0));

    // Cancelled while unpaid.
    let response = order_of(&app, &poor, &ticket["id"], 3).await;
    let unpaid: Value = response.json().await.unwrap();
    let unpaid_id = unpaid["id"].as_str().unwrap();
    settled(&app, &poor, unpaid_id, "payment_failed").await;
    assert_eq!(counts(&product(&app, id).await), (3, 3, 0, 0));

    assert_eq!(
        cancel(&app, &poor, unpaid_id).await.status(),
        StatusCode::OK
    );
    assert_eq!(counts(&product(&app, id).await), (3, 0, 3, 0));

    // Paid, then cancelled (refunded): sold, then back on sale.
    let response = order_of(&app, &rich, &ticket["id"], 3).await;
    let paid: Value = response.json().await.unwrap();
    let paid_id = paid["id"].as_str().unwrap();
    settled(&app, &rich, paid_id, "paid").await;
    assert_eq!(counts(&product(&app, id).await), (0, 0, 0, 3));
    assert_eq!(cancel(&app, &rich, paid_id).await.status(), StatusCode::OK);
    assert_eq!(counts(&product(&app, id).await), (3, 0, 3, 0));
    eventually(SETTLED, "the refund", || async {
        (app.balance(&rich.token).await == 2_100).then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn an_order_keeps_the_price_it_was_placed_at_and_its_payment_charges_it() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let book = app.product(1_000, 10).await;
    let id = book["id"].as_str().unwrap();
    let buyer = app.user().await;
    let response = order_of(&app, &buyer, &book["id"], 2).await;
    let placed: Value = response.json().await.unwrap();
    let order_id = placed["id"].as_str().unwrap();
    assert_eq!(placed["items"][0]["unit_price"], 1_000);
    assert_eq!(placed["items"][0]["product_id"], book["id"]);
    assert_eq!(placed["items"][0]["seller_id"], seller.id.to_string());
    assert_eq!(placed["items"][0]["name"], "A good book");
    assert_eq!(placed["total"], 2_000);
    settled(&app, &buyer, order_id, "payment_failed").await;

    let response = patch(
        &app,
        seller,
        id,
        Some("\"1\""),
        &json!({"price": 5_000, "name": "A dearer book"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.transacted(&buyer.token, &json!({"type": "deposit", "amount": 2_000}))
        .await;
    let response = app
        .post_json(
            &format!("/orders/{order_id}/pay"),
            &json!({}),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let paid = settled(&app, &buyer, order_id, "paid").await;
    assert_eq!(paid["items"][0]["unit_price"], 1_000);
    assert_eq!(paid["items"][0]["name"], "A good book");
    assert_eq!(app.balance(&buyer.token).await, 0);
    let purchase: Value = app
        .get_json(
            &format!(
                "/wallet/transactions/{}",
                paid["payment_transaction_id"].as_str().unwrap()
            ),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(purchase["amount"], 2_000);
    assert_eq!(counts(&product(&app, id).await), (8, 0, 8, 2));
    app.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_places_one_order_reserves_once_and_remembers_a_refusal() {
    let app = TestApp::spawn().await;
    let book = app.product(300, 5).await;
    let buyer = app.user().await;
    let body = json!({"items": [{"product_id": book["id"], "quantity": 2}]});
    let send = |body: &Value, key: &str| {
        app.client
            .post(app.url("/orders"))
            .bearer_auth(&buyer.token)
            .header("idempotency-key", key)
            .json(body)
            .send()
    };
    let (first, second) = tokio::join!(send(&body, "order-1"), send(&body, "order-1"));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    let (first, second): (Value, Value) =
        (first.json().await.unwrap(), second.json().await.unwrap());
    assert_eq!(first["id"], second["id"]);
    let again: Value = send(&body, "order-1").await.unwrap().json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let listed = app.get_json("/orders", Some(&buyer.token)).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        counts(&product(&app, book["id"].as_str().unwrap()).await),
        (5, 2, 3, 0)
    );

    let other = json!({"items": [{"product_id": book["id"], "quantity": 1}]});
    let reused = problem(
        send(&other, "order-1").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(reused["type"], "/problems/idempotency-key-reused");

    // A refusal is remembered too: the same request with the same key gets the same 409,
    // even once the stock is back; a new key is a new request.
    let too_many = json!({"items": [{"product_id": book["id"], "quantity": 4}]});
    let refused = problem(
        send(&too_many, "order-2").await.unwrap(),
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(refused["type"], "/problems/out-of-stock");
    let seller = app.seller().await;
    let response = app
        .client
        .patch(app.url(&format!("/products/{}", book["id"].as_str().unwrap())))
        .bearer_auth(&seller.token)
        .header("if-match", "\"1\"")
        .json(&json!({"stock": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let replayed = problem(
        send(&too_many, "order-2").await.unwrap(),
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(replayed, refused);
    assert_eq!(
        send(&too_many, "order-3").await.unwrap().status(),
        StatusCode::CREATED
    );
    app.stop().await;
}

#[tokio::test]
async fn an_order_naming_one_product_a_hundred_times_is_a_bounded_422_not_a_500() {
    let app = TestApp::spawn().await;
    let buyer = app.user().await;
    let product = app.product(100, 5).await;
    let items: Vec<Value> = (0..100)
        .map(|_| json!({"product_id": product["id"], "quantity": 1}))
        .collect();
    let response = app
        .post_json("/orders", &json!({"items": items}), Some(&buyer.token))
        .await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    // 99 repeats: the first 20 are named, then how many more (a status naming all 99 was
    // too large for HTTP/2's headers and ended as a 500).
    let named = body["errors"]["items.product_id"].as_array().unwrap();
    assert_eq!(named.len(), 21);
    assert_eq!(named[20], "and 79 more problems like these");
    app.stop().await;
}
