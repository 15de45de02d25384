//! The frame of every page, and the pieces forms share.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::api::Problem;
use crate::session::{CSRF_FIELD, CookieChanges, is_secure, to_sign_in};

/// Where a signed-in page sits in the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    None,
    Wallet,
    Statements,
    Orders,
    Vouchers,
}

/// A whole page. `csrf` is `Some` for signed-in pages, which show the navigation and the
/// sign-out button.
pub fn page(title: &str, nav: Nav, csrf: Option<&str>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Wallet" }
                link rel="stylesheet" href="/static/app.css";
                link rel="icon" href="/static/icon.svg" type="image/svg+xml";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "Wallet" }
                    @if let Some(csrf) = csrf {
                        nav aria-label="Main" {
                            ul {
                                (nav_link("/wallet", "Wallet", nav == Nav::Wallet))
                                (nav_link("/statements", "Statements", nav == Nav::Statements))
                                (nav_link("/orders", "Orders", nav == Nav::Orders))
                                (nav_link("/vouchers", "Vouchers", nav == Nav::Vouchers))
                            }
                        }
                        form.sign-out method="post" action="/sign-out" {
                            (csrf_field(csrf))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" { (content) }
            }
        }
    }
}

fn nav_link(href: &str, label: &str, current: bool) -> Markup {
    html! {
        li {
            @if current { a href=(href) aria-current="page" { (label) } }
            @else { a href=(href) { (label) } }
        }
    }
}

/// The hidden field every form that changes something carries.
pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(csrf); }
}

/// A problem from the API, shown next to the form that caused it (and announced to screen
/// readers).
pub fn form_error(error: Option<&str>) -> Markup {
    html! {
        @if let Some(error) = error {
            p.error role="alert" { (error) }
        }
    }
}

/// A confirmation after a form did its work.
pub fn notice(message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            p.notice role="status" { (message) }
        }
    }
}

/// A short page that says why a request was refused (no session needed to show it).
pub fn refused(status: StatusCode, message: &str) -> Response {
    let body = page(
        "Refused",
        Nav::None,
        None,
        html! {
            h1 { "Something went wrong" }
            p.error role="alert" { (message) }
            p { a href="/" { "Back to the start" } }
        },
    );
    (status, Html(body.into_string())).into_response()
}

/// Why a page could not be shown: no session (sign in again), or a problem from the API.
pub enum PageError {
    SignIn { path: String, secure: bool },
    Problem(Problem),
}

impl PageError {
    /// A problem on `path`: a refused token means signing in again.
    pub fn from_problem(problem: Problem, path: &str, headers: &axum::http::HeaderMap) -> Self {
        if problem.is_unauthorized() {
            Self::SignIn {
                path: path.to_owned(),
                secure: is_secure(headers),
            }
        } else {
            Self::Problem(problem)
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn { path, secure } => {
                let mut response = to_sign_in(&path);
                CookieChanges::signed_out(secure).apply(&mut response);
                response
            }
            Self::Problem(problem) => {
                let status = StatusCode::from_u16(problem.status)
                    .ok()
                    .filter(|status| status.is_client_error() || status.is_server_error())
                    .unwrap_or(StatusCode::BAD_GATEWAY);
                refused(status, &problem.message())
            }
        }
    }
}

/// An HTML answer.
pub fn html(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

/// Raw SVG (built by [`crate::chart`], escaped there).
pub fn raw(svg: String) -> Markup {
    PreEscaped(svg)
}
