//! The shop: the catalogue with a search, a product's page, and buying it (a quantity and
//! an optional voucher code), which places an order paid from the wallet.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use proto::ProductStatus;
use serde::Deserialize;
use uuid::Uuid;

use crate::AppState;
use crate::api::{NewOrder, OrderLine, Problem, Product, ProductFilter, ProductPage};
use crate::money;
use crate::pages::layout::{
    self, Nav, PageError, card, csrf_field, form_error, given, link, pager, search_form,
};
use crate::session::SignedIn;

#[derive(Deserialize)]
pub struct ShopQuery {
    q: Option<String>,
    cursor: Option<String>,
}

pub async fn shop_page(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Query(query): Query<ShopQuery>,
) -> Result<Response, PageError> {
    let q = given(&query.q);
    let filter = ProductFilter {
        q: q.map(str::to_owned),
        cursor: given(&query.cursor).map(str::to_owned),
        limit: Some(24),
        ..ProductFilter::default()
    };
    // A search the API refuses is the search form's problem, not the page's.
    let (products, error) = match state.api.products(&filter).await {
        Ok(page) => (page, None),
        Err(problem) if problem.status == 422 => (ProductPage::default(), Some(problem.message())),
        Err(problem) => return Err(PageError::from_problem(problem, "/shop", &headers)),
    };
    let q = q.unwrap_or("");
    let next = products
        .next_cursor
        .as_deref()
        .map(|cursor| link("/shop", &[("q", q), ("cursor", cursor)]));
    let first = query.cursor.is_some().then(|| link("/shop", &[("q", q)]));
    Ok(layout::html(layout::page(
        "Shop",
        Nav::Shop,
        Some(&user),
        html! {
            h1 { "Shop" }
            (card("products", "Products", html! {
                (search_form("/shop", "Search by name", q, error.as_deref()))
                @if products.items.is_empty() {
                    p { "No products found." }
                } @else {
                    ul.products {
                        @for product in &products.items {
                            li.product {
                                h3 { a href=(format!("/shop/{}", product.id)) { (product.name) } }
                                p.price { (money::format(product.price)) " " (product.currency) }
                                p.hint { (availability(product)) }
                            }
                        }
                    }
                }
                (pager("Product", first.as_deref(), next.as_deref()))
            }))
        },
    )))
}

fn availability(product: &Product) -> String {
    match product.available {
        0 => "Sold out".to_owned(),
        count => format!("{count} available"),
    }
}

pub async fn product_page(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Result<Response, PageError> {
    let page = render_product(&state, &user, &headers, id, None).await?;
    Ok(layout::html(page))
}

async fn render_product(
    state: &AppState,
    user: &SignedIn,
    headers: &HeaderMap,
    id: Uuid,
    error: Option<&str>,
) -> Result<Markup, PageError> {
    let path = format!("/shop/{id}");
    let product = state
        .api
        .product(id)
        .await
        .map_err(|problem| PageError::from_problem(problem, &path, headers))?;
    let yours = user.claims.sub == Some(product.seller_id);
    Ok(layout::page(
        &product.name,
        Nav::Shop,
        Some(user),
        html! {
            h1 { (product.name) }
            (card("product", "About this product", html! {
                p.balance data-testid="price" { (money::format(product.price)) " " (product.currency) }
                @if !product.description.is_empty() { p.description { (product.description) } }
                dl.totals {
                    dt { "Available" } dd data-testid="available" { (availability(&product)) }
                    dt { "Item number" } dd { (product.sku) }
                }
                @if yours {
                    p { "You sell this product. " a href=(format!("/selling/products/{id}")) { "Edit it" } }
                }
            }))
            @if product.status == ProductStatus::Active {
                (buy_form(&product, &user.csrf, error))
            } @else {
                p.notice role="status" { "This product was withdrawn from sale." }
            }
            p { a href="/shop" { "Back to the shop" } }
        },
    ))
}

fn buy_form(product: &Product, csrf: &str, error: Option<&str>) -> Markup {
    html! {
        (card("buy", "Buy", html! {
            form method="post" action=(format!("/shop/{}/buy", product.id)) {
                (csrf_field(csrf))
                // A fresh key per form shown: posting the same form twice places one order.
                input type="hidden" name="key" value=(Uuid::new_v4().to_string());
                label for="quantity" { "Quantity" }
                input id="quantity" name="quantity" type="number" min="1" step="1" value="1" required;
                label for="voucher" { "Voucher code (optional)" }
                input id="voucher" type="text" name="voucher_code" autocomplete="off" maxlength="64" aria-describedby="voucher-hint";
                p.hint id="voucher-hint" { "Your vouchers are listed on the " a href="/vouchers" { "Vouchers" } " page." }
                p.hint { "The order is paid from your wallet." }
                (form_error(error))
                button type="submit" { "Buy" }
            }
        }))
    }
}

#[derive(Deserialize)]
pub struct BuyForm {
    key: String,
    quantity: String,
    voucher_code: Option<String>,
}

/// Places the order and shows it (its payment follows within about a second).
pub async fn buy(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Form(form): Form<BuyForm>,
) -> Result<Response, PageError> {
    let result = match form.quantity.trim().parse::<i64>() {
        Ok(quantity) => {
            let order = NewOrder {
                items: vec![OrderLine {
                    product_id: id.to_string(),
                    quantity,
                }],
                currency: None,
                voucher_code: given(&form.voucher_code).map(str::to_owned),
            };
            state
                .api
                .place_order(&user.token, &order, &form.key)
                .await
                .map(|order| format!("/orders/{}?done=placed", order.id))
        }
        Err(_) => Err(Problem::invalid(
            "Enter the quantity as a whole number, like 2",
        )),
    };
    let path = format!("/shop/{id}");
    let (state, user, headers) = (&state, &user, &headers);
    layout::after_form(result, &path, headers, |error| async move {
        render_product(state, user, headers, id, Some(&error)).await
    })
    .await
}
