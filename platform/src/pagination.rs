//! Lists are newest first, one page at a time: `limit` (default 50, at most 200) and an
//! opaque `cursor` naming the position `(time, id)` of the previous page's last row.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::QueryAs;
use sqlx::{FromRow, PgPool, Postgres};
use uuid::Uuid;

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

/// What is wrong with a request's fields: each field's name and why.
pub type Violations = Vec<(&'static str, String)>;

/// A page request: how many rows, and after which position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

impl PageRequest {
    /// Reads a gRPC `limit` (0 means the default) and cursor; the violations name the field.
    pub fn parse(limit: u32, cursor: Option<&str>) -> Result<Self, Violations> {
        let mut violations = Vec::new();
        let limit = match limit {
            0 => DEFAULT_PAGE,
            limit if limit > MAX_PAGE => {
                violations.push(("limit", format!("must be between 1 and {MAX_PAGE}")));
                MAX_PAGE
            }
            limit => limit,
        };
        let after = match cursor.map(decode_cursor) {
            Some(Err(reason)) => {
                violations.push(("cursor", reason));
                None
            }
            Some(Ok(after)) => Some(after),
            None => None,
        };
        if violations.is_empty() {
            Ok(Self { limit, after })
        } else {
            Err(violations)
        }
    }

    /// Reads a search text `q` (trimmed; blank means none; at most `max_chars` characters,
    /// none a control character) with the page of [`PageRequest::parse`]: the lists that can
    /// be searched.
    pub fn parse_search(
        q: Option<String>,
        max_chars: usize,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Option<String>, Self), Violations> {
        let q = q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
        let mut violations = Vec::new();
        if q.as_ref()
            .is_some_and(|q| q.chars().count() > max_chars || q.chars().any(char::is_control))
        {
            violations.push((
                "q",
                format!("must be at most {max_chars} characters, none a control character"),
            ));
        }
        match Self::parse(limit, cursor) {
            Ok(page) if violations.is_empty() => Ok((q, page)),
            Ok(_) => Err(violations),
            Err(more) => {
                violations.extend(more);
                Err(violations)
            }
        }
    }

    /// The row count to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// Runs `query`, a list newest first whose last three parameters are the position to
    /// start after (`$n::timestamptz`, `$n+1` the id; both null on the first page) and the
    /// `limit`; binds them, and returns the page and the next page's cursor. `position`
    /// names a row's `(time, id)`, the order the query sorts by.
    pub async fn fetch_page<'q, T>(
        &self,
        query: QueryAs<'q, Postgres, T, PgArguments>,
        pool: &PgPool,
        position: impl Fn(&T) -> (DateTime<Utc>, Uuid),
    ) -> sqlx::Result<(Vec<T>, Option<String>)>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let mut rows = query
            .bind(self.after.map(|(at, _)| at))
            .bind(self.after.map(|(_, id)| id))
            .bind(self.fetch())
            .fetch_all(pool)
            .await?;
        let next = finish_page(&mut rows, self, position);
        Ok((rows, next))
    }
}

/// A `like` / `ilike` pattern matching any text that contains `text` as it is (`%`, `_` and
/// `\` in it match only themselves).
pub fn contains_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Trims `rows` (fetched with [`PageRequest::fetch`]) to the page and returns the cursor of
/// the next page, if there is one.
fn finish_page<T>(
    rows: &mut Vec<T>,
    page: &PageRequest,
    position: impl Fn(&T) -> (DateTime<Utc>, Uuid),
) -> Option<String> {
    let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
    if rows.len() <= limit {
        return None;
    }
    rows.truncate(limit);
    rows.last().map(|last| {
        let (at, id) = position(last);
        encode_cursor(at, id)
    })
}

/// Cursors are opaque to clients: the position `(time, id)` of a page's last row.
pub fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}_{id}", at.timestamp_micros()))
}

pub fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid), String> {
    let invalid = || "is not a cursor this API returned".to_owned();
    let text = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(text).map_err(|_| invalid())?;
    let (micros, id) = text.split_once('_').ok_or_else(invalid)?;
    // Rows are written between 1970 and 9999, so no cursor the API returned is outside; a
    // forged one outside could even be beyond what PostgreSQL can compare (a 500).
    let at = micros
        .parse()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .filter(|at| crate::timestamp::accepted_instant(*at).is_ok())
        .ok_or_else(invalid)?;
    Ok((at, Uuid::parse_str(id).map_err(|_| invalid())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contains_pattern_matches_wildcards_as_themselves() {
        assert_eq!(contains_pattern("ada"), "%ada%");
        assert_eq!(contains_pattern(r"50%_off\"), r"%50\%\_off\\%");
    }

    #[test]
    fn a_cursor_decodes_to_the_position_it_encodes() {
        let at = DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(at, id)), Ok((at, id)));
        assert!(decode_cursor("garbage!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("12_not-a-uuid")).is_err());
        let forged = |micros: i64| URL_SAFE_NO_PAD.encode(format!("{micros}_{id}"));
        for outside in [i64::MIN, -1, 253_402_300_800_000_000, i64::MAX] {
            assert!(decode_cursor(&forged(outside)).is_err(), "{outside}");
        }
        assert!(decode_cursor(&forged(0)).is_ok());
    }

    #[test]
    fn a_page_request_defaults_to_50_and_refuses_more_than_200() {
        assert_eq!(PageRequest::parse(0, None).unwrap().limit, 50);
        assert_eq!(PageRequest::parse(200, None).unwrap().limit, 200);
        let violations = PageRequest::parse(201, Some("x")).unwrap_err();
        let fields: Vec<_> = violations.iter().map(|(field, _)| *field).collect();
        assert_eq!(fields, ["limit", "cursor"]);
    }

    #[test]
    fn a_search_is_trimmed_and_refused_when_too_long_or_holding_a_control_character() {
        let search = |q: &str, limit| PageRequest::parse_search(Some(q.into()), 5, limit, None);
        assert_eq!(search("  ada ", 0).unwrap().0.as_deref(), Some("ada"));
        assert_eq!(search("   ", 0).unwrap().0, None);
        assert_eq!(search("ádáda", 0).unwrap().0.as_deref(), Some("ádáda"));
        let fields = |q, limit| -> Vec<&str> {
            search(q, limit)
                .unwrap_err()
                .iter()
                .map(|(field, _)| *field)
                .collect()
        };
        assert_eq!(fields("adaada", 0), ["q"]);
        assert_eq!(fields("a\u{0}a", 201), ["q", "limit"]);
        assert_eq!(fields("ada", 201), ["limit"]);
        let (_, reason) = &search("adaada", 0).unwrap_err()[0];
        assert_eq!(
            reason,
            "must be at most 5 characters, none a control character"
        );
    }

    #[test]
    fn finishing_a_page_keeps_the_limit_and_points_after_its_last_row() {
        let page = PageRequest::parse(2, None).unwrap();
        let at = DateTime::from_timestamp_micros(1_795_000_000_000_000).unwrap();
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let mut rows = ids.clone();
        let next = finish_page(&mut rows, &page, |id| (at, *id));
        assert_eq!(rows, ids[..2]);
        assert_eq!(next, Some(encode_cursor(at, ids[1])));
        let mut short = ids[..2].to_vec();
        assert_eq!(finish_page(&mut short, &page, |id| (at, *id)), None);
    }
}
