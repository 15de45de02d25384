//! The verdict of `bench/faults`: once everything is back, waits until the platform has
//! settled, then checks it against what the clients were told, reading the databases and the
//! broker directly, and prints the summary.

use std::collections::HashMap;
use std::time::Duration;

use proto::OrderStatus;
use serde_json::Value;
use sqlx::PgPool;
use tokio::time::Instant;
use uuid::Uuid;

use crate::fault_load::{DEPOSIT_TAG, Outcomes, PRODUCT_STOCK, REQUEST_TAG, Sent};

/// How long the platform may take to settle after the load.
const SETTLE_WITHIN: Duration = Duration::from_secs(300);

pub struct Sources {
    pub wallet: PgPool,
    pub statement: PgPool,
    pub orders: PgPool,
    /// The management API's queue list of the run's vhost.
    pub queues_url: String,
}

impl Sources {
    /// DATABASE_PREFIX is the URL of the run's databases without the service's name.
    pub async fn connect(database_prefix: &str, amqp_url: &str) -> anyhow::Result<Self> {
        let vhost = amqp_url.rsplit('/').next().unwrap_or_default();
        Ok(Self {
            wallet: PgPool::connect(&format!("{database_prefix}wallet")).await?,
            statement: PgPool::connect(&format!("{database_prefix}statement")).await?,
            orders: PgPool::connect(&format!("{database_prefix}orders")).await?,
            queues_url: format!("http://127.0.0.1:15672/api/queues/{vhost}?columns=name,messages"),
        })
    }
}

