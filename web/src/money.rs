//! Amounts as people read and type them: `12.50` for 1250 minor units.

/// `1250` → `12.50`, as the statement CSV writes amounts too.
pub use proto::money::decimal as format;

/// `12.5`, `12.50`, `12` → 1250. At most two decimals; positive; no thousands separators.
pub fn parse(raw: &str) -> Result<i64, String> {
    let raw = raw.trim().replace(',', ".");
    let (units, cents) = raw.split_once('.').unwrap_or((&raw, ""));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if !digits(units) || (!cents.is_empty() && !digits(cents)) || cents.len() > 2 {
        return Err("Enter an amount like 12.50".into());
    }
    let units: i64 = units
        .parse()
        .map_err(|_| "This amount is too large".to_owned())?;
    let cents: i64 = format!("{cents:0<2}").parse().unwrap_or(0);
    let minor = units
        .checked_mul(100)
        .and_then(|value| value.checked_add(cents))
        .ok_or_else(|| "This amount is too large".to_owned())?;
    if minor == 0 {
        return Err("Enter an amount above 0.00".into());
    }
    Ok(minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_amounts_become_minor_units_or_a_readable_reason() {
        assert_eq!(parse("12.5"), Ok(1250));
        assert_eq!(parse(" 12,05 "), Ok(1205));
        assert_eq!(parse("7"), Ok(700));
        assert_eq!(parse("1.234"), Err("Enter an amount like 12.50".into()));
        assert_eq!(parse("abc"), Err("Enter an amount like 12.50".into()));
        assert_eq!(parse("0"), Err("Enter an amount above 0.00".into()));
        assert_eq!(
            parse("999999999999999999999"),
            Err("This amount is too large".into())
        );
    }
}
