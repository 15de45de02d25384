//! `/orders*` and `/vouchers`: orders of catalogue products paid from the wallet, and the
//! vouchers large orders earn.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use proto::Role;
use proto::http::orders::{
    Item, ListParams, NewOrder, Order, OrderPage, PageParams, Sale, SalePage, StatusChange,
    Voucher, VoucherPage,
};
use proto::order::v1 as pb;

use super::page_limit;
use super::wallet::idempotency_key;
use crate::answer;
use crate::auth_user::AuthUser;
use crate::json::Json;
use crate::problem::{ApiError, Problem};
use crate::query::Query;
use crate::state::AppState;

/// Place an order of catalogue products, paid from the caller's wallet.
///
/// Each product's price, name, sku and seller are copied into the order, and its units are
/// reserved with the order, all or none. The answer is the order in `pending_payment`; the
/// payment goes through the wallet by events and the order becomes `paid` or
/// `payment_failed` (insufficient funds) within about a second. Unpaid orders expire after
/// the payment timeout (15 minutes by default) and their units go back on sale. Send an
/// `Idempotency-Key` to retry safely: the same key with the same body answers the order it
/// placed; with a different body, 422.
#[utoipa::path(post, path = "/orders", tag = "orders", security(("bearer" = [])),
    request_body = NewOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; kept at least 24 hours, per user", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 201, description = "Created, stock reserved, payment requested", body = Order),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Out of stock, a withdrawn product, or the voucher was already redeemed", body = Problem, content_type = "application/problem+json",
            examples(
                ("out-of-stock" = (value = json!({"type": "/problems/out-of-stock", "title": "Conflict", "status": 409, "detail": "product 0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21 is out of stock: 0 available"}))),
                ("product-withdrawn" = (value = json!({"type": "/problems/product-withdrawn", "title": "Conflict", "status": 409, "detail": "product 0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21 has been withdrawn from sale"}))),
                ("voucher-already-redeemed" = (value = json!({"type": "/problems/voucher-already-redeemed", "title": "Conflict", "status": 409, "detail": "this voucher has already been redeemed"}))),
            )),
        (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid lines (a client price or name among them), an unknown product, the caller's own product, an unknown voucher code, or a reused Idempotency-Key", body = Problem, content_type = "application/problem+json",
            examples(
                ("validation-failed" = (value = json!({"type": "/problems/validation-failed", "title": "Unprocessable Entity", "status": 422, "detail": "items.quantity: item 1: must be 1 to 1000", "errors": {"items.quantity": ["item 1: must be 1 to 1000"]}}))),
                ("product-not-found" = (value = json!({"type": "/problems/product-not-found", "title": "Unprocessable Entity", "status": 422, "detail": "item 1: no such product"}))),
                ("own-product" = (value = json!({"type": "/problems/own-product", "title": "Unprocessable Entity", "status": 422, "detail": "item 1: this is your own product; you cannot buy it"}))),
                ("voucher-not-found" = (value = json!({"type": "/problems/voucher-not-found", "title": "Unprocessable Entity", "status": 422, "detail": "no such voucher"}))),
                ("idempotency-key-reused" = (value = json!({"type": "/problems/idempotency-key-reused", "title": "Unprocessable Entity", "status": 422, "detail": "this Idempotency-Key was already used with a different request"}))),
            )),
    ))]
