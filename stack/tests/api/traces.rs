//! One trace per request across HTTP, gRPC and RabbitMQ (issue 22): the stack exports its
//! spans to a test OTLP receiver, and each request's spans share the caller's trace.
//!
//! The subscriber (with its exporter) is process-global: these tests rely on a process per
//! test, as `cargo nextest` (CI) runs them.

use std::time::Duration;

use platform::telemetry::{LogFormat, Sampling, TraceExport};
use platform::testing::eventually;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use stack::StackConfig;

use crate::helpers::{TestApp, User};
use crate::otlp_sink::{OtlpSink, ReceivedSpan};

/// Spans are exported in batches every 5 s (the SDK's default), and a trace ends several hops
/// after the request.
const EXPORTED: Duration = Duration::from_secs(40);

/// The wallet's `grpc` span of a deposit: a gRPC call's span is named after its method.
const CREATE_TRANSACTION: &str = "wallet.v1.WalletService/CreateTransaction";

/// A deposit's spans up to its event's publication, each (program, name).
const DEPOSIT_SPANS: &[(&str, &str)] = &[
    ("gateway", "http"),
    ("wallet-service", CREATE_TRANSACTION),
    ("wallet-service", "publish"),
];

/// A stack exporting to a fresh receiver.
async fn traced_app() -> (TestApp, OtlpSink) {
    traced_app_with(|_| {}).await
}

/// A stack configured by `customize`, exporting to a fresh receiver.
async fn traced_app_with(customize: impl FnOnce(&mut StackConfig)) -> (TestApp, OtlpSink) {
    let (sink, endpoint) = OtlpSink::start().await;
    let export = TraceExport {
        endpoint,
        service_name: "stack".to_owned(),
        sampling: Sampling::default(),
    };
    let telemetry = platform::telemetry::install(LogFormat::Text, Some(&export)).unwrap();
    assert!(
        telemetry.is_exporting(),
        "another subscriber was installed in this process first (run with cargo nextest)"
    );
    // Kept for the test's life: the exporter flushes on its schedule.
    std::mem::forget(telemetry);
    (TestApp::spawn_with(customize).await, sink)
}

/// A caller's trace context: a fresh trace id and the caller's span id.
fn caller_context() -> (String, String, String) {
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let traceparent = format!("00-{trace_id}-{span_id}-01");
    (trace_id, span_id, traceparent)
}

/// `POST path` with `body` by `user` in a fresh caller's trace, answered 201: the trace id,
/// the caller's span id and the answer.
async fn traced_post(
    app: &TestApp,
    user: &User,
    path: &str,
    body: &Value,
) -> (String, String, reqwest::Response) {
    let (trace_id, caller_span, traceparent) = caller_context();
    let response = app
        .client
        .post(app.url(path))
        .bearer_auth(&user.token)
        .header("traceparent", &traceparent)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    (trace_id, caller_span, response)
}

/// A deposit of 1,000 by `user` in a fresh caller's trace, as [`traced_post`].
async fn traced_deposit(app: &TestApp, user: &User) -> (String, String, reqwest::Response) {
    let deposit = json!({"type": "deposit", "amount": 1_000});
    traced_post(app, user, "/wallet/transactions", &deposit).await
}

/// Waits until trace `trace_id` holds a span of each of `programs` named as given, and
/// checks that every span's parent is in the trace (or is `root_parent`, the caller's).
async fn trace_with(
    sink: &OtlpSink,
    trace_id: &str,
    root_parent: &str,
    expected: &[(&str, &str)],
) -> Vec<ReceivedSpan> {
    let spans = eventually(EXPORTED, "the trace's spans", || async {
        let spans = sink.trace(trace_id);
        expected
            .iter()
            .all(|(program, name)| {
                spans
                    .iter()
                    .any(|span| span.program == *program && span.name == *name)
            })
            .then_some(spans)
    })
    .await;
    // Children may still be on their way: wait until every parent has arrived too.
    eventually(EXPORTED, "every parent span", || async {
        let spans = sink.trace(trace_id);
        spans
            .iter()
            .all(|span| {
                span.parent_span_id == root_parent
                    || spans
                        .iter()
                        .any(|parent| parent.span_id == span.parent_span_id)
            })
            .then_some(())
    })
    .await;
    spans
}

#[tokio::test]
async fn a_deposit_is_one_trace_from_the_gateway_through_the_wallet_to_the_statement() {
    let (app, sink) = traced_app().await;
    let user = app.user().await;
    let (trace_id, caller_span, response) = traced_deposit(&app, &user).await;
    // The answer names the gateway's span of the request, in the caller's trace.
    let answered = response.headers()["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        answered.starts_with(&format!("00-{trace_id}-")),
        "{answered}"
    );
    assert!(response.headers().contains_key("x-request-id"));

    let spans = trace_with(
        &sink,
        &trace_id,
        &caller_span,
        &[DEPOSIT_SPANS, &[("statement-service", "consume")]].concat(),
    )
    .await;
    // Only the platform's own spans are exported, none of a dependency's (h2, hyper, tonic,
    // tower, sqlx, lapin): a child span ends before its parent, so any would be here by now.
    // (The deposit's database commit is a group commit's, in a trace of its own.)
    let mut names: Vec<&str> = spans.iter().map(|span| span.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names, ["consume", "http", "publish", CREATE_TRANSACTION]);
    let http = spans.iter().find(|span| span.name == "http").unwrap();
    assert_eq!(http.parent_span_id, caller_span);
    assert_eq!(answered, format!("00-{trace_id}-{}-01", http.span_id));
    let grpc = spans
        .iter()
        .find(|span| span.program == "wallet-service" && span.name == CREATE_TRANSACTION)
        .unwrap();
    assert!(
        spans
            .iter()
            .any(|span| span.span_id == grpc.parent_span_id && span.program != "wallet-service"),
        "the wallet's call continues the gateway's span"
    );
    app.stop().await;
}

