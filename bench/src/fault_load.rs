//! The steady load of `bench/faults`: HTTP deposits, transaction requests published straight
//! to the broker and orders (a quarter of them cancelled), at fixed rates, while the script
//! kills and restarts processes, the broker and the database underneath.
//!
//! Each stream behaves as a careful client would, so that "accepted" means what a client can
//! rely on:
//! - a deposit carries an `Idempotency-Key` and is retried, through every gateway in turn,
//!   until it gets an answer that is not a 5xx or a transport error;
//! - a request is republished with the same `message_id` until the broker confirms it;
//! - an order of catalogue products (put up by the last user, before the faults) carries an
//!   `Idempotency-Key` and is retried the same way, so a lost answer places no second order.
//!
//! Every deposit and request is tagged with a unique `description`, which the verdict counts
//! in the ledger.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::{Instant, MissedTickBehavior};
use uuid::Uuid;

/// Deposits, requests and orders per second.
const DEPOSITS_PER_SECOND: u32 = 60;
const REQUESTS_PER_SECOND: u32 = 30;
const ORDERS_PER_SECOND: u32 = 10;
/// How long a client keeps retrying after the load stops.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// The descriptions that tag this run's deposits and requests in the ledger.
pub const DEPOSIT_TAG: &str = "fault-test deposit";
pub const REQUEST_TAG: &str = "fault-test request";

/// What the clients saw.
#[derive(Default, Debug)]
pub struct Sent {
    pub deposits: Outcomes,
    pub requests: Outcomes,
    pub orders: Outcomes,
    /// The orders answered 201.
    pub order_ids: Vec<Uuid>,
    /// The accepted deposits' and requests' tags.
    pub accepted_tags: Vec<String>,
}

#[derive(Default, Debug, Clone, Copy)]
pub struct Outcomes {
    pub sent: u64,
    pub accepted: u64,
    /// Refused with a 4xx: a bug here, since every request is valid.
    pub refused: u64,
    /// Never answered (orders), or still failing when the clients gave up.
    pub unanswered: u64,
}

pub struct Users {
    pub tokens: Vec<String>,
    pub ids: Vec<Uuid>,
    /// An admin's token: with one, some paid orders are shipped and delivered, so sellers
    /// are paid during the faults too.
    pub admin: Option<String>,
}

/// Runs the three streams for `seconds`, then waits for the retries; returns what was sent
/// and accepted.
pub async fn run(
    gateways: Vec<String>,
    users: Users,
    amqp_url: String,
    seconds: u64,
) -> anyhow::Result<Sent> {
    let sent = Arc::new(Mutex::new(Sent::default()));
    let stop = Instant::now() + Duration::from_secs(seconds);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let http = Arc::new(Http {
        client,
        gateways,
        users,
    });
    let deposits = tokio::spawn(deposits(http.clone(), sent.clone(), stop));
    let orders = tokio::spawn(orders(http.clone(), sent.clone(), stop));
    let requests = tokio::spawn(requests(http.clone(), amqp_url, sent.clone(), stop));
    deposits.await??;
    orders.await??;
    requests.await??;
    let sent = Arc::try_unwrap(sent)
        .map_err(|_| anyhow::anyhow!("a stream is still running"))?
        .into_inner();
    Ok(sent)
}

struct Http {
    client: reqwest::Client,
    gateways: Vec<String>,
    users: Users,
}

impl Http {
    /// The gateway for attempt `attempt` of request `n`: each retry goes to the next one.
    fn gateway(&self, n: u64, attempt: u64) -> &str {
        let index = usize::try_from(n + attempt).unwrap_or_default() % self.gateways.len();
        &self.gateways[index]
    }

    fn user(&self, n: u64) -> usize {
        usize::try_from(n).unwrap_or_default() % self.users.ids.len()
    }
}

/// A ticker at `per_second` that does not catch up after a stall: the load stays steady.
fn ticker(per_second: u32) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / per_second);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    ticker
}

/// Spawns one task per tick until `stop`, numbering them, and waits for all of them.
async fn paced<F, Fut>(per_second: u32, stop: Instant, task: F) -> anyhow::Result<()>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut ticker = ticker(per_second);
    let mut tasks = tokio::task::JoinSet::new();
    let mut n = 0;
    while Instant::now() < stop {
        ticker.tick().await;
        tasks.spawn(task(n));
        n += 1;
    }
    while let Some(done) = tasks.join_next().await {
        done?;
    }
    Ok(())
}

