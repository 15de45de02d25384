//! Admin: every user's orders, with shipping and delivery, and the accounts. The API
//! decides who is an admin; anyone else sees its refusal (403) as a sentence on the page.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use proto::OrderStatus;
use serde::Deserialize;
use uuid::Uuid;

use crate::AppState;
use crate::api::{AdminOrderFilter, Order, Problem, User, UserFilter, UserPage};
use crate::money;
use crate::pages::layout::{
    self, Column, Nav, PageError, card, chosen, csrf_field, form_error, given, link, notice, pager,
    search_form, status_label,
};
use crate::pages::orders::items_summary;
use crate::session::SignedIn;

/// The statuses an admin looks for, the ones to act on first.
const STATUSES: [OrderStatus; 7] = [
    OrderStatus::Paid,
    OrderStatus::Sent,
    OrderStatus::Delivered,
    OrderStatus::PendingPayment,
    OrderStatus::PaymentFailed,
    OrderStatus::Cancelled,
    OrderStatus::Expired,
];

#[derive(Default, Deserialize)]
pub struct OrdersQuery {
    status: Option<String>,
    cursor: Option<String>,
    done: Option<String>,
}

pub async fn orders_page(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Query(query): Query<OrdersQuery>,
) -> Result<Response, PageError> {
    render_orders(&state, &user, &headers, &query, None).await
}

/// The orders with the given status (paid ones by default: those to ship); a refusal is
/// shown in the page, with the API's status.
async fn render_orders(
    state: &AppState,
    user: &SignedIn,
    headers: &HeaderMap,
    query: &OrdersQuery,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let status = chosen(&query.status, "status")?.unwrap_or(OrderStatus::Paid);
    let cursor = given(&query.cursor);
    let filter = AdminOrderFilter {
        status: Some(status),
        cursor: cursor.map(str::to_owned),
        limit: Some(20),
        ..AdminOrderFilter::default()
    };
    let orders = state.api.admin_orders(&user.token, &filter).await;
    let orders = match orders {
        Ok(orders) => orders,
        Err(problem) => return refused_here(problem, "/admin", user, headers),
    };
    let next = orders
        .next_cursor
        .as_deref()
        .map(|cursor| link("/admin", &[("status", status.as_str()), ("cursor", cursor)]));
    let first = cursor.map(|_| link("/admin", &[("status", status.as_str())]));
    let done = query.done.as_deref().map(|done| match done {
        "ship" => "Order marked as sent.",
        _ => "Order marked as delivered. Its sellers have been paid.",
    });
    let content = html! {
        (notice(done))
        (card("orders", "Orders", html! {
            form.filters method="get" action="/admin" {
                div {
                    label for="status" { "Status" }
                    select id="status" name="status" {
                        @for option in STATUSES {
                            option value=(option) selected[status == option] { (status_label(option)) }
                        }
                    }
                }
                button type="submit" { "Show" }
            }
            (form_error(error))
            @if orders.items.is_empty() {
                p { "No " (status_label(status)) " orders." }
            } @else {
                (orders_table(&orders.items, &user.csrf))
            }
            (pager("Order", first.as_deref(), next.as_deref()))
        }))
    };
    Ok(layout::html(admin_page(user, content)))
}

/// The admin pages' frame: the heading and, for admins, the links between them.
fn admin_page(user: &SignedIn, content: Markup) -> Markup {
    layout::page(
        "Admin",
        Nav::Admin,
        Some(user),
        html! {
            h1 { "Admin" }
            @if user.claims.is_admin() {
                p { a href="/admin" { "Orders" } " · " a href="/admin/users" { "Users" } }
            }
            (content)
        },
    )
}

fn roles(roles: &[proto::Role]) -> String {
    let names: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
    names.join(", ")
}

/// The end of an id: enough to tell accounts apart at a glance (the start of these ids is
/// their creation time, alike for accounts made together).
fn short_id(id: Uuid) -> String {
    let id = id.simple().to_string();
    format!("…{}", &id[id.len() - 8..])
}

/// The API's refusal as the admin page itself says it (a customer gets 403 here), or
/// signing in again.
fn refused_here(
    problem: Problem,
    path: &str,
    user: &SignedIn,
    headers: &HeaderMap,
) -> Result<Response, PageError> {
    if problem.is_unauthorized() {
        return Err(PageError::from_problem(problem, path, headers));
    }
    let content = html! {
        section.card aria-label="Refused" {
            p.error role="alert" data-testid="refused" { (problem.message()) }
        }
    };
    let status = layout::error_status(&problem);
    Ok((status, layout::html(admin_page(user, content))).into_response())
}

