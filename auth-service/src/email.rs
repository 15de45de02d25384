//! Email addresses: trimmed, lowercased and syntactically valid.

/// An email address in its canonical (lowercase) form, so `Ann@X.org` and `ann@x.org` are
/// the same account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let canonical = raw.trim().to_lowercase();
        if canonical.is_empty() {
            return Err("must not be empty".into());
        }
        if canonical.len() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        if !email_address::EmailAddress::is_valid(&canonical) {
            return Err("is not a valid email address".into());
        }
        Ok(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Ann@Example.ORG ").unwrap().as_str(),
            "ann@example.org"
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for raw in ["", "   ", "ann", "ann@", "@example.org", "a b@example.org"] {
            assert!(Email::parse(raw).is_err(), "{raw:?} should be refused");
        }
    }
}
