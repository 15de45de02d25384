//! Sign up, sign in, sign out.

use axum::Form;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::api::Credentials;
use crate::pages::layout::{self, Nav, csrf_field, form_error, notice};
use crate::session::{CookieChanges, Session, is_secure};

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
    signed_out: Option<String>,
}

/// The sign-in and sign-up forms: the API's credentials, and where to go after.
#[derive(Deserialize)]
pub struct CredentialsForm {
    #[serde(flatten)]
    credentials: Credentials,
    next: Option<String>,
}

/// Only a path of this site: an open redirect would let a link send people elsewhere after
/// signing in.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path
        }
        _ => "/wallet",
    }
}

#[derive(Clone, Copy)]
enum Kind {
    SignIn,
    SignUp,
}

fn form(
    kind: Kind,
    csrf: &str,
    email: &str,
    next: &str,
    error: Option<&str>,
    done: Option<&str>,
) -> Markup {
    let (title, action, button, autocomplete, other) = match kind {
        Kind::SignIn => (
            "Sign in",
            "/sign-in",
            "Sign in",
            "current-password",
            html! {
                p { "New here? " a href="/sign-up" { "Create an account" } }
            },
        ),
        Kind::SignUp => (
            "Create an account",
            "/sign-up",
            "Create account",
            "new-password",
            html! {
                p { "Already have an account? " a href="/sign-in" { "Sign in" } }
            },
        ),
    };
    layout::page(
        title,
        Nav::None,
        None,
        html! {
            section.card.narrow {
                h1 { (title) }
                (notice(done))
                form method="post" action=(action) {
                    (csrf_field(csrf))
                    input type="hidden" name="next" value=(next);
                    label for="email" { "Email" }
                    input id="email" name="email" type="email" autocomplete="email" required value=(email);
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" autocomplete=(autocomplete) required minlength="8" aria-describedby="password-hint";
                    p.hint id="password-hint" { "At least 8 characters." }
                    (form_error(error))
                    button type="submit" { (button) }
                }
                (other)
            }
        },
    )
}

pub async fn sign_in_page(session: Session, Query(query): Query<Next>) -> Response {
    if session.access.is_some() {
        return Redirect::to(safe_next(query.next.as_deref())).into_response();
    }
    let done = query.signed_out.as_ref().map(|_| "You are signed out.");
    let next = safe_next(query.next.as_deref());
    layout::html(form(Kind::SignIn, &session.csrf, "", next, None, done))
}

pub async fn sign_up_page(session: Session, Query(query): Query<Next>) -> Response {
    let next = safe_next(query.next.as_deref());
    layout::html(form(Kind::SignUp, &session.csrf, "", next, None, None))
}

pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<CredentialsForm>,
) -> Response {
    let forwarded_for = crate::api::forwarded_for(&headers, peer.ip());
    let result = state.api.sign_in(&form.credentials, &forwarded_for).await;
    signed_in(Kind::SignIn, result, &session, &headers, &form)
}

pub async fn sign_up(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<CredentialsForm>,
) -> Response {
    let forwarded_for = crate::api::forwarded_for(&headers, peer.ip());
    let result = state.api.sign_up(&form.credentials, &forwarded_for).await;
    signed_in(Kind::SignUp, result, &session, &headers, &form)
}

fn signed_in(
    kind: Kind,
    result: Result<crate::api::AccessToken, crate::api::Problem>,
    session: &Session,
    headers: &HeaderMap,
    sent: &CredentialsForm,
) -> Response {
    let next = safe_next(sent.next.as_deref());
    match result {
        Ok(tokens) => (
            CookieChanges::signed_in(&tokens, is_secure(headers)),
            Redirect::to(next),
        )
            .into_response(),
        Err(problem) => {
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let page = form(
                kind,
                &session.csrf,
                &sent.credentials.email,
                next,
                Some(&problem.message()),
                None,
            );
            (status, layout::html(page)).into_response()
        }
    }
}

/// Revokes the token (and with it the session's refresh token) and forgets the cookies.
pub async fn sign_out(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Response {
    if let Some(token) = &session.access
        && let Err(problem) = state.api.sign_out(token).await
    {
        // The cookies go anyway; a token the API already refuses needs no revoking.
        tracing::warn!(
            status = problem.status,
            "sign-out was not confirmed by the API"
        );
    }
    (
        CookieChanges::signed_out(is_secure(&headers)),
        Redirect::to("/sign-in?signed_out=1"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_followed_after_sign_in() {
        assert_eq!(
            safe_next(Some("/orders?status=paid")),
            "/orders?status=paid"
        );
        assert_eq!(safe_next(Some("//evil.example")), "/wallet");
        assert_eq!(safe_next(Some("https://evil.example")), "/wallet");
        assert_eq!(safe_next(Some("/\\evil.example")), "/wallet");
        assert_eq!(safe_next(None), "/wallet");
    }
}
