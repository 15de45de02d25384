//! Statement periods: calendar days in UTC, both ends included.

use chrono::{Months, NaiveDate};

/// The longest period a statement may cover.
pub const MAX_YEARS: u32 = 5;
/// Days `from` defaults to before `to`.
pub const DEFAULT_DAYS: i64 = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    /// Parses `from` and `to` (`YYYY-MM-DD`; empty for the defaults: `to` today, `from`
    /// fifteen days before `to`). Refuses a reversed period or one over five years.
    pub fn parse(
        from: &str,
        to: &str,
        today: NaiveDate,
    ) -> Result<Self, Vec<(&'static str, String)>> {
        let day = |field: &'static str, raw: &str| {
            NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
                (
                    field,
                    format!("must be a date written YYYY-MM-DD (got {raw:?})"),
                )
            })
        };
        let to = if to.is_empty() {
            Ok(today)
        } else {
            day("to", to)
        };
        let from = match (&to, from.is_empty()) {
            (Ok(to), true) => Ok(*to - chrono::Duration::days(DEFAULT_DAYS)),
            (Err(_), true) => Ok(today),
            (_, false) => day("from", from),
        };
        let (from, to) = match (from, to) {
            (Ok(from), Ok(to)) => (from, to),
            (from, to) => return Err([from.err(), to.err()].into_iter().flatten().collect()),
        };
        if from > to {
            return Err(vec![("from", format!("must not be after `to` ({to})"))]);
        }
        let earliest = to
            .checked_sub_months(Months::new(12 * MAX_YEARS))
            .unwrap_or(NaiveDate::MIN);
        if from < earliest {
            return Err(vec![(
                "from",
                format!(
                    "the period may cover at most {MAX_YEARS} years (from {earliest} for this `to`)"
                ),
            )]);
        }
        Ok(Self { from, to })
    }

    /// `to − from` in days: 0 for a single day.
    pub fn span_days(self) -> i64 {
        (self.to - self.from).num_days()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_defaults_are_the_fifteen_days_before_today() {
        let today = date("2026-11-21");
        assert_eq!(
            Period::parse("", "", today).unwrap(),
            Period {
                from: date("2026-11-06"),
                to: today
            }
        );
        assert_eq!(
            Period::parse("", "2026-01-16", today).unwrap().from,
            date("2026-01-01")
        );
    }

    #[test]
    fn reversed_malformed_and_over_five_year_periods_are_refused() {
        let today = date("2026-11-21");
        assert!(Period::parse("2026-11-02", "2026-11-01", today).is_err());
        assert!(Period::parse("2026-13-01", "2026-11-01", today).is_err());
        assert!(Period::parse("yesterday", "", today).is_err());
        assert_eq!(Period::parse("bad", "worse", today).unwrap_err().len(), 2);
        assert!(Period::parse("2021-11-20", "2026-11-21", today).is_err());
        assert!(Period::parse("2021-11-21", "2026-11-21", today).is_ok());
    }

    #[test]
    fn the_span_counts_days_between_the_ends() {
        let today = date("2026-11-21");
        assert_eq!(
            Period::parse("2026-11-01", "2026-11-01", today)
                .unwrap()
                .span_days(),
            0
        );
        assert_eq!(
            Period::parse("2026-11-01", "2026-11-16", today)
                .unwrap()
                .span_days(),
            15
        );
    }
}