pub async fn create_order(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Json(body): Json<NewOrder>,
) -> Result<(StatusCode, axum::Json<Order>), ApiError> {
    let idempotency_key = idempotency_key(&headers)?;
    let created = state
        .services
        .order
        .clone()
        .create_order(pb::CreateOrderRequest {
            user_id: user.id.to_string(),
            lines: body
                .items
                .into_iter()
                .map(|line| pb::OrderLine {
                    product_id: line.product_id,
                    quantity: line.quantity,
                })
                .collect(),
            currency: body.currency,
            voucher_code: body.voucher_code,
            idempotency_key,
        })
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, axum::Json(order(created)?)))
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/orders", tag = "orders", security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "One page", body = OrderPage),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid status, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_orders(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<OrderPage>, ApiError> {
    let limit = page_limit(params.limit)?;
    let page = state
        .services
        .order
        .clone()
        .list_orders(pb::ListOrdersRequest {
            user_id: user.id.to_string(),
            status: params.status.map(i32::from),
            limit,
            cursor: params.cursor,
        })
        .await?
        .into_inner();
    Ok(axum::Json(OrderPage {
        items: page
            .items
            .into_iter()
            .map(order)
            .collect::<Result<_, _>>()?,
        next_cursor: page.next_cursor,
    }))
}

/// One of the caller's orders.
#[utoipa::path(get, path = "/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order (or another user's)", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/order-not-found", "title": "Not Found", "status": 404, "detail": "no such order"})),
    ))]
pub async fn get_order(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<Order>, ApiError> {
    let found = state
        .services
        .order
        .clone()
        .get_order(owned(&user, id))
        .await?
        .into_inner();
    Ok(axum::Json(order(found)?))
}

/// Retry the payment of a `payment_failed` order (for example after a deposit).
///
/// The order goes back to `pending_payment` while the wallet processes the new attempt,
/// then becomes `paid` or `payment_failed` again.
#[utoipa::path(post, path = "/orders/{id}/pay", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    responses(
        (status = 202, description = "Payment requested", body = Order),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order (or another user's)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is not `payment_failed`", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/illegal-transition", "title": "Conflict", "status": 409, "detail": "the order is paid; it cannot be paid"})),
    ))]
pub async fn pay_order(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<(StatusCode, axum::Json<Order>), ApiError> {
    let paying = state
        .services
        .order
        .clone()
        .pay_order(owned(&user, id))
        .await?
        .into_inner();
    Ok((StatusCode::ACCEPTED, axum::Json(order(paying)?)))
}

/// Cancel an order before it is sent. A paid order is refunded to the wallet (a
/// `cancellation` of its purchase; `refund_transaction_id` is set once it is applied), and a
/// redeemed voucher is given back.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    responses(
        (status = 200, description = "Cancelled", body = Order),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order (or another user's)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order was already sent, delivered, cancelled or expired", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/illegal-transition", "title": "Conflict", "status": 409, "detail": "the order is sent; it cannot be cancelled"})),
    ))]
