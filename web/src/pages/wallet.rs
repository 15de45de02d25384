//! The wallet: balance, the 30-day chart, transactions with filters and paging, deposit and
//! withdraw, cancel and reverse.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use maud::{Markup, html};
use proto::{TransactionSource, TransactionType};
use serde::Deserialize;
use uuid::Uuid;

use crate::AppState;
use crate::api::{
    Balance, NewTransaction, Problem, Transaction, TransactionFilter, TransactionPage,
};
use crate::pages::layout::{self, Column, Nav, PageError, csrf_field, form_error, notice};
use crate::session::SignedIn;
use crate::{chart, money};

const PAGE_SIZE: u32 = 20;
const CHART_DAYS: u32 = 30;

#[derive(Default, Deserialize)]
pub struct WalletQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    done: Option<String>,
}

impl WalletQuery {
    /// The API's filter; a type it does not know is refused as the API would refuse it.
    fn filter(&self) -> Result<TransactionFilter, Problem> {
        let given = |value: &Option<String>| value.clone().filter(|value| !value.is_empty());
        let kind = given(&self.kind).map(|kind| kind.parse()).transpose();
        Ok(TransactionFilter {
            kind: kind.map_err(|error| Problem::invalid(format!("type: {error}")))?,
            from: given(&self.from),
            to: given(&self.to),
            cursor: given(&self.cursor),
            limit: Some(PAGE_SIZE),
        })
    }
}

/// Which form a problem belongs to.
#[derive(Default)]
struct FormErrors {
    deposit: Option<String>,
    withdraw: Option<String>,
    undo: Option<String>,
}

pub async fn wallet_page(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Query(query): Query<WalletQuery>,
) -> Result<Response, PageError> {
    let page = render(&state, &user, &query, FormErrors::default())
        .await
        .map_err(|problem| PageError::from_problem(problem, "/wallet", &headers))?;
    Ok(layout::html(page))
}

async fn render(
    state: &AppState,
    user: &SignedIn,
    query: &WalletQuery,
    errors: FormErrors,
) -> Result<Markup, Problem> {
    // A bad filter is the filter form's problem, not the page's.
    let (balance, transactions, days) = tokio::join!(
        state.api.balance(&user.token),
        async { state.api.transactions(&user.token, &query.filter()?).await },
        balance_by_day(state, &user.token),
    );
    let balance = balance?;
    let (transactions, filter_error) = match transactions {
        Ok(page) => (page, None),
        Err(problem) if problem.status == 422 => {
            (TransactionPage::default(), Some(problem.message()))
        }
        Err(problem) => return Err(problem),
    };
    let days = days?;
    let done = query.done.as_deref().map(|done| match done {
        "deposit" => "Deposit made.",
        "withdraw" => "Withdrawal made.",
        _ => "Done.",
    });
    Ok(layout::page(
        "Wallet",
        Nav::Wallet,
        Some(user),
        html! {
            h1 { "Wallet" }
            (notice(done))
            section.card aria-labelledby="balance-heading" {
                h2 id="balance-heading" { "Balance" }
                p.balance data-testid="balance" { (money::format(balance.balance)) " " (balance.currency) }
                h3 { "Last 30 days" }
                (layout::raw(chart::balance_svg(&days, &balance.currency)))
            }
            div.forms {
                (money_form("deposit", "Deposit", &user.csrf, errors.deposit.as_deref()))
                (money_form("withdraw", "Withdraw", &user.csrf, errors.withdraw.as_deref()))
            }
            (transactions_section(&balance, &transactions, query, &user.csrf, filter_error.as_deref(), errors.undo.as_deref()))
        },
    ))
}

/// The balance at the end of each of the last 30 days, in one call.
async fn balance_by_day(state: &AppState, token: &str) -> Result<Vec<(NaiveDate, i64)>, Problem> {
    let history = state.api.balance_history(token, CHART_DAYS).await?;
    Ok(history
        .days
        .into_iter()
        .map(|day| (day.date, day.balance))
        .collect())
}

