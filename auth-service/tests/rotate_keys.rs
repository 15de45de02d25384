//! The `auth-service` binary's `rotate-keys` subcommand and its start-up checks, run as a
//! real process against a fresh database.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use base64::Engine;
use secrecy::ExposeSecret;
use sqlx::Connection;

struct Database {
    url: secrecy::SecretString,
}

impl Database {
    fn fresh() -> Self {
        let id = platform::testing::unique_id();
        Self {
            url: platform::testing::database_url(&format!("t_{id}_auth")),
        }
    }

    /// `auth-service ARGS` with this database and the given key; returns when it exits.
    fn run(&self, args: &[&str], token: &str, key: Option<&str>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_auth-service"));
        command
            .args(args)
            .env("AUTH_DATABASE_URL", self.url.expose_secret())
            .env("INTERNAL_API_TOKEN", token)
            .env_remove("AUTH_KEY_ENCRYPTION_KEY");
        if let Some(key) = key {
            command.env("AUTH_KEY_ENCRYPTION_KEY", key);
        }
        command.output().unwrap()
    }

    async fn keys(&self) -> Vec<(String, Option<Vec<u8>>, Option<Vec<u8>>)> {
        let mut db = sqlx::PgConnection::connect(self.url.expose_secret())
            .await
            .unwrap();
        sqlx::query_as("select kid, seed, sealed_seed from signing_keys order by created_at")
            .fetch_all(&mut db)
            .await
            .unwrap()
    }
}

fn random_key() -> String {
    let bytes: Vec<u8> = (0..2)
        .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn rotate_keys_adds_a_sealed_key_and_refuses_a_wrong_encryption_key() {
    let database = Database::fresh();
    let key = random_key();

    let first = database.run(&["rotate-keys"], TOKEN, Some(&key));
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // A new database gets its first key, then the added one; both sealed.
    let keys = database.keys().await;
    assert_eq!(keys.len(), 2);
    assert!(
        stdout.contains(&format!("added signing key {}", keys[1].0)),
        "{stdout}"
    );
    assert!(
        keys.iter()
            .all(|(_, seed, sealed)| seed.is_none() && sealed.is_some())
    );

    assert!(
        database
            .run(&["rotate-keys"], TOKEN, Some(&key))
            .status
            .success()
    );
    assert_eq!(database.keys().await.len(), 3);

    // Another key does not open them: refused, naming the variable, never the value.
    let wrong = random_key();
    let refused = database.run(&["rotate-keys"], TOKEN, Some(&wrong));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("AUTH_KEY_ENCRYPTION_KEY"), "{stderr}");
    assert!(
        !stderr.contains(&wrong) && !stderr.contains(&key),
        "{stderr}"
    );
    assert_eq!(database.keys().await.len(), 3);

    platform::database::drop_database(&database.url)
        .await
        .unwrap();
}

#[test]
fn the_placeholder_internal_token_is_refused_at_start() {
    let database = Database::fresh();
    let placeholder = platform::grpc::InternalToken::PLACEHOLDER;
    // Before anything else: the database is not even created.
    for args in [&[][..], &["rotate-keys"][..]] {
        let refused = database.run(args, placeholder, None);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success());
        assert!(stderr.contains("INTERNAL_API_TOKEN"), "{stderr}");
        assert!(!stderr.contains(placeholder), "{stderr}");
    }
}
