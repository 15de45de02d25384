//! The frame of every page, and the pieces forms share.

use std::future::Future;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::api::Problem;
use crate::session::{CSRF_FIELD, CookieChanges, SignedIn, is_secure, to_sign_in};

/// Where a signed-in page sits in the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    None,
    Wallet,
    Statements,
    Shop,
    Orders,
    Vouchers,
    Selling,
    Sales,
    Admin,
}

/// A whole page. `user` is `Some` for signed-in pages, which show the navigation (with the
/// admin link for admins) and the sign-out button.
pub fn page(title: &str, nav: Nav, user: Option<&SignedIn>, content: Markup) -> Markup {
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
                    @if let Some(user) = user {
                        nav aria-label="Main" {
                            ul {
                                (nav_link("/wallet", "Wallet", nav == Nav::Wallet))
                                (nav_link("/statements", "Statements", nav == Nav::Statements))
                                (nav_link("/shop", "Shop", nav == Nav::Shop))
                                (nav_link("/orders", "Orders", nav == Nav::Orders))
                                (nav_link("/vouchers", "Vouchers", nav == Nav::Vouchers))
                                (nav_link("/selling", "Selling", nav == Nav::Selling))
                                (nav_link("/sales", "Sales", nav == Nav::Sales))
                                @if user.claims.is_admin() {
                                    (nav_link("/admin", "Admin", nav == Nav::Admin))
                                }
                            }
                        }
                        form.sign-out method="post" action="/sign-out" {
                            (csrf_field(&user.csrf))
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
            Self::Problem(problem) => refused(error_status(&problem), &problem.message()),
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

/// The status a page answers with when the API refused: the API's own, when it is an error.
pub fn error_status(problem: &Problem) -> StatusCode {
    StatusCode::from_u16(problem.status)
        .ok()
        .filter(|status| status.is_client_error() || status.is_server_error())
        .unwrap_or(StatusCode::BAD_GATEWAY)
}

/// What a posted form led to: on to the page `Ok` names, or, when the API refused, the
/// form's page again (`render`, given the readable problem to show next to the form) with
/// the API's status. A refused session means signing in again, then coming back to `path`.
pub async fn after_form<Render, Rendered>(
    result: Result<String, Problem>,
    path: &str,
    headers: &HeaderMap,
    render: Render,
) -> Result<Response, PageError>
where
    Render: FnOnce(String) -> Rendered,
    Rendered: Future<Output = Result<Markup, PageError>>,
{
    match result {
        Ok(next) => Ok(Redirect::to(&next).into_response()),
        Err(problem) if problem.is_unauthorized() => {
            Err(PageError::from_problem(problem, path, headers))
        }
        Err(problem) => {
            let page = render(problem.message()).await?;
            Ok((error_status(&problem), html(page)).into_response())
        }
    }
}

/// A query value, unless it is empty (a form's field left blank).
pub fn given(value: &Option<String>) -> Option<&str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// `path?query` from name and value pairs, leaving out the empty ones.
pub fn link(path: &str, params: &[(&str, &str)]) -> String {
    let params: Vec<_> = params
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
    if params.is_empty() {
        return path.to_owned();
    }
    format!(
        "{path}?{}",
        serde_urlencoded::to_string(params).unwrap_or_default()
    )
}

/// A heading of a [`table`]'s column; numbers are aligned right.
pub enum Column {
    Text(&'static str),
    Num(&'static str),
    /// Read by screen readers only (a column of buttons).
    Hidden(&'static str),
}

/// A table that scrolls sideways on a narrow screen instead of widening the page (focusable,
/// so that a keyboard can scroll it too).
pub fn table(name: &str, caption: &str, columns: &[Column], rows: Markup) -> Markup {
    html! {
        section.table-scroll tabindex="0" aria-label=(format!("{name} table")) {
            table {
                caption.visually-hidden { (caption) }
                thead { tr {
                    @for column in columns {
                        @match column {
                            Column::Text(label) => th scope="col" { (label) },
                            Column::Num(label) => th scope="col" class="num" { (label) },
                            Column::Hidden(label) => th scope="col" { span.visually-hidden { (label) } },
                        }
                    }
                } }
                tbody { (rows) }
            }
        }
    }
}

/// Links to a list's first page (when on a later one) and its next page.
pub fn pager(name: &str, first: Option<&str>, next: Option<&str>) -> Markup {
    html! {
        nav.pager aria-label=(format!("{name} pages")) {
            @if let Some(first) = first { a href=(first) { "Newest" } }
            @if let Some(next) = next { a href=(next) rel="next" { "Older" } }
        }
    }
}

/// A card of the page, named by its heading (`id` makes the heading's id).
pub fn card(id: &str, heading: &str, content: Markup) -> Markup {
    let heading_id = format!("{id}-heading");
    html! {
        section.card aria-labelledby=(heading_id) {
            h2 id=(heading_id) { (heading) }
            (content)
        }
    }
}

/// A search of a list by the text `q`, with the API's problem with it, if any.
pub fn search_form(action: &str, label: &str, q: &str, error: Option<&str>) -> Markup {
    html! {
        form.filters method="get" action=(action) role="search" {
            div {
                label for="q" { (label) }
                input id="q" name="q" type="search" value=(q);
            }
            button type="submit" { "Search" }
        }
        (form_error(error))
    }
}

/// A status as people read it: `pending_payment` → `pending payment`.
pub fn status_label(status: impl std::fmt::Display) -> String {
    status.to_string().replace('_', " ")
}

/// A filter's value from the page's query, such as `?status=paid`: absent or empty is none;
/// a value outside the vocabulary is refused (422) with the values allowed.
pub fn chosen<T>(value: &Option<String>, field: &str) -> Result<Option<T>, PageError>
where
    T: std::str::FromStr<Err = proto::UnknownValue>,
{
    given(value)
        .map(str::parse)
        .transpose()
        .map_err(|error| PageError::Problem(Problem::invalid(format!("{field}: {error}"))))
}
