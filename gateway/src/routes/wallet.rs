//! `/wallet/*`: balance and transactions.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use proto::http::wallet::{
    Balance, BalanceHistory, DayBalance, HistoryParams, ListParams, NewTransaction, Transaction,
    TransactionPage,
};
use proto::wallet::v1 as pb;

use super::page_limit;
use crate::answer;
use crate::auth_user::AuthUser;
use crate::json::Json;
use crate::problem::{ApiError, Problem};
use crate::query::Query;
use crate::state::AppState;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The caller's balance.
#[utoipa::path(get, path = "/wallet/balance", tag = "wallet", security(("bearer" = [])),
    responses(
        (status = 200, description = "The balance (a new wallet is empty)", body = Balance),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn balance(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<axum::Json<Balance>, ApiError> {
    let balance = state
        .services
        .wallet
        .clone()
        .get_balance(pb::GetBalanceRequest {
            user_id: user.id.to_string(),
        })
        .await?
        .into_inner();
    Ok(axum::Json(Balance {
        balance: balance.balance,
        currency: balance.currency,
        updated_at: answer::time(balance.updated_at)?,
    }))
}

/// The caller's balance at the end of each of the last days, for a chart: one indexed
/// look-up per day, however many transactions the wallet has.
#[utoipa::path(get, path = "/wallet/balance/history", tag = "wallet", security(("bearer" = [])),
    params(HistoryParams),
    responses(
        (status = 200, description = "One balance per day, oldest first", body = BalanceHistory),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`days` is not between 1 and 366", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn balance_history(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<HistoryParams>,
) -> Result<axum::Json<BalanceHistory>, ApiError> {
    let history = state
        .services
        .wallet
        .clone()
        .get_balance_history(pb::GetBalanceHistoryRequest {
            user_id: user.id.to_string(),
            days: params.days,
        })
        .await?
        .into_inner();
    let days = history
        .days
        .into_iter()
        .map(|day| {
            Ok(DayBalance {
                date: answer::date(&day.date)?,
                balance: day.balance,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(axum::Json(BalanceHistory {
        currency: history.currency,
        days,
    }))
}

/// Apply a transaction to the caller's wallet.
///
/// Send an `Idempotency-Key` to retry safely: the same key with the same body returns the
/// first answer again without a second effect; with a different body, 422.
#[utoipa::path(post, path = "/wallet/transactions", tag = "wallet", security(("bearer" = [])),
    request_body = NewTransaction,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; kept at least 24 hours, per user", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 201, description = "Applied", body = Transaction),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The parent transaction does not exist or is not the caller's", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/parent-not-found", "title": "Not Found", "status": 404, "detail": "the parent transaction does not exist"})),
        (status = 409, description = "The parent was already cancelled or reversed", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/already-undone", "title": "Conflict", "status": 409, "detail": "the parent transaction has already been cancelled or reversed"})),
        (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Insufficient funds, an invalid amount, type or currency, a parent that cannot be undone this way (or not through the API: only transactions made through the API are undone here), an amount different from the parent's, or a reused Idempotency-Key", body = Problem, content_type = "application/problem+json",
            examples(
                ("insufficient-funds" = (value = json!({"type": "/problems/insufficient-funds", "title": "Unprocessable Entity", "status": 422, "detail": "the balance is too low for this transaction"}))),
                ("validation-failed" = (value = json!({"type": "/problems/validation-failed", "title": "Unprocessable Entity", "status": 422, "detail": "amount: must be a positive number of minor units (cents)", "errors": {"amount": ["must be a positive number of minor units (cents)"]}}))),
                ("parent-not-undoable" = (value = json!({"type": "/problems/parent-not-undoable", "title": "Unprocessable Entity", "status": 422, "detail": "only a purchase can be cancelled; this parent is a deposit"}))),
                ("not-undoable-here" = (value = json!({"type": "/problems/not-undoable-here", "title": "Unprocessable Entity", "status": 422, "detail": "this transaction cannot be undone from here (api): it was made by another system through the broker; only a request from the broker can undo it"}))),
                ("amount-mismatch" = (value = json!({"type": "/problems/amount-mismatch", "title": "Unprocessable Entity", "status": 422, "detail": "the amount must equal the parent transaction's amount (500) or be left out"}))),
                ("idempotency-key-reused" = (value = json!({"type": "/problems/idempotency-key-reused", "title": "Unprocessable Entity", "status": 422, "detail": "this Idempotency-Key was already used with a different request"}))),
            )),
    ))]
pub async fn create_transaction(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Json(body): Json<NewTransaction>,
) -> Result<(StatusCode, axum::Json<Transaction>), ApiError> {
    let idempotency_key = idempotency_key(&headers)?;
    let created = state
        .services
        .wallet
        .clone()
        .create_transaction(pb::CreateTransactionRequest {
            user_id: user.id.to_string(),
            r#type: body.kind.into(),
            amount: body.amount,
            currency: body.currency,
            parent_transaction_id: body.parent_transaction_id.map(|id| id.to_string()),
            description: body.description,
            idempotency_key,
        })
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, axum::Json(transaction(created)?)))
}

/// The `Idempotency-Key` header, if any (the service checks its length and characters).
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    headers
        .get(IDEMPOTENCY_KEY)
        .map(|value| {
            value.to_str().map(str::to_owned).map_err(|_| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation-failed",
                    "Idempotency-Key must be visible ASCII",
                )
            })
        })
        .transpose()
}

