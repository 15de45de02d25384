//! Sign-up, sign-in, who am I, sign-out.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp, claims_of, problem, unique_email};

#[tokio::test]
async fn a_user_signs_up_signs_in_sees_themself_signs_out_and_is_refused_after() {
    let app = TestApp::spawn().await;
    let email = unique_email();

    let response = app.sign_up(&email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let signed_up: Value = response.json().await.unwrap();
    assert_eq!(signed_up["user"]["email"], email);
    assert_eq!(signed_up["user"]["roles"], serde_json::json!(["customer"]));
    assert_eq!(signed_up["token_type"], "Bearer");
    assert_eq!(signed_up["expires_in"], 900);

    let response = app.sign_in(&email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let signed_in: Value = response.json().await.unwrap();
    let token = signed_in["access_token"].as_str().unwrap().to_owned();
    assert_eq!(signed_in["token_type"], "Bearer");

    let response = app.me(&token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me, signed_up["user"]);

    let response = app.sign_out(&token).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let body = problem(app.me(&token).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["detail"], "the access token has been revoked");
    app.stop().await;
}

#[tokio::test]
async fn the_same_email_in_another_letter_case_is_taken() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    assert_eq!(
        app.sign_up(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );

    let body = problem(
        app.sign_up(&email.to_uppercase(), PASSWORD).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(body["type"], "/problems/email-taken");
    // And signing in works in any letter case.
    assert_eq!(
        app.sign_in(&email.to_uppercase(), PASSWORD).await.status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn concurrent_sign_ups_with_one_email_create_exactly_one_account() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let attempts = (0..10).map(|n| {
        let email = if n % 2 == 0 {
            email.clone()
        } else {
            email.to_uppercase()
        };
        let app = &app;
        async move { app.sign_up(&email, PASSWORD).await.status() }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(
        statuses
            .iter()
            .filter(|status| **status == StatusCode::CREATED)
            .count(),
        1
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|status| **status == StatusCode::CONFLICT)
            .count(),
        9
    );
    app.stop().await;
}

#[tokio::test]
async fn a_short_password_or_a_bad_email_is_refused_with_field_errors() {
    let app = TestApp::spawn().await;

    let body = problem(
        app.sign_up(&unique_email(), "1234567").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["type"], "/problems/validation-failed");
    assert_eq!(
        body["errors"]["password"][0],
        "must be at least 8 characters"
    );

    let body = problem(
        app.sign_up("not-an-email", PASSWORD).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"]["email"][0], "is not a valid email address");
    assert!(body["errors"].get("password").is_none());
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;

    let wrong_password = app.sign_in(&email, "not the password").await;
    let wrong_password_body = problem(wrong_password, StatusCode::UNAUTHORIZED).await;
    let unknown_email = app.sign_in(&unique_email(), PASSWORD).await;
    let unknown_email_body = problem(unknown_email, StatusCode::UNAUTHORIZED).await;

    assert_eq!(wrong_password_body, unknown_email_body);
    assert_eq!(wrong_password_body["type"], "/problems/invalid-credentials");
    app.stop().await;
}

#[tokio::test]
async fn repeated_failed_sign_ins_for_one_email_are_refused_with_retry_after() {
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;
    for _ in 0..5 {
        assert_eq!(
            app.sign_in(&email, "wrong password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let response = app.sign_in(&email, PASSWORD).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=900).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    let body = problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["type"], "/problems/too-many-attempts");
    // Another account is not affected by this email's failures.
    let (other, _) = app.signed_up_user().await;
    assert_eq!(app.sign_in(&other, PASSWORD).await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn repeated_failed_sign_ins_from_one_address_are_refused_across_emails() {
    let app = TestApp::spawn_with(|config| config.gateway.sign_in_limits.per_address = 3).await;
    for _ in 0..3 {
        assert_eq!(
            app.sign_in(&unique_email(), PASSWORD).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let response = app.sign_in(&unique_email(), PASSWORD).await;
    assert!(response.headers().contains_key("retry-after"));
    problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    app.stop().await;
}

#[tokio::test]
async fn emails_listed_as_admins_get_the_admin_role() {
    let admin = unique_email();
    let listed = admin.clone();
    let app = TestApp::spawn_with(|config| config.auth.admin_emails = vec![listed]).await;

    let response = app.sign_up(&admin.to_uppercase(), PASSWORD).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["user"]["roles"],
        serde_json::json!(["customer", "admin"])
    );
    let response = app.sign_up(&unique_email(), PASSWORD).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["roles"], serde_json::json!(["customer"]));
    app.stop().await;
}

fn count(statuses: &[StatusCode], wanted: StatusCode) -> usize {
    statuses.iter().filter(|status| **status == wanted).count()
}

#[tokio::test]
async fn forty_parallel_wrong_passwords_for_one_email_get_the_limit_of_401s_and_429_for_the_rest() {
    // Limits as in production: 5 per email, 20 per address.
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;
    let guesses = (0..40).map(|n| {
        let (app, email) = (&app, &email);
        async move {
            app.sign_in(email, &format!("wrong password {n}"))
                .await
                .status()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    assert_eq!(
        count(&statuses, StatusCode::UNAUTHORIZED),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        count(&statuses, StatusCode::TOO_MANY_REQUESTS),
        35,
        "{statuses:?}"
    );
    // The email stays blocked, the right password included.
    let response = app.sign_in(&email, PASSWORD).await;
    problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    app.stop().await;
}

#[tokio::test]
async fn sign_ups_from_one_address_are_limited_whatever_x_forwarded_for_says() {
    let app = TestApp::spawn_with(|config| config.gateway.sign_up_limits.per_address = 3).await;
    for _ in 0..3 {
        assert_eq!(
            app.sign_up(&unique_email(), PASSWORD).await.status(),
            StatusCode::CREATED
        );
    }
    // No proxy is trusted by default: a made-up X-Forwarded-For changes nothing.
    let response = app
        .client
        .post(app.url("/auth/sign-up"))
        .header("x-forwarded-for", "203.0.113.7")
        .json(&serde_json::json!({"email": unique_email(), "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=3600).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    let body = problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["type"], "/problems/too-many-attempts");
    // Signing in is a separate limit.
    assert_eq!(
        app.sign_in(&unique_email(), PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_address_has_its_own_sign_up_count() {
    let app = TestApp::spawn_with(|config| {
        config.gateway.sign_up_limits.per_address = 1;
        config.gateway.trusted_proxies =
            gateway::client_address::TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    let sign_up_from = |client: &'static str| {
        app.client
            .post(app.url("/auth/sign-up"))
            .header("x-forwarded-for", client)
            .json(&serde_json::json!({"email": unique_email(), "password": PASSWORD}))
            .send()
    };
    assert_eq!(
        sign_up_from("203.0.113.1").await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        sign_up_from("203.0.113.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        sign_up_from("203.0.113.2").await.unwrap().status(),
        StatusCode::CREATED
    );
    app.stop().await;
}

#[tokio::test]
async fn a_full_hashing_queue_is_answered_503_with_retry_after_not_504() {
    // Waiting for a hashing slot is bounded by a millisecond: with one slot per core and 20
    // sign-ins at once, most of them find every slot taken.
    let app = TestApp::spawn_with(|config| {
        config.auth.hash_wait = std::time::Duration::from_millis(1);
        config.gateway.sign_in_limits.per_address = 100;
    })
    .await;
    let attempts = (0..20).map(|_| {
        let app = &app;
        async move { app.sign_in(&unique_email(), PASSWORD).await }
    });
    let responses = futures_util::future::join_all(attempts).await;
    let statuses: Vec<StatusCode> = responses.iter().map(reqwest::Response::status).collect();
    let busy = count(&statuses, StatusCode::SERVICE_UNAVAILABLE);
    assert!(busy >= 1, "{statuses:?}");
    assert!(
        count(&statuses, StatusCode::UNAUTHORIZED) >= 1,
        "{statuses:?}"
    );
    assert_eq!(
        busy + count(&statuses, StatusCode::UNAUTHORIZED),
        20,
        "{statuses:?}"
    );
    for response in responses {
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(response.headers()["retry-after"], "1");
            let body = problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
            assert_eq!(body["type"], "/problems/busy");
        }
    }
    // Busy answers are no verdict on the password: they did not count as failures.
    let (email, _) = app.signed_up_user().await;
    assert_eq!(app.sign_in(&email, PASSWORD).await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn an_email_removed_from_admin_emails_loses_the_admin_role_at_its_next_sign_in() {
    let admin = unique_email();
    let listed = admin.clone();
    let app = TestApp::spawn_with(|config| config.auth.admin_emails = vec![listed]).await;
    let body: Value = app.sign_up(&admin, PASSWORD).await.json().await.unwrap();
    assert_eq!(
        body["user"]["roles"],
        serde_json::json!(["customer", "admin"])
    );

    // The auth service restarted without the address (another instance on the same
    // database), and a gateway in front of it.
    let auth = app
        .start_auth_service(|config| config.admin_emails = Vec::new())
        .await
        .unwrap();
    let auth_addr = auth.addr.to_string();
    let gateway = app
        .start_gateway(|config| config.auth_addr = auth_addr)
        .await;
    let signed_in: Value = app
        .client
        .post(gateway.url("/auth/sign-in"))
        .json(&serde_json::json!({"email": admin, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signed_in["access_token"].as_str().unwrap();
    assert_eq!(claims_of(token)["roles"], serde_json::json!(["customer"]));
    let me: Value = app.me(token).await.json().await.unwrap();
    assert_eq!(me["roles"], serde_json::json!(["customer"]));

    gateway.stop().await;
    auth.stop().await;
    app.stop().await;
}
