//! Health, readiness, metrics, request ids and the API documentation.

use reqwest::StatusCode;
use serde_json::Value;

use std::time::Duration;

use crate::helpers::{TestApp, eventually};

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary_at_docs() {
    let app = TestApp::spawn().await;
    let response = app.get("/docs/", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    let initializer = app
        .get("/docs/swagger-initializer.js", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("/openapi.json"));
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_names_every_route_with_bearer_security() {
    let app = TestApp::spawn().await;
    let document: Value = app.get_json("/openapi.json", None).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut paths: Vec<&str> = document["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "/admin/orders",
            "/admin/users",
            "/auth/me",
            "/auth/refresh",
            "/auth/sign-in",
            "/auth/sign-out",
            "/auth/sign-up",
            "/healthz",
            "/metrics",
            "/orders",
            "/orders/{id}",
            "/orders/{id}/cancel",
            "/orders/{id}/deliver",
            "/orders/{id}/pay",
            "/orders/{id}/ship",
            "/products",
            "/products/{id}",
            "/readyz",
            "/sales",
            "/statements",
            "/statements/jobs/{id}",
            "/statements/jobs/{id}/download",
            "/vouchers",
            "/wallet/balance",
            "/wallet/balance/history",
            "/wallet/transactions",
            "/wallet/transactions/{id}",
        ]
    );
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        document["paths"]["/auth/me"]["get"]["security"][0]["bearer"],
        serde_json::json!([])
    );
    // The catalogue is public to read; changing it needs a token.
    assert!(document["paths"]["/products"]["get"]["security"].is_null());
    assert_eq!(
        document["paths"]["/products/{id}"]["patch"]["security"][0]["bearer"],
        serde_json::json!([])
    );
    // Error responses are documented as problem details.
    let sign_up = &document["paths"]["/auth/sign-up"]["post"]["responses"];
    for status in ["400", "409", "413", "415", "422"] {
        assert!(
            sign_up[status]["content"]["application/problem+json"].is_object(),
            "sign-up {status}"
        );
    }
    // A busy hasher and too many attempts are documented with Retry-After.
    for path in ["/auth/sign-up", "/auth/sign-in"] {
        let responses = &document["paths"][path]["post"]["responses"];
        for status in ["429", "503"] {
            assert!(
                responses[status]["headers"]["Retry-After"].is_object(),
                "{path} {status}"
            );
        }
    }
    assert!(document["components"]["schemas"]["Problem"].is_object());
    // The same document the library produces, so tooling can generate it offline.
    assert_eq!(document, serde_json::to_value(gateway::openapi()).unwrap());
    app.stop().await;
}

#[tokio::test]
async fn readiness_reports_every_service_and_the_token_keys() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    let response = app.get("/readyz", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "ready", "checks": {
            "auth": "serving", "wallet": "serving", "statement": "serving", "order": "serving",
            "token_keys": "loaded", "revocations": "synced"
        }})
    );
    app.stop().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_given_one_is_kept() {
    let app = TestApp::spawn().await;
    let generated = app.get("/healthz", None).await;
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let missing = app.get("/nowhere", None).await;
    assert!(missing.headers().contains_key("x-request-id"));

    let kept = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "client-chosen-id-42")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "client-chosen-id-42");
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::spawn().await;
    app.get("/healthz", None).await;
    app.get("/auth/me", None).await;
    let response = app.get("/metrics", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/auth/me",status="401"}"#),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn made_up_methods_and_paths_do_not_grow_the_metrics() {
    let app = TestApp::spawn().await;
    let made_up = |n: usize| {
        let method = reqwest::Method::from_bytes(format!("MADEUP{n}").as_bytes()).unwrap();
        app.client
            .request(method, app.url(&format!("/nowhere/{n}")))
            .send()
    };
    // One of each first, so that the series they collapse into exist.
    made_up(0).await.unwrap();
    app.get("/metrics", None).await;
    let before = app.get("/metrics", None).await.text().await.unwrap();
    for n in 1..=300 {
        made_up(n).await.unwrap();
    }
    let after = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        after.len() < before.len() + 4096,
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
    assert!(
        after.contains(r#"http_requests_total{method="other",route="unmatched",status="404"} 301"#),
        "{after}"
    );
    assert!(!after.contains("MADEUP"), "{after}");
    app.stop().await;
}

#[tokio::test]
async fn with_metrics_addr_set_metrics_are_served_there_and_not_on_the_api_address() {
    let app = TestApp::spawn_with(|config| {
        config.gateway.metrics_addr = Some(([127, 0, 0, 1], 0).into());
    })
    .await;
    let metrics_addr = app.stack.stack.metrics_addr.expect("a metrics address");
    app.get("/healthz", None).await;

    let on_api = app.get("/metrics", None).await;
    crate::helpers::problem(on_api, StatusCode::NOT_FOUND).await;

    let response = app
        .client
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"}"#),
        "{text}"
    );
    // Only metrics there: the API is not served on the internal address.
    let api_there = app
        .client
        .get(format!("http://{metrics_addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(api_there.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn a_gateway_is_not_ready_until_its_first_revocation_sync_succeeds() {
    let app = TestApp::spawn().await;
    // Revocations cannot be listed while their table is away.
    let mut db = app.auth_db().await;
    sqlx::query("alter table revoked_tokens rename to revoked_tokens_away")
        .execute(&mut db)
        .await
        .unwrap();
    let gateway = app.start_gateway(|_| {}).await;
    let readiness = || {
        let url = gateway.url("/readyz");
        let client = app.client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    // Everything else is ready: the services serve and the keys are loaded.
    let (status, body) = eventually(Duration::from_secs(10), "the keys loading", || async {
        let (status, body) = readiness().await;
        (body["checks"]["token_keys"] == "loaded").then_some((status, body))
    })
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["revocations"], "pending");
    assert_eq!(body["checks"]["auth"], "serving");

    sqlx::query("alter table revoked_tokens_away rename to revoked_tokens")
        .execute(&mut db)
        .await
        .unwrap();
    eventually(
        Duration::from_secs(5),
        "the gateway becoming ready",
        || async {
            let (status, body) = readiness().await;
            (status == StatusCode::OK && body["checks"]["revocations"] == "synced").then_some(())
        },
    )
    .await;
    gateway.stop().await;
    app.stop().await;
}

#[test]
fn the_placeholder_internal_token_of_env_example_is_refused_at_start() {
    let placeholder = platform::grpc::InternalToken::PLACEHOLDER;
    // Free ports, so that a program that wrongly started would not take the standard ones.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stack"))
        .env("INTERNAL_API_TOKEN", placeholder)
        .env("GATEWAY_ADDR", "127.0.0.1:0")
        .env("AUTH_GRPC_ADDR", "127.0.0.1:0")
        .env("WALLET_GRPC_ADDR", "127.0.0.1:0")
        .env("STATEMENT_GRPC_ADDR", "127.0.0.1:0")
        .env("ORDER_GRPC_ADDR", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the stack started with the placeholder token");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("INTERNAL_API_TOKEN"), "{stderr}");
    assert!(stderr.contains("placeholder"), "{stderr}");
    assert!(!stderr.contains(placeholder), "{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains(placeholder));
}
