//! The `wallet.v1.WalletService` gRPC surface: parse, call the ledger, map the result. Here
//! and only here a wallet error becomes a gRPC status.

use platform::grpc::{invalid_fields, status};
use platform::outbox::Outbox;
use platform::pagination::PageRequest;
use proto::TransactionType;
use proto::wallet::v1 as pb;
use proto::wallet::v1::wallet_service_server::WalletService;
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

use crate::create::parse_id;
use crate::error::{LedgerError, Refusal};
use crate::group_commit::GroupCommit;
use crate::history;
use crate::ledger::{self, Filter};
use crate::money::CURRENCY;
use crate::transaction::{NewTransaction, RawRequest, Transaction, TransactionSource};

pub struct WalletApi {
    pub outbox: Outbox,
    /// Where transactions are created, many to a database transaction.
    pub batches: GroupCommit,
}

#[tonic::async_trait]
impl WalletService for WalletApi {
    async fn get_balance(
        &self,
        request: Request<pb::GetBalanceRequest>,
    ) -> Result<Response<pb::Balance>, Status> {
        let user_id = parse_id(&request.into_inner().user_id, "user_id").map_err(to_status)?;
        let balance = ledger::balance(self.outbox.pool(), user_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::Balance {
            balance: balance.balance,
            currency: balance.currency,
            updated_at: Some(platform::timestamp::to_proto(balance.updated_at)),
        }))
    }

    async fn create_transaction(
        &self,
        request: Request<pb::CreateTransactionRequest>,
    ) -> Result<Response<pb::Transaction>, Status> {
        let request = request.into_inner();
        let user_id = parse_id(&request.user_id, "user_id").map_err(to_status)?;
        let kind = TransactionType::try_from(request.r#type)
            .map_err(|error| invalid_fields(&[("type", error.to_string())]))?;
        let raw = RawRequest {
            kind,
            amount: request.amount,
            currency: request.currency,
            parent_transaction_id: request.parent_transaction_id,
            description: request.description,
            reference: None,
        };
        let new =
            NewTransaction::parse(user_id, &raw, TransactionSource::Api).map_err(to_status)?;
        let transaction = self
            .batches
            .create_transaction(new, request.idempotency_key)
            .await
            .map_err(to_status)?;
        Ok(Response::new(message(transaction)))
    }

    async fn list_transactions(
        &self,
        request: Request<pb::ListTransactionsRequest>,
    ) -> Result<Response<pb::ListTransactionsResponse>, Status> {
        let request = request.into_inner();
        let user_id = parse_id(&request.user_id, "user_id").map_err(to_status)?;
        let mut violations = Vec::new();
        let kind = match request.r#type.map(TransactionType::try_from).transpose() {
            Ok(kind) => kind,
            Err(error) => {
                violations.push(("type", error.to_string()));
                None
            }
        };
        // A time outside 1970-9999 is refused, not read as "no filter".
        let mut time = |field: &'static str, at: Option<prost_types::Timestamp>| {
            at.map(platform::timestamp::accepted_from_proto)
                .transpose()
                .map_err(|reason| violations.push((field, reason.to_owned())))
                .ok()
                .flatten()
        };
        let (from, to) = (time("from", request.from), time("to", request.to));
        let page = PageRequest::parse(request.limit, request.cursor.as_deref())
            .map_err(|more| violations.extend(more))
            .ok();
        let Some(page) = page.filter(|_| violations.is_empty()) else {
            return Err(invalid_fields(&violations));
        };
        let filter = Filter { kind, from, to };
        let (items, next_cursor) = ledger::list(self.outbox.pool(), user_id, &filter, &page)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListTransactionsResponse {
            items: items.into_iter().map(message).collect(),
            next_cursor,
        }))
    }

    async fn get_transaction(
        &self,
        request: Request<pb::GetTransactionRequest>,
    ) -> Result<Response<pb::Transaction>, Status> {
        let request = request.into_inner();
        let user_id = parse_id(&request.user_id, "user_id").map_err(to_status)?;
        // An id that is not a UUID cannot name a transaction: not found, like a missing one.
        let id = Uuid::parse_str(&request.transaction_id)
            .map_err(|_| to_status(LedgerError::TransactionNotFound))?;
        let mut conn = self
            .outbox
            .pool()
            .acquire()
            .await
            .map_err(|error| to_status(error.into()))?;
        let transaction = ledger::find(&mut conn, user_id, id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(message(transaction)))
    }

    async fn get_balance_history(
        &self,
        request: Request<pb::GetBalanceHistoryRequest>,
    ) -> Result<Response<pb::BalanceHistory>, Status> {
        let request = request.into_inner();
        let user_id = parse_id(&request.user_id, "user_id").map_err(to_status)?;
        let days = history::parse_days(request.days).map_err(to_status)?;
        let days = history::balance_by_day(self.outbox.pool(), user_id, days)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::BalanceHistory {
            currency: CURRENCY.to_owned(),
            days: days
                .into_iter()
                .map(|(date, balance)| pb::DayBalance {
                    date: date.to_string(),
                    balance,
                })
                .collect(),
        }))
    }
}

/// The gRPC status of a wallet error: the code of its refusal, with the refusal's slug as the
/// `ErrorInfo` reason (the gateway's problem `type`); an internal error is logged, once, here.
pub fn to_status(error: LedgerError) -> Status {
    let Some(refusal) = error.refusal() else {
        tracing::error!(error = format!("{error:#}"), "internal error");
        return Status::internal("internal error");
    };
    if let LedgerError::Invalid(violations) = &error {
        return invalid_fields(violations);
    }
    let code = match refusal {
        Refusal::ValidationFailed | Refusal::AmountMismatch => Code::InvalidArgument,
        Refusal::InsufficientFunds
        | Refusal::ParentNotUndoable
        | Refusal::NotUndoableHere
        | Refusal::IdempotencyKeyReused => Code::FailedPrecondition,
        Refusal::ParentNotFound | Refusal::NotFound => Code::NotFound,
        Refusal::AlreadyUndone => Code::AlreadyExists,
    };
    status(code, refusal.as_str(), error.detail())
}

fn message(transaction: Transaction) -> pb::Transaction {
    pb::Transaction {
        id: transaction.id.to_string(),
        user_id: transaction.user_id.to_string(),
        r#type: transaction.kind.into(),
        amount: transaction.amount,
        currency: transaction.currency,
        balance_after: transaction.balance_after,
        parent_transaction_id: transaction.parent_transaction_id.map(|id| id.to_string()),
        description: transaction.description,
        source: transaction.source.into(),
        reference: transaction.reference,
        created_at: Some(platform::timestamp::to_proto(transaction.created_at)),
    }
}
