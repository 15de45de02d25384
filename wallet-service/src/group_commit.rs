//! Group commit for API transactions: requests that arrive while a batch is being committed
//! are applied together in the next database transaction, with one commit (one WAL flush),
//! one outbox wake-up and an answer each.
//!
//! Each request goes to a lane, a task with a queue, chosen by its wallet: one wallet's
//! requests always share a lane, so within this process two batches never wait on each
//! other's wallet rows. A lane takes whatever has queued (at most `max_size`, after waiting
//! at most `max_wait` for more), applies it in one transaction and answers after the commit.
//! A lone request finds its lane idle and goes at once, by the one-request path of
//! [`create_transaction`], exactly as without batches.
//!
//! Inside a batch, the plain requests (no idempotency key, no parent), each the only one of
//! its wallet in the batch, are applied in one statement ([`ledger::apply_many`]): under load
//! most requests are such, and a batch then costs one round trip and one statement instead of
//! one each. Every other request is applied as it would be alone ([`create_in`]): a refusal
//! (too little money, a reused key, an undo rule) writes nothing but its key's outcome and
//! leaves the transaction usable for the next one; the one refusal PostgreSQL raises as an
//! error (an undo of a parent undone meanwhile) runs under a savepoint (`ledger::try_apply`).
//! Requests later in a batch see the effects of earlier ones, as if they had come one after
//! the other. An internal error (a deadlock with another instance's batch, a lost
//! connection) rolls the batch back, and its requests are then applied one by one, each in
//! its own transaction, so that it answers only the request it belongs to.

use std::collections::HashMap;
use std::time::Duration;

use platform::config::{ConfigError, count_or, parse_or};
use platform::outbox::Outbox;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;
use uuid::Uuid;

use crate::create::{check_key, create_in, create_transaction};
use crate::error::LedgerError;
use crate::ledger;
use crate::transaction::{NewTransaction, Transaction};

/// How batches are bounded.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The most requests in one database transaction.
    pub max_size: usize,
    /// How long a lane waits for more requests before it commits what it has; zero commits
    /// at once whatever queued while the last batch ran.
    pub max_wait: Duration,
    /// How many batches of API requests may be in flight at once (each holds a database
    /// connection).
    pub lanes: usize,
    /// The same for each queue of transaction requests from the broker.
    pub request_lanes: usize,
}

impl Default for Settings {
    /// Chosen by measurement on 2 cores (docs/benchmarks.md): one API lane gathers whatever
    /// came while it committed into one batch, where four split it into four smaller ones
    /// and four commits, which cost more CPU than the parallel commits save. Broker requests
    /// do better with four: each lane's batch waits for its commit before its messages are
    /// acknowledged and the broker sends more.
    fn default() -> Self {
        Self {
            max_size: 64,
            max_wait: Duration::ZERO,
            lanes: 1,
            request_lanes: 4,
        }
    }
}

impl Settings {
    /// Reads `WALLET_BATCH_MAX_SIZE`, `WALLET_BATCH_MAX_WAIT_MICROS`, `WALLET_BATCH_LANES`
    /// and `WALLET_REQUEST_LANES`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let default = Self::default();
        let count = |variable, default: usize| -> Result<usize, ConfigError> {
            let count = count_or(variable, u32::try_from(default).unwrap_or(u32::MAX))?;
            usize::try_from(count).map_err(|error| ConfigError::new(variable, error))
        };
        let wait = u64::try_from(default.max_wait.as_micros()).unwrap_or(u64::MAX);
        Ok(Self {
            max_size: count("WALLET_BATCH_MAX_SIZE", default.max_size)?,
            max_wait: Duration::from_micros(parse_or("WALLET_BATCH_MAX_WAIT_MICROS", wait)?),
            lanes: count("WALLET_BATCH_LANES", default.lanes)?,
            request_lanes: count("WALLET_REQUEST_LANES", default.request_lanes)?,
        })
    }
}

/// One API request to create a transaction, and the span it was made in (its ledger work is
/// traced there, whichever batch it joins).
#[derive(Debug)]
pub struct Create {
    pub new: NewTransaction,
    pub key: Option<String>,
    pub span: tracing::Span,
}

impl Create {
    pub fn new(new: NewTransaction, key: Option<String>) -> Self {
        Self {
            new,
            key,
            span: tracing::Span::current(),
        }
    }
}

type Outcome = Result<Transaction, LedgerError>;

struct Job {
    create: Create,
    answer: oneshot::Sender<Outcome>,
}

/// The handle of the lanes: cheap to clone. The lanes stop when every handle is dropped,
/// once they have answered what they hold.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    lanes: Vec<mpsc::Sender<Job>>,
}

impl GroupCommit {
    /// Starts `settings.lanes` lanes on `outbox`'s database.
    pub fn start(outbox: &Outbox, settings: Settings) -> Self {
        let lanes = (0..settings.lanes.max(1))
            .map(|_| {
                let (sender, receiver) = mpsc::channel(settings.max_size.max(1) * 4);
                tokio::spawn(run_lane(outbox.clone(), settings, receiver));
                sender
            })
            .collect();
        Self { lanes }
    }

