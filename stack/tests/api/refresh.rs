//! Refresh tokens: rotation, reuse detection, sign-out; and CORS for listed origins.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp, eventually, problem, unique_email};

/// The access and refresh tokens of a sign-in, sign-up or refresh answer.
fn tokens_of(body: &Value) -> (String, String) {
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_refresh_token_is_exchanged_once_for_a_new_pair_that_works() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let signed_up: Value = app.sign_up(&email, PASSWORD).await.json().await.unwrap();
    let (_, first_refresh) = tokens_of(&signed_up);
    assert_eq!(first_refresh.len(), 43, "32 random bytes, base64url");

    let response = app.refresh(&first_refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let refreshed: Value = response.json().await.unwrap();
    assert_eq!(refreshed["token_type"], "Bearer");
    assert_eq!(refreshed["expires_in"], 900);
    let (access, second_refresh) = tokens_of(&refreshed);
    assert_ne!(second_refresh, first_refresh);
    let me: Value = app.me(&access).await.json().await.unwrap();
    assert_eq!(me["email"], email);

    // Sign-in starts a family of its own, too.
    let signed_in: Value = app.sign_in(&email, PASSWORD).await.json().await.unwrap();
    let (_, other_refresh) = tokens_of(&signed_in);
    assert_eq!(app.refresh(&other_refresh).await.status(), StatusCode::OK);
    // ...and the first family is untouched by it.
    assert_eq!(app.refresh(&second_refresh).await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_whole_family_and_its_access_tokens() {
    let app = TestApp::spawn().await;
    let signed_up: Value = app
        .sign_up(&unique_email(), PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let (_, stolen) = tokens_of(&signed_up);
    let refreshed: Value = app.refresh(&stolen).await.json().await.unwrap();
    let (latest_access, latest_refresh) = tokens_of(&refreshed);
    assert_eq!(app.me(&latest_access).await.status(), StatusCode::OK);

    // The spent token comes back (a thief replaying it): refused...
    let body = problem(app.refresh(&stolen).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["type"], "/problems/invalid-refresh-token");
    assert_eq!(
        body["detail"],
        "the refresh token is invalid, expired or already used"
    );
    // ...and the family is gone: the owner's latest refresh token is refused too,
    let body = problem(app.refresh(&latest_refresh).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["type"], "/problems/invalid-refresh-token");
    // and so is the access token issued with it, once the gateway has heard of it.
    eventually(
        Duration::from_secs(5),
        "the access token revoked",
        || async {
            (app.me(&latest_access).await.status() == StatusCode::UNAUTHORIZED).then_some(())
        },
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn signing_out_revokes_the_refresh_token_of_the_session() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.sign_up(&email, PASSWORD).await;
    let signed_in: Value = app.sign_in(&email, PASSWORD).await.json().await.unwrap();
    let (access, refresh) = tokens_of(&signed_in);
    // A refreshed session: sign-out with the latest access token ends the whole chain.
    let refreshed: Value = app.refresh(&refresh).await.json().await.unwrap();
    let (access_after, refresh_after) = tokens_of(&refreshed);
    assert_eq!(
        app.sign_out(&access_after).await.status(),
        StatusCode::NO_CONTENT
    );

    let body = problem(app.refresh(&refresh_after).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["type"], "/problems/invalid-refresh-token");
    eventually(
        Duration::from_secs(5),
        "the first access token revoked",
        || async { (app.me(&access).await.status() == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_or_missing_refresh_token_is_refused_readably() {
    let app = TestApp::spawn().await;
    let body = problem(app.refresh("not-a-token").await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["type"], "/problems/invalid-refresh-token");
    let response = app
        .post_json("/auth/refresh", &serde_json::json!({}), None)
        .await;
    problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    app.stop().await;
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/wallet/balance"))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn cors_answers_only_the_configured_origins() {
    let app = TestApp::spawn_with(|config| {
        config.gateway.cors_allowed_origins =
            gateway::cors::AllowedOrigins::parse("https://app.example.org").unwrap();
    })
    .await;
    let response = preflight(&app, "https://app.example.org").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("https://app.example.org")
    );
    assert!(
        header(&response, "access-control-allow-headers")
            .unwrap()
            .contains("authorization")
    );
    // A simple request from the origin carries the header too, errors included.
    let response = app
        .client
        .get(app.url("/wallet/balance"))
        .header("origin", "https://app.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("https://app.example.org")
    );

    let response = preflight(&app, "https://evil.example").await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    app.stop().await;
}

#[tokio::test]
async fn without_configured_origins_no_cors_headers_are_sent() {
    let app = TestApp::spawn().await;
    let response = preflight(&app, "https://app.example.org").await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    app.stop().await;
}