/// Deposits of several users that arrive together share one database statement and commit
/// (the wallet's group commit), yet each event carries its own request's trace.
#[tokio::test]
async fn deposits_applied_together_each_keep_their_own_trace() {
    // One lane that waits for more: the deposits below make one batch.
    let (app, sink) = traced_app_with(|config| {
        config.wallet.group_commit = wallet_service::group_commit::Settings {
            max_size: 64,
            max_wait: Duration::from_millis(300),
            lanes: 1,
            request_lanes: 1,
        };
    })
    .await;
    let mut users = Vec::new();
    for _ in 0..3 {
        users.push(app.user().await);
    }
    let deposits = users.iter().map(|user| async {
        let (trace_id, caller_span, _) = traced_deposit(&app, user).await;
        (trace_id, caller_span)
    });
    let traces = futures_util::future::join_all(deposits).await;
    let url = app.stack.config.wallet.service.database_url.expose_secret();
    let wallet = sqlx::PgPool::connect(url).await.unwrap();
    let ids: Vec<uuid::Uuid> = users.iter().map(|user| user.id).collect();
    let (rows, commits): (i64, i64) = sqlx::query_as(
        "select count(*), count(distinct xmin::text) from transactions where user_id = any($1)",
    )
    .bind(&ids)
    .fetch_one(&wallet)
    .await
    .unwrap();
    wallet.close().await;
    assert_eq!((rows, commits), (3, 1), "one batch");
    // Each deposit's event carries its own trace: the relay publishes it in that trace, and
    // statement-service consumes it there, or (in a batch of events) in a span that links to
    // it.
    for (trace_id, caller_span) in traces {
        trace_with(&sink, &trace_id, &caller_span, DEPOSIT_SPANS).await;
        eventually(EXPORTED, "the statement's consume span", || async {
            let consumed =
                |span: &ReceivedSpan| span.program == "statement-service" && span.name == "consume";
            (sink.trace(&trace_id).iter().any(consumed)
                || sink.linking_to(&trace_id).iter().any(consumed))
            .then_some(())
        })
        .await;
    }
    app.stop().await;
}

#[tokio::test]
async fn an_order_is_one_trace_across_the_gateway_the_order_service_and_the_wallet() {
    let (app, sink) = traced_app().await;
    let user = app.user().await;
    app.transacted(&user.token, &json!({"type": "deposit", "amount": 10_000}))
        .await;
    let book = app.product(2_500, 3).await;
    let order = json!({"items": [{"product_id": book["id"], "quantity": 1}]});
    let (trace_id, caller_span, _) = traced_post(&app, &user, "/orders", &order).await;

    // The saga: the order's call, its payment request published and consumed by the wallet,
    // the wallet's outcome published and consumed by order-service.
    trace_with(
        &sink,
        &trace_id,
        &caller_span,
        &[
            ("gateway", "http"),
            ("order-service", "order.v1.OrderService/CreateOrder"),
            ("order-service", "publish"),
            ("wallet-service", "consume"),
            ("wallet-service", "publish"),
            ("order-service", "consume"),
        ],
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_request_from_another_system_continues_the_trace_its_message_carries() {
    let (app, sink) = traced_app().await;
    let user = app.user().await;
    let broker = lapin::Connection::connect(
        app.stack.config.wallet.service.amqp_url.expose_secret(),
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let channel = broker.create_channel().await.unwrap();
    channel.confirm_select(Default::default()).await.unwrap();
    let (trace_id, caller_span, traceparent) = caller_context();
    let mut headers = lapin::types::FieldTable::default();
    headers.insert(
        "traceparent".into(),
        lapin::types::AMQPValue::LongString(traceparent.as_str().into()),
    );
    let body: Value =
        json!({"user_id": user.id, "type": "deposit", "amount": 700, "reference": "traced-1"});
    channel
        .basic_publish(
            "".into(),
            "wallet.transaction-requests".into(),
            lapin::options::BasicPublishOptions::default(),
            &serde_json::to_vec(&body).unwrap(),
            lapin::BasicProperties::default()
                .with_message_id(uuid::Uuid::new_v4().to_string().into())
                .with_content_type("application/json".into())
                .with_headers(headers),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    let spans = trace_with(
        &sink,
        &trace_id,
        &caller_span,
        &[
            ("wallet-service", "consume"),
            ("wallet-service", "publish"),
            ("statement-service", "consume"),
        ],
    )
    .await;
    let consume = spans
        .iter()
        .find(|span| span.program == "wallet-service" && span.name == "consume")
        .unwrap();
    assert_eq!(consume.parent_span_id, caller_span);
    app.stop().await;
}
