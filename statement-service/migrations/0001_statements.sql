-- One line per wallet transaction, from `transaction.created` events. `balance_after` comes
-- from the event, so a line is right whatever order events arrive in.
create table statement_lines (
    transaction_id  uuid primary key,
    user_id         uuid not null,
    type            text not null,
    amount          bigint not null,
    currency        char(3) not null,
    balance_after   bigint not null,
    description     text,
    occurred_at     timestamptz not null
);
create index statement_lines_by_user_and_time on statement_lines (user_id, occurred_at, transaction_id);

-- Statements over long periods, generated in the background from the jobs queue.
create table statement_jobs (
    id              uuid primary key,
    user_id         uuid not null,
    period_from     date not null,
    period_to       date not null check (period_to >= period_from),
    status          text not null default 'pending' check (status in ('pending', 'running', 'done', 'failed')),
    attempts        int not null default 0,
    line_count      bigint,
    failure_reason  text,
    created_at      timestamptz not null default now(),
    finished_at     timestamptz
);
create index statement_jobs_by_user on statement_jobs (user_id, created_at desc);

-- The CSV of a finished job, in chunks of a few thousand rows, so that neither generating
-- nor downloading it needs the whole file in memory.
create table statement_files (
    job_id  uuid not null references statement_jobs (id),
    seq     int not null,
    data    bytea not null,
    primary key (job_id, seq)
);

-- Message ids already applied: each event and job message takes effect once.
create table inbox (
    message_id    text primary key,
    queue         text not null,
    processed_at  timestamptz not null default now()
);

-- Events and job messages to publish (see platform::outbox).
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
