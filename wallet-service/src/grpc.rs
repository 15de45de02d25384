//! The `wallet.v1.WalletService` gRPC surface: parse, call the ledger, map the result.

use platform::pagination::PageRequest;
use proto::wallet::v1 as pb;
use proto::wallet::v1::wallet_service_server::WalletService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::create::{create_transaction, parse_id};
use crate::error::LedgerError;
use crate::ledger::{self, Filter};
use crate::transaction::{Kind, NewTransaction, RawRequest, Source, Transaction};

pub struct WalletApi {
    pub pool: PgPool,
}

#[tonic::async_trait]
impl WalletService for WalletApi {
    #[tracing::instrument(skip_all)]
    async fn get_balance(
        &self,
        request: Request<pb::GetBalanceRequest>,
    ) -> Result<Response<pb::Balance>, Status> {
        let user_id = parse_id(&request.into_inner().user_id, "user_id")?;
        let balance = ledger::balance(&self.pool, user_id).await?;
        Ok(Response::new(pb::Balance {
            balance: balance.balance,
            currency: balance.currency,
            updated_at: Some(platform::timestamp::to_proto(balance.updated_at)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn create_transaction(
        &self,
        request: Request<pb::CreateTransactionRequest>,
    ) -> Result<Response<pb::Transaction>, Status> {
        let request = request.into_inner();
        let user_id = parse_id(&request.user_id, "user_id")?;
        let raw = RawRequest {
            kind: request.r#type,
            amount: request.amount,
            currency: request.currency,
            parent_transaction_id: request.parent_transaction_id,
            description: request.description,
            reference: None,
        };
        let new = NewTransaction::parse(user_id, &raw, Source::Api)?;
        let transaction =
            create_transaction(&self.pool, &new, request.idempotency_key.as_deref()).await?;
        Ok(Response::new(message(transaction)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_transactions(
        &self,
        request: Request<pb::ListTransactionsRequest>,
    ) -> Result<Response<pb::ListTransactionsResponse>, Status> {
        let request = request.into_inner();
        let user_id = parse_id(&request.user_id, "user_id")?;
        let mut violations = Vec::new();
        if let Some(kind) = &request.r#type
            && let Err(reason) = Kind::parse(kind)
        {
            violations.push(("type", reason));
        }
        let page = PageRequest::parse(request.limit, request.cursor.as_deref())
            .map_err(|more| violations.extend(more))
            .ok();
        let Some(page) = page.filter(|_| violations.is_empty()) else {
            return Err(LedgerError::Invalid(violations).into());
        };
        let filter = Filter {
            kind: request.r#type,
            from: request.from.and_then(platform::timestamp::from_proto),
            to: request.to.and_then(platform::timestamp::from_proto),
        };
        let (items, next_cursor) = ledger::list(&self.pool, user_id, &filter, &page).await?;
        Ok(Response::new(pb::ListTransactionsResponse {
            items: items.into_iter().map(message).collect(),
            next_cursor,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_transaction(
        &self,
        request: Request<pb::GetTransactionRequest>,
    ) -> Result<Response<pb::Transaction>, Status> {
        let request = request.into_inner();
        let user_id = parse_id(&request.user_id, "user_id")?;
        // An id that is not a UUID cannot name a transaction: not found, like a missing one.
        let id = Uuid::parse_str(&request.transaction_id)
            .map_err(|_| LedgerError::TransactionNotFound)?;
        let mut conn = self.pool.acquire().await.map_err(LedgerError::from)?;
        let transaction = ledger::find(&mut conn, user_id, id).await?;
        Ok(Response::new(message(transaction)))
    }
}

fn message(transaction: Transaction) -> pb::Transaction {
    pb::Transaction {
        id: transaction.id.to_string(),
        user_id: transaction.user_id.to_string(),
        r#type: transaction.kind,
        amount: transaction.amount,
        currency: transaction.currency,
        balance_after: transaction.balance_after,
        parent_transaction_id: transaction.parent_transaction_id.map(|id| id.to_string()),
        description: transaction.description,
        source: transaction.source,
        reference: transaction.reference,
        created_at: Some(platform::timestamp::to_proto(transaction.created_at)),
    }
}
