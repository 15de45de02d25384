//! Isolation for tests that use the real PostgreSQL and RabbitMQ (enabled by the `testing`
//! feature): a fresh database name per test and a fresh RabbitMQ virtual host, so tests run
//! in parallel without seeing each other, and remove what they made.
//!
//! Settings (all optional): `TEST_POSTGRES_URL` (server, default
//! `postgres://postgres@127.0.0.1:5432`), `TEST_AMQP_URL` (broker, default
//! `amqp://guest:guest@127.0.0.1:5672`; its user is the platform's, and the management API is
//! called as it too), `TEST_RABBITMQ_API` (management API used to create vhosts, default
//! `http://127.0.0.1:15672/api`; `rabbitmqctl` is used when it does not answer). `.ci/run`
//! sets them when it starts PostgreSQL and RabbitMQ from docker compose.
//!
//! A test that fails or is killed never reaches its clean-up, so names carry their creation
//! time and every new vhost first removes what tests left behind more than an hour ago:
//! leftovers would otherwise pile up on a developer's machine (dozens of vhosts slow the
//! management API until vhost creation itself times out).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use secrecy::SecretString;

use crate::config::optional;

pub mod poison;

/// Polls `check` until it returns `Some`, or panics after `within`: tests wait for
/// asynchronous effects with a deadline, never with a fixed sleep.
pub async fn eventually<T, F, Fut>(within: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Sends the programs' warnings and errors to the test's stderr, which the test runner shows
/// only when the test fails or is stopped for hanging: what went wrong inside the platform.
/// Called by each way a test starts the platform; a test that installed its own subscriber
/// first keeps it.
pub fn show_warnings_on_failure() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// A test's vhost and databases are named `t_<id>...`; older than this, they are leftovers.
const LEFTOVER_AFTER: Duration = Duration::from_secs(3600);

/// A short id to name a test's databases and vhost: its creation time in Unix seconds, so
/// that leftovers can be told from resources in use, and a random part.
pub fn unique_id() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{}_{}", unix_seconds(SystemTime::now()), &random[..8])
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Whether `name` is a test resource (`t_<seconds>_...`) created before `cutoff` (Unix
/// seconds).
fn is_leftover(name: &str, cutoff: u64) -> bool {
    let Some(rest) = name.strip_prefix("t_") else {
        return false;
    };
    let seconds = rest.split('_').next().unwrap_or_default();
    // Digits only: `parse` would also take a sign.
    seconds.bytes().all(|byte| byte.is_ascii_digit())
        && seconds.parse::<u64>().is_ok_and(|created| created < cutoff)
}

/// Removes the vhosts and databases of tests started more than [`LEFTOVER_AFTER`] ago
/// ([`Vhost::create`] does it once per test process). Best effort: a failure here must not
/// fail the test that calls it.
pub async fn remove_leftovers() {
    let cutoff = unix_seconds(SystemTime::now() - LEFTOVER_AFTER);
    if let Err(error) = remove_leftover_vhosts(cutoff).await {
        eprintln!("could not remove leftover test vhosts: {error:#}");
    }
    if let Err(error) = remove_leftover_databases(cutoff).await {
        eprintln!("could not remove leftover test databases: {error:#}");
    }
}

async fn remove_leftover_vhosts(cutoff: u64) -> anyhow::Result<()> {
    let vhosts = management_get("/vhosts?columns=name").await?;
    for name in names(&vhosts).filter(|name| is_leftover(name, cutoff)) {
        // Another test process may be removing it at the same moment.
        let _ = delete_vhost(name).await;
    }
    // Broker users of tests (`Vhost::add_user`) are named the same way.
    let users = management_get("/users?columns=name").await?;
    for name in names(&users).filter(|name| is_leftover(name, cutoff)) {
        let _ = delete_user(name).await;
    }
    Ok(())
}

/// The `name` of each object of a management API list.
fn names(list: &serde_json::Value) -> impl Iterator<Item = &str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["name"].as_str())
}

/// `GET` of management API `path` (after `/api`), as the tests' broker user: its JSON.
pub async fn management_get(path: &str) -> anyhow::Result<serde_json::Value> {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", management_api()))
        .authenticated()
        .send()
        .await?
        .error_for_status()?;
    Ok(response.json().await?)
}

