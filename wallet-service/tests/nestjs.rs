//! A publisher of the replaced Node.js wallet, unchanged: the real `@nestjs/microservices`
//! RMQ client (`tests/nestjs/emit.js`, on this machine's Node.js) with default options and
//! `queue: 'wallet_queue'`, connecting as a broker user with the permissions compose gives
//! other systems. amqplib declares `wallet_queue` itself (durable, no arguments) on every
//! connect, which RabbitMQ refused while the wallet declared it with arguments.

// A test (and its helpers) should panic on anything unexpected.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use proto::messaging::wallet::EVENTS;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use support::{Events, TestWallet};
use uuid::Uuid;

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nestjs")
}

/// Installs the client's locked packages unless `.ci/run` (or an earlier run) did.
fn install_client() {
    let dir = client_dir();
    if dir.join("node_modules/@nestjs/microservices").is_dir() {
        return;
    }
    let installed = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .unwrap_or_else(|error| {
            panic!("this test needs Node.js 20+ and npm to run the NestJS client ({error})")
        });
    assert!(installed.success(), "npm ci in {} failed", dir.display());
}

/// Runs the NestJS client once: it connects to `url`, emits `transaction_emitted` with
/// `data`, and closes.
async fn emit(url: &SecretString, data: serde_json::Value) {
    let url = url.expose_secret().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("emit.js")
            .arg(data.to_string())
            .env("AMQP_URL", url)
            .current_dir(client_dir())
            .output()
            .unwrap_or_else(|error| {
                panic!("this test needs Node.js 20+ (`node`) to run the NestJS client ({error})")
            })
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "the NestJS client failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_nestjs_client_with_default_options_deposits_once() {
    install_client();
    let wallet = TestWallet::start().await;
    let mut events = wallet.event_queue().await;
    let (other, connection, _channel) = support::publisher(&wallet).await;
    let _ = connection.close(200, "done".into()).await;
    let user = Uuid::new_v4();
    let transaction = |id: &str, amount: f64| json!({"userId": user, "transaction": {"id": id, "amount": amount, "operation": 0}});

    // Twice the same transaction, by two clients (each declares the queue again), as a
    // publisher retrying would: it has no message id, so the wallet keys it by
    // `legacy:<id>:<operation>`.
    emit(&other.amqp_url, transaction("nest-1", 12.5)).await;
    emit(&other.amqp_url, transaction("nest-1", 12.5)).await;
    emit(&other.amqp_url, transaction("nest-2", 0.75)).await;
    let mut seen = HashSet::new();
    events
        .collect_references(&mut seen, 2, Duration::from_secs(10))
        .await;
    assert_eq!(
        seen,
        HashSet::from(["legacy:nest-1".to_owned(), "legacy:nest-2".to_owned()])
    );
    // The batches are applied in order: once this one is, the duplicate was handled too.
    emit(&other.amqp_url, transaction("nest-3", 1.0)).await;
    events
        .collect_references(&mut seen, 3, Duration::from_secs(10))
        .await;
    assert_eq!(wallet.balance(user).await, 1250 + 75 + 100);
    assert_eq!(wallet.ledger_rows(user).await, 3);
    assert_eq!(wallet.queue_length("wallet_queue.dlq").await, 0);

    other.delete().await.unwrap();
    wallet.stop().await;
}

/// Whether a publisher's declaration of `wallet_queue` with amqplib's defaults (durable, no
/// arguments) is accepted now.
async fn accepts_a_plain_declaration(wallet: &TestWallet) -> bool {
    let channel = wallet.broker.create_channel().await.unwrap();
    let durable = lapin::options::QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let declared = channel
        .queue_declare("wallet_queue".into(), durable, Default::default())
        .await
        .is_ok();
    let _ = channel.close(200, "done".into()).await;
    declared
}

/// Earlier versions declared `wallet_queue` as a quorum queue with dead-letter arguments.
async fn declare_as_earlier_versions(broker: &lapin::Connection) {
    let channel = broker.create_channel().await.unwrap();
    platform::amqp::declare_queue_with_dlq(&channel, "wallet_queue")
        .await
        .unwrap();
    let _ = channel.close(200, "done".into()).await;
}

/// Deadlines of the upgrade's steps, which include a reconnection (with backoff) while the
/// other tests load the machine.
const SLOW: Duration = Duration::from_secs(30);

/// A queue of an earlier version is kept (it may hold requests): they are applied, and once
/// an operator deletes it, the wallet declares it anew by itself.
#[tokio::test]
async fn a_wallet_queue_of_an_earlier_version_is_drained_and_declared_anew_once_deleted() {
    install_client();
    let user = Uuid::new_v4();
    let waiting = serde_json::to_vec(&json!({"pattern": "transaction_emitted",
        "data": {"userId": user, "transaction": {"id": "waiting", "amount": 2, "operation": 0}}}))
    .unwrap();
    let mut watched = None;
    let wallet = TestWallet::start_after(async |broker: &lapin::Connection| {
        declare_as_earlier_versions(broker).await;
        let channel = broker.create_channel().await.unwrap();
        // Watched before the wallet starts: it applies the waiting request at once, and an
        // event published before the test's queue is bound would go nowhere.
        platform::amqp::declare_topic_exchange(&channel, EVENTS)
            .await
            .unwrap();
        watched = Some(Events::watch(broker, EVENTS).await);
        channel.confirm_select(Default::default()).await.unwrap();
        let properties = lapin::BasicProperties::default().with_message_id("waiting".into());
        platform::testing::poison::publish_one(&channel, "wallet_queue", &waiting, properties)
            .await;
    })
    .await;
    let mut events = watched.expect("the events are watched");
    let (_, event) = events.next(SLOW).await.expect("the request");
    assert_eq!(event["data"]["reference"], "legacy:waiting");
    assert!(!accepts_a_plain_declaration(&wallet).await);

    // The operator's step, once it is drained.
    let channel = wallet.broker.create_channel().await.unwrap();
    channel
        .queue_delete("wallet_queue".into(), Default::default())
        .await
        .unwrap();
    platform::testing::eventually(SLOW, "wallet_queue declared anew", || async {
        let exists = platform::testing::poison::queue_exists(&wallet.broker, "wallet_queue");
        (exists.await && accepts_a_plain_declaration(&wallet).await).then_some(())
    })
    .await;
    let data = json!({"userId": user, "transaction": {"id": "after-upgrade", "amount": 3, "operation": 0}});
    emit(&wallet.vhost.amqp_url, data).await;
    let (_, event) = events.next(SLOW).await.expect("the deposit");
    assert_eq!(event["data"]["reference"], "legacy:after-upgrade");
    assert_eq!(wallet.balance(user).await, 500);
    wallet.stop().await;
}
