//! `deploy/compose-secrets.py`, which makes every secret docker compose needs: run with the
//! machine's python3 into a temporary folder, and its RabbitMQ definitions loaded into the
//! real broker (on a vhost and with user names of this test's own).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use platform::amqp::try_connect;
use platform::testing::{Authenticated, Vhost, management_api, management_get, unique_id};
use secrecy::SecretString;
use serde_json::Value;

/// Runs the script into `dir` with only `overrides` set (and PATH).
fn generate(dir: &Path, overrides: &[(&str, &str)]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/compose-secrets.py");
    let output = Command::new("python3")
        .arg(script)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SECRETS_DIR", dir)
        .envs(overrides.iter().copied())
        .output()
        .expect("python3 runs (install Python 3)");
    assert!(output.status.success(), "{output:?}");
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .trim()
        .to_owned()
}

fn is_hex(value: &str, digits: usize) -> bool {
    value.len() == digits && value.bytes().all(|byte| byte.is_ascii_hexdigit())
}

#[test]
fn every_secret_is_generated_once_kept_afterwards_and_a_set_variable_wins() {
    let dir: PathBuf = std::env::temp_dir().join(format!("secrets-{}", unique_id()));
    generate(&dir, &[]);
    let token = read(&dir, "internal-api-token");
    assert!(
        is_hex(&token, 64),
        "the internal credential is 32 random bytes in hex"
    );
    assert!(
        platform::grpc::InternalToken::parse("INTERNAL_API_TOKEN", Some(token.clone())).is_ok()
    );
    assert!(is_hex(&read(&dir, "auth-key-encryption-key"), 64));
    let wallet_password = read(&dir, "wallet-database-password");
    assert!(is_hex(&wallet_password, 48));
    assert_eq!(
        read(&dir, "wallet-database-url"),
        format!("postgres://wallet:{wallet_password}@postgres:5432/wallet")
    );
    let platform_password = read(&dir, "rabbitmq-password");
    assert_eq!(
        read(&dir, "amqp-url"),
        format!("amqp://platform:{platform_password}@rabbitmq:5672/%2f")
    );
    let passwords: Vec<String> = ["auth", "wallet", "statement", "orders"]
        .iter()
        .map(|database| read(&dir, &format!("{database}-database-password")))
        .collect();
    let mut distinct = passwords.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "each role has its own password");

    // Kept at the next start; a variable that is set wins.
    generate(
        &dir,
        &[("RABBITMQ_PUBLISHER_PASSWORD", "chosen-by-the-operator")],
    );
    assert_eq!(read(&dir, "internal-api-token"), token);
    assert_eq!(read(&dir, "wallet-database-password"), wallet_password);
    assert_eq!(
        read(&dir, "rabbitmq-publisher-password"),
        "chosen-by-the-operator"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_broker_loads_the_two_users_their_permissions_and_the_queue_limits() {
    let dir: PathBuf = std::env::temp_dir().join(format!("secrets-{}", unique_id()));
    generate(&dir, &[]);
    let mut definitions: Value =
        serde_json::from_str(&read(&dir, "rabbitmq-definitions.json")).unwrap();

    // The same definitions, on this test's vhost and with its own user names.
    let vhost = Vhost::create(&format!("t_{}", unique_id())).await.unwrap();
    let user = |name: &str| format!("{}_{name}", vhost.name);
    for entry in definitions["users"].as_array_mut().unwrap() {
        entry["name"] = user(entry["name"].as_str().unwrap()).into();
    }
    for entry in definitions["permissions"].as_array_mut().unwrap() {
        entry["user"] = user(entry["user"].as_str().unwrap()).into();
        entry["vhost"] = vhost.name.clone().into();
    }
    for entry in definitions["policies"].as_array_mut().unwrap() {
        entry["vhost"] = vhost.name.clone().into();
    }
    definitions["vhosts"] = serde_json::json!([{"name": vhost.name}]);
    let client = reqwest::Client::new();
    let api = management_api();
    client
        .post(format!("{api}/definitions"))
        .authenticated()
        .json(&definitions)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    let url = |name: &str, password: &str| {
        SecretString::from(format!(
            "amqp://{}:{password}@127.0.0.1:5672/{}",
            user(name),
            vhost.name
        ))
    };
    let platform = url("platform", &read(&dir, "rabbitmq-password"));
    let publisher = url("publisher", &read(&dir, "rabbitmq-publisher-password"));
    for (who, amqp_url) in [("platform", &platform), ("publisher", &publisher)] {
        let connection = try_connect(amqp_url, "compose-secrets test").await;
        assert!(
            connection.is_ok(),
            "{who} cannot connect with its generated password"
        );
        connection.unwrap().close(200, "done".into()).await.unwrap();
    }
    assert!(
        try_connect(&url("publisher", "wrong"), "compose-secrets test")
            .await
            .is_err()
    );
    let publisher_permissions = management_get(&format!(
        "/permissions/{}/{}",
        vhost.name,
        user("publisher")
    ))
    .await
    .unwrap();
    assert_eq!(
        publisher_permissions["write"],
        platform::testing::publisher_permissions()["write"]
    );
    let policy = management_get(&format!("/policies/{}/request-queue-limits", vhost.name))
        .await
        .unwrap();
    assert_eq!(policy["definition"]["overflow"], "reject-publish");

    for name in ["platform", "publisher"] {
        client
            .delete(format!("{api}/users/{}", user(name)))
            .authenticated()
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
    vhost.delete().await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
