//! `/auth/*`: sign up, sign in, refresh, sign out, who am I.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use proto::auth::v1 as pb;
use proto::http::auth::{AccessToken, Credentials, RefreshRequest, SignedUp, User};
use tonic::Code;
use tonic_types::StatusExt;

use crate::answer;
use crate::auth_user::AuthUser;
use crate::json::Json;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Create an account.
///
/// Sign-ups from one client address are limited (`SIGN_UP_MAX_PER_ADDRESS` within
/// `SIGN_UP_WINDOW_SECS`); past the limit the answer is 429 with `Retry-After`.
#[utoipa::path(
    post, path = "/auth/sign-up", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 201, description = "Account created; a first access token is included", body = SignedUp),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An account with this email already exists (emails are case-insensitive)", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/email-taken", "title": "Conflict", "status": 409, "detail": "an account with this email already exists"})),
        (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid email, password shorter than 8 characters, or a missing field", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many sign-ups from this client address; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait")),
            example = json!({"type": "/problems/too-many-attempts", "title": "Too Many Requests", "status": 429, "detail": "too many sign-ups from this address; try again in 3120 seconds"})),
        (status = 503, description = "Too many passwords are being hashed at once; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait")),
            example = json!({"type": "/problems/busy", "title": "Service Unavailable", "status": 503, "detail": "too many sign-ins and sign-ups at once; try again in 1 second"})),
    )
)]
pub async fn sign_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Json(credentials): Json<Credentials>,
) -> Result<(StatusCode, axum::Json<SignedUp>), ApiError> {
    let address = client_address(&state, &headers, &extensions);
    state
        .sign_in_limiter
        .begin_sign_up(address, Instant::now())
        .map_err(|wait| ApiError::too_many_requests("sign-ups from this address", seconds(wait)))?;
    let response = state
        .services
        .auth
        .clone()
        .sign_up(pb::SignUpRequest {
            email: credentials.email,
            password: credentials.password,
        })
        .await
        .map_err(busy_or_error)?
        .into_inner();
    let token = access_token(response.access_token, response.refresh_token);
    let user = user(response.user.ok_or_else(missing_field)?)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(SignedUp {
            user,
            access_token: token.access_token,
            token_type: token.token_type,
            expires_in: token.expires_in,
            refresh_token: token.refresh_token,
        }),
    ))
}

/// Exchange an email and password for an access token.
///
/// Repeated failures for one email or from one client address are refused with 429 and a
/// `Retry-After` header. Attempts still being checked count as failures until they succeed,
/// so parallel guesses get no more than the limit.
#[utoipa::path(
    post, path = "/auth/sign-in", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in", body = AccessToken),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong email or password (the same answer for both)", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/invalid-credentials", "title": "Unauthorized", "status": 401, "detail": "wrong email or password"})),
        (status = 415, description = "Not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A missing field", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed sign-ins; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait")),
            example = json!({"type": "/problems/too-many-attempts", "title": "Too Many Requests", "status": 429, "detail": "too many failed sign-ins; try again in 840 seconds"})),
        (status = 503, description = "Too many passwords are being checked at once; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait")),
            example = json!({"type": "/problems/busy", "title": "Service Unavailable", "status": 503, "detail": "too many sign-ins and sign-ups at once; try again in 1 second"})),
    )
)]
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Json(credentials): Json<Credentials>,
) -> Result<axum::Json<AccessToken>, ApiError> {
    let address = client_address(&state, &headers, &extensions);
    // Charged before the password is checked (see `sign_in_limiter`).
    let attempt = state
        .sign_in_limiter
        .begin_sign_in(&credentials.email, address, Instant::now())
        .map_err(|wait| ApiError::too_many_requests("failed sign-ins", seconds(wait)))?;
    let outcome = state
        .services
        .auth
        .clone()
        .sign_in(pb::SignInRequest {
            email: credentials.email.clone(),
            password: credentials.password,
        })
        .await;
    match outcome {
        Ok(response) => {
            attempt.succeeded();
            let response = response.into_inner();
            Ok(axum::Json(access_token(
                response.access_token,
                response.refresh_token,
            )))
        }
        Err(status) if status.code() == Code::Unauthenticated => {
            attempt.failed();
            Err(status.into())
        }
        // No verdict on the password: the attempt is refunded.
        Err(status) => {
            drop(attempt);
            Err(busy_or_error(status))
        }
    }
}