/// The caller's transactions, newest first.
#[utoipa::path(get, path = "/wallet/transactions", tag = "wallet", security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "One page", body = TransactionPage),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid filter, limit or cursor; a date or time outside 1970-01-01 to 9999-12-31 (UTC)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_transactions(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<TransactionPage>, ApiError> {
    let from = params
        .from
        .as_deref()
        .map(|raw| instant(raw, "from", false))
        .transpose()?;
    let to = params
        .to
        .as_deref()
        .map(|raw| instant(raw, "to", true))
        .transpose()?;
    let limit = page_limit(params.limit)?;
    let page = state
        .services
        .wallet
        .clone()
        .list_transactions(pb::ListTransactionsRequest {
            user_id: user.id.to_string(),
            r#type: params.kind.map(i32::from),
            from: from.map(platform::timestamp::to_proto),
            to: to.map(platform::timestamp::to_proto),
            limit,
            cursor: params.cursor,
        })
        .await?
        .into_inner();
    Ok(axum::Json(TransactionPage {
        items: page
            .items
            .into_iter()
            .map(transaction)
            .collect::<Result<_, _>>()?,
        next_cursor: page.next_cursor,
    }))
}

/// One of the caller's transactions.
#[utoipa::path(get, path = "/wallet/transactions/{id}", tag = "wallet", security(("bearer" = [])),
    params(("id" = String, Path, description = "Transaction id")),
    responses(
        (status = 200, description = "The transaction", body = Transaction),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such transaction (or another user's)", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/not-found", "title": "Not Found", "status": 404, "detail": "no such transaction"})),
    ))]
pub async fn get_transaction(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<Transaction>, ApiError> {
    let found = state
        .services
        .wallet
        .clone()
        .get_transaction(pb::GetTransactionRequest {
            user_id: user.id.to_string(),
            transaction_id: id,
        })
        .await?
        .into_inner();
    Ok(axum::Json(transaction(found)?))
}

/// A day (`YYYY-MM-DD`, UTC; its start, or its last instant when `end_of_day`) or an RFC 3339
/// instant.
/// Only times from 1970 to 9999 (UTC) are accepted (see `platform::timestamp`).
fn instant(raw: &str, field: &str, end_of_day: bool) -> Result<DateTime<Utc>, ApiError> {
    let at = if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        at.with_timezone(&Utc)
    } else {
        let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
            ApiError::invalid(field, "must be a date (YYYY-MM-DD) or an RFC 3339 instant")
        })?;
        // The day's first or last microsecond, without arithmetic that could overflow.
        let time = if end_of_day {
            NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999)
        } else {
            NaiveTime::from_hms_opt(0, 0, 0)
        };
        day.and_time(time.unwrap_or_default()).and_utc()
    };
    platform::timestamp::accepted_instant(at).map_err(|reason| ApiError::invalid(field, reason))
}

fn transaction(transaction: pb::Transaction) -> Result<Transaction, ApiError> {
    Ok(Transaction {
        id: answer::id(&transaction.id)?,
        kind: answer::value(transaction.r#type)?,
        amount: transaction.amount,
        currency: transaction.currency,
        balance_after: transaction.balance_after,
        parent_transaction_id: answer::optional_id(transaction.parent_transaction_id)?,
        description: transaction.description,
        source: answer::value(transaction.source)?,
        reference: transaction.reference,
        created_at: answer::time(transaction.created_at)?,
    })
}
