//! Access tokens the gateway must refuse.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, claims_of, eventually, kid_of, problem};

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

fn jti_of(token: &str) -> uuid::Uuid {
    claims_of(token)["jti"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_revocation_committed_after_one_with_a_higher_seq_is_still_applied() {
    let app = TestApp::spawn().await;
    let (_, first) = app.signed_up_user().await;
    let (_, second) = app.signed_up_user().await;
    let expires = chrono::Utc::now() + chrono::Duration::minutes(15);

    // The first revocation draws its seq, but its transaction stays open...
    let mut slow = app.auth_db().await;
    let mut open = sqlx::Connection::begin(&mut slow).await.unwrap();
    let low_seq: i64 = sqlx::query_scalar(
        "insert into revoked_tokens (jti, expires_at) values ($1, $2) returning seq",
    )
    .bind(jti_of(&first))
    .bind(expires)
    .fetch_one(&mut *open)
    .await
    .unwrap();
    // ...while a second one, with a higher seq, commits and reaches the gateway.
    let mut fast = app.auth_db().await;
    let high_seq: i64 = sqlx::query_scalar(
        "insert into revoked_tokens (jti, expires_at) values ($1, $2) returning seq",
    )
    .bind(jti_of(&second))
    .bind(expires)
    .fetch_one(&mut fast)
    .await
    .unwrap();
    assert!(low_seq < high_seq);
    eventually(
        Duration::from_secs(3),
        "the second revocation applied",
        || async { (app.me(&second).await.status() == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await;
    assert_eq!(app.me(&first).await.status(), StatusCode::OK);

    // The lower seq commits last: a cursor on seq alone would have stepped past it.
    open.commit().await.unwrap();
    eventually(
        Duration::from_secs(3),
        "the first revocation applied",
        || async { (app.me(&first).await.status() == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await;
    app.stop().await;
}

/// A fresh `AUTH_KEY_ENCRYPTION_KEY`.
fn encryption_key() -> auth_service::signing_keys::KeyEncryptionKey {
    let bytes: Vec<u8> = (0..2)
        .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
        .collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    auth_service::signing_keys::KeyEncryptionKey::parse(&encoded).unwrap()
}

#[tokio::test]
async fn signing_keys_stored_in_clear_are_sealed_at_start_with_an_encryption_key() {
    // A platform started without a key stores its first signing key in clear.
    let app = TestApp::spawn().await;
    let (_, old_token) = app.signed_up_user().await;
    let mut db = app.auth_db().await;
    let (kid, seed): (String, Vec<u8>) = sqlx::query_as("select kid, seed from signing_keys")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(seed.len(), 32);

    // Restarted with a key: the row is sealed and no longer holds the seed.
    let key = encryption_key();
    let sealed_with = key.clone();
    let auth = app
        .start_auth_service(|config| config.key_encryption_key = Some(sealed_with))
        .await
        .unwrap();
    let (clear, sealed): (Option<Vec<u8>>, Vec<u8>) =
        sqlx::query_as("select seed, sealed_seed from signing_keys where kid = $1")
            .bind(&kid)
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(clear, None);
    assert!(!sealed.windows(32).any(|window| window == seed.as_slice()));

    // The sealed key still signs, and what it signed before is still accepted.
    let auth_addr = auth.addr.to_string();
    let gateway = app
        .start_gateway(|config| config.auth_addr = auth_addr)
        .await;
    let email = crate::helpers::unique_email();
    let signed_up: Value = app
        .client
        .post(gateway.url("/auth/sign-up"))
        .json(&json!({"email": email, "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_token = signed_up["access_token"].as_str().unwrap();
    assert_eq!(kid_of(new_token), kid);
    for token in [new_token, old_token.as_str()] {
        let response = app
            .client
            .get(gateway.url("/auth/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    // A rotated key is sealed from the start.
    let mut with_key = app.stack.config.auth.clone();
    with_key.key_encryption_key = Some(key);
    let rotated = auth_service::rotate_keys(&with_key).await.unwrap();
    let (clear, sealed): (Option<Vec<u8>>, Option<Vec<u8>>) =
        sqlx::query_as("select seed, sealed_seed from signing_keys where kid = $1")
            .bind(&rotated)
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert!(clear.is_none() && sealed.is_some());

    // Without the key, or with another, the service refuses to start, naming the variable.
    for wrong in [None, Some(encryption_key())] {
        let error = app
            .start_auth_service(|config| config.key_encryption_key = wrong)
            .await
            .err()
            .expect("a refusal");
        assert!(
            format!("{error:#}").contains("AUTH_KEY_ENCRYPTION_KEY"),
            "{error:#}"
        );
    }
    gateway.stop().await;
    auth.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn rotate_keys_signs_new_tokens_with_a_new_key_and_old_tokens_stay_valid() {
    let app =
        TestApp::spawn_with(|config| config.auth.signing_key_activation = Duration::ZERO).await;
    let (email, old_token) = app.signed_up_user().await;
    let old_kid = kid_of(&old_token);

    let new_kid = auth_service::rotate_keys(&app.stack.config.auth)
        .await
        .unwrap();
    assert_ne!(new_kid, old_kid);
    // The running auth-service picks the new key up (it reloads every few seconds).
    let new_token = eventually(
        Duration::from_secs(15),
        "a token signed with the new key",
        || async {
            let signed_in: Value = app
                .sign_in(&email, crate::helpers::PASSWORD)
                .await
                .json()
                .await
                .unwrap();
            let token = signed_in["access_token"].as_str().unwrap().to_owned();
            (kid_of(&token) == new_kid).then_some(token)
        },
    )
    .await;
    // The gateway fetches the new public key (here at the first token naming it; in
    // production before, see SIGNING_KEY_ACTIVATION_SECS).
    eventually(
        Duration::from_secs(15),
        "the new token accepted",
        || async { (app.me(&new_token).await.status() == StatusCode::OK).then_some(()) },
    )
    .await;
    assert_eq!(app.me(&old_token).await.status(), StatusCode::OK);
    app.stop().await;
}
