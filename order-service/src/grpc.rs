//! The `order.v1.OrderService` gRPC surface: parse, call the store, map the result.

use std::time::Duration;

use platform::idempotency;
use platform::outbox::Outbox;
use platform::pagination::PageRequest;
use platform::timestamp::to_proto;
use proto::order::v1 as pb;
use proto::order::v1::order_service_server::OrderService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::error::OrderError;
use crate::order::{self, Item, NewOrder, Order, Transition};
use crate::product::{self, NewProduct, Product, ProductChange, ProductRequest};
use crate::sales::{self, Sale};
use crate::vouchers::{self, Voucher};
use crate::{orders, products};

pub struct OrderApi {
    pub outbox: Outbox,
    pub payment_timeout: Duration,
}

#[tonic::async_trait]
impl OrderService for OrderApi {
    async fn create_order(
        &self,
        request: Request<pb::CreateOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let request = request.into_inner();
        let user_id = parse_user(&request.user_id)?;
        let lines = request
            .lines
            .into_iter()
            .map(|line| (line.product_id, line.quantity))
            .collect();
        let new = NewOrder::parse(
            user_id,
            lines,
            request.currency.as_deref(),
            request.voucher_code,
        )?;
        let key = request.idempotency_key;
        if let Some(key) = &key {
            idempotency::check(key)
                .map_err(|message| OrderError::Invalid(vec![(idempotency::FIELD, message)]))?;
        }
        let order =
            orders::create(&self.outbox, &new, key.as_deref(), self.payment_timeout).await?;
        Ok(Response::new(message(order)))
    }

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

    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let request = request.into_inner();
        let user_id = parse_user(&request.user_id)?;
        self.list(Some(user_id), request.status, request.limit, request.cursor)
            .await
    }

    async fn list_all_orders(
        &self,
        request: Request<pb::ListAllOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let request = request.into_inner();
        let user_id = request.user_id.as_deref().map(parse_user).transpose()?;
        self.list(user_id, request.status, request.limit, request.cursor)
            .await
    }

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

    async fn cancel_order(
        &self,
        request: Request<pb::OrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let (user_id, id) = parse_order_request(request.into_inner())?;
        Ok(Response::new(
            self.change(id, Some(user_id), Transition::Cancel).await?,
        ))
    }

    async fn ship_order(
        &self,
        request: Request<pb::FulfilmentRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let id = parse_order(&request.into_inner().order_id)?;
        Ok(Response::new(
            self.change(id, None, Transition::Ship).await?,
        ))
    }

    async fn deliver_order(
        &self,
        request: Request<pb::FulfilmentRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let id = parse_order(&request.into_inner().order_id)?;
        Ok(Response::new(
            self.change(id, None, Transition::Deliver).await?,
        ))
    }

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

    async fn create_product(
        &self,
        request: Request<pb::CreateProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let request = request.into_inner();
        let seller_id = parse_user(&request.seller_id)?;
        let new = NewProduct::parse(
            seller_id,
            ProductRequest {
                name: request.name,
                description: request.description,
                price: request.price,
                currency: request.currency,
                stock: request.stock,
                sku: request.sku,
            },
        )?;
        let product = products::create(self.outbox.pool(), &new).await?;
        Ok(Response::new(product_message(product)))
    }

    async fn get_product(
        &self,
        request: Request<pb::ProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let id = parse_product(&request.into_inner().product_id)?;
        let product = products::get(self.outbox.pool(), id).await?;
        Ok(Response::new(product_message(product)))
    }

    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Vec::new();
        let seller_id = match request
            .seller_id
            .as_deref()
            .map(Uuid::parse_str)
            .transpose()
        {
            Ok(id) => id,
            Err(_) => {
                violations.push(("seller_id", "must be a UUID".to_owned()));
                None
            }
        };
        let status = match request.status.map(product::Status::try_from).transpose() {
            Ok(status) => status,
            Err(error) => {
                violations.push(("status", error.to_string()));
                None
            }
        };
        let search =
            PageRequest::parse_search(request.q, 200, request.limit, request.cursor.as_deref())
                .map_err(|more| violations.extend(more))
                .ok();
        let Some((q, page)) = search.filter(|_| violations.is_empty()) else {
            return Err(OrderError::Invalid(violations).into());
        };
        let filter = products::Filter {
            q,
            seller_id,
            status,
        };
        let (items, next_cursor) = products::list(self.outbox.pool(), &filter, &page).await?;
        Ok(Response::new(pb::ListProductsResponse {
            items: items.into_iter().map(product_message).collect(),
            next_cursor,
        }))
    }

    async fn update_product(
        &self,
        request: Request<pb::UpdateProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let request = request.into_inner();
        let seller_id = parse_user(&request.seller_id)?;
        let id = parse_product(&request.product_id)?;
        let change = ProductChange::parse(
            request.expected_version,
            request.name,
            request.description,
            request.price,
            request.stock,
        )?;
        let product = products::update(self.outbox.pool(), id, seller_id, &change).await?;
        Ok(Response::new(product_message(product)))
    }

    async fn list_sales(
        &self,
        request: Request<pb::ListSalesRequest>,
    ) -> Result<Response<pb::ListSalesResponse>, Status> {
        let request = request.into_inner();
        let seller_id = parse_user(&request.seller_id)?;
        let page = PageRequest::parse(request.limit, request.cursor.as_deref())
            .map_err(OrderError::Invalid)?;
        let (items, next_cursor) = sales::list(self.outbox.pool(), seller_id, &page).await?;
        Ok(Response::new(pb::ListSalesResponse {
            items: items.into_iter().map(sale_message).collect(),
            next_cursor,
        }))
    }

    async fn withdraw_product(
        &self,
        request: Request<pb::ProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let request = request.into_inner();
        let seller_id = parse_user(&request.seller_id)?;
        let id = parse_product(&request.product_id)?;
        let product = products::withdraw(self.outbox.pool(), id, seller_id).await?;
        Ok(Response::new(product_message(product)))
    }
}