/// The answer to one HTTP attempt, as a client reads it.
enum Answer {
    Accepted(Value),
    Refused,
    RetryLater,
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    match request.send().await {
        Ok(response) if response.status().is_success() => match response.json().await {
            Ok(body) => Answer::Accepted(body),
            Err(_) => Answer::RetryLater,
        },
        Ok(response) if response.status().is_client_error() => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            eprintln!("refused ({status}): {body}");
            Answer::Refused
        }
        _ => Answer::RetryLater,
    }
}

async fn deposits(http: Arc<Http>, sent: Arc<Mutex<Sent>>, stop: Instant) -> anyhow::Result<()> {
    paced(DEPOSITS_PER_SECOND, stop, |n| {
        let (http, sent) = (http.clone(), sent.clone());
        async move {
            let tag = format!("{DEPOSIT_TAG} {n}");
            let body = json!({"type": "deposit", "amount": 1 + n % 9, "description": tag});
            let key = Uuid::new_v4().to_string();
            let token = &http.users.tokens[http.user(n)];
            sent.lock().await.deposits.sent += 1;
            let mut attempt = 0;
            let outcome = loop {
                let request = http
                    .client
                    .post(format!("{}/wallet/transactions", http.gateway(n, attempt)))
                    .bearer_auth(token)
                    .header("Idempotency-Key", &key)
                    .json(&body);
                match answer(request).await {
                    Answer::RetryLater if Instant::now() < stop + GIVE_UP_AFTER => {
                        attempt += 1;
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                    other => break other,
                }
            };
            let mut sent = sent.lock().await;
            match outcome {
                Answer::Accepted(_) => {
                    sent.deposits.accepted += 1;
                    sent.accepted_tags.push(tag);
                }
                Answer::Refused => sent.deposits.refused += 1,
                Answer::RetryLater => sent.deposits.unanswered += 1,
            }
        }
    })
    .await
}

/// Units of each product the orders stream puts up for sale: more than the run can sell.
pub const PRODUCT_STOCK: i64 = 100_000;
/// Products the orders spread over.
const PRODUCTS: u64 = 10;

/// The seller of the run's products: the last user, who therefore buys nothing (buying your
/// own product is refused).
fn seller(http: &Http) -> &str {
    http.users.tokens.last().map_or("", String::as_str)
}

/// Puts up the run's products (before any fault), priced 1 to 46 cents; returns their ids.
async fn put_up_products(http: &Http) -> anyhow::Result<Vec<Uuid>> {
    let mut ids = Vec::new();
    for n in 0..PRODUCTS {
        let product: Value = http
            .client
            .post(format!("{}/products", http.gateway(n, 0)))
            .bearer_auth(seller(http))
            .json(
                &json!({"name": format!("Fault test item {n}"), "price": 1 + n * 5,
                "stock": PRODUCT_STOCK}),
            )
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        ids.push(
            product["id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("a product without an id: {product}"))?,
        );
    }
    Ok(ids)
}

async fn orders(http: Arc<Http>, sent: Arc<Mutex<Sent>>, stop: Instant) -> anyhow::Result<()> {
    let products = Arc::new(put_up_products(&http).await?);
    let buyers = http.users.ids.len().saturating_sub(1).max(1);
    paced(ORDERS_PER_SECOND, stop, |n| {
        let (http, sent, products) = (http.clone(), sent.clone(), products.clone());
        async move {
            let token = &http.users.tokens[usize::try_from(n).unwrap_or_default() % buyers];
            let product = products[usize::try_from(n).unwrap_or_default() % products.len()];
            let body = json!({"items": [{"product_id": product, "quantity": 1 + n % 3}]});
            let key = Uuid::new_v4().to_string();
            sent.lock().await.orders.sent += 1;
            let mut attempt = 0;
            let outcome = loop {
                let request = http
                    .client
                    .post(format!("{}/orders", http.gateway(n, attempt)))
                    .bearer_auth(token)
                    .header("Idempotency-Key", &key)
                    .json(&body);
                match answer(request).await {
                    Answer::RetryLater if Instant::now() < stop + GIVE_UP_AFTER => {
                        attempt += 1;
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                    other => break other,
                }
            };
            let id = match &outcome {
                Answer::Accepted(order) => order["id"].as_str().and_then(|id| id.parse().ok()),
                _ => None,
            };
            {
                let mut sent = sent.lock().await;
                match (outcome, id) {
                    (Answer::Accepted(_), Some(id)) => {
                        sent.orders.accepted += 1;
                        sent.order_ids.push(id);
                    }
                    (Answer::Refused, _) => sent.orders.refused += 1,
                    _ => sent.orders.unanswered += 1,
                }
            }
            // Another quarter is shipped and delivered once paid, which pays its seller.
            if let (Some(id), Some(admin)) = (id, &http.users.admin)
                && n % 4 == 1
            {
                deliver(&http, admin, token, id, n, stop).await;
            }
            // A quarter of the orders are cancelled soon after, paid or not: refunds are
            // part of the traffic. 409 means the order had already moved on (expired).
            if let Some(id) = id
                && n % 4 == 0
            {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let mut attempt = 0;
                while Instant::now() < stop + GIVE_UP_AFTER {
                    let request = http
                        .client
                        .post(format!("{}/orders/{id}/cancel", http.gateway(n, attempt)))
                        .bearer_auth(token);
                    match answer(request).await {
                        Answer::RetryLater => {
                            attempt += 1;
                            tokio::time::sleep(RETRY_PAUSE).await;
                        }
                        Answer::Accepted(_) | Answer::Refused => break,
                    }
                }
            }
        }
    })
    .await
}

/// Waits (a while) for the order to be paid, then ships and delivers it as the admin, each
/// step retried through the gateways until answered. An order that is not paid in time, or
/// a step refused (409: it moved on), is left as it is.
async fn deliver(http: &Http, admin: &str, buyer: &str, id: Uuid, n: u64, stop: Instant) {
    let mut attempt = 0;
    let paid = loop {
        if Instant::now() > stop + GIVE_UP_AFTER {
            break false;
        }
        let request = http
            .client
            .get(format!("{}/orders/{id}", http.gateway(n, attempt)))
            .bearer_auth(buyer);
        match answer(request).await {
            Answer::Accepted(order) if order["status"] == "paid" => break true,
            Answer::Accepted(order) if order["status"] != "pending_payment" => break false,
            Answer::Refused => break false,
            _ => {
                attempt += 1;
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    };
    if !paid {
        return;
    }
    for action in ["ship", "deliver"] {
        while Instant::now() < stop + GIVE_UP_AFTER {
            let request = http
                .client
                .post(format!("{}/orders/{id}/{action}", http.gateway(n, attempt)))
                .bearer_auth(admin);
            match answer(request).await {
                Answer::RetryLater => {
                    attempt += 1;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Answer::Accepted(_) => break,
                Answer::Refused => return,
            }
        }
    }
}

/// Transaction requests published straight to the wallet's queue, as another system does:
/// one at a time, each republished with the same `message_id` (on a new connection if
/// needed) until the broker confirms it.
async fn requests(
    http: Arc<Http>,
    amqp_url: String,
    sent: Arc<Mutex<Sent>>,
    stop: Instant,
) -> anyhow::Result<()> {
    let mut ticker = ticker(REQUESTS_PER_SECOND);
    let mut channel: Option<(Connection, lapin::Channel)> = None;
    let mut n = 0_u64;
    while Instant::now() < stop {
        ticker.tick().await;
        let tag = format!("{REQUEST_TAG} {n}");
        let body = serde_json::to_vec(&json!({
            "user_id": http.users.ids[http.user(n)], "type": "deposit", "amount": 1 + n % 7,
            "currency": "EUR", "description": tag,
        }))?;
        let message_id = format!("fault-test-request-{n}");
        sent.lock().await.requests.sent += 1;
        let confirmed = loop {
            if channel.is_none() {
                channel = connect(&amqp_url).await.ok();
            }
            if let Some((_, open)) = &channel
                && publish(open, &message_id, &body).await.is_ok()
            {
                break true;
            }
            channel = None;
            if Instant::now() > stop + GIVE_UP_AFTER {
                break false;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        };
        let mut sent = sent.lock().await;
        if confirmed {
            sent.requests.accepted += 1;
            sent.accepted_tags.push(tag);
        } else {
            sent.requests.unanswered += 1;
        }
        n += 1;
    }
    if let Some((connection, _)) = channel {
        let _ = connection.close(200, "done".into()).await;
    }
    Ok(())
}

async fn connect(url: &str) -> anyhow::Result<(Connection, lapin::Channel)> {
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok((connection, channel))
}

/// Publishes one persistent request and waits (at most 10 s) for the broker's positive
/// confirmation.
async fn publish(channel: &lapin::Channel, message_id: &str, body: &[u8]) -> anyhow::Result<()> {
    let confirm = channel
        .basic_publish(
            "".into(),
            "wallet.transaction-requests".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body,
            BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_message_id(message_id.into()),
        )
        .await?;
    match tokio::time::timeout(Duration::from_secs(10), confirm).await?? {
        lapin::Confirmation::Ack(None) => Ok(()),
        other => anyhow::bail!("not confirmed: {other:?}"),
    }
}
