-- One wallet per user, created on first use. The balance is kept here so reading it is one
-- row, and every change goes through one conditional UPDATE; it can never go below zero.
create table wallets (
    user_id     uuid primary key,
    balance     bigint not null default 0 check (balance >= 0),
    currency    char(3) not null default 'EUR',
    updated_at  timestamptz not null default now()
);

-- The ledger: append-only (see the trigger below). `balance_after` is the wallet's balance
-- right after this transaction, so any prefix of the ledger can be checked.
create table transactions (
    id                     uuid primary key,
    user_id                uuid not null references wallets (user_id),
    type                   text not null check (type in ('deposit', 'withdraw', 'purchase', 'cancellation', 'reversal')),
    amount                 bigint not null check (amount > 0 and amount <= 1000000000),
    currency               char(3) not null,
    balance_after          bigint not null check (balance_after >= 0),
    parent_transaction_id  uuid references transactions (id),
    description            text,
    source                 text not null check (source in ('api', 'event', 'order')),
    reference              text,
    created_at             timestamptz not null default clock_timestamp(),
    check ((type in ('cancellation', 'reversal')) = (parent_transaction_id is not null))
);
create index transactions_user_newest on transactions (user_id, created_at desc, id desc);
-- At most one cancellation or reversal per parent, whatever the concurrency.
create unique index transactions_one_undo_per_parent on transactions (parent_transaction_id)
    where parent_transaction_id is not null;

create function refuse_ledger_change() returns trigger language plpgsql as $$
begin
    raise exception 'the ledger is append-only: % on transactions is not allowed', tg_op;
end;
$$;
create trigger transactions_append_only before update or delete on transactions
    for each row execute function refuse_ledger_change();

-- `Idempotency-Key`s (per user) and what their first request produced: the transaction, or
-- the error it got. `fingerprint` is the normalised request, to refuse a reused key.
create table idempotency_keys (
    user_id         uuid not null,
    key             text not null,
    fingerprint     text not null,
    transaction_id  uuid references transactions (id),
    error_code      int,
    error_reason    text,
    error_message   text,
    created_at      timestamptz not null default now(),
    primary key (user_id, key)
);
create index idempotency_keys_created_at on idempotency_keys (created_at);

-- Message ids of transaction requests already applied (or rejected): each takes effect once.
create table inbox (
    message_id    text primary key,
    queue         text not null,
    processed_at  timestamptz not null default now()
);

-- Events to publish, written in the same database transaction as the change they describe.
create table outbox (
    id              bigint generated always as identity primary key,
    message_id      uuid not null unique,
    exchange        text not null,
    routing_key     text not null,
    correlation_id  text,
    payload         jsonb not null,
    created_at      timestamptz not null default now(),
    published_at    timestamptz
);
create index outbox_unpublished on outbox (id) where published_at is null;
