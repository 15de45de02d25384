//! The `AuthUser` extractor: a route that takes one requires `Authorization: Bearer <token>`
//! with a valid, unrevoked access token.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use uuid::Uuid;

use crate::problem::ApiError;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: Uuid,
    pub roles: Vec<proto::Role>,
    /// The token's id and expiry, for sign-out.
    pub jti: Uuid,
    pub expires_at: i64,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized(
                "this route needs an `Authorization: Bearer <access token>` header",
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the `Authorization` header must be `Bearer <access token>`")
            })?;
        let claims = state.verifier.verify(token)?;
        Ok(Self {
            id: claims.sub,
            roles: claims.roles,
            jti: claims.jti,
            expires_at: claims.exp,
        })
    }
}
