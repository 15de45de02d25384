//! Sales: the paid orders of the person's products, each with its status and, once
//! delivered, the payout their wallet received.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use crate::AppState;
use crate::api::PageParams;
use crate::money;
use crate::pages::layout::{self, Column, Nav, PageError, card, given, link, pager, status_label};
use crate::pages::orders::items_summary;
use crate::session::SignedIn;

#[derive(Deserialize)]
pub struct SalesQuery {
    cursor: Option<String>,
}

pub async fn sales_page(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Query(query): Query<SalesQuery>,
) -> Result<Response, PageError> {
    let cursor = given(&query.cursor);
    let sales = state
        .api
        .sales(
            &user.token,
            &PageParams {
                cursor: cursor.map(str::to_owned),
                limit: Some(20),
            },
        )
        .await
        .map_err(|problem| PageError::from_problem(problem, "/sales", &headers))?;
    let next = sales
        .next_cursor
        .as_deref()
        .map(|cursor| link("/sales", &[("cursor", cursor)]));
    use Column::{Num, Text};
    let columns = [
        Text("Ordered (UTC)"),
        Text("Items"),
        Num("Your payout"),
        Text("Order status"),
        Num("Subtotal"),
    ];
    let rows = html! {
        @for sale in &sales.items {
            tr {
                td { (sale.ordered_at.format("%Y-%m-%d %H:%M")) }
                td { (items_summary(&sale.items)) }
                td.num data-testid="payout" {
                    @match sale.payout {
                        Some(payout) => { (money::format(payout)) " EUR" },
                        None => "on delivery",
                    }
                }
                td { (status_label(sale.status)) }
                td.num { (money::format(sale.subtotal)) }
            }
        }
    };
    Ok(layout::html(layout::page(
        "Sales",
        Nav::Sales,
        Some(&user),
        html! {
            h1 { "Sales" }
            (card("sales", "Orders of your products", html! {
                p.hint { "When an order is delivered, your share of what the buyer paid (after any voucher) is paid into your wallet." }
                @if sales.items.is_empty() {
                    p { "No sales yet." }
                } @else {
                    (layout::table("Sales", "Your sales, newest first", &columns, rows))
                }
                (pager("Sale", cursor.map(|_| "/sales"), next.as_deref()))
            }))
        },
    )))
}