pub async fn cancel_order(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<Order>, ApiError> {
    let cancelled = state
        .services
        .order
        .clone()
        .cancel_order(owned(&user, id))
        .await?
        .into_inner();
    Ok(axum::Json(order(cancelled)?))
}

/// Ship a paid order (admins only). An order whose total is above 100.00 EUR earns its
/// owner a 5.00 EUR voucher.
#[utoipa::path(post, path = "/orders/{id}/ship", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id (any user's)")),
    responses(
        (status = 200, description = "Sent", body = Order),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/forbidden", "title": "Forbidden", "status": 403, "detail": "only an admin can ship or deliver orders"})),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is not `paid`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn ship_order(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<Order>, ApiError> {
    require_admin(&user)?;
    let sent = state
        .services
        .order
        .clone()
        .ship_order(pb::FulfilmentRequest { order_id: id })
        .await?
        .into_inner();
    Ok(axum::Json(order(sent)?))
}

/// Mark a sent order delivered (admins only).
#[utoipa::path(post, path = "/orders/{id}/deliver", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id (any user's)")),
    responses(
        (status = 200, description = "Delivered", body = Order),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is not `sent`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn deliver_order(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<Order>, ApiError> {
    require_admin(&user)?;
    let delivered = state
        .services
        .order
        .clone()
        .deliver_order(pb::FulfilmentRequest { order_id: id })
        .await?
        .into_inner();
    Ok(axum::Json(order(delivered)?))
}

/// The caller's vouchers, newest first.
#[utoipa::path(get, path = "/vouchers", tag = "orders", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "One page", body = VoucherPage),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_vouchers(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<VoucherPage>, ApiError> {
    let limit = page_limit(params.limit)?;
    let page = state
        .services
        .order
        .clone()
        .list_vouchers(pb::ListVouchersRequest {
            user_id: user.id.to_string(),
            limit,
            cursor: params.cursor,
        })
        .await?
        .into_inner();
    Ok(axum::Json(VoucherPage {
        items: page
            .items
            .into_iter()
            .map(voucher)
            .collect::<Result<_, _>>()?,
        next_cursor: page.next_cursor,
    }))
}

/// The caller's sales, newest first: each paid order of their products (a refunded one no
/// longer counts), with their items, the order's status and, once delivered, their payout.
#[utoipa::path(get, path = "/sales", tag = "orders", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "One page", body = SalePage),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_sales(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<SalePage>, ApiError> {
    let limit = page_limit(params.limit)?;
    let page = state
        .services
        .order
        .clone()
        .list_sales(pb::ListSalesRequest {
            seller_id: user.id.to_string(),
            limit,
            cursor: params.cursor,
        })
        .await?
        .into_inner();
    Ok(axum::Json(SalePage {
        items: page
            .items
            .into_iter()
            .map(|sale| {
                Ok(Sale {
                    order_id: answer::id(&sale.order_id)?,
                    status: answer::value(sale.status)?,
                    items: sale.items.into_iter().map(item).collect::<Result<_, _>>()?,
                    subtotal: sale.subtotal,
                    payout: sale.payout,
                    ordered_at: answer::time(sale.ordered_at)?,
                })
            })
            .collect::<Result<_, ApiError>>()?,
        next_cursor: page.next_cursor,
    }))
}

fn require_admin(user: &AuthUser) -> Result<(), ApiError> {
    if user.roles.contains(&Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only an admin can ship or deliver orders",
        ))
    }
}

fn owned(user: &AuthUser, order_id: String) -> pb::OrderRequest {
    pb::OrderRequest {
        user_id: user.id.to_string(),
        order_id,
    }
}

pub fn order(order: pb::Order) -> Result<Order, ApiError> {
    Ok(Order {
        id: answer::id(&order.id)?,
        user_id: answer::id(&order.user_id)?,
        status: answer::value(order.status)?,
        items: order
            .items
            .into_iter()
            .map(item)
            .collect::<Result<_, _>>()?,
        subtotal: order.subtotal,
        discount: order.discount,
        total: order.total,
        currency: order.currency,
        voucher_code: order.voucher_code,
        payment_transaction_id: answer::optional_id(order.payment_transaction_id)?,
        refund_transaction_id: answer::optional_id(order.refund_transaction_id)?,
        created_at: answer::time(order.created_at)?,
        updated_at: answer::time(order.updated_at)?,
        status_history: order
            .status_history
            .into_iter()
            .map(|change| {
                Ok(StatusChange {
                    status: answer::value(change.status)?,
                    at: answer::time(change.at)?,
                })
            })
            .collect::<Result<_, ApiError>>()?,
    })
}

fn item(item: pb::Item) -> Result<Item, ApiError> {
    Ok(Item {
        sku: item.sku,
        name: item.name,
        unit_price: item.unit_price,
        quantity: item.quantity,
        product_id: answer::optional_id(item.product_id)?,
        seller_id: answer::optional_id(item.seller_id)?,
    })
}

fn voucher(voucher: pb::Voucher) -> Result<Voucher, ApiError> {
    Ok(Voucher {
        code: voucher.code,
        amount: voucher.amount,
        currency: voucher.currency,
        order_id: answer::id(&voucher.order_id)?,
        issued_at: answer::time(voucher.issued_at)?,
        redeemed_at: voucher
            .redeemed_at
            .map(|at| answer::time(Some(at)))
            .transpose()?,
        redeemed_order_id: answer::optional_id(voucher.redeemed_order_id)?,
    })
}
