//! Dates from outside: every date parameter of every route, fed extreme and odd dates, answers
//! 200, 202 or 422, never a 5xx; a date outside 1970-01-01..9999-12-31 is 422 naming the
//! parameter, over HTTP and over gRPC.

use std::collections::BTreeSet;

use proto::statement::v1::GetStatementRequest;
use proto::statement::v1::statement_service_client::StatementServiceClient;
use proto::wallet::v1::ListTransactionsRequest;
use proto::wallet::v1::wallet_service_client::WalletServiceClient;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::{TestApp, problem, unique_email};

/// Dates no route may accept: outside 1970 to 9999 (UTC), beyond what `chrono` or PostgreSQL
/// can hold, or not dates at all.
const REFUSED: &[&str] = &[
    "-262143-01-05",
    "+262142-12-31",
    "-262144-01-01",
    "+262143-01-01",
    "0000-01-01",
    "-0001-12-31",
    "1969-12-31",
    "10000-01-01",
    "+10000-01-01",
    "99999-12-31",
    "1969-12-31T23:59:59Z",
    "1969-12-31T23:59:59.999999999Z",
    "1970-01-01T00:00:00+00:01",
    "9999-12-31T23:59:59-00:01",
    "0000-01-01T00:00:00Z",
    "2023-02-29",
    "1900-02-29",
    "2024-02-30",
    "2026-13-01",
    "2026-00-10",
    "2026-01-32",
    "99999999999999",
    "-9223372036854775808",
    "1e308",
    "",
    "2026-01-01\u{0}",
];

/// Odd but real dates: each may be answered (200 or 202) or refused by another rule (422, e.g.
/// a period over five years), but never a 5xx.
const ODD: &[&str] = &[
    "1970-01-01",
    "1970-01-01T00:00:00Z",
    "9999-12-31",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59+00:00",
    "2000-02-29",
    "2024-02-29",
    "2100-02-28",
    "1999-12-31T23:59:60Z",
];

/// Every (path, query parameter) of the OpenAPI document that takes a date or a time.
fn date_parameters(document: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        let Some(get) = operations.get("get") else {
            continue;
        };
        for parameter in get["parameters"].as_array().into_iter().flatten() {
            let format = parameter["schema"]["format"].as_str().unwrap_or("");
            let description = parameter["description"].as_str().unwrap_or("");
            let takes_a_date = matches!(format, "date" | "date-time")
                || description.contains("YYYY-MM-DD")
                || description.contains("RFC 3339");
            if parameter["in"] == "query" && takes_a_date {
                found.insert((path.clone(), parameter["name"].as_str().unwrap().to_owned()));
            }
        }
    }
    found
}

