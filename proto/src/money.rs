//! Amounts written for people: minor units as a decimal with two places (`1250` is `12.50`),
//! as the statement CSV's columns and the web app show them. Money travels everywhere else as
//! integer minor units.

/// `1250` → `12.50`, `5` → `0.05`, `-1999` → `-19.99`.
pub fn decimal(minor_units: i64) -> String {
    let sign = if minor_units < 0 { "-" } else { "" };
    let absolute = minor_units.unsigned_abs();
    format!("{sign}{}.{:02}", absolute / 100, absolute % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_decimals_with_two_places() {
        assert_eq!(decimal(1250), "12.50");
        assert_eq!(decimal(5), "0.05");
        assert_eq!(decimal(0), "0.00");
        assert_eq!(decimal(-1999), "-19.99");
        assert_eq!(decimal(i64::MIN), "-92233720368547758.08");
    }
}
