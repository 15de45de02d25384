//! No password or token ever reaches the logs.

use std::io::Write;
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, unique_email};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn passwords_and_tokens_never_appear_in_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    // Everything at debug level, our crates at trace: far more than production logs.
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "debug,gateway=trace,auth_service=trace,platform=trace,stack=trace",
        ))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber)
        .expect("no other subscriber in this process");

    let app = TestApp::spawn().await;
    let email = unique_email();
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let response = app.sign_up(&email, &password).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let signed_up: Value = response.json().await.unwrap();
    let first_token = signed_up["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.sign_in(&email, "a wrong password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let signed_in: Value = app.sign_in(&email, &password).await.json().await.unwrap();
    let token = signed_in["access_token"].as_str().unwrap().to_owned();
    let request_id = "log-check-request-id";
    let me = app
        .client
        .get(app.url("/auth/me"))
        .bearer_auth(&token)
        .header("x-request-id", request_id)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(app.sign_out(&token).await.status(), StatusCode::NO_CONTENT);
    let internal_token = app
        .stack
        .config
        .auth
        .service
        .internal_token
        .expose()
        .to_owned();
    app.stop().await;

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(logs.contains("gateway ready"), "the capture works");
    // The request id travelled to the auth service with the gRPC call: it is a field of
    // the service's `grpc` span, which names the method.
    let service_span = r#"grpc{otel.name="auth.v1.AuthService/GetUser""#;
    assert!(
        logs.lines()
            .any(|line| line.contains(service_span) && line.contains(request_id)),
        "request id propagated to the service"
    );
    for (secret, what) in [
        (password.as_str(), "password"),
        ("a wrong password", "wrong password"),
        (first_token.as_str(), "sign-up token"),
        (token.as_str(), "sign-in token"),
        (token.split('.').nth(2).unwrap(), "token signature"),
        (internal_token.as_str(), "internal credential"),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the logs");
    }
}