/// Waits until no order awaits its payment, every outbox is published, the statement holds
/// every ledger line and every queue is empty (the management API's figures lag by a few
/// seconds, so that holds twice in a row, 6 s apart).
pub async fn settle(sources: &Sources) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut settled_since: Option<Instant> = None;
    loop {
        let pending = pending_work(sources).await.unwrap_or_else(|error| {
            // The database or the broker may still be coming back.
            vec![format!("cannot read yet: {error}")]
        });
        match (pending.is_empty(), settled_since) {
            (true, Some(since)) if since.elapsed() >= Duration::from_secs(6) => {
                return Ok(started.elapsed());
            }
            (true, None) => settled_since = Some(Instant::now()),
            (true, Some(_)) => {}
            (false, _) => settled_since = None,
        }
        if started.elapsed() > SETTLE_WITHIN {
            anyhow::bail!(
                "not settled after {SETTLE_WITHIN:?}: {}",
                pending.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn pending_work(sources: &Sources) -> anyhow::Result<Vec<String>> {
    let mut pending = Vec::new();
    let awaiting: i64 =
        sqlx::query_scalar("select count(*) from orders where status = 'pending_payment'")
            .fetch_one(&sources.orders)
            .await?;
    if awaiting > 0 {
        pending.push(format!("{awaiting} orders await their payment"));
    }
    for (name, pool) in [
        ("wallet", &sources.wallet),
        ("statement", &sources.statement),
        ("order", &sources.orders),
    ] {
        let unpublished: i64 =
            sqlx::query_scalar("select count(*) from outbox where published_at is null")
                .fetch_one(pool)
                .await?;
        if unpublished > 0 {
            pending.push(format!(
                "{unpublished} unpublished events in {name}-service"
            ));
        }
    }
    let ledger: i64 = sqlx::query_scalar("select count(*) from transactions")
        .fetch_one(&sources.wallet)
        .await?;
    let lines: i64 = sqlx::query_scalar("select count(*) from statement_lines")
        .fetch_one(&sources.statement)
        .await?;
    if lines != ledger {
        pending.push(format!("{lines} statement lines for {ledger} transactions"));
    }
    for (queue, messages) in queues(sources).await? {
        if messages > 0 {
            pending.push(format!("{messages} messages in {queue}"));
        }
    }
    Ok(pending)
}

/// Each queue of the vhost with its messages (ready and unacknowledged).
async fn queues(sources: &Sources) -> anyhow::Result<Vec<(String, i64)>> {
    let list: Vec<Value> = reqwest::Client::new()
        .get(&sources.queues_url)
        .basic_auth("guest", Some("guest"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(list
        .iter()
        .map(|queue| {
            (
                queue["name"].as_str().unwrap_or_default().to_owned(),
                queue["messages"].as_i64().unwrap_or_default(),
            )
        })
        .collect())
}

/// Checks the settled platform and prints the summary; returns the number of problems.
pub async fn check(sources: &Sources, sent: &Sent) -> anyhow::Result<u64> {
    let mut problems = 0;
    println!("| stream | sent | accepted | refused | unanswered | applied | lost | duplicated |");
    println!("|---|---|---|---|---|---|---|---|");

    let applied = tagged_ledger_rows(&sources.wallet).await?;
    for (name, tag, outcomes) in [
        ("HTTP deposits", DEPOSIT_TAG, sent.deposits),
        ("requests via RabbitMQ", REQUEST_TAG, sent.requests),
    ] {
        let prefix = format!("{tag} ");
        let of_stream = applied.iter().filter(|(tag, _)| tag.starts_with(&prefix));
        let distinct = of_stream.clone().count();
        let duplicated: i64 = of_stream.map(|(_, rows)| rows - 1).sum();
        let lost = sent
            .accepted_tags
            .iter()
            .filter(|accepted| accepted.starts_with(&prefix) && !applied.contains_key(*accepted))
            .count();
        // These clients retry until the end, so one still unanswered is a problem too.
        problems += row(name, outcomes, distinct, lost, duplicated) + outcomes.unanswered;
    }
    problems += orders(sources, sent).await?;
    problems += stock(sources).await?;
    problems += payouts(sources).await?;
    problems += wallets(sources).await?;
    problems += queues_empty(sources).await?;
    Ok(problems)
}

/// Prints one stream's row; returns its problems (lost, duplicated, refused).
fn row(name: &str, outcomes: Outcomes, applied: usize, lost: usize, duplicated: i64) -> u64 {
    let Outcomes {
        sent,
        accepted,
        refused,
        unanswered,
    } = outcomes;
    println!(
        "| {name} | {sent} | {accepted} | {refused} | {unanswered} | {applied} | {lost} | {duplicated} |"
    );
    u64::try_from(lost).unwrap_or(u64::MAX)
        + u64::try_from(duplicated).unwrap_or(u64::MAX)
        + refused
}

/// The ledger rows of this run's tagged deposits and requests, by tag.
async fn tagged_ledger_rows(wallet: &PgPool) -> anyhow::Result<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select description, count(*) from transactions
          where description like 'fault-test %' group by description",
    )
    .fetch_all(wallet)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Every order in the database (answered or not) against its payments in the ledger: a paid
/// order has exactly one purchase of its total and no refund; any other order's purchases
/// were all refunded.
async fn orders(sources: &Sources, sent: &Sent) -> anyhow::Result<u64> {
    let orders: Vec<(Uuid, OrderStatus, i64)> =
        sqlx::query_as("select id, status, total from orders")
            .fetch_all(&sources.orders)
            .await?;
    // Per order: (purchases, their amount, refunds).
    let payments: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "select p.reference, count(*), sum(p.amount)::bigint, count(r.id)
           from transactions p left join transactions r on r.parent_transaction_id = p.id
          where p.type = 'purchase' and p.reference like 'order:%'
          group by p.reference",
    )
    .fetch_all(&sources.wallet)
    .await?;
    let payments: HashMap<String, (i64, i64, i64)> = payments
        .into_iter()
        .map(|(reference, count, amount, refunds)| (reference, (count, amount, refunds)))
        .collect();
    let mut by_status: HashMap<&str, u64> = HashMap::new();
    let (mut lost, mut duplicated, mut stuck, mut wrong_amount) = (0_usize, 0_i64, 0_u64, 0_u64);
    for (id, status, total) in &orders {
        *by_status.entry(status.as_str()).or_default() += 1;
        let (purchases, amount, refunds) = payments
            .get(&format!("order:{id}"))
            .copied()
            .unwrap_or_default();
        let kept = purchases - refunds;
        use OrderStatus::{Cancelled, Delivered, Expired, Paid, PaymentFailed, Sent};
        // A sent or delivered order was paid, and stays paid.
        match status {
            Paid | Sent | Delivered if kept == 1 && purchases == 1 && amount == *total => {}
            Paid | Sent | Delivered if kept < 1 => lost += 1,
            Paid | Sent | Delivered if kept > 1 => duplicated += kept - 1,
            Paid | Sent | Delivered => wrong_amount += 1,
            PaymentFailed | Cancelled | Expired if kept == 0 => {}
            PaymentFailed | Cancelled | Expired => duplicated += kept,
            _ => stuck += 1,
        }
    }
    let known: std::collections::HashSet<Uuid> = orders.iter().map(|order| order.0).collect();
    lost += sent
        .order_ids
        .iter()
        .filter(|id| !known.contains(id))
        .count();
    let mut statuses: Vec<String> = by_status
        .iter()
        .map(|(status, count)| format!("{status} {count}"))
        .collect();
    statuses.sort();
    let problems = row("orders", sent.orders, orders.len(), lost, duplicated);
    println!();
    println!(
        "orders by status: {}; stuck outside a final or resumable status: {stuck}; paid with another amount than their total: {wrong_amount}",
        statuses.join(", ")
    );
    // Orders are retried with their Idempotency-Key now, like deposits: one still unanswered
    // when the client gave up is a problem.
    Ok(problems + stuck + wrong_amount + sent.orders.unanswered)
}

/// Sellers paid exactly: each delivered order's payouts add up to its total, each payout
/// is one deposit of its amount in the seller's ledger, and there is no other payout deposit.
async fn payouts(sources: &Sources) -> anyhow::Result<u64> {
    let delivered: Vec<(Uuid, i64, i64)> = sqlx::query_as(
        "select o.id, o.total, coalesce(sum(p.amount), 0)::bigint from orders o
           left join order_payouts p on p.order_id = o.id
          where o.status = 'delivered' group by o.id, o.total",
    )
    .fetch_all(&sources.orders)
    .await?;
    let recorded: Vec<(Uuid, Uuid, i64)> =
        sqlx::query_as("select order_id, seller_id, amount from order_payouts")
            .fetch_all(&sources.orders)
            .await?;
    let credited: Vec<(String, Uuid, i64, i64)> = sqlx::query_as(
        "select reference, min(user_id::text)::uuid, count(*), sum(amount)::bigint from transactions
          where type = 'deposit' and source = 'order' and reference like 'order:%:payout:%'
          group by reference",
    )
    .fetch_all(&sources.wallet)
    .await?;
    let mut credited: HashMap<String, (Uuid, i64, i64)> = credited
        .into_iter()
        .map(|(reference, user, count, amount)| (reference, (user, count, amount)))
        .collect();
    let unbalanced = delivered
        .iter()
        .filter(|(_, total, paid_out)| total != paid_out)
        .count();
    let (mut lost, mut wrong) = (0_usize, 0_usize);
    for (order, seller, amount) in &recorded {
        match credited.remove(&format!("order:{order}:payout:{seller}")) {
            None => lost += 1,
            Some((user, 1, credit)) if user == *seller && credit == *amount => {}
            Some(_) => wrong += 1,
        }
    }
    // What is left was credited without a recorded payout.
    let unexpected = credited.len();
    println!(
        "payouts: {} delivered orders, {} payouts; not adding up to the total: {unbalanced}; not credited: {lost}; credited twice, to another user or with another amount: {wrong}; credited without a payout: {unexpected}",
        delivered.len(),
        recorded.len()
    );
    Ok(u64::try_from(unbalanced + lost + wrong + unexpected).unwrap_or(u64::MAX))
}

/// No stock leaked: each product's `reserved` is the units of its orders awaiting payment,
/// `sold` those of its paid (sent, delivered) orders, and `stock + sold` what it was put up
/// with.
async fn stock(sources: &Sources) -> anyhow::Result<u64> {
    let products: Vec<(Uuid, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "select p.id, p.stock, p.reserved, p.sold,
                coalesce(sum(i.quantity) filter (
                    where o.status in ('pending_payment', 'payment_failed')), 0)::bigint,
                coalesce(sum(i.quantity) filter (
                    where o.status in ('paid', 'sent', 'delivered')), 0)::bigint
           from products p
           left join order_items i on i.product_id = p.id
           left join orders o on o.id = i.order_id
          group by p.id",
    )
    .fetch_all(&sources.orders)
    .await?;
    let mut leaking = 0;
    for (id, stock, reserved, sold, awaiting, paid) in &products {
        if *reserved != *awaiting || *sold != *paid || stock + sold != PRODUCT_STOCK {
            println!(
                "product {id}: stock {stock}, reserved {reserved} (orders awaiting payment hold {awaiting}), sold {sold} (paid orders took {paid})"
            );
            leaking += 1;
        }
    }
    println!(
        "products: {} checked; reserved = units awaiting payment, sold = units paid, stock + sold = {PRODUCT_STOCK}: {leaking} disagree",
        products.len()
    );
    Ok(leaking)
}

/// Every wallet: its balance, the signed sum of its ledger and its statement's last
/// `balance_after` agree, and the statement has one line per ledger row.
async fn wallets(sources: &Sources) -> anyhow::Result<u64> {
    let ledger: Vec<(Uuid, i64, i64, i64)> = sqlx::query_as(
        "select w.user_id, w.balance,
                coalesce(sum(case when t.type = 'deposit' then t.amount
                                  when t.type in ('withdraw', 'purchase') then -t.amount
                                  when p.type = 'deposit' then -t.amount
                                  else t.amount end), 0)::bigint,
                count(t.id)
           from wallets w
           left join transactions t on t.user_id = w.user_id
           left join transactions p on p.id = t.parent_transaction_id
          group by w.user_id, w.balance",
    )
    .fetch_all(&sources.wallet)
    .await?;
    let statements: Vec<(Uuid, i64, i64)> = sqlx::query_as(
        "select user_id, count(*),
                (array_agg(balance_after order by occurred_at desc, transaction_id desc))[1]
           from statement_lines group by user_id",
    )
    .fetch_all(&sources.statement)
    .await?;
    let statements: HashMap<Uuid, (i64, i64)> = statements
        .into_iter()
        .map(|(user, lines, last)| (user, (lines, last)))
        .collect();
    let mut disagreeing = 0;
    for (user, balance, sum, rows) in &ledger {
        let (lines, last) = statements.get(user).copied().unwrap_or((0, 0));
        if *balance != *sum || lines != *rows || last != *balance {
            println!(
                "wallet {user}: balance {balance}, ledger sum {sum} in {rows} rows, statement {lines} lines ending at {last}"
            );
            disagreeing += 1;
        }
    }
    println!(
        "wallets: {} checked; balance = ledger sum = statement's last balance_after, one statement line per ledger row: {} disagree",
        ledger.len(),
        disagreeing
    );
    Ok(disagreeing)
}

async fn queues_empty(sources: &Sources) -> anyhow::Result<u64> {
    let queues = queues(sources).await?;
    let holding: Vec<String> = queues
        .iter()
        .filter(|(_, messages)| *messages > 0)
        .map(|(queue, messages)| format!("{queue} {messages}"))
        .collect();
    println!(
        "queues: {} (dead-letter queues included), holding messages: {}",
        queues.len(),
        if holding.is_empty() {
            "none".to_owned()
        } else {
            holding.join(", ")
        }
    );
    Ok(u64::try_from(holding.len())?)
}
