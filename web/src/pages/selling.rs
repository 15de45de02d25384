//! Selling: the person's products (put one up for sale, edit it with the version it was
//! shown at, withdraw it).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use proto::ProductStatus;
use serde::Deserialize;
use uuid::Uuid;

use crate::AppState;
use crate::api::{NewProduct, Problem, Product, ProductChange, ProductFilter, ProductPage};
use crate::money;
use crate::pages::layout::{
    self, Column, Nav, PageError, card, chosen, csrf_field, form_error, given, link, notice, pager,
    status_label,
};
use crate::session::SignedIn;

/// What the product form holds: typed by the seller, or read from the product.
#[derive(Default, Deserialize)]
pub struct ProductForm {
    name: String,
    #[serde(default)]
    description: String,
    price: String,
    stock: String,
    #[serde(default)]
    sku: String,
}

impl ProductForm {
    fn of(product: &Product) -> Self {
        Self {
            name: product.name.clone(),
            description: product.description.clone(),
            price: money::format(product.price),
            stock: product.stock.to_string(),
            sku: product.sku.clone(),
        }
    }

    /// The product the API takes: amounts as minor units, or which field could not be read.
    fn product(&self) -> Result<NewProduct, Problem> {
        let price = money::parse(&self.price)
            .map_err(|reason| Problem::invalid(format!("Price: {reason}")))?;
        let stock: i64 = self
            .stock
            .trim()
            .parse()
            .map_err(|_| Problem::invalid("Stock: Enter a whole number of units, like 10"))?;
        let sku = self.sku.trim();
        Ok(NewProduct {
            name: self.name.trim().to_owned(),
            description: Some(self.description.clone()),
            price,
            currency: None,
            stock,
            sku: (!sku.is_empty()).then(|| sku.to_owned()),
        })
    }

    /// An edit sends every field but the item number, which stays.
    fn change(&self) -> Result<ProductChange, Problem> {
        let product = self.product()?;
        Ok(ProductChange {
            name: Some(product.name),
            description: product.description,
            price: Some(product.price),
            stock: Some(product.stock),
        })
    }
}

/// The fields of a new product and of an edit (the item number only when new: it stays).
fn product_fields(values: &ProductForm, new: bool) -> Markup {
    html! {
        label for="name" { "Name" }
        input id="name" type="text" name="name" required maxlength="200" value=(values.name);
        label for="description" { "Description (optional)" }
        textarea id="description" name="description" maxlength="2000" rows="3" { (values.description) }
        div.pair {
            div {
                label for="price" { "Price (EUR)" }
                input id="price" type="text" name="price" inputmode="decimal" required pattern="[0-9]+([.,][0-9]{1,2})?" placeholder="12.50" value=(values.price);
            }
            div {
                label for="stock" { "Units for sale" }
                input id="stock" name="stock" type="number" min="0" step="1" required value=(values.stock);
            }
        }
        @if new {
            label for="sku" { "Item number (optional)" }
            input id="sku" type="text" name="sku" maxlength="64" aria-describedby="sku-hint" value=(values.sku);
            p.hint id="sku-hint" { "Made up for you when left empty." }
        }
    }
}

#[derive(Default, Deserialize)]
pub struct SellingQuery {
    status: Option<String>,
    cursor: Option<String>,
    done: Option<String>,
}

pub async fn selling_page(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Query(query): Query<SellingQuery>,
) -> Result<Response, PageError> {
    let page = render_selling(
        &state,
        &user,
        &headers,
        &query,
        &ProductForm::default(),
        None,
    )
    .await?;
    Ok(layout::html(page))
}

