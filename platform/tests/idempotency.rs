//! `Idempotency-Key`s on the real PostgreSQL: a key's first request claims it, the same
//! request again gets the stored outcome, another request is told the key is reused, and a
//! second claim of a key in flight waits for the first request's transaction.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use platform::idempotency::{Claim, Keys};
use platform::testing::{database_url, eventually, unique_id};
use sqlx::PgPool;
use uuid::Uuid;

async fn keys_table() -> (PgPool, secrecy::SecretString) {
    let database = database_url(&format!("t_{}_idempotency", unique_id()));
    let pool =
        platform::database::connect_and_migrate(&database, 4, &sqlx::migrate::Migrator::DEFAULT)
            .await
            .unwrap();
    sqlx::query(
        "create table keys (
             user_id uuid not null, key text not null, fingerprint text not null,
             made uuid, error_reason text, error_message text,
             created_at timestamptz not null default now(), primary key (user_id, key))",
    )
    .execute(&pool)
    .await
    .unwrap();
    (pool, database)
}

async fn claim_result(
    pool: &PgPool,
    keys: &Keys,
    user: Uuid,
    key: &str,
    print: &str,
) -> sqlx::Result<Claim<String>> {
    let mut conn = pool.acquire().await.unwrap();
    keys.claim(&mut conn, user, key, print).await
}

async fn claim_on(
    conn: &mut sqlx::PgConnection,
    keys: &Keys,
    user: Uuid,
    key: &str,
    print: &str,
) -> Claim<String> {
    keys.claim(conn, user, key, print).await.unwrap()
}

async fn claim(pool: &PgPool, keys: &Keys, user: Uuid, key: &str, print: &str) -> Claim<String> {
    claim_result(pool, keys, user, key, print).await.unwrap()
}

#[tokio::test]
async fn a_key_keeps_its_first_requests_outcome_for_that_request_only() {
    let (pool, database) = keys_table().await;
    let keys = Keys::new("keys", "made");
    let (user, other_user, made) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());

    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(
        claim_on(&mut conn, &keys, user, "k1", "a").await,
        Claim::New
    );
    keys.record_success(&mut conn, user, "k1", made)
        .await
        .unwrap();
    assert_eq!(
        claim_on(&mut conn, &keys, user, "k2", "a").await,
        Claim::New
    );
    keys.record_refusal(&mut conn, user, "k2", "out-of-stock", "none left")
        .await
        .unwrap();
    drop(conn);

    assert_eq!(
        claim(&pool, &keys, user, "k1", "a").await,
        Claim::Succeeded(made)
    );
    assert_eq!(
        claim(&pool, &keys, user, "k2", "a").await,
        Claim::Refused {
            reason: "out-of-stock".into(),
            message: "none left".into()
        }
    );
    assert_eq!(claim(&pool, &keys, user, "k1", "b").await, Claim::Reused);
    // Keys are per user.
    assert_eq!(claim(&pool, &keys, other_user, "k1", "b").await, Claim::New);
    let rows: i64 = sqlx::query_scalar("select count(*) from keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 3);

    // A key committed without its outcome is an error, never a fresh start.
    assert!(
        claim_result(&pool, &keys, other_user, "k1", "b")
            .await
            .is_err()
    );

    sqlx::query("update keys set created_at = now() - interval '49 hours' where key = 'k1'")
        .execute(&pool)
        .await
        .unwrap();
    let pruned = sqlx::query(keys.prune()).execute(&pool).await.unwrap();
    assert_eq!(pruned.rows_affected(), 2);
    pool.close().await;
    platform::database::drop_database(&database).await.unwrap();
}

#[tokio::test]
async fn a_second_claim_waits_for_the_first_requests_transaction() {
    let (pool, database) = keys_table().await;
    let keys = std::sync::Arc::new(Keys::new("keys", "made"));
    let (user, made) = (Uuid::new_v4(), Uuid::new_v4());

    let mut first = pool.begin().await.unwrap();
    assert_eq!(
        claim_on(&mut first, &keys, user, "k", "a").await,
        Claim::New
    );
    let second = tokio::spawn({
        let (pool, keys) = (pool.clone(), keys.clone());
        async move { claim(&pool, &keys, user, "k", "a").await }
    });
    // The second INSERT blocks on the first transaction's row lock until it commits.
    eventually(
        Duration::from_secs(10),
        "the second claim waiting on a lock",
        || {
            let pool = pool.clone();
            async move {
                let waiting: i64 = sqlx::query_scalar(
                    "select count(*) from pg_stat_activity
                 where datname = current_database() and wait_event_type = 'Lock'",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                (waiting == 1).then_some(())
            }
        },
    )
    .await;
    assert!(!second.is_finished());
    keys.record_success(&mut first, user, "k", made)
        .await
        .unwrap();
    first.commit().await.unwrap();
    assert_eq!(second.await.unwrap(), Claim::Succeeded(made));

    // A first request that rolls back leaves the key to the next one.
    let mut rolled_back = pool.begin().await.unwrap();
    assert_eq!(
        claim_on(&mut rolled_back, &keys, user, "k2", "a").await,
        Claim::New
    );
    rolled_back.rollback().await.unwrap();
    assert_eq!(claim(&pool, &keys, user, "k2", "a").await, Claim::New);
    pool.close().await;
    platform::database::drop_database(&database).await.unwrap();
}
