//! `/products*`: the catalogue. Sellers put products up for sale at prices the server keeps;
//! anyone may browse it. Edits carry the product's version (`ETag` / `If-Match`), so two
//! writers never overwrite each other.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::http::products::{ListParams, NewProduct, Product, ProductChange, ProductPage};
use proto::order::v1 as pb;

use super::page_limit;
use crate::answer;
use crate::auth_user::AuthUser;
use crate::json::Json;
use crate::problem::{ApiError, Problem};
use crate::query::Query;
use crate::state::AppState;

/// Put a product up for sale (the caller is the seller).
#[utoipa::path(post, path = "/products", tag = "products", security(("bearer" = [])),
    request_body = NewProduct,
    responses(
        (status = 201, description = "On sale; `ETag` is its version", body = Product,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid field", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/validation-failed", "title": "Unprocessable Entity", "status": 422, "detail": "price: must be 1 to 1000000000 minor units (cents)", "errors": {"price": ["must be 1 to 1000000000 minor units (cents)"]}})),
    ))]
pub async fn create_product(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<NewProduct>,
) -> Result<Response, ApiError> {
    let created = state
        .services
        .order
        .clone()
        .create_product(pb::CreateProductRequest {
            seller_id: user.id.to_string(),
            name: body.name,
            description: body.description,
            price: body.price,
            currency: body.currency,
            stock: body.stock,
            sku: body.sku,
        })
        .await?
        .into_inner();
    Ok(with_etag(StatusCode::CREATED, product(created)?))
}

/// Browse the catalogue, newest first (no sign-in needed).
#[utoipa::path(get, path = "/products", tag = "products",
    params(ListParams),
    responses(
        (status = 200, description = "One page", body = ProductPage),
        (status = 422, description = "An invalid filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_products(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<ProductPage>, ApiError> {
    let limit = page_limit(params.limit)?;
    let page = state
        .services
        .order
        .clone()
        .list_products(pb::ListProductsRequest {
            q: params.q,
            seller_id: params.seller_id.map(|id| id.to_string()),
            status: params.status.map(i32::from),
            limit,
            cursor: params.cursor,
        })
        .await?
        .into_inner();
    Ok(axum::Json(ProductPage {
        items: page
            .items
            .into_iter()
            .map(product)
            .collect::<Result<_, _>>()?,
        next_cursor: page.next_cursor,
    }))
}

/// One product, active or withdrawn (no sign-in needed).
#[utoipa::path(get, path = "/products/{id}", tag = "products",
    params(("id" = String, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product; `ETag` is its version", body = Product,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/product-not-found", "title": "Not Found", "status": 404, "detail": "no such product"})),
    ))]
pub async fn get_product(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let found = state
        .services
        .order
        .clone()
        .get_product(pb::ProductRequest {
            product_id: id,
            seller_id: String::new(),
        })
        .await?
        .into_inner();
    Ok(with_etag(StatusCode::OK, product(found)?))
}

/// Change the caller's product: name, description, price or stock.
///
/// `If-Match` must carry the `ETag` the change is based on: without it 428, and 412 when the
/// product changed since. A new price applies to new orders only.
#[utoipa::path(patch, path = "/products/{id}", tag = "products", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Product id"),
        ("If-Match" = String, Header, description = "The product's `ETag`, `\"<version>\"`"),
    ),
    request_body = ProductChange,
    responses(
        (status = 200, description = "Changed; `ETag` is the new version", body = Product,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the caller's product", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/not-the-seller", "title": "Forbidden", "status": 403, "detail": "only the product's seller can change it"})),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Stock below what orders have reserved", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/stock-below-reserved", "title": "Conflict", "status": 409, "detail": "stock cannot go below the 2 units orders have reserved"})),
        (status = 412, description = "The product changed since the `If-Match` version", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/version-mismatch", "title": "Precondition Failed", "status": 412, "detail": "the product is at version 2, not the one `If-Match` names"})),
        (status = 422, description = "An invalid field, or none", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "No `If-Match`", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/precondition-required", "title": "Precondition Required", "status": 428, "detail": "send `If-Match` with the product's ETag"})),
    ))]
pub async fn update_product(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<ProductChange>,
) -> Result<Response, ApiError> {
    let expected_version = if_match(&headers)?;
    let changed = state
        .services
        .order
        .clone()
        .update_product(pb::UpdateProductRequest {
            product_id: id,
            seller_id: user.id.to_string(),
            expected_version,
            name: body.name,
            description: body.description,
            price: body.price,
            stock: body.stock,
        })
        .await?
        .into_inner();
    Ok(with_etag(StatusCode::OK, product(changed)?))
}

/// Withdraw the caller's product from sale. Orders already placed are unaffected.
#[utoipa::path(delete, path = "/products/{id}", tag = "products", security(("bearer" = [])),
    params(("id" = String, Path, description = "Product id")),
    responses(
        (status = 200, description = "Withdrawn", body = Product),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the caller's product", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn withdraw_product(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let withdrawn = state
        .services
        .order
        .clone()
        .withdraw_product(pb::ProductRequest {
            product_id: id,
            seller_id: user.id.to_string(),
        })
        .await?
        .into_inner();
    Ok(with_etag(StatusCode::OK, product(withdrawn)?))
}

/// The version `If-Match` names: 428 without one. A value this API never gave out is
/// version 0, which no product has (versions start at 1), so it is 412 like a stale one; it
/// is the service that says so, after checking the body, because the precondition comes
/// after the request's own checks (RFC 9110, 13.2.1): a bad body is 422 whatever `If-Match`.
fn if_match(headers: &HeaderMap) -> Result<i64, ApiError> {
    let value = headers.get(header::IF_MATCH).ok_or_else(|| {
        ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition-required",
            "send `If-Match` with the product's ETag, so that no one else's change is overwritten",
        )
    })?;
    Ok(value
        .to_str()
        .ok()
        .and_then(parse_etag)
        .unwrap_or(NO_VERSION))
}

/// The version an `If-Match` this API never gave out stands for.
const NO_VERSION: i64 = 0;

/// `"<version>"` back to the version (a weak `W/` ETag never matches, as RFC 9110 says for
/// `If-Match`).
fn parse_etag(raw: &str) -> Option<i64> {
    raw.trim()
        .strip_prefix('"')?
        .strip_suffix('"')?
        .parse()
        .ok()
        .filter(|version| *version > 0)
}

fn with_etag(status: StatusCode, product: Product) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", product.version))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    (status, [(header::ETAG, etag)], axum::Json(product)).into_response()
}

pub fn product(product: pb::Product) -> Result<Product, ApiError> {
    Ok(Product {
        id: answer::id(&product.id)?,
        seller_id: answer::id(&product.seller_id)?,
        sku: product.sku,
        name: product.name,
        description: product.description,
        price: product.price,
        currency: product.currency,
        stock: product.stock,
        reserved: product.reserved,
        available: product.available,
        sold: product.sold,
        version: product.version,
        status: answer::value(product.status)?,
        created_at: answer::time(product.created_at)?,
        updated_at: answer::time(product.updated_at)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_strong_etag_of_a_positive_version_is_read() {
        assert_eq!(parse_etag("\"3\""), Some(3));
        assert_eq!(parse_etag(" \"12\" "), Some(12));
        for other in ["3", "W/\"3\"", "\"0\"", "\"x\"", "*", "\"-1\""] {
            assert_eq!(parse_etag(other), None, "{other}");
        }
    }
}