impl OrderApi {
    /// One page of orders, the user's or (for `None`) everyone's.
    async fn list(
        &self,
        user_id: Option<Uuid>,
        status: Option<i32>,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let mut violations = Vec::new();
        let status = match status.map(order::Status::try_from).transpose() {
            Ok(status) => status,
            Err(error) => {
                violations.push(("status", error.to_string()));
                None
            }
        };
        let page = PageRequest::parse(limit, cursor.as_deref())
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

/// Likewise, an id that is not a UUID names no product.
fn parse_product(raw: &str) -> Result<Uuid, OrderError> {
    Uuid::parse_str(raw).map_err(|_| OrderError::ProductNotFound)
}

fn parse_order_request(request: pb::OrderRequest) -> Result<(Uuid, Uuid), OrderError> {
    Ok((
        parse_user(&request.user_id)?,
        parse_order(&request.order_id)?,
    ))
}

fn item_message(item: Item) -> pb::Item {
    pb::Item {
        sku: item.sku,
        name: item.name,
        unit_price: item.unit_price,
        quantity: item.quantity,
        product_id: item.product_id.map(|id| id.to_string()),
        seller_id: item.seller_id.map(|id| id.to_string()),
    }
}

fn sale_message(sale: Sale) -> pb::Sale {
    pb::Sale {
        order_id: sale.order_id.to_string(),
        status: sale.status.into(),
        items: sale.items.into_iter().map(item_message).collect(),
        subtotal: sale.subtotal,
        payout: sale.payout,
        ordered_at: Some(to_proto(sale.ordered_at)),
    }
}

fn message(order: Order) -> pb::Order {
    let row = order.row;
    pb::Order {
        id: row.id.to_string(),
        user_id: row.user_id.to_string(),
        status: row.status.into(),
        items: order.items.into_iter().map(item_message).collect(),
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

fn product_message(product: Product) -> pb::Product {
    pb::Product {
        available: product.available(),
        id: product.id.to_string(),
        seller_id: product.seller_id.to_string(),
        sku: product.sku,
        name: product.name,
        description: product.description,
        price: product.price,
        currency: product.currency,
        stock: product.stock,
        reserved: product.reserved,
        sold: product.sold,
        version: product.version,
        status: product.status.into(),
        created_at: Some(to_proto(product.created_at)),
        updated_at: Some(to_proto(product.updated_at)),
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
