//! Orders (list, detail with its status timeline, pay again, cancel) and vouchers.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use proto::OrderStatus;
use serde::Deserialize;
use uuid::Uuid;

use crate::AppState;
use crate::api::{Order, OrderFilter, OrderItem, PageParams, Problem};
use crate::money;
use crate::pages::layout::{
    self, Column, Nav, PageError, chosen, csrf_field, form_error, given, notice,
};
use crate::session::SignedIn;

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
}

pub async fn orders_page(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let status: Option<OrderStatus> = chosen(&query.status, "status")?;
    let filter = OrderFilter {
        status,
        cursor: given(&query.cursor).map(str::to_owned),
        limit: Some(20),
    };
    let page = state
        .api
        .orders(&user.token, &filter)
        .await
        .map_err(|problem| PageError::from_problem(problem, "/orders", &headers))?;
    let next = page.next_cursor.as_ref().map(|cursor| {
        let params = [
            ("status", status.map_or("", OrderStatus::as_str)),
            ("cursor", cursor.as_str()),
        ];
        format!(
            "/orders?{}",
            serde_urlencoded::to_string(params).unwrap_or_default()
        )
    });
    Ok(layout::html(layout::page(
        "Orders",
        Nav::Orders,
        Some(&user),
        html! {
            h1 { "Orders" }
            section.card aria-labelledby="orders-heading" {
                h2 id="orders-heading" { "Your orders" }
                form.filters method="get" action="/orders" {
                    div {
                        label for="status" { "Status" }
                        select id="status" name="status" {
                            option value="" selected[status.is_none()] { "All" }
                            @for option in OrderStatus::ALL {
                                option value=(option) selected[status == Some(*option)] { (label(*option)) }
                            }
                        }
                    }
                    button type="submit" { "Filter" }
                }
                @if page.items.is_empty() {
                    p { "No orders." }
                } @else {
                    ul.list {
                        @for order in &page.items {
                            li {
                                a href=(format!("/orders/{}", order.id)) { "Order of " (order.created_at.format("%Y-%m-%d %H:%M")) }
                                " · " span.status { (label(order.status)) }
                                " · " (money::format(order.total)) " " (order.currency)
                            }
                        }
                    }
                }
                nav.pager aria-label="Order pages" {
                    @if query.cursor.is_some() { a href="/orders" { "Newest" } }
                    @if let Some(next) = next { a href=(next) rel="next" { "Older" } }
                }
            }
        },
    )))
}

fn label(status: OrderStatus) -> String {
    layout::status_label(status)
}

/// An order's items on one line: `Pen × 2, Ink × 1`.
pub fn items_summary(items: &[OrderItem]) -> Markup {
    html! {
        @for (index, item) in items.iter().enumerate() {
            @if index > 0 { ", " }
            (item.name) " × " (item.quantity)
        }
    }
}

#[derive(Deserialize)]
pub struct DetailQuery {
    done: Option<String>,
}

pub async fn order_page(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Query(query): Query<DetailQuery>,
) -> Result<Response, PageError> {
    let done = match query.done.as_deref() {
        Some("placed") => Some("Order placed. It is paid from your wallet within a few seconds."),
        Some("pay") => Some("Payment asked for again."),
        Some("cancel") => Some("Order cancelled."),
        _ => None,
    };
    render_order(&state, &user, &headers, id, None, done, StatusCode::OK).await
}

async fn render_order(
    state: &AppState,
    user: &SignedIn,
    headers: &HeaderMap,
    id: Uuid,
    error: Option<&str>,
    done: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let path = format!("/orders/{id}");
    let order = state
        .api
        .order(&user.token, id)
        .await
        .map_err(|problem| PageError::from_problem(problem, &path, headers))?;
    let page = layout::page(
        "Order",
        Nav::Orders,
        Some(user),
        order_view(&order, &user.csrf, error, done),
    );
    Ok((status, layout::html(page)).into_response())
}