/// The address the limits count against (see `client_address`). Requests always carry the
/// peer address in the server; only router tests built without it have none.
fn client_address(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| state.trusted_proxies.client_address(peer.ip(), headers))
}

/// A wait in whole seconds, rounded up (a `Retry-After` of 0 would invite a retry storm).
fn seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// The auth service's UNAVAILABLE (its password hashing slots stayed busy, or it is down)
/// is a 503 with `Retry-After`: the client should come back shortly, not wait for a 504.
fn busy_or_error(status: tonic::Status) -> ApiError {
    if status.code() != Code::Unavailable {
        return status.into();
    }
    let busy = status
        .get_details_error_info()
        .is_some_and(|info| info.reason == "hashing-busy");
    if !busy {
        return ApiError::from(status).retry_after(1);
    }
    tracing::warn!("password hashing is busy: a sign-in or sign-up was refused");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "too many sign-ins and sign-ups at once; try again in 1 second",
    )
    .retry_after(1)
}

/// Exchange a refresh token for a new access token and a new refresh token.
///
/// Rotating and single use: the refresh token given is spent, and the answer holds the next
/// one. Presenting a spent refresh token again revokes its whole family (every refresh token
/// descended from the same sign-in, and the access tokens issued with them), since only a
/// copy can be presented twice. Signing out revokes the family too.
#[utoipa::path(
    post, path = "/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new access token and refresh token", body = AccessToken),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unknown, expired, revoked or already used refresh token (a reused one also revokes its family)", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/invalid-refresh-token", "title": "Unauthorized", "status": 401, "detail": "the refresh token is invalid, expired or already used"})),
        (status = 415, description = "Not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A missing field", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    Json(request): Json<RefreshRequest>,
) -> Result<axum::Json<AccessToken>, ApiError> {
    let response = state
        .services
        .auth
        .clone()
        .refresh(pb::RefreshRequest {
            refresh_token: request.refresh_token,
        })
        .await?
        .into_inner();
    Ok(axum::Json(access_token(
        response.access_token,
        response.refresh_token,
    )))
}

/// Revoke the access token used for this request, and the refresh tokens of its sign-in.
#[utoipa::path(
    post, path = "/auth/sign-out", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out; the token and its refresh token are refused from now on"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn sign_out(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .auth
        .clone()
        .sign_out(pb::SignOutRequest {
            jti: user.jti.to_string(),
            expires_at: Some(prost_types::Timestamp {
                seconds: user.expires_at,
                nanos: 0,
            }),
        })
        .await?;
    state.verifier.revoke_locally(user.jti, user.expires_at);
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[utoipa::path(
    get, path = "/auth/me", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account behind the token", body = User),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/unauthorized", "title": "Unauthorized", "status": 401, "detail": "the access token is invalid or expired"})),
    )
)]
pub async fn me(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<axum::Json<User>, ApiError> {
    let found = state
        .services
        .auth
        .clone()
        .get_user(pb::GetUserRequest {
            user_id: user.id.to_string(),
        })
        .await?
        .into_inner();
    Ok(axum::Json(self::user(found)?))
}

pub fn user(user: pb::User) -> Result<User, ApiError> {
    Ok(User {
        id: answer::id(&user.id)?,
        email: user.email,
        roles: user
            .roles
            .into_iter()
            .map(answer::value)
            .collect::<Result<_, _>>()?,
        created_at: answer::time(user.created_at)?,
    })
}

fn access_token(token: Option<pb::AccessToken>, refresh_token: String) -> AccessToken {
    let token = token.unwrap_or_default();
    AccessToken {
        access_token: token.token,
        token_type: token.token_type,
        expires_in: token.expires_in,
        refresh_token,
    }
}

fn missing_field() -> ApiError {
    tracing::error!("the auth service answered without a required field");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "an internal error occurred",
    )
}
