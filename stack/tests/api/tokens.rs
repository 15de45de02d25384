//! Access tokens the gateway must refuse.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, problem};

fn claims(user_id: &str, overrides: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "sub": user_id,
        "iat": now,
        "exp": now + 600,
        "iss": auth_service::DEFAULT_ISSUER,
        "aud": auth_service::DEFAULT_AUDIENCE,
        "jti": uuid::Uuid::new_v4(),
        "roles": ["customer"],
    });
    for (key, value) in overrides.as_object().unwrap() {
        claims[key] = value.clone();
    }
    claims
}

async fn user_id(app: &TestApp, token: &str) -> String {
    let me: Value = app.me(token).await.json().await.unwrap();
    me["id"].as_str().unwrap().to_owned()
}

async fn assert_refused(app: &TestApp, token: &str, why: &str) {
    let response = app.me(token).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{why}");
    assert_eq!(response.headers()["www-authenticate"], "Bearer", "{why}");
    problem(response, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_token_minted_with_the_real_key_and_valid_claims_is_accepted() {
    // The control for the refusals below: the minting helper itself is sound.
    let app = TestApp::spawn().await;
    let (_, token) = app.signed_up_user().await;
    let id = user_id(&app, &token).await;
    let minted = app.mint_token(&claims(&id, json!({}))).await;
    assert_eq!(app.me(&minted).await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn expired_tampered_foreign_and_unsigned_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let (_, token) = app.signed_up_user().await;
    let id = user_id(&app, &token).await;
    let now = chrono::Utc::now().timestamp();

    let expired = app
        .mint_token(&claims(&id, json!({"iat": now - 120, "exp": now - 1})))
        .await;
    assert_refused(&app, &expired, "expired").await;

    let wrong_audience = app
        .mint_token(&claims(&id, json!({"aud": "another-platform"})))
        .await;
    assert_refused(&app, &wrong_audience, "wrong audience").await;

    let wrong_issuer = app
        .mint_token(&claims(&id, json!({"iss": "someone-else"})))
        .await;
    assert_refused(&app, &wrong_issuer, "wrong issuer").await;

    // Tampered: the payload says another user, the signature is the original one.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    payload["sub"] = json!(uuid::Uuid::new_v4());
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
    assert_refused(&app, &parts.join("."), "tampered").await;

    // `alg: none`, unsigned.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(&id, json!({}))).unwrap());
    assert_refused(&app, &format!("{header}.{body}."), "alg none").await;

    // HS256 "signed" with a guessable secret: the algorithm is pinned to EdDSA.
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims(&id, json!({})),
        &jsonwebtoken::EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    assert_refused(&app, &hs256, "HS256").await;

    // A token signed by a key the auth service never had.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&stranger).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("unknown-key".into());
    let foreign = jsonwebtoken::encode(
        &header,
        &claims(&id, json!({})),
        &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
    )
    .unwrap();
    assert_refused(&app, &foreign, "foreign key").await;

    for garbage in ["", "not-a-jwt", "a.b.c"] {
        assert_refused(&app, garbage, garbage).await;
    }
    // The real token still works: nothing above disturbed it.
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_missing_or_malformed_authorization_header_is_refused() {
    let app = TestApp::spawn().await;
    let (_, token) = app.signed_up_user().await;

    let response = app.client.get(app.url("/auth/me")).send().await.unwrap();
    let body = problem(response, StatusCode::UNAUTHORIZED).await;
    assert!(body["detail"].as_str().unwrap().contains("Authorization"));

    let response = app
        .client
        .get(app.url("/auth/me"))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::UNAUTHORIZED).await;
    app.stop().await;
}

#[tokio::test]
async fn a_token_signed_out_at_one_gateway_is_refused_by_another_within_a_second() {
    let app = TestApp::spawn().await;
    // A second gateway in front of the same services.
    let mut config = app.stack.config.gateway.clone();
    config.listen_addr = ([127, 0, 0, 1], 0).into();
    config.auth_addr = app.stack.stack.auth_addr.to_string();
    config.wallet_addr = app.stack.stack.wallet_addr.to_string();
    config.statement_addr = app.stack.stack.statement_addr.to_string();
    config.order_addr = app.stack.stack.order_addr.to_string();
    let second = gateway::Application::build(config).await.unwrap();
    let second_url = format!("http://{}", second.local_addr().unwrap());
    let stop_second = platform::shutdown::CancellationToken::new();
    let second_task = tokio::spawn(second.run_until_stopped(stop_second.clone()));

    let (_, token) = app.signed_up_user().await;
    let me_at_second = || {
        let client = app.client.clone();
        let url = format!("{second_url}/auth/me");
        let token = token.clone();
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    eventually(
        Duration::from_secs(10),
        "the second gateway accepting the token",
        || async { (me_at_second().await == StatusCode::OK).then_some(()) },
    )
    .await;

    assert_eq!(app.sign_out(&token).await.status(), StatusCode::NO_CONTENT);
    // The gateway that handled the sign-out refuses at once...
    assert_eq!(app.me(&token).await.status(), StatusCode::UNAUTHORIZED);
    // ...and the other one within a second.
    eventually(
        Duration::from_secs(1),
        "the second gateway refusing the token",
        || async { (me_at_second().await == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await;

    stop_second.cancel();
    second_task.await.unwrap().unwrap();
    app.stop().await;
}

#[tokio::test]
async fn a_token_expires_after_its_configured_lifetime() {
    let app = TestApp::spawn_with(|config| config.auth.token_ttl = Duration::from_secs(3)).await;
    let (_, token) = app.signed_up_user().await;
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
    eventually(Duration::from_secs(8), "the token expiring", || async {
        (app.me(&token).await.status() == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    app.stop().await;
}
