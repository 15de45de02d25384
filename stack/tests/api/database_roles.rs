//! Each service runs as a PostgreSQL role that owns its own database and nothing else, as
//! deploy/postgres-init.sh sets them up under docker compose.

use std::time::Duration;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::helpers::{TestApp, eventually};

const SERVICES: [&str; 4] = ["auth", "wallet", "statement", "orders"];

/// The superuser connection the test server gives every test.
async fn admin() -> PgConnection {
    let url = platform::testing::database_url("postgres");
    PgConnection::connect(url.expose_secret()).await.unwrap()
}

/// The password each test role gets (the test server may check passwords, or trust).
const PASSWORD: &str = "a-test-role-password";

/// The same statements as deploy/postgres-init.sh: a login role, a database it owns, and no
/// one else may connect to that database.
async fn create_owner(admin: &mut PgConnection, role: &str) {
    for statement in [
        format!("create role \"{role}\" login password '{PASSWORD}'"),
        format!("create database \"{role}\" owner \"{role}\""),
        format!("revoke all on database \"{role}\" from public"),
    ] {
        sqlx::query(&statement).execute(&mut *admin).await.unwrap();
    }
}

/// The URL of `database` on the test server, as `role`.
fn url_as(role: &str, database: &str) -> SecretString {
    let server = platform::testing::database_url(database);
    let mut url = reqwest::Url::parse(server.expose_secret()).unwrap();
    url.set_username(role).unwrap();
    url.set_password(Some(PASSWORD)).unwrap();
    SecretString::from(url.to_string())
}

#[tokio::test]
async fn each_service_works_as_a_role_that_owns_only_its_own_database() {
    let id = platform::testing::unique_id();
    let role = |service: &str| format!("{id}_{service}");
    let mut admin = admin().await;
    for service in SERVICES {
        create_owner(&mut admin, &role(service)).await;
    }

    let app = TestApp::spawn_with(|config| {
        config.auth.service.database_url = url_as(&role("auth"), &role("auth"));
        config.wallet.service.database_url = url_as(&role("wallet"), &role("wallet"));
        config.statement.service.database_url = url_as(&role("statement"), &role("statement"));
        config.order.service.database_url = url_as(&role("orders"), &role("orders"));
    })
    .await;

    // Sign-up (auth), a deposit (wallet), its statement line (statement, through the broker)
    // and an order (orders): each service migrated and works as its own role.
    let user = app.user().await;
    let deposit = app
        .transacted(&user.token, &json!({"type": "deposit", "amount": 5_000}))
        .await;
    assert_eq!(deposit["balance_after"], 5_000);
    eventually(Duration::from_secs(10), "the statement line", || async {
        let body: Value = app.get_json("/statements", Some(&user.token)).await;
        (body["lines"].as_array().unwrap().len() == 1).then_some(())
    })
    .await;
    let pen = app.product(100, 2).await;
    let order = app
        .post_json(
            "/orders",
            &json!({"items": [{"product_id": pen["id"], "quantity": 2}]}),
            Some(&user.token),
        )
        .await;
    assert_eq!(order.status(), StatusCode::CREATED);

    // A service's role cannot even connect to another service's database.
    let refused = PgConnection::connect(url_as(&role("wallet"), &role("auth")).expose_secret())
        .await
        .unwrap_err();
    let code = refused
        .as_database_error()
        .and_then(|error| error.code().map(|code| code.into_owned()));
    assert_eq!(code.as_deref(), Some("42501"), "{refused}");

    app.stop().await;
    for service in SERVICES {
        sqlx::query(&format!("drop role if exists \"{}\"", role(service)))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}