fn orders_table(orders: &[Order], csrf: &str) -> Markup {
    use Column::{Hidden, Num, Text};
    let columns = [
        Text("Ordered (UTC)"),
        Text("Buyer"),
        Text("Items"),
        Num("Total"),
        Text("Status"),
        Hidden("Actions"),
    ];
    let rows = html! {
        @for order in orders {
            tr {
                td { (order.created_at.format("%Y-%m-%d %H:%M")) }
                td { code { (short_id(order.user_id)) } }
                td { (items_summary(&order.items)) }
                td.num { (money::format(order.total)) " " (order.currency) }
                td { (status_label(order.status)) }
                td { (next_step(order, csrf)) }
            }
        }
    };
    layout::table("Orders", "Orders, newest first", &columns, rows)
}

/// The button that moves an order on: a paid one is shipped, a sent one delivered.
fn next_step(order: &Order, csrf: &str) -> Markup {
    let (action, label) = match order.status {
        OrderStatus::Paid => ("ship", "Mark as sent"),
        OrderStatus::Sent => ("deliver", "Mark as delivered"),
        _ => return html! {},
    };
    html! {
        form.inline method="post" action=(format!("/admin/orders/{}/{action}", order.id)) {
            (csrf_field(csrf))
            button.secondary type="submit" { (label) }
        }
    }
}

/// `POST /admin/orders/{id}/ship` and `/deliver`: on to the orders that step leads to.
pub async fn order_action(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Path((id, action)): Path<(Uuid, String)>,
) -> Result<Response, PageError> {
    let (action, from, to) = match action.as_str() {
        "ship" => ("ship", OrderStatus::Paid, OrderStatus::Sent),
        "deliver" => ("deliver", OrderStatus::Sent, OrderStatus::Delivered),
        _ => return Err(PageError::Problem(Problem::not_found())),
    };
    match state.api.order_action(&user.token, id, action).await {
        Ok(()) => {
            let next = link("/admin", &[("status", to.as_str()), ("done", action)]);
            Ok(axum::response::Redirect::to(&next).into_response())
        }
        Err(problem) if problem.status == 403 || problem.is_unauthorized() => {
            refused_here(problem, "/admin", &user, &headers)
        }
        Err(problem) => {
            // The list the button was on, with the reason above it.
            let query = OrdersQuery {
                status: Some(from.to_string()),
                ..OrdersQuery::default()
            };
            let error = problem.message();
            let mut response = render_orders(&state, &user, &headers, &query, Some(&error)).await?;
            if response.status() == StatusCode::OK {
                *response.status_mut() = layout::error_status(&problem);
            }
            Ok(response)
        }
    }
}

#[derive(Deserialize)]
pub struct UsersQuery {
    q: Option<String>,
    cursor: Option<String>,
}

pub async fn users_page(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Query(query): Query<UsersQuery>,
) -> Result<Response, PageError> {
    let q = given(&query.q);
    let cursor = given(&query.cursor);
    let filter = UserFilter {
        q: q.map(str::to_owned),
        cursor: cursor.map(str::to_owned),
        limit: Some(50),
    };
    // A search the API refuses is the search form's problem.
    let (users, error) = match state.api.admin_users(&user.token, &filter).await {
        Ok(users) => (users, None),
        Err(problem) if problem.status == 422 => (UserPage::default(), Some(problem.message())),
        Err(problem) => return refused_here(problem, "/admin/users", &user, &headers),
    };
    let q = q.unwrap_or("");
    let next = users
        .next_cursor
        .as_deref()
        .map(|cursor| link("/admin/users", &[("q", q), ("cursor", cursor)]));
    let first = cursor.map(|_| link("/admin/users", &[("q", q)]));
    let content = html! {
        (card("users", "Users", html! {
            (search_form("/admin/users", "Email contains", q, error.as_deref()))
            @if users.items.is_empty() {
                p { "No users found." }
            } @else {
                (users_table(&users.items))
            }
            (pager("User", first.as_deref(), next.as_deref()))
        }))
    };
    Ok(layout::html(admin_page(&user, content)))
}

fn users_table(users: &[User]) -> Markup {
    use Column::Text;
    let columns = [Text("Email"), Text("Id"), Text("Roles"), Text("Since")];
    let rows = html! {
        @for account in users {
            tr {
                td.break { (account.email) }
                td { code { (short_id(account.id)) } }
                td { (roles(&account.roles)) }
                td { (account.created_at.format("%Y-%m-%d")) }
            }
        }
    };
    layout::table("Users", "Users, newest first", &columns, rows)
}
