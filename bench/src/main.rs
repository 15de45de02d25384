//! Load generators and baselines for `bench/run` (not part of the test run).
//!
//! - `http URL TOKENS CONNECTIONS SECONDS [BODY]`: GET (or POST `BODY`) as fast as
//!   `CONNECTIONS` keep-alive connections allow for `SECONDS`, connection n acting with token
//!   n of the comma-separated TOKENS; waits for the requests in flight at the end, so the
//!   counts are exact. Prints `ok errors rps p50_ms p99_ms`.
//! - `open URL TOKENS RATE SECONDS BODY`: POSTs `BODY` (GETs for an empty one) at a fixed
//!   RATE per second for SECONDS (open loop: on a schedule, not when answers come), request
//!   n acting with token n; latencies from each request's scheduled start. Prints
//!   `sent ok errors p50_ms p99_ms p999_ms`.
//! - `broker AMQP_URL MESSAGES`: the broker's own rates on one quorum queue: publish with
//!   confirms, then consume with acks. Prints `publish_per_s consume_per_s`.
//! - `requests AMQP_URL WALLET_DATABASE_URL STATEMENT_DATABASE_URL USERS COUNT`: publishes
//!   COUNT deposits of 1 to `wallet.transaction-requests`, spread over the comma-separated
//!   USERS, and waits until the wallet applied all of them, its outbox published their events
//!   and statement-service wrote their lines. Prints
//!   `published_per_s applied_per_s relayed_per_s lines_per_s`, each from the first publish.
//! - `lag URL TOKENS STATEMENT_DATABASE_URL RATE SECONDS`: deposits at RATE per second and
//!   measures, for each, the time from the HTTP response to its statement line. Prints
//!   `deposits p50_ms p99_ms`.
//! - `orders URL TOKEN SELLER_TOKEN COUNT CONNECTIONS PRODUCTS`: the seller puts up PRODUCTS
//!   catalogue products, TOKEN's user places COUNT orders of them (round robin) and waits
//!   until all are paid. Prints `orders_per_s`.
//! - `settle AMQP_URL DATABASE_PREFIX`: waits until the platform has settled, as the fault
//!   run does after its load (see `fault_verdict::settle`); `bench/run` calls it before each
//!   write measure. The databases are named as for `faults`.
//! - `faults GATEWAYS TOKENS USER_IDS AMQP_URL DATABASE_PREFIX SECONDS [ADMIN_TOKEN]`: the
//!   load and the verdict of `bench/faults` (see `fault_load` and `fault_verdict`): a steady
//!   stream of deposits, requests and orders of products (some shipped and delivered by
//!   ADMIN_TOKEN's admin) for SECONDS through the comma-separated GATEWAYS, then
//!   waits until the platform settles and prints the summary. Exits with an error if
//!   anything was lost, duplicated or left inconsistent. The databases are DATABASE_PREFIX
//!   followed by `wallet`, `statement` and `orders`.
//! - `journey URL USERS CONCURRENCY`: the many-users journey of the memory measure (see
//!   `journey`): USERS users sign up, CONCURRENCY at a time, and each makes ten requests.
//!   Prints `users requests failed_users seconds`; exits with an error if any user failed.
//! - `pages WEB_URL API_URL STATEMENT_DATABASE_URL TRANSACTIONS ROUNDS PATHS`: a new user
//!   gets TRANSACTIONS deposits, then each of the comma-separated PATHS of the web app is
//!   fetched ROUNDS times, signed in (see `pages`). Prints `path p50_ms max_ms` per page.
//! - `otlp-sink ADDR`: an OTLP/gRPC trace receiver on ADDR that counts and drops spans, for
//!   `bench/tracing`; prints the count when stopped (SIGTERM).

// Rates and latencies are measurements, not money: floating point is right here.
#![allow(clippy::float_arithmetic)]

mod amqp_rates;
mod fault_load;
mod fault_verdict;
mod http_load;
mod journey;
mod latency;
mod open_load;
mod otlp_sink;
mod pages;
mod pipeline;

