//! PostgreSQL: "create the database if it is missing, then migrate", with retries so a
//! program can start before its database is up.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use backon::Retryable;
use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

/// How many times start-up tries to reach PostgreSQL again before it gives up (about two
/// minutes).
const CONNECT_ATTEMPTS: usize = 30;

/// A pooled connection used less than this long ago is handed out without a check.
pub const CHECK_CONNECTIONS_IDLE_FOR: Duration = Duration::from_secs(1);

/// Connects to the database named in `url`, creating it first if it does not exist, and
/// applies `migrator`'s migrations. Several instances may start at once: both the creation
/// and sqlx's migrations take care of that.
pub async fn connect_and_migrate(
    url: &SecretString,
    max_connections: u32,
    migrator: &Migrator,
) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url.expose_secret())
        .context("the database URL is not a valid PostgreSQL URL")?
        .log_statements(tracing::log::LevelFilter::Debug)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    (|| create_database_if_missing(&options))
        .retry(crate::retry::policy().with_max_times(CONNECT_ATTEMPTS))
        .notify(|error, wait| {
            tracing::warn!(%error, ?wait, "database not reachable yet, retrying");
        })
        .await?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // sqlx checks every connection with a round trip before handing it out: a third of
        // the round trips of a balance read. Only a connection idle for a while is checked
        // (as PgBouncer's `server_check_delay` does), so one that died with its server while
        // idle is replaced, not handed out; under load connections are never idle that long.
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= CHECK_CONNECTIONS_IDLE_FOR {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await
        .context("cannot connect to the database")?;
    migrator
        .run(&pool)
        .await
        .context("cannot apply the database migrations")?;
    Ok(pool)
}

/// Drops the database named in `url` (used by tests that created a throwaway database).
pub async fn drop_database(url: &SecretString) -> anyhow::Result<()> {
    let options = PgConnectOptions::from_str(url.expose_secret())?;
    let name = options
        .get_database()
        .context("the database URL names no database")?
        .to_owned();
    let mut admin = PgConnection::connect_with(&options.database("postgres")).await?;
    sqlx::query(&format!(
        "drop database if exists {} with (force)",
        quote_identifier(&name)
    ))
    .execute(&mut admin)
    .await?;
    Ok(())
}

/// Makes sure the database exists. It connects to the database itself first, so a role that
/// owns only its own database (and may not connect to `postgres`, as on managed servers) never
/// needs more; only when PostgreSQL answers that the database does not exist does it connect to
/// `postgres` to create it (development, with a role that may).
async fn create_database_if_missing(options: &PgConnectOptions) -> anyhow::Result<()> {
    let name = options
        .get_database()
        .context("the database URL names no database")?;
    match PgConnection::connect_with(options).await {
        Ok(connection) => return Ok(connection.close().await?),
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("3D000") => {}
        Err(error) => return Err(error).context("cannot connect to PostgreSQL"),
    }
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres"))
        .await
        .context("cannot connect to PostgreSQL")?;
    let created = sqlx::query(&format!("create database {}", quote_identifier(name)))
        .execute(&mut admin)
        .await;
    match created {
        Ok(_) => tracing::info!(database = name, "database created"),
        // Another instance created it between our check and our CREATE.
        Err(sqlx::Error::Database(error))
            if matches!(error.code().as_deref(), Some("42P04" | "23505")) => {}
        Err(error) => return Err(error).context("cannot create the database"),
    }
    admin.close().await?;
    Ok(())
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What PostgreSQL said when it refused a value itself (SQLSTATE class 22, "data exception":
/// a NUL character, a string too long for its column, a number out of range), anywhere in
/// `error`'s chain. Such an error comes back whenever the same input is tried again, unlike
/// a lost connection.
pub fn refused_value(error: &anyhow::Error) -> Option<String> {
    error.chain().find_map(|cause| {
        // Error types that wrap a `sqlx::Error` transparently expose only its source, the
        // boxed database error.
        let refusal = match cause.downcast_ref() {
            Some(sqlx::Error::Database(refusal)) => refusal,
            _ => cause.downcast_ref::<Box<dyn sqlx::error::DatabaseError>>()?,
        };
        refusal
            .code()
            .is_some_and(|code| code.starts_with("22"))
            .then(|| refusal.message().to_owned())
    })
}

/// Whether the database answers a trivial query (for health reporting).
pub async fn is_reachable(pool: &PgPool) -> bool {
    sqlx::query("select 1").execute(pool).await.is_ok()
}
