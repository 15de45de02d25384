//! Money: integer minor units (cents) of the one currency wallets hold. Never a float.

/// The currency of every wallet.
pub const CURRENCY: &str = "EUR";
/// The largest amount one transaction may move (10,000,000.00 EUR).
pub const MAX_AMOUNT: i64 = 1_000_000_000;

/// A positive amount of minor units, at most [`MAX_AMOUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(i64);

impl Amount {
    pub fn parse(minor_units: i64) -> Result<Self, String> {
        if minor_units <= 0 {
            return Err("must be a positive number of minor units (cents)".into());
        }
        if minor_units > MAX_AMOUNT {
            return Err(format!("must be at most {MAX_AMOUNT} minor units"));
        }
        Ok(Self(minor_units))
    }

    pub fn minor_units(self) -> i64 {
        self.0
    }
}

/// Accepts no currency (the wallet's) or exactly the wallet's.
pub fn check_currency(currency: Option<&str>) -> Result<(), String> {
    match currency {
        None => Ok(()),
        Some(CURRENCY) => Ok(()),
        Some(other) => Err(format!(
            "must be {CURRENCY}, the wallet's currency (got {other:?})"
        )),
    }
}

/// Parses a decimal number of major units, as written in JSON (`10.5`, `3`, `0.07`), into
/// minor units, exactly: no floating point is involved, and more than two decimals,
/// exponents or signs are refused.
pub fn minor_units_from_decimal(text: &str) -> Result<i64, String> {
    let invalid = || format!("{text:?} is not an amount with at most two decimals");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > 2
        || (text.contains('.') && fraction.is_empty())
    {
        return Err(invalid());
    }
    let whole: i64 = whole.parse().map_err(|_| invalid())?;
    let cents: i64 = format!("{fraction:0<2}").parse().map_err(|_| invalid())?;
    whole
        .checked_mul(100)
        .and_then(|minor| minor.checked_add(cents))
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_must_be_positive_and_at_most_the_maximum() {
        assert!(Amount::parse(0).is_err());
        assert!(Amount::parse(-5).is_err());
        assert!(Amount::parse(MAX_AMOUNT + 1).is_err());
        assert_eq!(Amount::parse(MAX_AMOUNT).unwrap().minor_units(), MAX_AMOUNT);
        assert_eq!(Amount::parse(1).unwrap().minor_units(), 1);
    }

    #[test]
    fn only_the_wallet_currency_is_accepted() {
        assert!(check_currency(None).is_ok());
        assert!(check_currency(Some("EUR")).is_ok());
        assert!(check_currency(Some("USD")).is_err());
        assert!(check_currency(Some("eur")).is_err());
    }

    #[test]
    fn decimals_convert_to_minor_units_exactly() {
        assert_eq!(minor_units_from_decimal("10.5"), Ok(1050));
        assert_eq!(minor_units_from_decimal("10.50"), Ok(1050));
        assert_eq!(minor_units_from_decimal("10"), Ok(1000));
        assert_eq!(minor_units_from_decimal("0.07"), Ok(7));
        assert_eq!(minor_units_from_decimal("0.1"), Ok(10));
        for bad in [
            "10.505",
            "-1",
            "1e3",
            "",
            ".5",
            "5.",
            "1.2.3",
            "abc",
            "99999999999999999999",
        ] {
            assert!(minor_units_from_decimal(bad).is_err(), "{bad:?}");
        }
    }
}
