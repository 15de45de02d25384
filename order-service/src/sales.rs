//! A seller's sales: the paid (and not refunded) orders of their products, read back with
//! the seller's items and payout.

use chrono::{DateTime, Utc};
use platform::pagination::PageRequest;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::OrderError;
use crate::order::{Item, Status};

/// One order of the seller's products.
#[derive(Debug, Clone)]
pub struct Sale {
    pub order_id: Uuid,
    pub status: Status,
    pub items: Vec<Item>,
    /// The seller's items' `unit_price × quantity`.
    pub subtotal: i64,
    /// Set once the order is delivered.
    pub payout: Option<i64>,
    pub ordered_at: DateTime<Utc>,
}

/// An order with some of the seller's items: its id, status, time and the seller's payout.
type SaleRow = (Uuid, Status, DateTime<Utc>, Option<i64>);

/// One page of the seller's sales, newest first. An item counts while its units are sold
/// (`stock_state = 'sold'`): a paid order cancelled and refunded is no sale.
pub async fn list(
    pool: &PgPool,
    seller_id: Uuid,
    page: &PageRequest,
) -> Result<(Vec<Sale>, Option<String>), OrderError> {
    let (orders, next) = page
        .fetch_page(
            sqlx::query_as(
                "select o.id, o.status, o.created_at, p.amount from orders o
               left join order_payouts p on p.order_id = o.id and p.seller_id = $1
              where o.id in (select order_id from order_items
                              where seller_id = $1 and stock_state = 'sold')
                and ($2::timestamptz is null or (o.created_at, o.id) < ($2, $3))
              order by o.created_at desc, o.id desc
              limit $4",
            )
            .bind(seller_id),
            pool,
            |(id, _, at, _): &SaleRow| (*at, *id),
        )
        .await?;
    let ids: Vec<Uuid> = orders.iter().map(|(id, ..)| *id).collect();
    let items: Vec<(Uuid, String, String, i64, i64, Option<Uuid>)> = sqlx::query_as(
        "select order_id, sku, name, unit_price, quantity, product_id from order_items
          where order_id = any($1) and seller_id = $2 and stock_state = 'sold'
          order by order_id, position",
    )
    .bind(&ids)
    .bind(seller_id)
    .fetch_all(pool)
    .await?;
    let sales = orders
        .into_iter()
        .map(|(order_id, status, ordered_at, payout)| {
            let items: Vec<Item> = items
                .iter()
                .filter(|item| item.0 == order_id)
                .map(|(_, sku, name, unit_price, quantity, product_id)| Item {
                    sku: sku.clone(),
                    name: name.clone(),
                    unit_price: *unit_price,
                    quantity: *quantity,
                    product_id: *product_id,
                    seller_id: Some(seller_id),
                })
                .collect();
            Sale {
                order_id,
                status,
                subtotal: items
                    .iter()
                    .map(|item| item.unit_price * item.quantity)
                    .sum(),
                items,
                payout,
                ordered_at,
            }
        })
        .collect();
    Ok((sales, next))
}
