//! Statement periods: calendar days in UTC, both ends included.
//!
//! A period's days are within 1970 to 9999 (`platform::timestamp::ACCEPTED_YEARS`): a day
//! outside is refused as the field's violation, and every computation on days is checked, so
//! that no date a client can write reaches an overflow.

use chrono::{DateTime, Days, Months, NaiveDate, NaiveTime, Utc};

/// The longest period a statement may cover.
pub const MAX_YEARS: u32 = 5;
/// Days `from` defaults to before `to`.
pub const DEFAULT_DAYS: u64 = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    /// Parses `from` and `to` (`YYYY-MM-DD`; empty for the defaults: `to` today, `from`
    /// fifteen days before `to`). Refuses a day outside 1970 to 9999, a reversed period or one
    /// over five years.
    pub fn parse(
        from: &str,
        to: &str,
        today: NaiveDate,
    ) -> Result<Self, Vec<(&'static str, String)>> {
        let day = |field: &'static str, raw: &str| {
            let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
                (
                    field,
                    format!("must be a date written YYYY-MM-DD (got {raw:?})"),
                )
            })?;
            platform::timestamp::accepted_day(day).map_err(|reason| (field, reason.to_owned()))
        };
        let to = if to.is_empty() {
            Ok(today)
        } else {
            day("to", to)
        };
        let from = match (&to, from.is_empty()) {
            // Early in 1970 the default reaches back no further than the first day.
            (Ok(to), true) => Ok(to
                .checked_sub_days(Days::new(DEFAULT_DAYS))
                .unwrap_or(NaiveDate::MIN)
                .max(first_day())),
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
        self.to.signed_duration_since(self.from).num_days()
    }

    /// The first instant of the period (UTC).
    pub fn start(self) -> DateTime<Utc> {
        start_of(self.from)
    }

    /// The first instant after the period (UTC): the start of the day after `to`, or the end
    /// of time if `to` is the last day there is.
    pub fn end(self) -> DateTime<Utc> {
        self.to
            .checked_add_days(Days::new(1))
            .map_or(DateTime::<Utc>::MAX_UTC, start_of)
    }
}

/// The first instant of `day` (UTC).
pub fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
}

/// The first day a period may start on.
fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(*platform::timestamp::ACCEPTED_YEARS.start(), 1, 1)
        .unwrap_or(NaiveDate::MIN)
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
    fn days_outside_1970_to_9999_are_refused_and_no_date_overflows() {
        let today = date("2026-11-21");
        for outside in [
            "-262143-01-05",
            "+262142-12-31",
            "-0001-12-31",
            "0000-01-01",
            "1969-12-31",
            "+10000-01-01",
        ] {
            for (from, to, field) in [("", outside, "to"), (outside, "", "from")] {
                let violations = Period::parse(from, to, today).unwrap_err();
                assert_eq!(violations.len(), 1, "{from} {to}");
                assert_eq!(violations[0].0, field, "{from} {to}");
                assert_eq!(violations[0].1, platform::timestamp::OUT_OF_RANGE);
            }
        }
        // Five-digit years need their sign to be read at all: without, not a date.
        assert_eq!(
            Period::parse("", "10000-01-01", today).unwrap_err()[0].0,
            "to"
        );
        let last = Period::parse("", "9999-12-31", today).unwrap();
        assert_eq!(last.from, date("9999-12-16"));
        assert_eq!(
            last.end(),
            start_of(date("9999-12-31")) + chrono::Duration::days(1)
        );
        // Early in 1970 the default `from` stops at its first day.
        let first = Period::parse("", "1970-01-05", today).unwrap();
        assert_eq!(
            (first.from, first.to),
            (date("1970-01-01"), date("1970-01-05"))
        );
        let extreme = Period {
            from: NaiveDate::MIN,
            to: NaiveDate::MAX,
        };
        assert_eq!(extreme.end(), DateTime::<Utc>::MAX_UTC);
        assert!(extreme.span_days() > 0);
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
