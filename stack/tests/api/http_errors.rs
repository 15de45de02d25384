//! Bad HTTP input gets a specific problem, never a 500.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem};

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url("/auth/sign-up"))
        .header("content-type", "application/json")
        .body(r#"{"email": "ann@example.org", "password": "#)
        .send()
        .await
        .unwrap();
    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["type"], "/problems/malformed-json");
    app.stop().await;
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let app = TestApp::spawn().await;
    let big = json!({"email": "ann@example.org", "password": "x".repeat(65 * 1024)});
    let body = problem(
        app.post_json("/auth/sign-up", &big, None).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("65536"));
    app.stop().await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let app = TestApp::spawn().await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = app
            .client
            .post(app.url("/auth/sign-in"))
            .body("email=ann@example.org&password=whatever");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let body = problem(
            request.send().await.unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        )
        .await;
        assert_eq!(body["type"], "/problems/unsupported-media-type");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_missing_or_mistyped_field_is_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let body = problem(
        app.post_json("/auth/sign-up", &json!({"email": "ann@example.org"}), None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("missing field `password`")
    );

    let body = problem(
        app.post_json(
            "/auth/sign-in",
            &json!({"email": 42, "password": "x"}),
            None,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("email"));

    let body = problem(
        app.post_json("/auth/sign-in", &json!("not an object"), None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["type"], "/problems/validation-failed");
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_too() {
    let app = TestApp::spawn().await;
    problem(app.get("/no/such/route", None).await, StatusCode::NOT_FOUND).await;
    let response = app.client.delete(app.url("/auth/me")).send().await.unwrap();
    assert!(response.headers().contains_key("allow"));
    problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
    app.stop().await;
}

#[tokio::test]
async fn no_documented_route_answers_500_to_bad_input() {
    let app = TestApp::spawn().await;
    let (_, token) = app.signed_up_user().await;
    let document: Value = app.get_json("/openapi.json", None).await;
    let bodies = [
        "",
        "null",
        "{}",
        "[]",
        "\"text\"",
        "{\"email\": null, \"password\": null}",
        "{\"email\": \"\u{0}\", \"password\": \"\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\"}",
        "{\"email\": \"a@b.c\", \"password\": \"xxxxxxxx\", \"extra\": [1, 2, 3]}",
        "{{{{",
    ];
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            for body in bodies {
                for authorization in [None, Some(token.as_str()), Some("garbage")] {
                    let mut request = app
                        .client
                        .request(method.clone(), app.url(path))
                        .header("content-type", "application/json")
                        .body(body);
                    if let Some(token) = authorization {
                        request = request.bearer_auth(token);
                    }
                    let response = request.send().await.unwrap();
                    let status = response.status();
                    assert!(
                        status.as_u16() < 500,
                        "{method} {path} with {body:?} answered {status}"
                    );
                    if status.is_client_error() {
                        problem(response, status).await;
                    }
                    checked += 1;
                }
            }
        }
    }
    // Sign-out revokes the token on its first success; every route was still exercised.
    assert!(checked >= 22 * bodies.len() * 3);
    app.stop().await;
}

/// PostgreSQL cannot store a NUL character in text: every text a client sends is checked
/// for control characters, so it is a 422 naming the field, never a 500.
#[tokio::test]
async fn a_nul_character_in_any_text_is_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let nul = "a\u{0}b";
    let book = |sku: &str, name: &str, description: &str| json!({"sku": sku, "name": name, "description": description, "price": 100, "stock": 1});
    let line = json!([{"product_id": uuid::Uuid::new_v4(), "quantity": 1}]);
    let cases = [
        (
            "/wallet/transactions",
            json!({"type": "deposit", "amount": 100, "description": nul}),
            "description",
        ),
        ("/products", book(nul, "book", ""), "sku"),
        ("/products", book("B-1", nul, ""), "name"),
        ("/products", book("B-1", "book", nul), "description"),
        (
            "/orders",
            json!({"items": line, "voucher_code": nul}),
            "voucher_code",
        ),
    ];
    for (path, body, field) in cases {
        let response = app.post_json(path, &body, Some(&user.token)).await;
        let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["type"], "/problems/validation-failed", "{field}");
        let messages = problem["errors"][field].as_array().unwrap();
        assert!(
            messages[0]
                .as_str()
                .unwrap()
                .contains("must not contain control characters"),
            "{field}: {problem}"
        );
    }
    // Nothing was stored or charged.
    assert_eq!(app.balance(&user.token).await, 0);
    let orders: Value = app.get_json("/orders", Some(&user.token)).await;
    assert_eq!(orders["items"], json!([]));
    let products: Value = app.get_json("/products", None).await;
    assert_eq!(products["items"], json!([]));
    app.stop().await;
}