async fn render_selling(
    state: &AppState,
    user: &SignedIn,
    headers: &HeaderMap,
    query: &SellingQuery,
    values: &ProductForm,
    error: Option<&str>,
) -> Result<Markup, PageError> {
    let status = chosen(&query.status, "status")?.unwrap_or(ProductStatus::Active);
    let filter = ProductFilter {
        seller_id: user.claims.sub,
        status: Some(status),
        cursor: given(&query.cursor).map(str::to_owned),
        limit: Some(20),
        ..ProductFilter::default()
    };
    // Without an id in the token there is nothing of the person's to list.
    let products = match filter.seller_id {
        Some(_) => state.api.products(&filter).await,
        None => Ok(ProductPage::default()),
    }
    .map_err(|problem| PageError::from_problem(problem, "/selling", headers))?;
    let next = products.next_cursor.as_deref().map(|cursor| {
        link(
            "/selling",
            &[("status", status.as_str()), ("cursor", cursor)],
        )
    });
    let first = query
        .cursor
        .is_some()
        .then(|| link("/selling", &[("status", status.as_str())]));
    let done = query.done.as_deref().map(|_| "Product put up for sale.");
    Ok(layout::page(
        "Selling",
        Nav::Selling,
        Some(user),
        html! {
            h1 { "Selling" }
            (notice(done))
            (card("new", "Put a product up for sale", html! {
                form method="post" action="/selling/products" {
                    (csrf_field(&user.csrf))
                    (product_fields(values, true))
                    (form_error(error))
                    button type="submit" { "Put up for sale" }
                }
            }))
            (card("mine", "Your products", html! {
                p.hint { "What you sold and what you were paid is on the " a href="/sales" { "Sales" } " page." }
                form.filters method="get" action="/selling" {
                    div {
                        label for="status" { "Show" }
                        select id="status" name="status" {
                            option value=(ProductStatus::Active) selected[status == ProductStatus::Active] { "On sale" }
                            option value=(ProductStatus::Withdrawn) selected[status == ProductStatus::Withdrawn] { "Withdrawn" }
                        }
                    }
                    button type="submit" { "Show" }
                }
                @if products.items.is_empty() {
                    p { "No products here yet." }
                } @else {
                    (products_table(&products.items))
                }
                (pager("Product", first.as_deref(), next.as_deref()))
            }))
        },
    ))
}

fn products_table(products: &[Product]) -> Markup {
    use Column::{Num, Text};
    let columns = [
        Text("Product"),
        Num("Price"),
        Num("Units for sale"),
        Num("Awaiting payment"),
        Num("Sold"),
    ];
    let rows = html! {
        @for product in products {
            tr {
                td { a href=(format!("/selling/products/{}", product.id)) { (product.name) } " " span.hint { "(" (product.sku) ")" } }
                td.num { (money::format(product.price)) " " (product.currency) }
                td.num { (product.stock) }
                td.num { (product.reserved) }
                td.num { (product.sold) }
            }
        }
    };
    layout::table("Products", "Your products, newest first", &columns, rows)
}

/// `POST /selling/products`: a new product, the person its seller.
pub async fn create(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Form(form): Form<ProductForm>,
) -> Result<Response, PageError> {
    let result = match form.product() {
        Ok(product) => state
            .api
            .create_product(&user.token, &product)
            .await
            .map(|_| "/selling?done=created".to_owned()),
        Err(problem) => Err(problem),
    };
    let (state, user, headers, form) = (&state, &user, &headers, &form);
    layout::after_form(result, "/selling", headers, |error| async move {
        let query = SellingQuery::default();
        render_selling(state, user, headers, &query, form, Some(&error)).await
    })
    .await
}

#[derive(Deserialize)]
pub struct EditQuery {
    done: Option<String>,
}

/// Which of the edit page's forms a problem belongs to.
enum EditError {
    Save(String),
    Withdraw(String),
}

pub async fn edit_page(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Query(query): Query<EditQuery>,
) -> Result<Response, PageError> {
    let done = match query.done.as_deref() {
        Some("saved") => Some("Changes saved."),
        Some("withdrawn") => Some("Withdrawn from sale. Orders already placed are not affected."),
        _ => None,
    };
    let page = render_edit(&state, &user, &headers, id, None, None, done).await?;
    Ok(layout::html(page))
}

