//! How long a one-year statement of 100,000 lines takes to generate, and how much memory
//! it needs. Needs the local PostgreSQL; creates and drops a throwaway database.
//!
//!     cargo run --release -p statement-service --example statement_100k

use std::time::Instant;

use chrono::{Duration, Utc};
use statement_service::period::Period;
use statement_service::{MIGRATOR, jobs};
use uuid::Uuid;

const LINES: i64 = 100_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = platform::testing::database_url(&format!(
        "bench_statement_{}",
        platform::testing::unique_id()
    ));
    let pool = platform::database::connect_and_migrate(&url, 4, &MIGRATOR).await?;
    let user = Uuid::new_v4();
    let to = Utc::now().date_naive();
    let from = to - Duration::days(365);

    let started = Instant::now();
    // 100,000 deposits of 1.00 spread evenly over the year.
    sqlx::query(
        "insert into statement_lines (transaction_id, user_id, type, amount, currency, balance_after, description, occurred_at)
         select gen_random_uuid(), $1, 'deposit', 100, 'EUR', n * 100, 'line ' || n,
                $2::timestamptz + (n * interval '315 seconds')
         from generate_series(1, $3) as n",
    )
    .bind(user)
    .bind(from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
    .bind(LINES)
    .execute(&pool)
    .await?;
    println!("inserted {LINES} lines in {:.2?}", started.elapsed());

    let memory_before = peak_resident_kib();
    // Nothing relays this outbox: the job is generated here, directly.
    let outbox = platform::outbox::Outbox::new(pool.clone(), platform::outbox::FALLBACK_POLL);
    // A fresh user: the cap on open jobs (1 is enough) never applies.
    let job = jobs::create(&outbox, user, Period { from, to }, 1).await?;
    let started = Instant::now();
    jobs::generate(&outbox, job.id, false).await?;
    let elapsed = started.elapsed();
    let (line_count, chunks, bytes): (Option<i64>, i64, i64) = sqlx::query_as(
        "select j.line_count, count(f.seq), coalesce(sum(length(f.data)), 0)::bigint
         from statement_jobs j left join statement_files f on f.job_id = j.id where j.id = $1 group by j.line_count",
    )
    .bind(job.id)
    .fetch_one(&pool)
    .await?;
    println!("| lines | chunks | CSV bytes | generation time | peak RSS before → after |");
    println!("|---|---|---|---|---|");
    println!(
        "| {} | {chunks} | {bytes} | {elapsed:.2?} | {} KiB → {} KiB |",
        line_count.unwrap_or(0),
        memory_before,
        peak_resident_kib()
    );
    pool.close().await;
    platform::database::drop_database(&url).await?;
    Ok(())
}

/// The process's peak resident memory (VmHWM), in KiB.
fn peak_resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}
