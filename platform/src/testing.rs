//! Isolation for tests that use the real PostgreSQL and RabbitMQ (enabled by the `testing`
//! feature): a fresh database name per test and a fresh RabbitMQ virtual host, so tests run
//! in parallel without seeing each other, and remove what they made.
//!
//! Settings (all optional): `TEST_POSTGRES_URL` (server, default
//! `postgres://postgres@127.0.0.1:5432`), `TEST_AMQP_URL` (broker, default
//! `amqp://guest:guest@127.0.0.1:5672`), `TEST_RABBITMQ_API` (management API used to create
//! vhosts, default `http://127.0.0.1:15672/api` as guest; `rabbitmqctl` is used when it does
//! not answer).

use anyhow::Context;
use secrecy::SecretString;

use crate::config::optional;

/// A short random id to name a test's databases and vhost.
pub fn unique_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// The URL of database `name` on the test server (created on first connect by
/// [`crate::database::connect_and_migrate`]; drop it with [`crate::database::drop_database`]).
pub fn database_url(name: &str) -> SecretString {
    let server = optional("TEST_POSTGRES_URL")
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_owned());
    SecretString::from(format!("{server}/{name}"))
}

/// A RabbitMQ virtual host of one test.
pub struct Vhost {
    pub name: String,
    pub amqp_url: SecretString,
}

impl Vhost {
    pub async fn create(name: &str) -> anyhow::Result<Self> {
        create_vhost(name).await?;
        let broker = optional("TEST_AMQP_URL")
            .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672".to_owned());
        Ok(Self {
            name: name.to_owned(),
            amqp_url: SecretString::from(format!("{broker}/{name}")),
        })
    }

    pub async fn delete(&self) -> anyhow::Result<()> {
        delete_vhost(&self.name).await
    }
}

fn management_api() -> String {
    optional("TEST_RABBITMQ_API").unwrap_or_else(|| "http://127.0.0.1:15672/api".to_owned())
}

async fn create_vhost(vhost: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let api = management_api();
    let created = client
        .put(format!("{api}/vhosts/{vhost}"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await;
    match created {
        Ok(response) if response.status().is_success() => {
            client
                .put(format!("{api}/permissions/{vhost}/guest"))
                .basic_auth("guest", Some("guest"))
                .json(&serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"}))
                .send()
                .await?
                .error_for_status()
                .context("cannot grant guest access to the test vhost")?;
            Ok(())
        }
        _ => {
            rabbitmqctl(&["add_vhost", vhost])?;
            rabbitmqctl(&["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"])
        }
    }
}

async fn delete_vhost(vhost: &str) -> anyhow::Result<()> {
    let deleted = reqwest::Client::new()
        .delete(format!("{}/vhosts/{vhost}", management_api()))
        .basic_auth("guest", Some("guest"))
        .send()
        .await;
    match deleted {
        Ok(response) if response.status().is_success() => Ok(()),
        _ => rabbitmqctl(&["delete_vhost", vhost]),
    }
}

fn rabbitmqctl(args: &[&str]) -> anyhow::Result<()> {
    let status = std::process::Command::new("rabbitmqctl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .context("the RabbitMQ management API does not answer and rabbitmqctl cannot run")?;
    anyhow::ensure!(status.success(), "rabbitmqctl {} failed", args.join(" "));
    Ok(())
}