fn money_form(kind: &str, label: &str, csrf: &str, error: Option<&str>) -> Markup {
    let amount_id = format!("{kind}-amount");
    let description_id = format!("{kind}-description");
    html! {
        section.card aria-labelledby=(format!("{kind}-heading")) {
            h2 id=(format!("{kind}-heading")) { (label) }
            form method="post" action=(format!("/wallet/{kind}")) {
                (csrf_field(csrf))
                // A fresh key per form shown: posting the same form twice moves money once.
                input type="hidden" name="key" value=(Uuid::new_v4().to_string());
                label for=(amount_id) { "Amount (EUR)" }
                input id=(amount_id) type="text" name="amount" inputmode="decimal" required pattern="[0-9]+([.,][0-9]{1,2})?" placeholder="12.50";
                label for=(description_id) { "Description (optional)" }
                input id=(description_id) type="text" name="description" maxlength="500";
                (form_error(error))
                button type="submit" { (label) }
            }
        }
    }
}

fn transactions_section(
    balance: &Balance,
    page: &TransactionPage,
    query: &WalletQuery,
    csrf: &str,
    filter_error: Option<&str>,
    undo_error: Option<&str>,
) -> Markup {
    let selected = query.kind.as_deref().unwrap_or("");
    let next_page = page.next_cursor.as_ref().map(|cursor| {
        let params = [
            ("type", selected),
            ("from", query.from.as_deref().unwrap_or("")),
            ("to", query.to.as_deref().unwrap_or("")),
            ("cursor", cursor.as_str()),
        ];
        format!(
            "/wallet?{}",
            serde_urlencoded::to_string(params).unwrap_or_default()
        )
    });
    html! {
        section.card aria-labelledby="transactions-heading" {
            h2 id="transactions-heading" { "Transactions" }
            form.filters method="get" action="/wallet" {
                div {
                    label for="filter-type" { "Type" }
                    select id="filter-type" name="type" {
                        option value="" selected[selected.is_empty()] { "All" }
                        @for kind in TransactionType::ALL {
                            option value=(kind) selected[selected == kind.as_str()] { (kind) }
                        }
                    }
                }
                div {
                    label for="filter-from" { "From" }
                    input id="filter-from" name="from" type="date" value=(query.from.as_deref().unwrap_or(""));
                }
                div {
                    label for="filter-to" { "To" }
                    input id="filter-to" name="to" type="date" value=(query.to.as_deref().unwrap_or(""));
                }
                button type="submit" { "Filter" }
            }
            (form_error(filter_error))
            (form_error(undo_error))
            @if page.items.is_empty() {
                p { "No transactions." }
            } @else {
                (layout::table("Transactions", "Transactions, newest first", &[Column::Text("When (UTC)"), Column::Text("Type"), Column::Text("Description"), Column::Num("Amount"), Column::Num("Balance after"), Column::Hidden("Actions")], html! {
                    @for transaction in &page.items {
                        tr {
                            td { (transaction.created_at.format("%Y-%m-%d %H:%M")) }
                            td { (transaction.kind) }
                            td { (transaction.description.as_deref().unwrap_or("")) }
                            td.num { (signed_amount(transaction)) " " (transaction.currency) }
                            td.num { (money::format(transaction.balance_after)) }
                            td { (undo_button(transaction, csrf)) }
                        }
                    }
                }))
            }
            nav.pager aria-label="Transaction pages" {
                @if query.cursor.is_some() { a href="/wallet" { "Newest" } }
                @if let Some(next) = next_page { a href=(next) rel="next" { "Older" } }
            }
            p.hint { "Amounts in " (balance.currency) "." }
        }
    }
}

/// With the direction where the type tells it (a reversal goes either way: its type says so).
fn signed_amount(transaction: &Transaction) -> String {
    let sign = match transaction.kind {
        TransactionType::Withdraw | TransactionType::Purchase => "−",
        TransactionType::Deposit | TransactionType::Cancellation => "+",
        TransactionType::Reversal => "",
    };
    format!("{sign}{}", money::format(transaction.amount))
}

