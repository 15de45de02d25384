//! `database::refused_value` against the real PostgreSQL: a value it refuses is recognised
//! however the error was wrapped, and other errors are not.

#![allow(clippy::unwrap_used)]

use platform::database::refused_value;
use secrecy::ExposeSecret;
use sqlx::Connection;

/// A service error type that wraps `anyhow` transparently, as the services' error enums do.
#[derive(Debug, thiserror::Error)]
enum ServiceError {
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

#[tokio::test]
async fn a_nul_character_is_a_refused_value_however_it_is_wrapped() {
    let url = platform::testing::database_url("postgres");
    let mut connection = sqlx::PgConnection::connect(url.expose_secret())
        .await
        .unwrap();
    let refused = async |connection: &mut sqlx::PgConnection| {
        sqlx::query("select $1::text")
            .bind("a\u{0}b")
            .execute(connection)
            .await
            .unwrap_err()
    };
    let direct = anyhow::Error::from(refused(&mut connection).await);
    let message = refused_value(&direct).unwrap();
    assert!(message.contains("invalid byte sequence"), "{message}");

    let wrapped = anyhow::Error::from(ServiceError::from(anyhow::Error::from(
        refused(&mut connection).await,
    )));
    assert_eq!(refused_value(&wrapped).as_deref(), Some(message.as_str()));
    let with_context = direct.context("recording the line");
    assert_eq!(
        refused_value(&with_context).as_deref(),
        Some(message.as_str())
    );

    // Not a value's fault: an unknown table, a lost connection.
    let missing_table = sqlx::query("select * from no_such_table")
        .execute(&mut connection)
        .await
        .unwrap_err();
    assert_eq!(refused_value(&missing_table.into()), None);
    assert_eq!(refused_value(&sqlx::Error::PoolTimedOut.into()), None);
}