    /// Creates `new` in the next batch of its wallet's lane, as
    /// [`create_transaction`] would alone.
    pub async fn create_transaction(&self, new: NewTransaction, key: Option<String>) -> Outcome {
        check_key(key.as_deref())?;
        let lane = lane_of(&new, self.lanes.len());
        let (answer, answered) = oneshot::channel();
        let job = Job {
            create: Create::new(new, key),
            answer,
        };
        let stopped = || LedgerError::Internal(anyhow::anyhow!("the group commit has stopped"));
        self.lanes[lane].send(job).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

fn lane_of(new: &NewTransaction, lanes: usize) -> usize {
    // The low bits of a UUID (v4 or v7) are random.
    let lanes = u128::try_from(lanes).unwrap_or(1);
    usize::try_from(new.user_id.as_u128() % lanes).unwrap_or(0)
}

async fn run_lane(outbox: Outbox, settings: Settings, mut queue: mpsc::Receiver<Job>) {
    let max_size = settings.max_size.max(1);
    let mut batch = Vec::with_capacity(max_size);
    // `recv_many` waits for one request, then takes whatever else has queued.
    while queue.recv_many(&mut batch, max_size).await > 0 {
        if !settings.max_wait.is_zero() {
            let deadline = tokio::time::Instant::now() + settings.max_wait;
            while batch.len() < max_size {
                let more = max_size - batch.len();
                match tokio::time::timeout_at(deadline, queue.recv_many(&mut batch, more)).await {
                    Ok(received) if received > 0 => {}
                    _ => break,
                }
            }
        }
        // In wallet order (keeping each wallet's requests in theirs): batches of several
        // instances then lock wallet rows in one order, and rarely deadlock.
        batch.sort_by_key(|job: &Job| job.create.new.user_id);
        let (creates, answers): (Vec<Create>, Vec<_>) =
            batch.drain(..).map(|job| (job.create, job.answer)).unzip();
        let outcomes = apply_together(&outbox, &creates).await;
        for (answer, outcome) in answers.into_iter().zip(outcomes) {
            // The caller may have gone (a cancelled call): its outcome stands all the same.
            let _ = answer.send(outcome);
        }
    }
}

/// Applies `creates` in this order in one database transaction and returns each one's
/// outcome, once committed; one alone takes the one-request path. If the batch fails, each
/// is applied alone instead (see the module's comment).
pub async fn apply_together(outbox: &Outbox, creates: &[Create]) -> Vec<Outcome> {
    if creates.len() > 1 {
        match apply_in_one_transaction(outbox, creates).await {
            Ok(outcomes) => return outcomes,
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                size = creates.len(),
                "a batch of transactions failed; applying them one by one"
            ),
        }
    }
    let mut outcomes = Vec::with_capacity(creates.len());
    for create in creates {
        let alone = create_transaction(outbox, &create.new, create.key.as_deref());
        outcomes.push(alone.instrument(create.span.clone()).await);
    }
    outcomes
}

/// `Err` when a request met an internal error, and nothing was committed.
async fn apply_in_one_transaction(
    outbox: &Outbox,
    creates: &[Create],
) -> Result<Vec<Outcome>, LedgerError> {
    let mut tx = outbox.begin().await?;
    let mut outcomes: Vec<Option<Outcome>> = creates.iter().map(|_| None).collect();
    // The plain ones first, in one statement; then the others, each as it would be alone.
    // Their order does not matter: they are of other wallets.
    let plain = plain_and_alone_in_their_wallet(creates);
    if plain.len() > 1 {
        let news: Vec<_> = plain
            .iter()
            .map(|&at| (&creates[at].new, &creates[at].span))
            .collect();
        let applied = ledger::apply_many(&mut tx, &news).await?;
        for (&at, outcome) in plain.iter().zip(applied) {
            outcomes[at] = Some(outcome.map(|applied| applied.transaction));
        }
    }
    for (create, outcome) in creates.iter().zip(&mut outcomes) {
        if outcome.is_some() {
            continue;
        }
        match create_in(&mut tx, &create.new, create.key.as_deref())
            .instrument(create.span.clone())
            .await
        {
            Err(error) if error.refusal().is_none() => return Err(error),
            done => *outcome = Some(done),
        }
    }
    if let Err(error) = tx.commit().await {
        // Whether the commit happened is unknown: applying the requests again could apply
        // them twice, so each gets the error, as a lone request would.
        let error = format!("{error:#}");
        tracing::error!(error, size = creates.len(), "a batch's commit failed");
        return Ok(creates
            .iter()
            .map(|_| {
                Err(LedgerError::Internal(anyhow::anyhow!(
                    "commit failed: {error}"
                )))
            })
            .collect());
    }
    Ok(outcomes.into_iter().flatten().collect())
}

/// Where in `creates` the requests are that [`ledger::apply_many`] can apply together: those
/// with nothing to check but the balance (no idempotency key, no parent), each the only
/// request of its wallet in the batch (a wallet's requests go one after the other).
fn plain_and_alone_in_their_wallet(creates: &[Create]) -> Vec<usize> {
    let mut per_wallet = HashMap::<Uuid, usize>::with_capacity(creates.len());
    for create in creates {
        *per_wallet.entry(create.new.user_id).or_default() += 1;
    }
    (0..creates.len())
        .filter(|&at| {
            let Create { new, key, .. } = &creates[at];
            key.is_none() && new.parent_transaction_id.is_none() && per_wallet[&new.user_id] == 1
        })
        .collect()
}
