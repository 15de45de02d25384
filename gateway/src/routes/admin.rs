//! `/admin/*`: what an admin needs to run the shop, such as finding the orders to ship.
//! Admins only (the `admin` role in the access token); anyone else gets 403.

use axum::extract::State;
use axum::http::StatusCode;
use proto::Role;
use proto::http::admin::{OrderParams, UserPage, UserParams};
use proto::http::orders::OrderPage;

use super::auth;
use super::orders::order;
use super::page_limit;
use crate::auth_user::AuthUser;
use crate::problem::{ApiError, Problem};
use crate::query::Query;
use crate::state::AppState;

/// Every user's orders, newest first (admins only).
#[utoipa::path(get, path = "/admin/orders", tag = "admin", security(("bearer" = [])),
    params(OrderParams),
    responses(
        (status = 200, description = "One page", body = OrderPage),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/forbidden", "title": "Forbidden", "status": 403, "detail": "only an admin can see every user's orders and accounts"})),
        (status = 422, description = "An invalid status, user id, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_orders(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<OrderParams>,
) -> Result<axum::Json<OrderPage>, ApiError> {
    require_admin(&user)?;
    let limit = page_limit(params.limit)?;
    let page = state
        .services
        .order
        .clone()
        .list_all_orders(proto::order::v1::ListAllOrdersRequest {
            user_id: params.user_id.map(|id| id.to_string()),
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

/// Every account, newest first (admins only).
#[utoipa::path(get, path = "/admin/users", tag = "admin", security(("bearer" = [])),
    params(UserParams),
    responses(
        (status = 200, description = "One page", body = UserPage),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid q, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_users(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<UserParams>,
) -> Result<axum::Json<UserPage>, ApiError> {
    require_admin(&user)?;
    let limit = page_limit(params.limit)?;
    let page = state
        .services
        .auth
        .clone()
        .list_users(proto::auth::v1::ListUsersRequest {
            q: params.q,
            limit,
            cursor: params.cursor,
        })
        .await?
        .into_inner();
    Ok(axum::Json(UserPage {
        items: page
            .items
            .into_iter()
            .map(auth::user)
            .collect::<Result<_, _>>()?,
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
            "only an admin can see every user's orders and accounts",
        ))
    }
}