async fn remove_leftover_databases(cutoff: u64) -> anyhow::Result<()> {
    let mut admin = admin_connection().await?;
    let names: Vec<String> =
        sqlx::query_scalar("select datname from pg_database where datname like 't\\_%'")
            .fetch_all(&mut admin)
            .await?;
    for name in names.iter().filter(|name| is_leftover(name, cutoff)) {
        let _ = crate::database::drop_database(&database_url(name)).await;
    }
    Ok(())
}

/// The URL of database `name` on the test server (created on first connect by
/// [`crate::database::connect_and_migrate`]; drop it with [`crate::database::drop_database`]).
pub fn database_url(name: &str) -> SecretString {
    let server = optional("TEST_POSTGRES_URL")
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_owned());
    SecretString::from(format!("{server}/{name}"))
}

/// The test broker (`TEST_AMQP_URL`), without a vhost.
fn broker_url() -> String {
    optional("TEST_AMQP_URL").unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672".to_owned())
}

/// The user and password of [`broker_url`].
fn broker_credentials() -> (String, String) {
    broker_url().parse::<lapin::uri::AMQPUri>().map_or_else(
        |_| ("guest".to_owned(), "guest".to_owned()),
        |uri| {
            (
                uri.authority.userinfo.username,
                uri.authority.userinfo.password,
            )
        },
    )
}

/// The broker user of the tests' connections (that of `TEST_AMQP_URL`, `guest` by default):
/// the services under test run as it, so it is the platform's user, and a message a test
/// publishes on the platform's behalf carries it as `user_id`.
pub fn platform_user() -> String {
    broker_credentials().0
}

/// The longest a management API request may take: one that the broker never answers fails
/// the test that made it, rather than hanging it until the test runner kills it.
const MANAGEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Management API requests, authenticated as the tests' broker user (an administrator), and
/// bounded by [`MANAGEMENT_TIMEOUT`].
pub trait Authenticated {
    fn authenticated(self) -> Self;
}

impl Authenticated for reqwest::RequestBuilder {
    fn authenticated(self) -> Self {
        let (user, password) = broker_credentials();
        self.basic_auth(user, Some(password))
            .timeout(MANAGEMENT_TIMEOUT)
    }
}

/// The permissions of the `publisher` broker user that docker-compose creates for other
/// systems (`deploy/rabbitmq/publisher-permissions.json`), for [`Vhost::add_user`]: tests
/// publish as another system would, with exactly what it may do.
pub fn publisher_permissions() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/rabbitmq/publisher-permissions.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{path}: {error}"));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// A RabbitMQ virtual host of one test.
pub struct Vhost {
    pub name: String,
    pub amqp_url: SecretString,
}

impl Vhost {
    pub async fn create(name: &str) -> anyhow::Result<Self> {
        static LEFTOVERS_REMOVED: AtomicBool = AtomicBool::new(false);
        if !LEFTOVERS_REMOVED.swap(true, Ordering::SeqCst) {
            remove_leftovers().await;
        }
        create_vhost(name).await?;
        let broker = broker_url();
        Ok(Self {
            name: name.to_owned(),
            amqp_url: SecretString::from(format!("{broker}/{name}")),
        })
    }

    pub async fn delete(&self) -> anyhow::Result<()> {
        delete_vhost(&self.name).await
    }

    /// Creates a broker user other than the platform's (`t_<...>`, a random password), with
    /// `permissions` (`{"configure", "write", "read"}` regular expressions) on this vhost
    /// only: another system that may publish. Needs the management API; remove it with
    /// [`BrokerUser::delete`].
    pub async fn add_user(&self, permissions: &serde_json::Value) -> anyhow::Result<BrokerUser> {
        let client = reqwest::Client::new();
        let api = management_api();
        let name = format!("t_{}", unique_id());
        let password = uuid::Uuid::new_v4().simple().to_string();
        client
            .put(format!("{api}/users/{name}"))
            .authenticated()
            .json(&serde_json::json!({"password": password, "tags": ""}))
            .send()
            .await?
            .error_for_status()
            .context("cannot create a test broker user")?;
        client
            .put(format!("{api}/permissions/{}/{name}", self.name))
            .authenticated()
            .json(permissions)
            .send()
            .await?
            .error_for_status()
            .context("cannot grant the test broker user its permissions")?;
        let broker = broker_url();
        let mut url = reqwest::Url::parse(&broker).context("TEST_AMQP_URL")?;
        let credentials = url
            .set_username(&name)
            .and_then(|()| url.set_password(Some(&password)));
        anyhow::ensure!(credentials.is_ok(), "TEST_AMQP_URL cannot hold credentials");
        Ok(BrokerUser {
            amqp_url: SecretString::from(format!(
                "{}/{}",
                url.as_str().trim_end_matches('/'),
                self.name
            )),
            name,
        })
    }

