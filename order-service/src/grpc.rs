//! The `order.v1.OrderService` gRPC surface: parse, call the store, map the result.

use std::time::Duration;

use platform::outbox::Outbox;
use platform::pagination::PageRequest;
use platform::timestamp::to_proto;
use proto::order::v1 as pb;
use proto::order::v1::order_service_server::OrderService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::error::OrderError;
use crate::order::{self, Item, NewOrder, Order, Transition};
use crate::orders;
use crate::vouchers::{self, Voucher};

pub struct OrderApi {
    pub outbox: Outbox,
    pub payment_timeout: Duration,
}

#[tonic::async_trait]
impl OrderService for OrderApi {
    #[tracing::instrument(skip_all)]
    async fn create_order(
        &self,
        request: Request<pb::CreateOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let request = request.into_inner();
        let user_id = parse_user(&request.user_id)?;
        let items = request
            .items
            .into_iter()
            .map(|item| Item {
                sku: item.sku,
                name: item.name,
                unit_price: item.unit_price,
                quantity: item.quantity,
            })
            .collect();
        let new = NewOrder::parse(
            user_id,
            items,
            request.currency.as_deref(),
            request.voucher_code,
        )?;
        let order = orders::create(&self.outbox, &new, self.payment_timeout).await?;
        Ok(Response::new(message(order)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_order(
        &self,
        request: Request<pb::OrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let (user_id, id) = parse_order_request(request.into_inner())?;
        let mut conn = self
            .outbox
            .pool()
            .acquire()
            .await
            .map_err(OrderError::from)?;
        let order = orders::load_one(&mut conn, id, Some(user_id)).await?;
        Ok(Response::new(message(order)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let request = request.into_inner();
        let user_id = parse_user(&request.user_id)?;
        let mut violations = Vec::new();
        let status = match request.status.map(order::Status::try_from).transpose() {
            Ok(status) => status,
            Err(error) => {
                violations.push(("status", error.to_string()));
                None
            }
        };
        let page = PageRequest::parse(request.limit, request.cursor.as_deref())
            .map_err(|more| violations.extend(more))
            .ok();
        let Some(page) = page.filter(|_| violations.is_empty()) else {
            return Err(OrderError::Invalid(violations).into());
        };
        let (items, next_cursor) = orders::list(self.outbox.pool(), user_id, status, &page).await?;
        Ok(Response::new(pb::ListOrdersResponse {
            items: items.into_iter().map(message).collect(),
            next_cursor,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn pay_order(
        &self,
        request: Request<pb::OrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let (user_id, id) = parse_order_request(request.into_inner())?;
        Ok(Response::new(
            self.change(id, Some(user_id), Transition::RetryPayment)
                .await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn cancel_order(
        &self,
        request: Request<pb::OrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let (user_id, id) = parse_order_request(request.into_inner())?;
        Ok(Response::new(
            self.change(id, Some(user_id), Transition::Cancel).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn ship_order(
        &self,
        request: Request<pb::FulfilmentRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let id = parse_order(&request.into_inner().order_id)?;
        Ok(Response::new(
            self.change(id, None, Transition::Ship).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn deliver_order(
        &self,
        request: Request<pb::FulfilmentRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let id = parse_order(&request.into_inner().order_id)?;
        Ok(Response::new(
            self.change(id, None, Transition::Deliver).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn list_vouchers(
        &self,
        request: Request<pb::ListVouchersRequest>,
    ) -> Result<Response<pb::ListVouchersResponse>, Status> {
        let request = request.into_inner();
        let user_id = parse_user(&request.user_id)?;
        let page = PageRequest::parse(request.limit, request.cursor.as_deref())
            .map_err(OrderError::Invalid)?;
        let (items, next_cursor) = vouchers::list(self.outbox.pool(), user_id, &page).await?;
        Ok(Response::new(pb::ListVouchersResponse {
            items: items.into_iter().map(voucher_message).collect(),
            next_cursor,
        }))
    }
}

impl OrderApi {
    /// Applies a caller's transition and answers with the order as it now is.
    async fn change(
        &self,
        id: Uuid,
        owner: Option<Uuid>,
        transition: Transition,
    ) -> Result<pb::Order, OrderError> {
        let mut tx = self.outbox.begin().await?;
        orders::transition(&mut tx, id, owner, transition, None).await?;
        let order = orders::load_one(&mut tx, id, owner).await?;
        tx.commit().await?;
        Ok(message(order))
    }
}

fn parse_user(raw: &str) -> Result<Uuid, OrderError> {
    Uuid::parse_str(raw)
        .map_err(|_| OrderError::Invalid(vec![("user_id", "must be a UUID".into())]))
}

/// An id that is not a UUID cannot name an order: not found, like a missing one.
fn parse_order(raw: &str) -> Result<Uuid, OrderError> {
    Uuid::parse_str(raw).map_err(|_| OrderError::NotFound)
}

fn parse_order_request(request: pb::OrderRequest) -> Result<(Uuid, Uuid), OrderError> {
    Ok((
        parse_user(&request.user_id)?,
        parse_order(&request.order_id)?,
    ))
}

fn message(order: Order) -> pb::Order {
    let row = order.row;
    pb::Order {
        id: row.id.to_string(),
        user_id: row.user_id.to_string(),
        status: row.status.into(),
        items: order
            .items
            .into_iter()
            .map(|item| pb::Item {
                sku: item.sku,
                name: item.name,
                unit_price: item.unit_price,
                quantity: item.quantity,
            })
            .collect(),
        subtotal: row.subtotal,
        discount: row.discount,
        total: row.total,
        currency: row.currency,
        voucher_code: row.voucher_code,
        payment_transaction_id: row.payment_transaction_id.map(|id| id.to_string()),
        refund_transaction_id: row.refund_transaction_id.map(|id| id.to_string()),
        created_at: Some(to_proto(row.created_at)),
        updated_at: Some(to_proto(row.updated_at)),
        status_history: order
            .history
            .into_iter()
            .map(|change| pb::StatusChange {
                status: change.status.into(),
                at: Some(to_proto(change.at)),
            })
            .collect(),
    }
}

fn voucher_message(voucher: Voucher) -> pb::Voucher {
    pb::Voucher {
        code: voucher.code,
        amount: voucher.amount,
        currency: voucher.currency,
        order_id: voucher.order_id.to_string(),
        issued_at: Some(to_proto(voucher.issued_at)),
        redeemed_at: voucher.redeemed_at.map(to_proto),
        redeemed_order_id: voucher.redeemed_order_id.map(|id| id.to_string()),
    }
}
