//! Times on the wire: protobuf `Timestamp` ↔ `chrono` UTC times.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

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
}
