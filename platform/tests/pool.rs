//! The pool `database::connect_and_migrate` builds, against the real PostgreSQL.

#![allow(clippy::unwrap_used)]

use platform::database::{CHECK_CONNECTIONS_IDLE_FOR, connect_and_migrate, drop_database};
use platform::testing::{database_url, terminate_database_sessions, unique_id};
use sqlx::migrate::Migrator;

async fn backend_pid(pool: &sqlx::PgPool) -> i32 {
    sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Connections are not checked before every use (that was a round trip per query), so this
/// is the case the check that is left must cover: a server that ended the session while
/// the connection sat in the pool.
#[tokio::test]
async fn a_connection_that_died_while_idle_is_replaced_not_handed_out() {
    let name = format!("platform_pool_{}", unique_id());
    let url = database_url(&name);
    let pool = connect_and_migrate(&url, 1, &Migrator::DEFAULT)
        .await
        .unwrap();
    let first = backend_pid(&pool).await;
    assert_eq!(terminate_database_sessions(&name).await.unwrap(), 1);

    // Waiting is the condition under test here: the connection must be idle this long.
    tokio::time::sleep(CHECK_CONNECTIONS_IDLE_FOR).await;
    let second = backend_pid(&pool).await;
    assert_ne!(first, second, "a new session serves the query");

    pool.close().await;
    drop_database(&url).await.unwrap();
}