    /// Closes, from the broker's side, every connection in this vhost whose client named it
    /// `connection_name` (as a broker restart or `rabbitmqctl close_all_connections` would),
    /// and returns how many were closed. Needs the management API.
    pub async fn close_connections(&self, connection_name: &str) -> anyhow::Result<usize> {
        let client = reqwest::Client::new();
        let api = management_api();
        let connections: Vec<serde_json::Value> = client
            .get(format!("{api}/vhosts/{}/connections", self.name))
            .authenticated()
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut closed = 0;
        for connection in connections {
            let named = connection["client_properties"]["connection_name"].as_str()
                == Some(connection_name);
            if let (true, Some(name)) = (named, connection["name"].as_str()) {
                let response = client
                    .delete(format!("{api}/connections/{}", encode_path_segment(name)))
                    .authenticated()
                    .header("x-reason", "test: simulated broker failure")
                    .send()
                    .await?;
                match response.status() {
                    status if status.is_success() => closed += 1,
                    // It closed by itself since it was listed.
                    reqwest::StatusCode::NOT_FOUND => {}
                    // RabbitMQ 3.10 can close the connection and then fail the request
                    // (its handler outlives the connection it waits on): it counts as
                    // closed once the broker no longer knows it.
                    _ if gone_within(&client, &api, name, Duration::from_secs(5)).await? => {
                        closed += 1;
                    }
                    _ => {
                        response.error_for_status()?;
                    }
                }
            }
        }
        Ok(closed)
    }
}

/// A broker user of one test (see [`Vhost::add_user`]).
pub struct BrokerUser {
    pub name: String,
    /// Its URL on the test's vhost.
    pub amqp_url: SecretString,
}

impl BrokerUser {
    pub async fn delete(&self) -> anyhow::Result<()> {
        delete_user(&self.name).await
    }
}

