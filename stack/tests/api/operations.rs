//! Health, readiness, metrics, request ids and the API documentation.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

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
            "token_keys": "loaded"
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