#[tokio::test]
async fn every_date_parameter_answers_extreme_and_odd_dates_with_200_202_or_422_never_5xx() {
    // Long periods become jobs; this test is about dates, not about the job limit.
    let app = TestApp::spawn_with(|config| config.statement.max_open_jobs = 1_000).await;
    let user = app.user().await;
    app.transacted(&user.token, &json!({"type": "deposit", "amount": 100}))
        .await;
    let document: Value = app.get_json("/openapi.json", None).await;
    let parameters = date_parameters(&document);
    for known in [
        ("/wallet/transactions", "from"),
        ("/wallet/transactions", "to"),
        ("/statements", "from"),
        ("/statements", "to"),
    ] {
        assert!(
            parameters.contains(&(known.0.to_owned(), known.1.to_owned())),
            "{known:?} not found among {parameters:?}"
        );
    }

    let get = |path: &str, query: Vec<(&str, &str)>| {
        app.client
            .get(app.url(path))
            .query(&query)
            .bearer_auth(&user.token)
            .send()
    };
    let mut asked = 0;
    for (path, name) in &parameters {
        let others: Vec<&str> = parameters
            .iter()
            .filter(|(other_path, other)| other_path == path && other != name)
            .map(|(_, other)| other.as_str())
            .collect();
        for refused in REFUSED {
            // Alone, and with every other date parameter of the route set to a good day.
            let mut queries = vec![vec![(name.as_str(), *refused)]];
            queries.push(
                std::iter::once((name.as_str(), *refused))
                    .chain(others.iter().map(|other| (*other, "2026-01-01")))
                    .collect(),
            );
            for query in queries {
                let response = get(path, query.clone()).await.unwrap();
                let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
                assert_eq!(
                    body["type"], "/problems/validation-failed",
                    "{path} {query:?}"
                );
                assert!(
                    body["errors"][name].is_array(),
                    "{path} {query:?}: the problem names `{name}`: {body}"
                );
                asked += 1;
            }
        }
        for odd in ODD.iter().chain(REFUSED) {
            // With every other date parameter at the same odd value: pairs of extremes.
            let query: Vec<(&str, &str)> = std::iter::once((name.as_str(), *odd))
                .chain(others.iter().map(|other| (*other, *odd)))
                .collect();
            let status = get(path, query.clone()).await.unwrap().status();
            assert!(
                matches!(
                    status,
                    StatusCode::OK | StatusCode::ACCEPTED | StatusCode::UNPROCESSABLE_ENTITY
                ),
                "{path} {query:?}: {status}"
            );
            asked += 1;
        }
    }
    assert!(asked > 200, "{asked} requests");

    // The first and the last days there are still work, at both ends of each route.
    for (query, lines) in [
        ("from=1970-01-01&to=1970-01-15", 0),
        ("from=9999-12-16&to=9999-12-31", 0),
        ("to=9999-12-31", 0),
    ] {
        let body: Value = app
            .get_json(&format!("/statements?{query}"), Some(&user.token))
            .await;
        assert_eq!(
            body["lines"].as_array().map(Vec::len),
            Some(lines),
            "{query}"
        );
    }
    let response = app
        .get(
            "/statements?from=9995-01-01&to=9999-12-31",
            Some(&user.token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let all: Value = app
        .get_json(
            "/wallet/transactions?from=1970-01-01&to=9999-12-31T23:59:59.999999Z",
            Some(&user.token),
        )
        .await;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn the_services_refuse_dates_outside_1970_to_9999_as_invalid_arguments_naming_the_field() {
    let app = TestApp::spawn().await;
    let stack = &app.stack.stack;
    let token = app
        .stack
        .config
        .wallet
        .service
        .internal_token
        .expose()
        .to_owned();
    let user_id = uuid::Uuid::new_v4().to_string();

    let mut wallet = WalletServiceClient::connect(format!("http://{}", stack.wallet_addr))
        .await
        .unwrap();
    let time = |seconds, nanos| Some(prost_types::Timestamp { seconds, nanos });
    for (from, to, field) in [
        (time(-1, 0), None, "from"),
        (time(i64::MIN, 0), None, "from"),
        (None, time(i64::MAX, 0), "to"),
        // 10000-01-01T00:00:00Z, the first instant after the range.
        (None, time(253_402_300_800, 0), "to"),
        (time(0, -1), None, "from"),
        (time(0, 1_000_000_000), None, "from"),
    ] {
        let status = wallet
            .list_transactions(with_token(
                &token,
                ListTransactionsRequest {
                    user_id: user_id.clone(),
                    from,
                    to,
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert_eq!(
            status.message(),
            format!("{field}: must be between 1970-01-01 and 9999-12-31 (UTC)")
        );
    }

    let mut statements =
        StatementServiceClient::connect(format!("http://{}", stack.statement_addr))
            .await
            .unwrap();
    for (from, to, field) in [
        ("", "-262143-01-05", "to"),
        ("-262143-01-05", "", "from"),
        ("", "+262142-12-31", "to"),
        ("1969-12-31", "1970-01-02", "from"),
    ] {
        let status = statements
            .get_statement(with_token(
                &token,
                GetStatementRequest {
                    user_id: user_id.clone(),
                    from: from.into(),
                    to: to.into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{from} {to}");
        assert_eq!(
            status.message(),
            format!("{field}: must be between 1970-01-01 and 9999-12-31 (UTC)")
        );
    }
    app.stop().await;
}

/// A gRPC request carrying the internal credential.
fn with_token<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-internal-token", token.parse().unwrap());
    request
}

/// A cursor as the API encodes one: the position `(time in microseconds, id)`.
fn cursor(micros: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{micros}_{}", uuid::Uuid::nil()))
}

#[tokio::test]
async fn a_cursor_holding_a_time_outside_1970_to_9999_is_422_on_every_list() {
    // An admin, so that the admin lists are reached too.
    let email = unique_email();
    let listed = email.clone();
    let app = TestApp::spawn_with(|config| config.auth.admin_emails = vec![listed]).await;
    let user = app.user_with_email(email).await;
    let document: Value = app.get_json("/openapi.json", None).await;
    let lists: Vec<String> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, operations)| {
            operations["get"]["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|parameter| parameter["name"] == "cursor")
        })
        .map(|(path, _)| path.clone())
        .collect();
    assert!(lists.len() >= 3, "{lists:?}");
    // Chrono's first and last instants, PostgreSQL's range beyond, and just outside 1970-9999.
    let refused = [
        i64::MIN,
        i64::MAX,
        -8_334_601_228_800_000_000,
        8_210_266_876_799_999_999,
        -210_866_803_200_000_001,
        -1,
        253_402_300_800_000_000,
    ];
    for path in &lists {
        for micros in refused {
            let response = app
                .client
                .get(app.url(path))
                .query(&[("cursor", cursor(micros))])
                .bearer_auth(&user.token)
                .send()
                .await
                .unwrap();
            let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert!(
                body["errors"]["cursor"].is_array(),
                "{path} {micros}: {body}"
            );
        }
        for micros in [0, 253_402_300_799_999_999] {
            let response = app
                .client
                .get(app.url(path))
                .query(&[("cursor", cursor(micros))])
                .bearer_auth(&user.token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path} {micros}");
        }
    }
    app.stop().await;
}
