//! Orders in PostgreSQL: creating one, moving its status, reading them back.
//!
//! A status changes only through [`transition`]: one conditional UPDATE (`status = any(<the
//! statuses this transition leaves from>)`), so two changes racing on one order (a payment
//! and a cancellation, a ship and an expiry) are serialised on the row and the loser sees
//! the winner's status. The same database transaction records the history row, queues the
//! event, moves the stock of the order's products (sold on payment, given back on a
//! cancellation or an expiry) and, for a cancellation or an expiry, gives the voucher back.

use std::collections::HashMap;
use std::time::Duration;

use platform::idempotency::Claim;
use platform::outbox::{self, Outbox};
use platform::pagination::PageRequest;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::OrderError;
use crate::events;
use crate::idempotency::KEYS;
use crate::order::{
    CURRENCY, Item, NewOrder, Order, OrderRow, Status, StatusChange, Transition, discount,
};
use crate::product::price_lines;
use crate::{payout, products, vouchers};
use proto::messaging::order::Payout;

const COLUMNS: &str = "id, user_id, status, currency, subtotal, discount, total, voucher_code, payment_attempt, payment_transaction_id, refund_transaction_id, created_at, updated_at";

/// Creates an order in `pending_payment` from the catalogue, reserving its stock and
/// redeeming its voucher, and queues `order.created` and the first `order.payment_requested`.
/// An order a voucher pays entirely is paid at once. With an `Idempotency-Key`, the first
/// request's outcome (the order, or the rule it broke) answers the same request again
/// ([`idempotency`]).
pub async fn create(
    outbox: &Outbox,
    new: &NewOrder,
    idempotency_key: Option<&str>,
    payment_timeout: Duration,
) -> Result<Order, OrderError> {
    let mut tx = outbox.begin().await?;
    let Some(key) = idempotency_key else {
        let id = place(&mut tx, new, payment_timeout).await?;
        let order = load_one(&mut tx, id, None).await?;
        tx.commit().await?;
        return Ok(order);
    };
    match KEYS
        .claim(&mut tx, new.user_id, key, &new.fingerprint())
        .await?
    {
        Claim::New => {}
        Claim::Reused => return Err(OrderError::IdempotencyKeyReused),
        // Nothing changes: the transaction (which only read) ends without a commit.
        Claim::Succeeded(id) => return load_one(&mut tx, id, Some(new.user_id)).await,
        Claim::Refused { reason, message } => {
            return Err(OrderError::Replayed { reason, message });
        }
    }
    match place(&mut tx, new, payment_timeout).await {
        Ok(id) => {
            KEYS.record_success(&mut tx, new.user_id, key, id).await?;
            let order = load_one(&mut tx, id, None).await?;
            tx.commit().await?;
            Ok(order)
        }
        Err(error) => {
            // A broken rule is found before anything is written (see `place`), so the
            // transaction holds only the key, which now keeps the refusal.
            if let Some((reason, message)) = error.remembered() {
                KEYS.record_refusal(&mut tx, new.user_id, key, reason, &message)
                    .await?;
                tx.commit().await?;
            }
            Err(error)
        }
    }
}

/// Places the order inside the caller's transaction; returns its id. Every rule is checked
/// (the products locked in id order, priced and counted; the voucher locked) before the
/// first write.
async fn place(
    tx: &mut outbox::Transaction,
    new: &NewOrder,
    payment_timeout: Duration,
) -> Result<Uuid, OrderError> {
    let id = Uuid::now_v7();
    let product_ids: Vec<Uuid> = new.lines.iter().map(|line| line.product_id).collect();
    let products = products::lock_for_order(tx, &product_ids).await?;
    let (items, subtotal) = price_lines(new.user_id, &new.lines, &products)?;
    let voucher_amount = match &new.voucher_code {
        Some(code) => vouchers::lock_for_redemption(tx, new.user_id, code).await?,
        None => 0,
    };
    let discount = discount(subtotal, voucher_amount);
    let timeout = chrono::Duration::from_std(payment_timeout)
        .map_err(|error| OrderError::Internal(error.into()))?;
    let row: OrderRow = sqlx::query_as(&format!(
        "insert into orders (id, user_id, status, currency, subtotal, discount, total,
             voucher_code, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, now() + $9) returning {COLUMNS}"
    ))
    .bind(id)
    .bind(new.user_id)
    .bind(Status::PendingPayment)
    .bind(CURRENCY)
    .bind(subtotal)
    .bind(discount)
    .bind(subtotal - discount)
    .bind(&new.voucher_code)
    .bind(timeout)
    .fetch_one(&mut **tx)
    .await?;
    for (position, item) in (1..).zip(&items) {
        sqlx::query(
            "insert into order_items (order_id, position, sku, name, unit_price, quantity,
                 product_id, seller_id, stock_state)
             values ($1, $2, $3, $4, $5, $6, $7, $8, 'reserved')",
        )
        .bind(id)
        .bind(position)
        .bind(&item.sku)
        .bind(&item.name)
        .bind(item.unit_price)
        .bind(item.quantity)
        .bind(item.product_id)
        .bind(item.seller_id)
        .execute(&mut **tx)
        .await?;
    }
    for line in &new.lines {
        products::reserve(tx, line.product_id, line.quantity).await?;
    }
    if let Some(code) = &new.voucher_code {
        vouchers::redeem(tx, code, id).await?;
    }
    record_status(tx, id, Status::PendingPayment).await?;
    tx.enqueue(&events::order_created(&row)).await?;
    if row.total > 0 {
        tx.enqueue(&events::payment_requested(&row)).await?;
    } else {
        transition(tx, id, None, Transition::Pay, None).await?;
    }
    Ok(id)
}