use anyhow::{Context, bail};
// Linked for its global allocator (mimalloc, see `platform`), the one every program uses.
use platform as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |index: usize| -> anyhow::Result<&str> {
        args.get(index).map(String::as_str).with_context(|| {
            format!("missing argument {index}; see the usage in bench/src/main.rs")
        })
    };
    let number = |index: usize| -> anyhow::Result<u64> {
        arg(index)?
            .parse()
            .with_context(|| format!("argument {index} must be a number"))
    };
    match arg(0)? {
        "http" => {
            let report = http_load::run(
                arg(1)?,
                &list(arg(2)?),
                usize::try_from(number(3)?)?,
                number(4)?,
                args.get(5).cloned(),
            )
            .await?;
            println!("{report}");
        }
        "open" => {
            let report = open_load::run(
                arg(1)?,
                &list(arg(2)?),
                number(3)?,
                number(4)?,
                arg(5)?.into(),
            )
            .await?;
            println!("{report}");
        }
        "broker" => {
            let (publish, consume) = amqp_rates::broker(arg(1)?, number(2)?).await?;
            println!("{publish:.0} {consume:.0}");
        }
        "requests" => {
            let rates =
                amqp_rates::wallet_requests(arg(1)?, arg(2)?, arg(3)?, &list(arg(4)?), number(5)?)
                    .await?;
            println!(
                "{:.0} {:.0} {:.0} {:.0}",
                rates.published, rates.applied, rates.relayed, rates.lines
            );
        }
        "lag" => {
            let (count, p50, p99) =
                pipeline::statement_lag(arg(1)?, &list(arg(2)?), arg(3)?, number(4)?, number(5)?)
                    .await?;
            println!("{count} {p50:.1} {p99:.1}");
        }
        "orders" => {
            let rate = pipeline::orders(
                arg(1)?,
                arg(2)?,
                arg(3)?,
                number(4)?,
                usize::try_from(number(5)?)?,
                number(6)?,
            )
            .await?;
            println!("{rate:.0}");
        }
        "settle" => {
            let sources = fault_verdict::Sources::connect(arg(2)?, arg(1)?).await?;
            fault_verdict::settle(&sources).await?;
        }
        "faults" => {
            let users = fault_load::Users {
                tokens: list(arg(2)?).into_iter().map(str::to_owned).collect(),
                ids: list(arg(3)?)
                    .into_iter()
                    .map(str::parse)
                    .collect::<Result<_, _>>()?,
                admin: args.get(7).cloned(),
            };
            let gateways = list(arg(1)?).into_iter().map(str::to_owned).collect();
            let sources = fault_verdict::Sources::connect(arg(5)?, arg(4)?).await?;
            let sent = fault_load::run(gateways, users, arg(4)?.to_owned(), number(6)?).await?;
            eprintln!("load done; waiting for the platform to settle");
            let settled = fault_verdict::settle(&sources).await?;
            eprintln!(
                "settled {:.1} s after the last answer",
                settled.as_secs_f64()
            );
            let problems = fault_verdict::check(&sources, &sent).await?;
            if problems > 0 {
                bail!("{problems} problems: see the summary above");
            }
        }
        "pages" => {
            let rounds = usize::try_from(number(5)?)?;
            let paths = list(arg(6)?);
            let timings = pages::run(arg(1)?, arg(2)?, arg(3)?, number(4)?, rounds, &paths).await?;
            for page in timings {
                println!("{} {:.1} {:.1}", page.path, page.p50_ms, page.max_ms);
            }
        }
        "otlp-sink" => otlp_sink::run(arg(1)?).await?,
        "journey" => {
            let url: hyper::Uri = arg(1)?.parse().context("URL")?;
            let authority = url.authority().context("the URL names no host")?;
            let report =
                journey::run(authority.as_str(), number(2)?, usize::try_from(number(3)?)?).await?;
            println!(
                "{} {} {} {:.1}",
                report.users, report.requests, report.failed_users, report.seconds
            );
            if report.failed_users > 0 {
                bail!(
                    "{} users failed: see the first error above",
                    report.failed_users
                );
            }
        }
        other => bail!("unknown command {other:?}; see bench/src/main.rs"),
    }
    Ok(())
}

/// A comma-separated list (of tokens or user ids).
fn list(text: &str) -> Vec<&str> {
    text.split(',').filter(|item| !item.is_empty()).collect()
}
