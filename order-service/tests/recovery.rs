//! order-service with the real wallet-service, PostgreSQL and RabbitMQ, through crashes:
//! nothing a crash interrupts is lost, paid twice or left hanging.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use platform::testing::eventually;
use support::Services;
use uuid::Uuid;

#[tokio::test]
async fn unpaid_orders_expire_even_when_their_time_came_while_the_service_was_down() {
    // No wallet: payments are never answered, so the orders stay unpaid.
    let mut services = Services::start(Duration::from_secs(2), false).await;
    let user = Uuid::new_v4();
    let mut ids = Vec::new();
    for price in [100, 200, 300] {
        let order = services.place_order(user, price).await.unwrap();
        assert_eq!(
            proto::OrderStatus::try_from(order.status),
            Ok(proto::OrderStatus::PendingPayment)
        );
        ids.push(order.id.parse::<Uuid>().unwrap());
    }
    services.crash_order_service().await;
    eventually(
        Duration::from_secs(10),
        "the orders to fall due",
        || async {
            let due: bool = sqlx::query_scalar("select bool_and(expires_at < now()) from orders")
                .fetch_one(&services.order_pool)
                .await
                .unwrap();
            due.then_some(())
        },
    )
    .await;
    for id in &ids {
        assert_eq!(services.order_status(*id).await, "pending_payment");
    }
    assert_eq!(services.reserved_units().await, 3);

    services.start_order_service().await;
    for id in &ids {
        eventually(Duration::from_secs(10), "the order to expire", || async {
            (services.order_status(*id).await == "expired").then_some(())
        })
        .await;
    }
    let (history, events): (i64, i64) = sqlx::query_as(
        "select (select count(*) from status_history where status = 'expired'),
                (select count(*) from outbox where routing_key = 'order.expired')",
    )
    .fetch_one(&services.order_pool)
    .await
    .unwrap();
    assert_eq!((history, events), (3, 3));
    // Each order's unit is back on sale.
    assert_eq!(services.reserved_units().await, 0);
    services.stop().await;
}

#[tokio::test]
async fn a_payment_that_arrives_after_the_order_was_cancelled_is_refunded() {
    let mut services = Services::start(Duration::from_secs(900), true).await;
    let user = Uuid::new_v4();
    services.deposit(user, 5_000).await;
    services.crash_wallet_service().await;

    // The payment request waits in the wallet's queue while the order is cancelled.
    let order = services.place_order(user, 1_234).await.unwrap();
    let id: Uuid = order.id.parse().unwrap();
    services
        .orders
        .clone()
        .cancel_order(proto::order::v1::OrderRequest {
            user_id: user.to_string(),
            order_id: order.id.clone(),
        })
        .await
        .unwrap();
    services.start_wallet_service().await;

    let (payment, refund): (Uuid, Uuid) = eventually(
        Duration::from_secs(15),
        "the late payment's refund",
        || async {
            let ids: (Option<Uuid>, Option<Uuid>) = sqlx::query_as(
                "select payment_transaction_id, refund_transaction_id from orders where id = $1",
            )
            .bind(id)
            .fetch_one(&services.order_pool)
            .await
            .unwrap();
            match ids {
                (Some(payment), Some(refund)) => Some((payment, refund)),
                _ => None,
            }
        },
    )
    .await;
    assert_eq!(services.order_status(id).await, "cancelled");
    let audit = wallet_service::ledger::audit(&services.wallet_pool, user)
        .await
        .unwrap();
    assert_eq!((audit.balance, audit.ledger_sum), (5_000, 5_000));
    let parent: Option<Uuid> =
        sqlx::query_scalar("select parent_transaction_id from transactions where id = $1")
            .bind(refund)
            .fetch_one(&services.wallet_pool)
            .await
            .unwrap();
    assert_eq!(parent, Some(payment));
    services.stop().await;
}

#[tokio::test]
async fn crashing_either_service_during_200_concurrent_orders_loses_and_duplicates_nothing() {
    let mut services = Services::start(Duration::from_secs(900), true).await;
    let users: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
    for (index, user) in (1_i64..).zip(&users) {
        // Some wallets run dry partway, so some orders fail.
        services.deposit(*user, index * 1_500).await;
    }

    let orders = services.orders.clone();
    let order_pool = services.order_pool.clone();
    let placing = futures_util::stream::iter(0..200_i64)
        .map(|n| {
            let orders = orders.clone();
            let user = users[usize::try_from(n).unwrap() % users.len()];
            async move {
                let price = 100 + (n * 137) % 900;
                // Placing is retried while order-service is down; an order whose answer was
                // lost may then exist twice, which is fine: the database is the reference.
                eventually(
                    Duration::from_secs(60),
                    "the order to be placed",
                    || async { support::place_order(orders.clone(), user, price).await.ok() },
                )
                .await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>();
    let placed = |count: i64| {
        let pool = order_pool.clone();
        async move {
            eventually(Duration::from_secs(60), "orders to be placed", || async {
                let placed: i64 = sqlx::query_scalar("select count(*) from orders")
                    .fetch_one(&pool)
                    .await
                    .unwrap_or_default();
                (placed >= count).then_some(())
            })
            .await;
        }
    };
    let crashing = async {
        placed(50).await;
        services.crash_order_service().await;
        services.start_order_service().await;
        placed(120).await;
        services.crash_wallet_service().await;
        services.start_wallet_service().await;
    };
    tokio::join!(placing, crashing);

    // Every order settles: paid, or refused for lack of funds.
    eventually(Duration::from_secs(60), "every order to settle", || async {
        let unsettled: i64 = sqlx::query_scalar(
            "select count(*) from orders where status not in ('paid', 'payment_failed')",
        )
        .fetch_one(&order_pool)
        .await
        .unwrap();
        (unsettled == 0).then_some(())
    })
    .await;
    let (orders_placed, paid, failed): (i64, i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where status = 'paid'),
                count(*) filter (where status = 'payment_failed') from orders",
    )
    .fetch_one(&order_pool)
    .await
    .unwrap();
    assert!(orders_placed >= 200);
    assert!(paid > 0 && failed > 0, "paid {paid}, failed {failed}");
    for user in &users {
        let (paid_total, paid_count): (Option<i64>, i64) = sqlx::query_as(
            "select sum(total)::bigint, count(*) from orders where user_id = $1 and status = 'paid'",
        )
        .bind(user)
        .fetch_one(&order_pool)
        .await
        .unwrap();
        let (debited, purchases, distinct_orders): (Option<i64>, i64, i64) = sqlx::query_as(
            "select sum(amount)::bigint, count(*), count(distinct reference) from transactions
             where user_id = $1 and type = 'purchase' and source = 'order'",
        )
        .bind(user)
        .fetch_one(&services.wallet_pool)
        .await
        .unwrap();
        assert_eq!(debited, paid_total, "user {user}");
        assert_eq!((purchases, distinct_orders), (paid_count, paid_count));
        let audit = wallet_service::ledger::audit(&services.wallet_pool, *user)
            .await
            .unwrap();
        assert_eq!(audit.balance, audit.ledger_sum);
    }
    for queue in ["wallet.order-payments.dlq", "order.payment-outcomes.dlq"] {
        assert_eq!(services.queue_length(queue).await, 0, "{queue}");
    }
    services.stop().await;
}