/// Moves an order (the owner's, when `owner` is given) along `transition`, inside the
/// caller's transaction. `payment` is the wallet transaction that paid it, for
/// [`Transition::Pay`].
pub async fn transition(
    conn: &mut outbox::Transaction,
    id: Uuid,
    owner: Option<Uuid>,
    transition: Transition,
    payment: Option<Uuid>,
) -> Result<OrderRow, OrderError> {
    let from = transition.from();
    let to = transition.to();
    let new_attempt = i32::from(transition == Transition::RetryPayment);
    let updated: Option<OrderRow> = sqlx::query_as(&format!(
        "update orders set status = $3, updated_at = now(),
             payment_transaction_id = coalesce($5, payment_transaction_id),
             payment_attempt = payment_attempt + $6
         where id = $1 and ($2::uuid is null or user_id = $2) and status = any($4::text[])
         returning {COLUMNS}"
    ))
    .bind(id)
    .bind(owner)
    .bind(to)
    .bind(from)
    .bind(payment)
    .bind(new_attempt)
    .fetch_optional(&mut **conn)
    .await?;
    let Some(row) = updated else {
        let current: Option<Status> = sqlx::query_scalar(
            "select status from orders where id = $1 and ($2::uuid is null or user_id = $2)",
        )
        .bind(id)
        .bind(owner)
        .fetch_optional(&mut **conn)
        .await?;
        return Err(match current {
            None => OrderError::NotFound,
            Some(status) => OrderError::IllegalTransition {
                status,
                verb: transition.verb(),
            },
        });
    };
    record_status(conn, id, to).await?;
    let event = match transition {
        Transition::RetryPayment => events::payment_requested(&row),
        Transition::Deliver => events::delivered(&row, &record_payouts(conn, &row).await?),
        _ => events::status_changed(&row, to),
    };
    conn.enqueue(&event).await?;
    match transition {
        Transition::Pay => products::sell_reserved(conn, id).await?,
        // Products before the voucher, as when an order is placed: locks taken in one order
        // everywhere cannot deadlock.
        Transition::Cancel | Transition::Expire => {
            products::give_back(conn, id).await?;
            vouchers::release(conn, id).await?;
        }
        _ => {}
    }
    Ok(row)
}

/// Shares a delivered order's total between its sellers ([`payout::split`]) and records the
/// shares, which `order.delivered` carries to the wallet. Orders placed before the catalogue
/// have no sellers, and pay no one.
async fn record_payouts(conn: &mut PgConnection, order: &OrderRow) -> sqlx::Result<Vec<Payout>> {
    let items: Vec<(Uuid, i64)> = sqlx::query_as(
        "select seller_id, unit_price * quantity from order_items
         where order_id = $1 and seller_id is not null",
    )
    .bind(order.id)
    .fetch_all(&mut *conn)
    .await?;
    let shares = payout::split(order.total, &items);
    for (seller_id, amount) in &shares {
        sqlx::query("insert into order_payouts (order_id, seller_id, amount) values ($1, $2, $3)")
            .bind(order.id)
            .bind(seller_id)
            .bind(amount)
            .execute(&mut *conn)
            .await?;
    }
    Ok(shares
        .into_iter()
        .map(|(seller_id, amount)| Payout { seller_id, amount })
        .collect())
}

/// A payment that arrived after its order was cancelled or expired: it is recorded and the
/// order's final event published again, now with the payment, so that the wallet refunds it.
pub async fn record_late_payment(
    conn: &mut outbox::Transaction,
    id: Uuid,
    payment: Uuid,
) -> Result<(), OrderError> {
    let updated: Option<OrderRow> = sqlx::query_as(&format!(
        "update orders set payment_transaction_id = $2, updated_at = now()
         where id = $1 and payment_transaction_id is null and status = any($3::text[])
         returning {COLUMNS}"
    ))
    .bind(id)
    .bind(payment)
    .bind([Status::Cancelled, Status::Expired])
    .fetch_optional(&mut **conn)
    .await?;
    if let Some(row) = updated {
        conn.enqueue(&events::status_changed(&row, row.status))
            .await?;
    }
    Ok(())
}

