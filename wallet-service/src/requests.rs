//! Transaction requests published straight to RabbitMQ by other systems.
//!
//! Two queues: `wallet.transaction-requests` (the platform's format) and `wallet_queue`
//! (the envelope of the Node.js wallet this service replaces). The message id is the
//! idempotency key: it is recorded in the inbox in the same database transaction as the
//! effect, so a redelivered or republished message takes effect once. The outcome is a
//! `transaction.created` or `transaction.rejected` event, also sent to `reply_to` if given.
//! A message that cannot be understood is dead-lettered with the reason.

use std::collections::HashSet;

use futures_util::future::join_all;
use lapin::message::Delivery;
use platform::consumer::BatchHandler;
use platform::outbox::{Outbox, Transaction};
use proto::messaging::is_platform_queue;
use proto::messaging::order::REFERENCE_PREFIX;
use proto::messaging::wallet::{
    LEGACY_PATTERN, LegacyEnvelope, TransactionRejected, TransactionRequest,
};
use proto::{TransactionSource, TransactionType};
use uuid::Uuid;

use crate::error::LedgerError;
use crate::events;
use crate::ledger::{self, Recorded};
use crate::money::minor_units_from_decimal;
use crate::transaction::{NewTransaction, RawRequest};

/// Which format a queue carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Platform,
    Legacy,
}

pub struct RequestHandler {
    pub outbox: Outbox,
    pub queue: &'static str,
    pub format: Format,
}

impl BatchHandler for RequestHandler {
    type Message = Request;

    fn read(&self, delivery: &Delivery) -> Result<Request, String> {
        parse(self.format, delivery)
    }

    /// One wallet's requests are applied in the order they came.
    fn order_key(&self, request: &Request) -> u128 {
        request.user_id.as_u128()
    }

    async fn apply(&self, requests: &[Request]) -> anyhow::Result<()> {
        apply_all(&self.outbox, self.queue, requests).await
    }
}

/// Applies `requests` (a batch from `queue`) in one database transaction, each once, ordered
/// by wallet and, within a wallet, in the order they came: one commit for the batch, which
/// is acknowledged after it. Should the batch fail (a deadlock with another instance's batch,
/// a request meeting an internal error), its requests are applied side by side instead, each
/// in its own database transaction, as [`apply`] does: every one runs to its end, so a retry
/// of the batch (after one failed) finds the others in the inbox and changes nothing for
/// them.
pub async fn apply_all(
    outbox: &Outbox,
    queue: &str,
    requests: impl IntoIterator<Item = &Request>,
) -> anyhow::Result<()> {
    let mut requests: Vec<&Request> = requests.into_iter().collect();
    if requests.len() > 1 {
        // Stable: one wallet's requests keep their order. In one order of wallets, batches of
        // several instances rarely deadlock.
        requests.sort_by_key(|request| request.user_id);
        match apply_together(outbox, queue, &requests).await {
            Ok(()) => return Ok(()),
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                size = requests.len(),
                queue,
                "a batch of transaction requests failed; applying them one by one"
            ),
        }
    }
    join_all(
        requests
            .into_iter()
            .map(|request| apply(outbox, queue, request)),
    )
    .await
    .into_iter()
    .collect()
}

