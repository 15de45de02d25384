//! CORS for browser apps on other origins (`CORS_ALLOWED_ORIGINS`).
//!
//! Off by default: the API is meant for servers and for the platform's own web app, which
//! calls it from its server, not from the browser. Only listed origins get CORS headers; a
//! wildcard is refused because the API takes bearer tokens, and an exact list keeps a stray
//! site from driving it from a signed-in person's browser.

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The origins allowed to call the API from a browser, checked at start.
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins(Vec<HeaderValue>);

impl AllowedOrigins {
    /// Comma-separated origins (`https://app.example.org,http://localhost:5173`); empty for
    /// none. Each is a scheme, a host and an optional port, without a path.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut origins = Vec::new();
        for origin in raw
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let Some((scheme, rest)) = origin.split_once("://") else {
                return Err(format!(
                    "{origin:?} is not an origin like https://app.example.org"
                ));
            };
            if !matches!(scheme, "http" | "https") {
                return Err(format!("{origin:?}: the scheme must be http or https"));
            }
            if rest.is_empty() || rest.contains(['/', '?', '#', '*', '@']) {
                return Err(format!(
                    "{origin:?}: an origin is a scheme, a host and a port, without a path or wildcard"
                ));
            }
            let value = HeaderValue::from_str(origin)
                .map_err(|_| format!("{origin:?} is not a valid header value"))?;
            origins.push(value);
        }
        Ok(Self(origins))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The layer answering preflights and adding CORS headers for the listed origins.
    pub fn layer(&self) -> CorsLayer {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(self.0.clone()))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static(platform::grpc::REQUEST_ID_HEADER),
            ])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                header::ETAG,
                HeaderName::from_static(platform::grpc::REQUEST_ID_HEADER),
            ])
            .max_age(std::time::Duration::from_secs(600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_read_from_a_comma_separated_list_and_empty_means_none() {
        assert!(AllowedOrigins::parse("").unwrap_or_default().is_empty());
        let origins =
            AllowedOrigins::parse(" https://app.example.org , http://localhost:5173 ").ok();
        assert_eq!(origins.map(|origins| origins.0.len()), Some(2));
    }

    #[test]
    fn a_wildcard_a_path_or_a_bare_host_is_refused_with_the_reason() {
        for (raw, reason) in [
            ("*", "\"*\" is not an origin like https://app.example.org"),
            (
                "app.example.org",
                "\"app.example.org\" is not an origin like https://app.example.org",
            ),
            (
                "https://app.example.org/",
                "\"https://app.example.org/\": an origin is a scheme, a host and a port, without a path or wildcard",
            ),
            (
                "ftp://app.example.org",
                "\"ftp://app.example.org\": the scheme must be http or https",
            ),
        ] {
            assert_eq!(
                AllowedOrigins::parse(raw).err().as_deref(),
                Some(reason),
                "{raw}"
            );
        }
    }
}
