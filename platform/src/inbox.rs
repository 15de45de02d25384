//! The inbox: message ids a consumer has applied, recorded in the same database transaction
//! as the effect, so a redelivered or republished message takes effect once.
//!
//! Every service using it has `inbox (message_id text primary key, queue text, processed_at)`.

use sqlx::{PgConnection, PgPool};

/// Records `message_id` as applied; `false` when it was already (then do nothing).
pub async fn record(conn: &mut PgConnection, message_id: &str, queue: &str) -> sqlx::Result<bool> {
    let inserted =
        sqlx::query("insert into inbox (message_id, queue) values ($1, $2) on conflict do nothing")
            .bind(message_id)
            .bind(queue)
            .execute(conn)
            .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Whether `message_id` was recorded (for effects outside the database, such as an email,
/// which are checked before and recorded after).
pub async fn contains(pool: &PgPool, message_id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("select exists (select 1 from inbox where message_id = $1)")
        .bind(message_id)
        .fetch_one(pool)
        .await
}