/// The batch of [`apply_all`], in one database transaction: a message id recorded before
/// (or earlier in the batch) is skipped; a refused request leaves the transaction usable
/// (see [`ledger::try_apply`]). `Err`, and nothing committed, on any other error.
///
/// Most requests (valid, no parent, no reply) need nothing but their message id recorded
/// and their wallet changed: each wallet's first such requests go in rounds, the n-th of
/// every wallet in round n, each round one statement for all its wallets
/// ([`ledger::record_and_apply_many`]). The others follow in their order, each recording
/// its message id, then applying or rejecting the request: two round trips or more.
async fn apply_together(outbox: &Outbox, queue: &str, requests: &[&Request]) -> anyhow::Result<()> {
    let mut tx = outbox.begin().await?;
    let parsed: Vec<Result<NewTransaction, LedgerError>> = requests
        .iter()
        .map(|request| NewTransaction::parse(request.user_id, &request.raw, request.source))
        .collect();
    let (rounds, rest) = rounds(requests, &parsed);
    for round in rounds {
        let (round, news): (Vec<usize>, Vec<(&NewTransaction, &str)>) = round
            .into_iter()
            .filter_map(|at| {
                let new = parsed[at].as_ref().ok()?;
                Some((at, (new, requests[at].message_id.as_str())))
            })
            .unzip();
        let outcomes = ledger::record_and_apply_many(&mut tx, &news, queue).await?;
        for (at, outcome) in round.into_iter().zip(outcomes) {
            let request = requests[at];
            match outcome {
                Ok(Recorded::Applied(_) | Recorded::Duplicate) => {}
                // Recorded: what remains is the rejection, as the longer way records it.
                Ok(Recorded::TooLittleMoney) => {
                    let refused = Err(LedgerError::InsufficientFunds);
                    record_outcome(&mut tx, request, refused).await?;
                }
                // A rule broken before anything was written: the longer way rejects it.
                Err(error) if error.refusal().is_some() => {
                    if platform::inbox::record(&mut tx, &request.message_id, queue).await? {
                        record_outcome(&mut tx, request, Err(error)).await?;
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
    // The rest take their parsed request: each is in no round.
    let mut parsed: Vec<_> = parsed.into_iter().map(Some).collect();
    for at in rest {
        let request = requests[at];
        let Some(parsed) = parsed[at].take() else {
            continue;
        };
        if !platform::inbox::record(&mut tx, &request.message_id, queue).await? {
            continue;
        }
        record_outcome(&mut tx, request, parsed).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Splits `requests` (sorted by wallet, each wallet's in the order they came) into rounds
/// for one statement each, and the rest, in order. A wallet's requests join rounds, the
/// n-th in round n, while they are such that one statement applies them and carry a
/// message id not seen earlier in the batch; from its first other request on, a wallet's
/// requests are the rest. So one wallet's requests keep their order, a round holds one
/// request per wallet and message id, and of two requests with one message id the earlier
/// is applied, as one after the other would.
fn rounds(
    requests: &[&Request],
    parsed: &[Result<NewTransaction, LedgerError>],
) -> (Vec<Vec<usize>>, Vec<usize>) {
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    let mut rest = Vec::new();
    let mut seen = HashSet::with_capacity(requests.len());
    // The wallet whose requests are being placed, and the round of its next one (`None`
    // once one of its requests went to the rest).
    let mut wallet = None;
    let mut next_round = Some(0);
    for (at, request) in requests.iter().enumerate() {
        if wallet != Some(request.user_id) {
            wallet = Some(request.user_id);
            next_round = Some(0);
        }
        let first_of_its_id = seen.insert(request.message_id.as_str());
        let plain = one_statement(request, &parsed[at]).is_some();
        match next_round {
            Some(round) if plain && first_of_its_id => {
                if rounds.len() == round {
                    rounds.push(Vec::new());
                }
                rounds[round].push(at);
                next_round = Some(round + 1);
            }
            _ => {
                next_round = None;
                rest.push(at);
            }
        }
    }
    (rounds, rest)
}

/// The request as one statement can apply it (valid, with no parent, and no reply to queue),
/// if it can.
fn one_statement<'a>(
    request: &Request,
    parsed: &'a Result<NewTransaction, LedgerError>,
) -> Option<&'a NewTransaction> {
    match parsed {
        Ok(new) if request.reply_to.is_none() && !new.kind.undoes_a_parent() => Some(new),
        _ => None,
    }
}

/// A request understood well enough to apply or reject.
#[derive(Debug, Clone)]
pub struct Request {
    pub message_id: String,
    pub user_id: Uuid,
    pub raw: RawRequest,
    pub reply_to: Option<String>,
    pub correlation_id: Option<String>,
    /// `event` for other systems' requests, `order` for order payments and refunds.
    pub source: TransactionSource,
}

/// Reads a delivery into a request; `Err(reason)` when it can never be processed.
pub fn parse(format: Format, delivery: &Delivery) -> Result<Request, String> {
    let properties = &delivery.properties;
    if let Some(content_type) = properties.content_type()
        && !content_type.as_str().starts_with("application/json")
    {
        return Err(format!(
            "content type must be application/json, not {content_type}"
        ));
    }
    let message_id = properties
        .message_id()
        .as_ref()
        .map(|id| id.as_str().to_owned());
    let (message_id, user_id, raw) = match format {
        Format::Platform => {
            let body: TransactionRequest = serde_json::from_slice(&delivery.data)
                .map_err(|error| format!("invalid JSON body: {error}"))?;
            let user_id = body.user_id.ok_or("user_id is missing")?;
            let kind = body
                .kind
                .parse()
                .map_err(|reason| format!("type {reason}"))?;
            let message_id = message_id.ok_or("the message_id property is missing")?;
            let raw = RawRequest {
                kind,
                amount: body.amount,
                currency: body.currency,
                parent_transaction_id: body.parent_transaction_id,
                description: body.description,
                reference: body.reference,
            };
            (message_id, user_id, raw)
        }
        Format::Legacy => parse_legacy(message_id, &delivery.data)?,
    };
    if message_id.is_empty() || message_id.len() > 255 {
        return Err("the message_id property must be 1 to 255 characters".into());
    }
    // Order payments are identified by these: another system may not use them, or it could
    // pay (or block the payment of) someone's order.
    if message_id.starts_with(REFERENCE_PREFIX)
        || raw
            .reference
            .as_deref()
            .is_some_and(|reference| reference.starts_with(REFERENCE_PREFIX))
    {
        return Err(format!(
            "message ids and references starting with {REFERENCE_PREFIX:?} are reserved for order payments"
        ));
    }
    let reply_to = properties
        .reply_to()
        .as_ref()
        .map(|queue| queue.as_str().to_owned())
        .filter(|queue| !queue.is_empty());
    // The reply is published by the wallet, as the platform: naming a platform queue would
    // have the wallet post a message there that its consumer trusts.
    if let Some(queue) = &reply_to
        && is_platform_queue(queue)
    {
        return Err(format!(
            "reply_to may not name a platform queue ({queue:?}); name a queue of your own"
        ));
    }
    Ok(Request {
        message_id,
        user_id,
        raw,
        reply_to,
        correlation_id: properties
            .correlation_id()
            .as_ref()
            .map(|id| id.as_str().to_owned()),
        source: TransactionSource::Event,
    })
}

/// `{"pattern":"transaction_emitted","data":{"userId","transaction":{"id","amount","operation"}}}`
/// with `operation` 0 deposit, 1 withdraw, 2 purchase, 3 reversal, 4 cancellation and `amount`
/// in major units; `transaction.id` is the parent of a reversal or cancellation.
fn parse_legacy(
    message_id: Option<String>,
    body: &[u8],
) -> Result<(String, Uuid, RawRequest), String> {
    let envelope: LegacyEnvelope =
        serde_json::from_slice(body).map_err(|error| format!("invalid JSON body: {error}"))?;
    if envelope.pattern != LEGACY_PATTERN {
        return Err(format!(
            "unknown pattern {:?} (expected {LEGACY_PATTERN:?})",
            envelope.pattern
        ));
    }
    let transaction = envelope.data.transaction;
    let kind = match transaction.operation {
        0 => TransactionType::Deposit,
        1 => TransactionType::Withdraw,
        2 => TransactionType::Purchase,
        3 => TransactionType::Reversal,
        4 => TransactionType::Cancellation,
        other => return Err(format!("unknown operation {other} (expected 0 to 4)")),
    };
    let legacy_id = transaction.id.map(|id| match id {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    });
    let mut raw = RawRequest::new(kind);
    if kind.undoes_a_parent() {
        // The parent's amount applies; the legacy amount is not needed.
        raw.parent_transaction_id = Some(
            legacy_id
                .clone()
                .ok_or("transaction.id (the parent) is missing")?,
        );
    } else {
        let amount = transaction.amount.ok_or("transaction.amount is missing")?;
        raw.amount = Some(minor_units_from_decimal(amount.get())?);
        raw.reference = legacy_id.as_ref().map(|id| format!("legacy:{id}"));
    }
    // Old publishers did not always set a message id; the legacy transaction id identifies
    // the request then.
    let message_id = message_id
        .or_else(|| legacy_id.map(|id| format!("legacy:{id}:{}", transaction.operation)))
        .ok_or("the message_id property is missing (and so is transaction.id)")?;
    Ok((message_id, envelope.data.user_id, raw))
}

/// Applies (or rejects) a request once: a message id seen before changes nothing.
pub async fn apply(outbox: &Outbox, queue: &str, request: &Request) -> anyhow::Result<()> {
    // Most requests are valid, have no parent and want no reply: one statement applies them
    // and records the message id. Anything else, or a request that statement leaves
    // unwritten (a duplicate, too little money), takes the transaction below.
    let parsed = NewTransaction::parse(request.user_id, &request.raw, request.source);
    if let Some(new) = one_statement(request, &parsed) {
        let mut conn = outbox.pool().acquire().await?;
        let applied = outbox
            .after(ledger::apply_once(
                &mut conn,
                new,
                &request.message_id,
                queue,
            ))
            .await?;
        if applied.is_some() {
            return Ok(());
        }
    }
    let applied = outbox
        .apply_once(&request.message_id, queue, async |tx| {
            record_outcome(tx, request, parsed).await
        })
        .await?;
    if applied.is_none() {
        tracing::debug!(
            message_id = request.message_id,
            "duplicate transaction request ignored"
        );
    }
    Ok(())
}

/// Applies `request` (`parsed`) in `tx`, or records its rejection, and queues its outcome
/// (and the reply, when asked for). `Err` on an internal error only.
async fn record_outcome(
    tx: &mut Transaction,
    request: &Request,
    parsed: Result<NewTransaction, LedgerError>,
) -> anyhow::Result<()> {
    let outcome = match parsed {
        Err(error) => Err(error),
        Ok(new) => match ledger::try_apply(tx, &new).await {
            Err(error) if error.refusal().is_none() => return Err(error.into()),
            outcome => outcome,
        },
    };
    // The outcome goes on `wallet.events` (ledger::apply queued transaction.created
    // already; see `events` for the outcomes of order payments) and, when asked for,
    // to `reply_to` as well.
    let event = match outcome {
        Ok(applied) => applied.event,
        Err(error) => {
            let rejection = events::transaction_rejected(
                &TransactionRejected {
                    request_id: request.message_id.clone(),
                    user_id: request.user_id,
                    kind: request.raw.kind,
                    amount: request.raw.amount,
                    currency: request.raw.currency.clone(),
                    reason: error
                        .refusal()
                        .map_or("internal", |refusal| refusal.as_str())
                        .to_owned(),
                    detail: error.detail(),
                    reference: request.raw.reference.clone(),
                },
                request.source,
            );
            tx.enqueue(&rejection).await?;
            rejection.payload
        }
    };
    if let Some(reply_to) = &request.reply_to {
        tx.enqueue(&events::reply(
            &event,
            reply_to,
            request.correlation_id.clone(),
        ))
        .await?;
    }
    Ok(())
}
