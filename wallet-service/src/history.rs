//! The balance over time: what a wallet held at the end of each of its last days, for
//! charts. One indexed look-up per day (the day's last transaction, or the last before it),
//! so the cost does not grow with the number of transactions.

use chrono::{Days, NaiveDate, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::LedgerError;

/// Days shown when the caller names none.
pub const DEFAULT_DAYS: u32 = 30;
/// At most a year (a leap year's days).
pub const MAX_DAYS: u32 = 366;

/// How many days a request asks for (none: [`DEFAULT_DAYS`]), 1 to [`MAX_DAYS`].
pub fn parse_days(days: Option<u32>) -> Result<u32, LedgerError> {
    match days {
        None => Ok(DEFAULT_DAYS),
        Some(days @ 1..=MAX_DAYS) => Ok(days),
        Some(_) => Err(LedgerError::Invalid(vec![(
            "days",
            format!("must be between 1 and {MAX_DAYS}"),
        )])),
    }
}

/// The balance at the end of each of the `days` days up to today (UTC), oldest first.
pub async fn balance_by_day(
    pool: &PgPool,
    user_id: Uuid,
    days: u32,
) -> Result<Vec<(NaiveDate, i64)>, LedgerError> {
    let today = Utc::now().date_naive();
    let first = today - Days::new(u64::from(days.saturating_sub(1)));
    // A day ends at the next midnight UTC, whatever the session's time zone.
    let rows = sqlx::query_as(
        "select day::date, coalesce((
                 select balance_after from transactions
                  where user_id = $1 and created_at < (day + interval '1 day') at time zone 'UTC'
                  order by created_at desc, id desc
                  limit 1), 0)
           from generate_series($2::date::timestamp, $3::date::timestamp, interval '1 day') day
          order by day",
    )
    .bind(user_id)
    .bind(first)
    .bind(today)
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_default_to_a_month_and_stop_at_a_year() {
        assert!(matches!(parse_days(None), Ok(DEFAULT_DAYS)));
        assert!(matches!(parse_days(Some(1)), Ok(1)));
        assert!(matches!(parse_days(Some(366)), Ok(366)));
        for refused in [0, 367] {
            let refusal = parse_days(Some(refused));
            assert!(matches!(refusal, Err(LedgerError::Invalid(fields)) if fields[0].0 == "days"));
        }
    }
}