/// Cancel (a purchase) or reverse (a deposit or withdraw) — only for what was made through
/// the API; the API refuses the rest, and the page does not offer it.
fn undo_button(transaction: &Transaction, csrf: &str) -> Markup {
    use TransactionType::{Cancellation, Deposit, Purchase, Reversal, Withdraw};
    let action = match (transaction.kind, transaction.source) {
        (Purchase, TransactionSource::Api) => Some((Cancellation, "Cancel")),
        (Deposit | Withdraw, TransactionSource::Api) => Some((Reversal, "Reverse")),
        _ => None,
    };
    html! {
        @if let Some((kind, label)) = action {
            form.inline method="post" action=(format!("/wallet/transactions/{}/undo", transaction.id)) {
                (csrf_field(csrf))
                input type="hidden" name="kind" value=(kind);
                input type="hidden" name="key" value=(Uuid::new_v4().to_string());
                button.secondary type="submit" aria-label=(format!("{label} the {} of {}", transaction.kind, money::format(transaction.amount))) { (label) }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct MoneyForm {
    amount: String,
    description: Option<String>,
    key: String,
}

pub async fn deposit(
    state: State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Form(form): Form<MoneyForm>,
) -> Result<Response, PageError> {
    move_money(state, user, headers, TransactionType::Deposit, form).await
}

pub async fn withdraw(
    state: State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Form(form): Form<MoneyForm>,
) -> Result<Response, PageError> {
    move_money(state, user, headers, TransactionType::Withdraw, form).await
}

async fn move_money(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    kind: TransactionType,
    form: MoneyForm,
) -> Result<Response, PageError> {
    let result = match money::parse(&form.amount) {
        Ok(amount) => {
            let description = form.description.filter(|text| !text.trim().is_empty());
            let transaction = NewTransaction {
                kind,
                amount: Some(amount),
                currency: Some("EUR".to_owned()),
                parent_transaction_id: None,
                description,
            };
            state
                .api
                .transact(&user.token, &transaction, &form.key)
                .await
                .map(drop)
        }
        Err(reason) => Err(Problem::invalid(reason)),
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/wallet?done={kind}")).into_response()),
        Err(problem) if problem.is_unauthorized() => {
            Err(PageError::from_problem(problem, "/wallet", &headers))
        }
        Err(problem) => {
            let mut errors = FormErrors::default();
            let message = Some(problem.message());
            if kind == TransactionType::Deposit {
                errors.deposit = message;
            } else {
                errors.withdraw = message;
            }
            refused_form(&state, &user, &headers, errors, problem.status).await
        }
    }
}

#[derive(Deserialize)]
pub struct UndoForm {
    kind: TransactionType,
    key: String,
}

pub async fn undo(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Form(form): Form<UndoForm>,
) -> Result<Response, PageError> {
    // Only the two kinds that undo: anything else the form says is taken as a reversal, which
    // the API refuses for what cannot be reversed.
    let kind = match form.kind {
        TransactionType::Cancellation => TransactionType::Cancellation,
        _ => TransactionType::Reversal,
    };
    let transaction = NewTransaction {
        kind,
        amount: None,
        currency: None,
        parent_transaction_id: Some(id),
        description: None,
    };
    match state
        .api
        .transact(&user.token, &transaction, &form.key)
        .await
    {
        Ok(_) => Ok(Redirect::to("/wallet?done=undo").into_response()),
        Err(problem) if problem.is_unauthorized() => {
            Err(PageError::from_problem(problem, "/wallet", &headers))
        }
        Err(problem) => {
            let errors = FormErrors {
                undo: Some(problem.message()),
                ..FormErrors::default()
            };
            refused_form(&state, &user, &headers, errors, problem.status).await
        }
    }
}

/// The wallet page again, with the problem next to the form that caused it.
async fn refused_form(
    state: &AppState,
    user: &SignedIn,
    headers: &HeaderMap,
    errors: FormErrors,
    status: u16,
) -> Result<Response, PageError> {
    let page = render(state, user, &WalletQuery::default(), errors)
        .await
        .map_err(|problem| PageError::from_problem(problem, "/wallet", headers))?;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    Ok((status, layout::html(page)).into_response())
}
