//! The CSV of a statement: `transaction_id,occurred_at,type,amount,balance_after,description`,
//! amounts as decimals (`12.50`), times in RFC 3339 UTC.

use chrono::SecondsFormat;
use proto::money::decimal;

use crate::lines::Line;

pub const HEADER: &str = "transaction_id,occurred_at,type,amount,balance_after,description\n";

/// Appends one row per line to `out`.
pub fn write_rows(lines: &[Line], out: &mut String) {
    for line in lines {
        out.push_str(&format!(
            "{},{},{},{},{},{}\n",
            line.transaction_id,
            line.occurred_at
                .to_rfc3339_opts(SecondsFormat::Micros, true),
            line.kind,
            decimal(line.amount),
            decimal(line.balance_after),
            field(line.description.as_deref().unwrap_or("")),
        ));
    }
}

/// Quotes a text field when needed (RFC 4180), and defuses spreadsheet formulas: a value
/// starting with `=`, `+`, `-` or `@` gets a leading apostrophe.
pub fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("coffee"), "coffee");
        assert_eq!(field("tea, milk"), "\"tea, milk\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=SUM(A1)"), "'=SUM(A1)");
    }

    #[test]
    fn a_row_has_the_six_columns() {
        let line = Line {
            transaction_id: uuid::Uuid::nil(),
            kind: proto::TransactionType::Deposit,
            amount: 1250,
            balance_after: 2500,
            description: Some("top, up".into()),
            occurred_at: chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap(),
        };
        let mut out = String::new();
        write_rows(&[line], &mut out);
        assert_eq!(
            out,
            "00000000-0000-0000-0000-000000000000,2026-11-18T11:06:40.000000Z,deposit,12.50,25.00,\"top, up\"\n"
        );
    }
}