async fn delete_user(name: &str) -> anyhow::Result<()> {
    reqwest::Client::new()
        .delete(format!("{}/users/{name}", management_api()))
        .authenticated()
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// Whether the broker stops knowing connection `name` within `within`.
async fn gone_within(
    client: &reqwest::Client,
    api: &str,
    name: &str,
    within: Duration,
) -> anyhow::Result<bool> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let status = client
            .get(format!("{api}/connections/{}", encode_path_segment(name)))
            .authenticated()
            .send()
            .await?
            .status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Percent-encodes everything but unreserved characters (connection names hold spaces,
/// `>` and `:`).
fn encode_path_segment(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Declares a queue of the caller's own (exclusive: it goes with `channel`'s connection),
/// binds it to `exchange` with `#`, and consumes it with manual acknowledgements: from now
/// on, every message published to (or forwarded into) `exchange`.
pub async fn watch_exchange(
    channel: &lapin::Channel,
    exchange: &str,
) -> lapin::Result<lapin::Consumer> {
    use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    let queue = channel
        .queue_declare("".into(), exclusive, FieldTable::default())
        .await?;
    channel
        .queue_bind(
            queue.name().clone(),
            exchange.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .basic_consume(
            queue.name().clone(),
            "test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
}

/// The next message of `consumer` (from [`watch_exchange`]), acknowledged: its routing key
/// and its JSON body. `None` when none comes within `within`.
pub async fn next_json(
    consumer: &mut lapin::Consumer,
    within: Duration,
) -> anyhow::Result<Option<(String, serde_json::Value)>> {
    use futures_util::StreamExt;
    let Ok(next) = tokio::time::timeout(within, consumer.next()).await else {
        return Ok(None);
    };
    let Some(delivery) = next else {
        return Ok(None);
    };
    let delivery = delivery?;
    delivery
        .ack(lapin::options::BasicAckOptions::default())
        .await?;
    let body = serde_json::from_slice(&delivery.data).context("a JSON body")?;
    Ok(Some((delivery.routing_key.to_string(), body)))
}

/// Ends every session of database `name` except the caller's, as a database restart would
/// from the programs' point of view.
pub async fn terminate_database_sessions(name: &str) -> anyhow::Result<u64> {
    let mut admin = admin_connection().await?;
    let terminated: Vec<bool> = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
    )
    .bind(name)
    .fetch_all(&mut admin)
    .await?;
    Ok(u64::try_from(terminated.len()).unwrap_or_default())
}

/// A connection to the test server's `postgres` database, to manage the others.
async fn admin_connection() -> sqlx::Result<sqlx::PgConnection> {
    use sqlx::Connection;
    let server = database_url("postgres");
    sqlx::PgConnection::connect(secrecy::ExposeSecret::expose_secret(&server)).await
}

/// The RabbitMQ management API the tests use (`TEST_RABBITMQ_API`).
pub fn management_api() -> String {
    optional("TEST_RABBITMQ_API").unwrap_or_else(|| "http://127.0.0.1:15672/api".to_owned())
}

async fn create_vhost(vhost: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let api = management_api();
    let created = client
        .put(format!("{api}/vhosts/{vhost}"))
        .authenticated()
        .send()
        .await;
    match created {
        Ok(response) if response.status().is_success() => {
            client
                .put(format!("{api}/permissions/{vhost}/{}", platform_user()))
                .authenticated()
                .json(&serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"}))
                .send()
                .await?
                .error_for_status()
                .context("cannot grant the tests' broker user access to the test vhost")?;
            Ok(())
        }
        _ => {
            rabbitmqctl(&["add_vhost", vhost])?;
            rabbitmqctl(&[
                "set_permissions",
                "-p",
                vhost,
                &platform_user(),
                ".*",
                ".*",
                ".*",
            ])
        }
    }
}

async fn delete_vhost(vhost: &str) -> anyhow::Result<()> {
    let deleted = reqwest::Client::new()
        .delete(format!("{}/vhosts/{vhost}", management_api()))
        .authenticated()
        .send()
        .await;
    match deleted {
        Ok(response) if response.status().is_success() => Ok(()),
        _ => rabbitmqctl(&["delete_vhost", vhost]),
    }
}

fn rabbitmqctl(args: &[&str]) -> anyhow::Result<()> {
    let status = std::process::Command::new("rabbitmqctl")
        // Bounded like the management API requests it stands in for.
        .args(["--timeout", &MANAGEMENT_TIMEOUT.as_secs().to_string()])
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .context("the RabbitMQ management API does not answer and rabbitmqctl cannot run")?;
    anyhow::ensure!(status.success(), "rabbitmqctl {} failed", args.join(" "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_test_resources_created_before_the_cutoff_are_leftovers() {
        assert!(is_leftover("t_1000_ab12cd34", 1001));
        assert!(is_leftover("t_1000_ab12cd34_wallet", 1001));
        assert!(!is_leftover("t_1000_ab12cd34", 1000));
        assert!(!is_leftover("t_2000_ab12cd34_wallet", 1001));
        // Not named by `unique_id`: never touched.
        assert!(!is_leftover("t_ab12cd34ef56", u64::MAX));
        assert!(!is_leftover("t_", u64::MAX));
        assert!(!is_leftover("wallet", u64::MAX));
        assert!(!is_leftover("bench_1000", u64::MAX));
    }

    #[test]
    fn unique_ids_start_with_the_creation_time() {
        let before = unix_seconds(SystemTime::now());
        let id = unique_id();
        let (seconds, random) = id.split_once('_').unwrap();
        let seconds: u64 = seconds.parse().unwrap();
        assert!(seconds >= before && seconds <= before + 1, "{id}");
        assert_eq!(random.len(), 8, "{id}");
        assert_ne!(unique_id(), unique_id());
    }
}
