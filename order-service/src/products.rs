//! The catalogue in PostgreSQL, and the stock orders hold.
//!
//! Stock moves only here, in the transaction of the order change that causes it: an order
//! reserves units (`reserved`), its payment sells them (`stock` and `reserved` down, `sold`
//! up), its cancellation or expiry gives them back (a reservation released, or a sale undone).
//! Each order item records where its units are (`stock_state`), so a move happens once
//! whatever the order's path, and the table's CHECKs (`stock >= reserved >= 0`) hold even
//! against a bug here. Products are locked in id order, and before any voucher, so that two
//! orders of the same products never deadlock.

use platform::pagination::{PageRequest, contains_pattern};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::OrderError;
use crate::order::CURRENCY;
use crate::product::{NewProduct, Product, ProductChange, Status};

const COLUMNS: &str = "id, seller_id, sku, name, description, price, currency, stock, reserved, sold, version, status, created_at, updated_at";

pub async fn create(pool: &PgPool, new: &NewProduct) -> Result<Product, OrderError> {
    let id = Uuid::now_v7();
    // A sku the seller did not choose: unique enough to tell products apart on a receipt.
    let sku = new
        .sku
        .clone()
        .unwrap_or_else(|| format!("P-{}", &id.simple().to_string()[20..]).to_uppercase());
    let product = sqlx::query_as(&format!(
        "insert into products (id, seller_id, sku, name, description, price, currency, stock, status)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning {COLUMNS}"
    ))
    .bind(id)
    .bind(new.seller_id)
    .bind(sku)
    .bind(&new.name)
    .bind(&new.description)
    .bind(new.price)
    .bind(CURRENCY)
    .bind(new.stock)
    .bind(Status::Active)
    .fetch_one(pool)
    .await?;
    Ok(product)
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Product, OrderError> {
    sqlx::query_as(&format!("select {COLUMNS} from products where id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(OrderError::ProductNotFound)
}

/// What a list of products may be narrowed to.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// A part of the name, any case.
    pub q: Option<String>,
    pub seller_id: Option<Uuid>,
    pub status: Option<Status>,
}

/// One page of products, newest first (active ones unless `filter.status` says otherwise).
pub async fn list(
    pool: &PgPool,
    filter: &Filter,
    page: &PageRequest,
) -> Result<(Vec<Product>, Option<String>), OrderError> {
    let pattern = filter.q.as_deref().map(contains_pattern);
    let (rows, next) = page
        .fetch_page(
            sqlx::query_as(&format!(
                "select {COLUMNS} from products
             where status = $1
               and ($2::text is null or name ilike $2)
               and ($3::uuid is null or seller_id = $3)
               and ($4::timestamptz is null or (created_at, id) < ($4, $5))
             order by created_at desc, id desc
             limit $6"
            ))
            .bind(filter.status.unwrap_or(Status::Active))
            .bind(pattern)
            .bind(filter.seller_id),
            pool,
            |row: &Product| (row.created_at, row.id),
        )
        .await?;
    Ok((rows, next))
}

/// Applies the seller's change if the product is still at the version it was based on.
pub async fn update(
    pool: &PgPool,
    id: Uuid,
    seller_id: Uuid,
    change: &ProductChange,
) -> Result<Product, OrderError> {
    let mut tx = pool.begin().await?;
    let current = lock_one(&mut tx, id).await?;
    if current.seller_id != seller_id {
        return Err(OrderError::NotTheSeller);
    }
    if current.version != change.expected_version {
        return Err(OrderError::VersionMismatch {
            expected: change.expected_version,
            current: current.version,
        });
    }
    if let Some(stock) = change.stock
        && stock < current.reserved
    {
        return Err(OrderError::StockBelowReserved {
            reserved: current.reserved,
        });
    }
    let product = sqlx::query_as(&format!(
        "update products set name = coalesce($2, name), description = coalesce($3, description),
             price = coalesce($4, price), stock = coalesce($5, stock),
             version = version + 1, updated_at = now()
         where id = $1 returning {COLUMNS}"
    ))
    .bind(id)
    .bind(&change.name)
    .bind(&change.description)
    .bind(change.price)
    .bind(change.stock)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(product)
}

/// Takes the seller's product off sale (a second withdrawal changes nothing).
pub async fn withdraw(pool: &PgPool, id: Uuid, seller_id: Uuid) -> Result<Product, OrderError> {
    let mut tx = pool.begin().await?;
    let current = lock_one(&mut tx, id).await?;
    if current.seller_id != seller_id {
        return Err(OrderError::NotTheSeller);
    }
    if current.status == Status::Withdrawn {
        return Ok(current);
    }
    let product = sqlx::query_as(&format!(
        "update products set status = $2, version = version + 1, updated_at = now()
         where id = $1 returning {COLUMNS}"
    ))
    .bind(id)
    .bind(Status::Withdrawn)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(product)
}

async fn lock_one(conn: &mut PgConnection, id: Uuid) -> Result<Product, OrderError> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from products where id = $1 for update"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(OrderError::ProductNotFound)
}

/// Locks the products an order names, in id order, until the transaction ends.
pub async fn lock_for_order(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<Vec<Product>> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from products where id = any($1) order by id for update"
    ))
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Holds `quantity` units of a product (locked by [`lock_for_order`]) for an unpaid order.
pub async fn reserve(conn: &mut PgConnection, id: Uuid, quantity: i64) -> sqlx::Result<()> {
    sqlx::query("update products set reserved = reserved + $2, updated_at = now() where id = $1")
        .bind(id)
        .bind(quantity)
        .execute(conn)
        .await?;
    Ok(())
}

/// The order was paid: its reserved units are sold.
pub async fn sell_reserved(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<()> {
    lock_products_of(conn, order_id).await?;
    sqlx::query(
        "with moved as (
             update order_items set stock_state = 'sold'
             where order_id = $1 and stock_state = 'reserved'
             returning product_id, quantity)
         update products p set stock = p.stock - moved.quantity,
             reserved = p.reserved - moved.quantity, sold = p.sold + moved.quantity,
             updated_at = now()
         from moved where p.id = moved.product_id",
    )
    .bind(order_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The order was cancelled or expired: a reservation is released, and units sold to it go
/// back on sale (its payment is refunded).
pub async fn give_back(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<()> {
    lock_products_of(conn, order_id).await?;
    sqlx::query(
        "with moved as (
             update order_items i set stock_state = 'returned'
             from (select product_id, stock_state from order_items
                   where order_id = $1 and stock_state in ('reserved', 'sold')) before
             where i.order_id = $1 and i.product_id = before.product_id
             returning i.product_id, i.quantity, before.stock_state as was)
         update products p set
             reserved = p.reserved - case when moved.was = 'reserved' then moved.quantity else 0 end,
             stock = p.stock + case when moved.was = 'sold' then moved.quantity else 0 end,
             sold = p.sold - case when moved.was = 'sold' then moved.quantity else 0 end,
             updated_at = now()
         from moved where p.id = moved.product_id",
    )
    .bind(order_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks an order's products in id order before their stock moves (see the module's doc).
async fn lock_products_of(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<()> {
    lock_products_of_orders(conn, &[order_id]).await
}

/// Locks the products of several orders at once, in id order: a batch that moved each
/// order's stock in turn would lock products out of order.
pub async fn lock_products_of_orders(
    conn: &mut PgConnection,
    order_ids: &[Uuid],
) -> sqlx::Result<()> {
    sqlx::query(
        "select id from products
         where id in (select product_id from order_items where order_id = any($1))
         order by id for update",
    )
    .bind(order_ids)
    .execute(conn)
    .await?;
    Ok(())
}