async fn render_edit(
    state: &AppState,
    user: &SignedIn,
    headers: &HeaderMap,
    id: Uuid,
    typed: Option<&ProductForm>,
    error: Option<EditError>,
    done: Option<&str>,
) -> Result<Markup, PageError> {
    let path = format!("/selling/products/{id}");
    let product = state
        .api
        .product(id)
        .await
        .map_err(|problem| PageError::from_problem(problem, &path, headers))?;
    let (save_error, withdraw_error) = match &error {
        Some(EditError::Save(error)) => (Some(error.as_str()), None),
        Some(EditError::Withdraw(error)) => (None, Some(error.as_str())),
        None => (None, None),
    };
    let shown = ProductForm::of(&product);
    let values = typed.unwrap_or(&shown);
    let active = product.status == ProductStatus::Active;
    Ok(layout::page(
        &format!("Edit {}", product.name),
        Nav::Selling,
        Some(user),
        html! {
            h1 { "Edit " (product.name) }
            (notice(done))
            (card("edit", "Details", html! {
                p.hint data-testid="product-state" {
                    "Version " (product.version) " · " (status_label(product.status))
                    " · " (product.reserved) " awaiting payment · " (product.sold) " sold"
                }
                form method="post" action=(path) {
                    (csrf_field(&user.csrf))
                    // The version this form shows: a change made since is not overwritten.
                    input type="hidden" name="version" value=(product.version);
                    (product_fields(values, false))
                    (form_error(save_error))
                    button type="submit" { "Save changes" }
                }
            }))
            @if active {
                (card("withdraw", "Withdraw from sale", html! {
                    p.hint { "The product leaves the shop; orders already placed are not affected." }
                    form method="post" action=(format!("{path}/withdraw")) {
                        (csrf_field(&user.csrf))
                        (form_error(withdraw_error))
                        button.secondary type="submit" { "Withdraw" }
                    }
                }))
            }
            p {
                a href=(format!("/shop/{id}")) { "See it in the shop" } " · "
                a href="/selling" { "All your products" }
            }
        },
    ))
}

#[derive(Deserialize)]
pub struct EditForm {
    /// Read as text: a flattened form reads every value as a string.
    version: String,
    #[serde(flatten)]
    fields: ProductForm,
}

/// `POST /selling/products/{id}`: the change, based on the version the form showed.
pub async fn update(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Form(form): Form<EditForm>,
) -> Result<Response, PageError> {
    let result = match form.fields.change() {
        Ok(change) => state
            .api
            // An unreadable version names none the product has: the API answers 412.
            .update_product(&user.token, id, form.version.parse().unwrap_or(0), &change)
            .await
            .map(|_| format!("/selling/products/{id}?done=saved")),
        Err(problem) => Err(problem),
    };
    // A stale version: the page shows the product as it is now, so what was typed goes.
    let stale = matches!(&result, Err(problem) if problem.status == 412);
    let result = result.map_err(|problem| match problem.status {
        412 => Problem {
            detail: "someone changed this product since you opened it. The form now shows the latest version: make your change again".into(),
            ..problem
        },
        _ => problem,
    });
    let path = format!("/selling/products/{id}");
    let (state, user, headers, form) = (&state, &user, &headers, &form);
    let typed = (!stale).then_some(&form.fields);
    layout::after_form(result, &path, headers, |error| async move {
        let error = Some(EditError::Save(error));
        render_edit(state, user, headers, id, typed, error, None).await
    })
    .await
}

/// `POST /selling/products/{id}/withdraw`.
pub async fn withdraw(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Result<Response, PageError> {
    let result = state
        .api
        .withdraw_product(&user.token, id)
        .await
        .map(|_| format!("/selling/products/{id}?done=withdrawn"));
    let path = format!("/selling/products/{id}");
    let (state, user, headers) = (&state, &user, &headers);
    layout::after_form(result, &path, headers, |error| async move {
        let error = Some(EditError::Withdraw(error));
        render_edit(state, user, headers, id, None, error, None).await
    })
    .await
}
