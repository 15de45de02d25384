//! Password hashing runs on the blocking pool, never on the async runtime.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{TestApp, unique_email};

/// A runtime with a single worker thread: if hashing ran on it, every other request would
/// wait for each hash to finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn hashing_does_not_block_the_runtime() {
    let app = TestApp::spawn().await;
    let (email, _) = app.signed_up_user().await;

    // How long one sign-in (one hash) takes on this machine.
    let started = Instant::now();
    assert_eq!(
        app.sign_in(&email, "wrong password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let one_hash = started.elapsed();

    // Four sign-ins hashing at once, and /healthz asked over and over meanwhile.
    let sign_ins = tokio::spawn({
        let client = app.client.clone();
        let url = app.url("/auth/sign-in");
        async move {
            let attempts = (0..4).map(|_| {
                client
                    .post(&url)
                    .json(&serde_json::json!({"email": unique_email(), "password": "whatever1"}))
                    .send()
            });
            futures_util::future::join_all(attempts).await
        }
    });
    let mut slowest = Duration::ZERO;
    let mut probes = 0;
    while !sign_ins.is_finished() {
        let started = Instant::now();
        assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
        slowest = slowest.max(started.elapsed());
        probes += 1;
    }
    for answer in sign_ins.await.unwrap() {
        assert_eq!(answer.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    // Were hashing on the single worker, the four hashes would hold it one after the other
    // and a probe could run only in the gaps between them: a handful at most (measured: the
    // slowest probe then waited 1.1 hashes). On the blocking pool a probe takes about a
    // millisecond, so dozens run while the hashes do. The count, not the slowest probe's
    // time, decides: under a loaded machine a probe can be slow for reasons of its own.
    assert!(
        probes >= 10,
        "only {probes} health probes ran during the hashing (slowest {slowest:?}; one hash \
         takes {one_hash:?}): the runtime was blocked"
    );
    app.stop().await;
}