/// The wallet's refund of the order's payment.
pub async fn record_refund(
    conn: &mut PgConnection,
    id: Uuid,
    refund: Uuid,
) -> Result<(), OrderError> {
    sqlx::query(
        "update orders set refund_transaction_id = $2, updated_at = now()
         where id = $1 and refund_transaction_id is null",
    )
    .bind(id)
    .bind(refund)
    .execute(conn)
    .await?;
    Ok(())
}

/// Expires up to `batch` unpaid orders whose time is up; returns how many. Several instances
/// share the work (`SKIP LOCKED`).
pub async fn expire_due(outbox: &Outbox, batch: i64) -> Result<usize, OrderError> {
    let mut tx = outbox.begin().await?;
    // The statuses the expiry leaves from are those of the partial index
    // `orders_awaiting_payment`, which this query uses.
    let due: Vec<Uuid> = sqlx::query_scalar(
        "select id from orders
         where status = any($2::text[]) and expires_at <= now()
         order by expires_at limit $1 for update skip locked",
    )
    .bind(batch)
    .bind(Transition::Expire.from())
    .fetch_all(&mut *tx)
    .await?;
    // Nothing to do (the usual case): end without a commit, which would wake the outbox
    // relays for nothing, and would hide a change that forgot to wake them.
    if due.is_empty() {
        return Ok(0);
    }
    // The products of the whole batch first, in id order (see `products`).
    products::lock_products_of_orders(&mut tx, &due).await?;
    for id in &due {
        transition(&mut tx, *id, None, Transition::Expire, None).await?;
    }
    tx.commit().await?;
    Ok(due.len())
}

/// Locks an order for a change decided from its current state; `None` if there is none.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from orders where id = $1 for update"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// One order (the owner's, when `owner` is given) with its items and history.
pub async fn load_one(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Option<Uuid>,
) -> Result<Order, OrderError> {
    let row: OrderRow = sqlx::query_as(&format!(
        "select {COLUMNS} from orders where id = $1 and ($2::uuid is null or user_id = $2)"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(OrderError::NotFound)?;
    Ok(with_details(conn, vec![row]).await?.remove(0))
}

/// One page of the user's orders (every user's, for `None`: admins), newest first, and the
/// next page's cursor.
pub async fn list(
    pool: &PgPool,
    user_id: Option<Uuid>,
    status: Option<Status>,
    page: &PageRequest,
) -> Result<(Vec<Order>, Option<String>), OrderError> {
    let (rows, next) = page
        .fetch_page(
            sqlx::query_as(&format!(
                "select {COLUMNS} from orders
             where ($1::uuid is null or user_id = $1)
               and ($2::text is null or status = $2::text)
               and ($3::timestamptz is null or (created_at, id) < ($3, $4))
             order by created_at desc, id desc
             limit $5"
            ))
            .bind(user_id)
            .bind(status),
            pool,
            |row: &OrderRow| (row.created_at, row.id),
        )
        .await?;
    let mut conn = pool.acquire().await?;
    Ok((with_details(&mut conn, rows).await?, next))
}

async fn record_status(conn: &mut PgConnection, id: Uuid, status: Status) -> sqlx::Result<()> {
    sqlx::query("insert into status_history (order_id, status) values ($1, $2)")
        .bind(id)
        .bind(status)
        .execute(conn)
        .await?;
    Ok(())
}

/// Reads the items and history of `rows` in two queries.
async fn with_details(conn: &mut PgConnection, rows: Vec<OrderRow>) -> sqlx::Result<Vec<Order>> {
    let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    type ItemRow = (Uuid, String, String, i64, i64, Option<Uuid>, Option<Uuid>);
    let items: Vec<ItemRow> = sqlx::query_as(
        "select order_id, sku, name, unit_price, quantity, product_id, seller_id from order_items
         where order_id = any($1) order by order_id, position",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let history: Vec<(Uuid, Status, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "select order_id, status, at from status_history where order_id = any($1) order by id",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut items_of: HashMap<Uuid, Vec<Item>> = HashMap::new();
    for (order_id, sku, name, unit_price, quantity, product_id, seller_id) in items {
        items_of.entry(order_id).or_default().push(Item {
            sku,
            name,
            unit_price,
            quantity,
            product_id,
            seller_id,
        });
    }
    let mut history_of: HashMap<Uuid, Vec<StatusChange>> = HashMap::new();
    for (order_id, status, at) in history {
        history_of
            .entry(order_id)
            .or_default()
            .push(StatusChange { status, at });
    }
    Ok(rows
        .into_iter()
        .map(|row| Order {
            items: items_of.remove(&row.id).unwrap_or_default(),
            history: history_of.remove(&row.id).unwrap_or_default(),
            row,
        })
        .collect())
}
