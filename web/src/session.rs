//! Sessions and CSRF protection, in one middleware in front of every page.
//!
//! - The access token lives in the `wp_access` cookie, the refresh token in `wp_refresh`:
//!   both `HttpOnly` (no script can read them), `SameSite=Lax` (not sent with cross-site
//!   posts) and `Secure` when the request came over TLS (as the proxy's `X-Forwarded-Proto`
//!   says; a plain-HTTP `localhost` must keep working). The access cookie expires a little
//!   before the token does, so an expired token is never sent: when only the refresh cookie
//!   is left, the middleware refreshes first and sets the new pair on the answer. Pages
//!   never refresh on their own, so one request spends a refresh token at most once.
//! - CSRF: a random token in the `wp_csrf` cookie, repeated in a hidden field of every form
//!   (double submit). Every `POST` is checked here, before any handler, so no form can
//!   forget: another site can make a browser post, but cannot read the cookie to fill in
//!   the field.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::api::AccessToken;
use crate::pages::layout;
use crate::token_claims::Claims;

const ACCESS: &str = "wp_access";
const REFRESH: &str = "wp_refresh";
const CSRF: &str = "wp_csrf";
/// The hidden form field that repeats the CSRF cookie.
pub const CSRF_FIELD: &str = "csrf";
/// The access cookie expires this long before its token, so that a token about to expire
/// is refreshed rather than refused halfway through a page.
const ACCESS_MARGIN_SECS: i64 = 30;
/// The refresh cookie's lifetime (the refresh token's default lifetime at auth-service).
const REFRESH_MAX_AGE_SECS: i64 = 30 * 24 * 3600;
/// The largest form body read for the CSRF check (the gateway's own limit).
const FORM_LIMIT: usize = 64 * 1024;

/// What a request knows about its person: the CSRF token always, the access token when
/// signed in.
#[derive(Clone)]
pub struct Session {
    pub csrf: String,
    pub access: Option<String>,
}

/// A page that needs a signed-in person: without a session it redirects to sign-in.
pub struct SignedIn {
    pub token: String,
    pub csrf: String,
    /// Who the token names and whether it carries the admin role, for what pages show.
    pub claims: Claims,
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match session.access {
            Some(token) => Ok(Self {
                claims: Claims::read(&token),
                token,
                csrf: session.csrf,
            }),
            None => Err(to_sign_in(parts.uri.path())),
        }
    }
}

/// To the sign-in page, coming back to `path` after.
pub fn to_sign_in(path: &str) -> Response {
    let next = serde_urlencoded::to_string([("next", path)]).unwrap_or_default();
    Redirect::to(&format!("/sign-in?{next}")).into_response()
}

/// Cookies to set or clear on the answer.
#[derive(Clone, Default)]
pub struct CookieChanges(Vec<String>);

impl CookieChanges {
    /// Sets the session cookies for `tokens` (after sign-in, sign-up or refresh).
    pub fn signed_in(tokens: &AccessToken, secure: bool) -> Self {
        let access_age = (tokens.expires_in - ACCESS_MARGIN_SECS).max(1);
        Self(vec![
            cookie(ACCESS, &tokens.access_token, access_age, secure),
            cookie(REFRESH, &tokens.refresh_token, REFRESH_MAX_AGE_SECS, secure),
        ])
    }

    /// Clears the session cookies (sign-out, or a session the API refused).
    pub fn signed_out(secure: bool) -> Self {
        Self(vec![
            cookie(ACCESS, "", 0, secure),
            cookie(REFRESH, "", 0, secure),
        ])
    }

    pub fn apply(self, response: &mut Response) {
        for cookie in self.0 {
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(SET_COOKIE, value);
            }
        }
    }
}

impl IntoResponseParts for CookieChanges {
    type Error = std::convert::Infallible;

    fn into_response_parts(
        self,
        mut parts: axum::response::ResponseParts,
    ) -> Result<axum::response::ResponseParts, Self::Error> {
        for cookie in self.0 {
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                parts.headers_mut().append(SET_COOKIE, value);
            }
        }
        Ok(parts)
    }
}

use axum::response::IntoResponseParts;

fn cookie(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

/// Whether the browser reached us over TLS (through a proxy that says so).
pub fn is_secure(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// The value of cookie `name` in the request.
fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

fn new_csrf_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The middleware: CSRF check on posts, refresh when only the refresh cookie is left, the
/// [`Session`] for the handlers, and the cookies to set on the way out.
pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let secure = is_secure(request.headers());
    let known_csrf = read_cookie(request.headers(), CSRF);
    let csrf = known_csrf.clone().unwrap_or_else(new_csrf_token);
    let (mut parts, body) = request.into_parts();

    let body = if parts.method == Method::POST {
        let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
            return layout::refused(StatusCode::PAYLOAD_TOO_LARGE, "This form is too large.");
        };
        if !csrf_matches(known_csrf.as_deref(), &bytes) {
            tracing::warn!(path = %parts.uri.path(), "a form without a valid CSRF token was refused");
            return layout::refused(
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this site. Go back, reload the page and try again.",
            );
        }
        Body::from(bytes)
    } else {
        body
    };

    let mut changes = CookieChanges::default();
    let mut access = read_cookie(&parts.headers, ACCESS);
    if access.is_none()
        && let Some(refresh) = read_cookie(&parts.headers, REFRESH)
    {
        match state.api.refresh(&refresh).await {
            Ok(tokens) => {
                access = Some(tokens.access_token.clone());
                changes = CookieChanges::signed_in(&tokens, secure);
            }
            Err(problem) if problem.is_unauthorized() => {
                changes = CookieChanges::signed_out(secure);
            }
            // The API is away: the page will say so; keep the refresh token for later.
            Err(_) => {}
        }
    }
    parts.extensions.insert(Session {
        csrf: csrf.clone(),
        access,
    });
    let mut response = next.run(Request::from_parts(parts, body)).await;
    changes.apply(&mut response);
    if known_csrf.is_none() {
        let value = format!(
            "{CSRF}={csrf}; Path=/; HttpOnly; SameSite=Lax{}",
            if secure { "; Secure" } else { "" }
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    response
}

/// The form's `csrf` field equals the cookie (in constant time).
fn csrf_matches(cookie: Option<&str>, form: &Bytes) -> bool {
    let Some(cookie) = cookie else {
        return false;
    };
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(form).unwrap_or_default();
    fields
        .iter()
        .find(|(name, _)| name == CSRF_FIELD)
        .is_some_and(|(_, value)| bool::from(value.as_bytes().ct_eq(cookie.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_passes_only_with_the_cookie_s_token() {
        let form = Bytes::from_static(b"amount=12.50&csrf=abc");
        assert!(csrf_matches(Some("abc"), &form));
        assert!(!csrf_matches(Some("abd"), &form));
        assert!(!csrf_matches(None, &form));
        assert!(!csrf_matches(
            Some("abc"),
            &Bytes::from_static(b"amount=12.50")
        ));
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("x_wp_access=no; wp_access=yes"),
        );
        assert_eq!(read_cookie(&headers, ACCESS).as_deref(), Some("yes"));
        assert_eq!(read_cookie(&headers, REFRESH), None);
    }
}