fn order_view(order: &Order, csrf: &str, error: Option<&str>, done: Option<&str>) -> Markup {
    let can_pay = order.status == OrderStatus::PaymentFailed;
    let can_cancel = matches!(
        order.status,
        OrderStatus::PendingPayment | OrderStatus::PaymentFailed | OrderStatus::Paid
    );
    html! {
        h1 { "Order" }
        (notice(done))
        section.card aria-labelledby="order-heading" {
            h2 id="order-heading" { "Status: " span data-testid="order-status" { (label(order.status)) } }
            (layout::table("Items", "Items", &[Column::Text("Item"), Column::Num("Quantity"), Column::Num("Unit price")], html! {
                @for item in &order.items {
                    tr {
                        td { (item.name) " " span.hint { "(" (item.sku) ")" } }
                        td.num { (item.quantity) }
                        td.num { (money::format(item.unit_price)) }
                    }
                }
            }))
            dl.totals {
                dt { "Subtotal" } dd { (money::format(order.subtotal)) " " (order.currency) }
                @if order.discount > 0 {
                    dt { "Voucher " (order.voucher_code.as_deref().unwrap_or("")) } dd data-testid="discount" { "−" (money::format(order.discount)) }
                }
                dt { "Total" } dd data-testid="total" { (money::format(order.total)) " " (order.currency) }
            }
            (form_error(error))
            div.actions {
                @if can_pay {
                    form.inline method="post" action=(format!("/orders/{}/pay", order.id)) {
                        (csrf_field(csrf))
                        button type="submit" { "Pay again" }
                    }
                }
                @if can_cancel {
                    form.inline method="post" action=(format!("/orders/{}/cancel", order.id)) {
                        (csrf_field(csrf))
                        button.secondary type="submit" { "Cancel order" }
                    }
                }
            }
        }
        section.card aria-labelledby="timeline-heading" {
            h2 id="timeline-heading" { "Timeline" }
            ol.timeline {
                @for change in &order.status_history {
                    li { time datetime=(change.at.to_rfc3339()) { (change.at.format("%Y-%m-%d %H:%M:%S")) } " " (label(change.status)) }
                }
            }
        }
        p { a href="/orders" { "All orders" } }
    }
}

/// `POST /orders/{id}/pay` and `/cancel`.
pub async fn order_action(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Path((id, action)): Path<(Uuid, String)>,
) -> Result<Response, PageError> {
    let action = match action.as_str() {
        "pay" => "pay",
        "cancel" => "cancel",
        _ => return Err(PageError::Problem(Problem::not_found())),
    };
    match state.api.order_action(&user.token, id, action).await {
        Ok(()) => Ok(Redirect::to(&format!("/orders/{id}?done={action}")).into_response()),
        Err(problem) if problem.is_unauthorized() || problem.status == 404 => Err(
            PageError::from_problem(problem, &format!("/orders/{id}"), &headers),
        ),
        Err(problem) => {
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::CONFLICT);
            render_order(
                &state,
                &user,
                &headers,
                id,
                Some(&problem.message()),
                None,
                status,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct VoucherQuery {
    cursor: Option<String>,
}

pub async fn vouchers_page(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Query(query): Query<VoucherQuery>,
) -> Result<Response, PageError> {
    let page = state
        .api
        .vouchers(
            &user.token,
            &PageParams {
                cursor: given(&query.cursor).map(str::to_owned),
                limit: Some(50),
            },
        )
        .await
        .map_err(|problem| PageError::from_problem(problem, "/vouchers", &headers))?;
    Ok(layout::html(layout::page(
        "Vouchers",
        Nav::Vouchers,
        Some(&user),
        html! {
            h1 { "Vouchers" }
            section.card aria-labelledby="vouchers-heading" {
                h2 id="vouchers-heading" { "Your vouchers" }
                p.hint { "An order over 100.00 EUR earns a 5.00 EUR voucher when it is sent. Give its code with your next order." }
                @if page.items.is_empty() {
                    p { "No vouchers yet." }
                } @else {
                    (layout::table("Vouchers", "Vouchers, newest first", &[Column::Text("Code"), Column::Num("Value"), Column::Text("Issued"), Column::Text("Used")], html! {
                        @for voucher in &page.items {
                            tr {
                                td { code { (voucher.code) } }
                                td.num data-testid="voucher-value" { (money::format(voucher.amount)) " " (voucher.currency) }
                                td { (voucher.issued_at.format("%Y-%m-%d")) }
                                td { @if let Some(at) = voucher.redeemed_at { (at.format("%Y-%m-%d")) } @else { "not yet" } }
                            }
                        }
                    }))
                }
                @if let Some(cursor) = &page.next_cursor {
                    nav.pager aria-label="Voucher pages" {
                        a href=(format!("/vouchers?{}", serde_urlencoded::to_string([("cursor", cursor)]).unwrap_or_default())) rel="next" { "Older" }
                    }
                }
            }
        },
    )))
}
