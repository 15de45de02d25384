//! The `wallet.v1.WalletService` gRPC surface: parse, call the ledger, map the result.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use proto::wallet::v1 as pb;
use proto::wallet::v1::wallet_service_server::WalletService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::create::{create_transaction, parse_id};
use crate::error::LedgerError;
use crate::ledger::{self, Page};
use crate::transaction::{Kind, NewTransaction, RawRequest, Source, Transaction};

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

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
        let limit = match request.limit {
            0 => DEFAULT_PAGE,
            limit if limit > MAX_PAGE => {
                violations.push(("limit", format!("must be between 1 and {MAX_PAGE}")));
                MAX_PAGE
            }
            limit => limit,
        };
        let after = match request.cursor.as_deref().map(decode_cursor) {
            Some(Err(reason)) => {
                violations.push(("cursor", reason));
                None
            }
            Some(Ok(after)) => Some(after),
            None => None,
        };
        if !violations.is_empty() {
            return Err(LedgerError::Invalid(violations).into());
        }
        let page = Page {
            kind: request.r#type,
            from: request.from.and_then(platform::timestamp::from_proto),
            to: request.to.and_then(platform::timestamp::from_proto),
            limit: i64::from(limit),
            after,
        };
        let (items, more) = ledger::list(&self.pool, user_id, &page).await?;
        let next_cursor = match items.last() {
            Some(last) if more => Some(encode_cursor(last.created_at, last.id)),
            _ => None,
        };
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

/// Cursors are opaque to clients: the position `(created_at, id)` of a page's last row.
fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}_{id}", at.timestamp_micros()))
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid), String> {
    let invalid = || "is not a cursor this API returned".to_owned();
    let text = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(text).map_err(|_| invalid())?;
    let (micros, id) = text.split_once('_').ok_or_else(invalid)?;
    let at = micros
        .parse()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(invalid)?;
    Ok((at, Uuid::parse_str(id).map_err(|_| invalid())?))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_decodes_to_the_position_it_encodes() {
        let at = DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(at, id)), Ok((at, id)));
        assert!(decode_cursor("garbage!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("12_not-a-uuid")).is_err());
    }
}
