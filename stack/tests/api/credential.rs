//! The gRPC services refuse callers without the internal credential.

use proto::auth::v1::SignInRequest;
use proto::auth::v1::auth_service_client::AuthServiceClient;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::TestApp;

fn with_metadata<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("x-internal-token", token.parse().unwrap());
    }
    request
}

#[tokio::test]
async fn grpc_calls_without_the_right_internal_credential_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let stack = &app.stack.stack;
    let right = app
        .stack
        .config
        .auth
        .service
        .internal_token
        .expose()
        .to_owned();
    let wrong = "x".repeat(right.len());

    let mut auth = AuthServiceClient::connect(format!("http://{}", stack.auth_addr))
        .await
        .unwrap();
    let sign_in = || SignInRequest {
        email: "ann@example.org".into(),
        password: "whatever1".into(),
    };
    for token in [None, Some(wrong.as_str()), Some("")] {
        let status = auth
            .sign_in(with_metadata(sign_in(), token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "token {token:?}");
    }
    // With the credential the call reaches the service (and fails on the password).
    let status = auth
        .sign_in(with_metadata(sign_in(), Some(&right)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "wrong email or password");

    // Every service, health included.
    for addr in [
        stack.auth_addr,
        stack.wallet_addr,
        stack.statement_addr,
        stack.order_addr,
    ] {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = HealthClient::new(channel);
        let status = health
            .check(with_metadata(HealthCheckRequest::default(), None))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{addr}");
        let answer = health
            .check(with_metadata(HealthCheckRequest::default(), Some(&right)))
            .await
            .unwrap();
        assert_eq!(answer.into_inner().status, 1, "{addr} serving");
    }
    app.stop().await;
}
