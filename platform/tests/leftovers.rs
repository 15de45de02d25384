//! Test resources that a failed or killed test left behind are removed by later tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use platform::testing::{
    Authenticated, Vhost, database_url, management_api, remove_leftovers, unique_id,
};
use secrecy::ExposeSecret;
use sqlx::Connection;

#[tokio::test]
async fn vhosts_and_databases_left_by_tests_more_than_an_hour_ago_are_removed() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let two_hours_ago = (now - Duration::from_secs(7200)).as_secs();
    let random = unique_id();
    let random = random.split_once('_').unwrap().1;
    let old = format!("t_{two_hours_ago}_{random}");
    let recent = format!("t_{}", unique_id());

    let old_vhost = Vhost::create(&old).await.unwrap();
    let recent_vhost = Vhost::create(&recent).await.unwrap();
    let mut admin = sqlx::PgConnection::connect(database_url("postgres").expose_secret())
        .await
        .unwrap();
    for database in [format!("{old}_wallet"), format!("{recent}_wallet")] {
        sqlx::query(&format!("create database \"{database}\""))
            .execute(&mut admin)
            .await
            .unwrap();
    }

    remove_leftovers().await;

    assert!(!vhost_exists(&old_vhost.name).await);
    assert!(vhost_exists(&recent_vhost.name).await);
    let databases: Vec<String> = sqlx::query_scalar(
        "select datname from pg_database where datname in ($1, $2) order by datname",
    )
    .bind(format!("{old}_wallet"))
    .bind(format!("{recent}_wallet"))
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(databases, [format!("{recent}_wallet")]);

    platform::database::drop_database(&database_url(&format!("{recent}_wallet")))
        .await
        .unwrap();
    recent_vhost.delete().await.unwrap();
}

async fn vhost_exists(name: &str) -> bool {
    let status = reqwest::Client::new()
        .get(format!("{}/vhosts/{name}", management_api()))
        .authenticated()
        .send()
        .await
        .expect("the management API answers")
        .status();
    match status {
        reqwest::StatusCode::OK => true,
        reqwest::StatusCode::NOT_FOUND => false,
        other => panic!("unexpected status {other} for vhost {name}"),
    }
}
