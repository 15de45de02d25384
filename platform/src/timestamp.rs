//! Times on the wire: protobuf `Timestamp` ↔ `chrono` UTC times, and the range of days the
//! platform accepts from outside.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use prost_types::Timestamp;

/// The years a date or time given to the platform may fall in (UTC). Outside them a date is
/// certainly a mistake or an attack, and the arithmetic on it (a day added, fifteen days
/// subtracted) could leave the range of `chrono` or PostgreSQL: it is refused at the door.
pub const ACCEPTED_YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

/// Why a date or time outside [`ACCEPTED_YEARS`] is refused, for a field violation.
pub const OUT_OF_RANGE: &str = "must be between 1970-01-01 and 9999-12-31 (UTC)";

/// `day` if it is within [`ACCEPTED_YEARS`], else the reason.
pub fn accepted_day(day: NaiveDate) -> Result<NaiveDate, &'static str> {
    if ACCEPTED_YEARS.contains(&day.year()) {
        Ok(day)
    } else {
        Err(OUT_OF_RANGE)
    }
}

/// `at` if its UTC day is within [`ACCEPTED_YEARS`], else the reason.
pub fn accepted_instant(at: DateTime<Utc>) -> Result<DateTime<Utc>, &'static str> {
    accepted_day(at.date_naive()).map(|_| at)
}

/// A time a client sent over gRPC, if valid and within [`ACCEPTED_YEARS`], else the reason.
pub fn accepted_from_proto(at: Timestamp) -> Result<DateTime<Utc>, &'static str> {
    let nanos = u32::try_from(at.nanos)
        .ok()
        .filter(|nanos| *nanos < 1_000_000_000);
    nanos
        .and_then(|nanos| DateTime::from_timestamp(at.seconds, nanos))
        .ok_or(OUT_OF_RANGE)
        .and_then(accepted_instant)
}

pub fn to_proto(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// `None` for a timestamp outside chrono's range.
pub fn from_proto(at: Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_survives_the_round_trip_to_the_microsecond() {
        let at = DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap();
        assert_eq!(from_proto(to_proto(at)), Some(at));
    }

    #[test]
    fn only_times_from_1970_to_9999_are_accepted() {
        let day = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
        for inside in ["1970-01-01", "2024-02-29", "9999-12-31"] {
            assert_eq!(accepted_day(day(inside)), Ok(day(inside)));
        }
        for outside in [
            "-262143-01-05",
            "0000-01-01",
            "1969-12-31",
            "+10000-01-01",
            "+262142-12-31",
        ] {
            assert_eq!(accepted_day(day(outside)), Err(OUT_OF_RANGE), "{outside}");
        }
        let last = day("9999-12-31")
            .and_hms_micro_opt(23, 59, 59, 999_999)
            .unwrap()
            .and_utc();
        assert_eq!(accepted_from_proto(to_proto(last)), Ok(last));
        for (seconds, nanos) in [
            (-1, 0),
            (253_402_300_800, 0),
            (i64::MAX, 0),
            (i64::MIN, 0),
            (0, -1),
            (0, 1_000_000_000),
        ] {
            assert_eq!(
                accepted_from_proto(Timestamp { seconds, nanos }),
                Err(OUT_OF_RANGE),
                "{seconds}.{nanos}"
            );
        }
    }
}
