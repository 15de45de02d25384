//! Vouchers: issued once per large order when it is sent, redeemed once on a new order,
//! given back when that order is cancelled or expires.

use chrono::{DateTime, Utc};
use platform::outbox;
use platform::pagination::PageRequest;
use proto::messaging::order::VoucherIssued;
use rand::Rng;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::OrderError;
use crate::events;
use crate::order::Status;

/// An order whose total is above this (100.00 EUR) earns a voucher when it is sent.
pub const THRESHOLD: i64 = 10_000;
/// A voucher is worth 5.00 EUR.
pub const AMOUNT: i64 = 500;
/// Letters and digits without look-alikes (no I, O, 0, 1): 32 symbols, 5 bits each.
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// 16 symbols: 80 random bits, far beyond guessing.
const CODE_LENGTH: usize = 16;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Voucher {
    pub code: String,
    pub amount: i64,
    pub currency: String,
    pub order_id: Uuid,
    pub issued_at: DateTime<Utc>,
    pub redeemed_at: Option<DateTime<Utc>>,
    pub redeemed_order_id: Option<Uuid>,
}

/// Whether an order of `total` earns a voucher.
pub fn earns_voucher(total: i64) -> bool {
    total > THRESHOLD
}

/// A fresh random code from the operating system's generator.
pub fn new_code() -> String {
    let mut rng = rand::rng();
    (0..CODE_LENGTH)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Locks the user's unredeemed voucher `code` until the transaction ends and returns its
/// amount. Of two orders racing for one voucher, the second waits here and then sees it
/// redeemed.
pub async fn lock_for_redemption(
    conn: &mut PgConnection,
    user_id: Uuid,
    code: &str,
) -> Result<i64, OrderError> {
    let found: Option<(i64, Option<Uuid>)> = sqlx::query_as(
        "select amount, redeemed_order_id from vouchers
         where code = $1 and user_id = $2 for update",
    )
    .bind(code)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    match found {
        None => Err(OrderError::VoucherNotFound),
        Some((_, Some(_))) => Err(OrderError::VoucherRedeemed),
        Some((amount, None)) => Ok(amount),
    }
}

/// Marks a voucher locked by [`lock_for_redemption`] as spent on `order_id`.
pub async fn redeem(conn: &mut PgConnection, code: &str, order_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "update vouchers set redeemed_at = now(), redeemed_order_id = $2
         where code = $1 and redeemed_order_id is null",
    )
    .bind(code)
    .bind(order_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Gives back the voucher spent on `order_id`, if any.
pub async fn release(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "update vouchers set redeemed_at = null, redeemed_order_id = null
         where redeemed_order_id = $1",
    )
    .bind(order_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Issues the voucher `order_id` earned, if it is sent and large enough and has none yet,
/// and queues `voucher.issued`. The unique `order_id` of the vouchers table makes this
/// happen once however often it is called.
pub async fn issue_for(
    conn: &mut outbox::Transaction,
    order_id: Uuid,
) -> sqlx::Result<Option<Voucher>> {
    let order: Option<(Uuid, Status, i64, String)> =
        sqlx::query_as("select user_id, status, total, currency from orders where id = $1")
            .bind(order_id)
            .fetch_optional(&mut **conn)
            .await?;
    let Some((user_id, status, total, currency)) = order else {
        return Ok(None);
    };
    let shipped = matches!(status, Status::Sent | Status::Delivered);
    if !shipped || !earns_voucher(total) {
        return Ok(None);
    }
    let issued: Option<Voucher> = sqlx::query_as(
        "insert into vouchers (code, user_id, amount, currency, order_id)
         values ($1, $2, $3, $4, $5)
         on conflict (order_id) do nothing
         returning code, amount, currency, order_id, issued_at, redeemed_at, redeemed_order_id",
    )
    .bind(new_code())
    .bind(user_id)
    .bind(AMOUNT)
    .bind(&currency)
    .bind(order_id)
    .fetch_optional(&mut **conn)
    .await?;
    if let Some(voucher) = &issued {
        let event = VoucherIssued {
            code: voucher.code.clone(),
            user_id,
            amount: voucher.amount,
            currency: voucher.currency.clone(),
            order_id,
            issued_at: voucher.issued_at,
        };
        conn.enqueue(&events::voucher_issued(&event)).await?;
    }
    Ok(issued)
}

/// One page of the user's vouchers, newest first, and the next page's cursor.
pub async fn list(
    pool: &PgPool,
    user_id: Uuid,
    page: &PageRequest,
) -> Result<(Vec<Voucher>, Option<String>), OrderError> {
    let (rows, next) = page
        .fetch_page(
            sqlx::query_as(
                "select code, amount, currency, order_id, issued_at, redeemed_at, redeemed_order_id
             from vouchers
             where user_id = $1 and ($2::timestamptz is null or (issued_at, order_id) < ($2, $3))
             order by issued_at desc, order_id desc
             limit $4",
            )
            .bind(user_id),
            pool,
            |voucher: &Voucher| (voucher.issued_at, voucher.order_id),
        )
        .await?;
    Ok((rows, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_orders_above_100_eur_earn_a_voucher() {
        assert!(!earns_voucher(10_000));
        assert!(earns_voucher(10_001));
    }

    #[test]
    fn codes_are_16_unambiguous_symbols_and_differ() {
        let code = new_code();
        assert_eq!(code.len(), 16);
        assert!(code.bytes().all(|byte| ALPHABET.contains(&byte)));
        assert_ne!(new_code(), code);
    }
}
