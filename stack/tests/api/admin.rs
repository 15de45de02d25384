//! The admin views: every user's orders and accounts, for admins only.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, problem, unique_email};

async fn spawn_with_admin() -> (TestApp, User) {
    let email = unique_email();
    let listed = email.clone();
    let app = TestApp::spawn_with(|config| config.auth.admin_emails = vec![listed]).await;
    let admin = app.user_with_email(email).await;
    (app, admin)
}

async fn order(app: &TestApp, buyer: &User, product: &Value) -> Value {
    let response = app
        .post_json(
            "/orders",
            &json!({"items": [{"product_id": product["id"], "quantity": 1}]}),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn an_admin_lists_every_users_orders_and_accounts_and_a_customer_gets_403() {
    let (app, admin) = spawn_with_admin().await;
    let book = app.product(700, 10).await;
    let (alice, bob) = (app.user().await, app.user().await);
    let first = order(&app, &alice, &book).await;
    let second = order(&app, &bob, &book).await;
    let third = order(&app, &alice, &book).await;

    let all = app.get_json("/admin/orders", Some(&admin.token)).await;
    let newest_first = [&third, &second, &first].map(|o| o["id"].as_str().unwrap());
    assert_eq!(ids(&all), newest_first);
    assert_eq!(all["items"][1]["user_id"], bob.id.to_string());
    let alices = app
        .get_json(
            &format!("/admin/orders?user_id={}", alice.id),
            Some(&admin.token),
        )
        .await;
    assert_eq!(ids(&alices), [newest_first[0], newest_first[2]]);
    // One page at a time.
    let page = app
        .get_json("/admin/orders?limit=2", Some(&admin.token))
        .await;
    assert_eq!(ids(&page), &newest_first[..2]);
    let rest = app
        .get_json(
            &format!(
                "/admin/orders?limit=2&cursor={}",
                page["next_cursor"].as_str().unwrap()
            ),
            Some(&admin.token),
        )
        .await;
    assert_eq!(ids(&rest), &newest_first[2..]);
    assert_eq!(rest["next_cursor"], Value::Null);
    // Unpaid orders fail their payment (no funds): none is paid, so none is to ship.
    let to_ship = app
        .get_json("/admin/orders?status=paid", Some(&admin.token))
        .await;
    assert_eq!(to_ship["items"], json!([]));

    let users = app.get_json("/admin/users", Some(&admin.token)).await;
    // The admin, the seller, alice and bob.
    assert_eq!(users["items"].as_array().unwrap().len(), 4);
    assert_eq!(users["items"][0]["id"], bob.id.to_string());
    assert_eq!(users["items"][0]["roles"], json!(["customer"]));
    let found = app
        .get_json(
            &format!("/admin/users?q={}", alice.email.to_uppercase()),
            Some(&admin.token),
        )
        .await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    assert_eq!(found["items"][0]["email"], alice.email);
    assert!(found["items"][0]["created_at"].is_string());
    let admins = app
        .get_json(
            &format!("/admin/users?q={}", admin.email),
            Some(&admin.token),
        )
        .await;
    assert_eq!(admins["items"][0]["roles"], json!(["customer", "admin"]));

    for path in ["/admin/orders", "/admin/users"] {
        let refused = problem(
            app.get(path, Some(&alice.token)).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(refused["type"], "/problems/forbidden");
        problem(app.get(path, None).await, StatusCode::UNAUTHORIZED).await;
    }
    for query in [
        "/admin/orders?status=shipped",
        "/admin/orders?user_id=nope",
        "/admin/orders?cursor=nope",
        "/admin/users?limit=0",
        "/admin/users?cursor=nope",
    ] {
        problem(
            app.get(query, Some(&admin.token)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    app.stop().await;
}
