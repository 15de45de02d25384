-- Orders, their items and status history, the vouchers large orders earn, and the inbox and
-- outbox of the service's messages. The rules the database can hold are here, so that a bug
-- in the code cannot break them.

create table orders (
    id                      uuid primary key,
    user_id                 uuid not null,
    status                  text not null check (status in (
        'pending_payment', 'paid', 'payment_failed', 'cancelled', 'expired', 'sent', 'delivered')),
    currency                text not null check (currency = 'EUR'),
    subtotal                bigint not null check (subtotal > 0 and subtotal <= 1000000000),
    discount                bigint not null default 0 check (discount >= 0 and discount <= subtotal),
    total                   bigint not null check (total = subtotal - discount),
    voucher_code            text,
    -- Each payment request is one attempt; the wallet applies an attempt at most once.
    payment_attempt         integer not null default 1 check (payment_attempt > 0),
    payment_transaction_id  uuid unique,
    refund_transaction_id   uuid unique,
    -- An order still unpaid at this time expires (the sweeper reads it, so expiry survives a
    -- restart).
    expires_at              timestamptz not null,
    created_at              timestamptz not null default now(),
    updated_at              timestamptz not null default now()
);
create index orders_by_user on orders (user_id, created_at desc, id desc);
create index orders_awaiting_payment on orders (expires_at)
    where status in ('pending_payment', 'payment_failed');

create table order_items (
    order_id    uuid not null references orders (id),
    position    integer not null,
    sku         text not null,
    name        text not null,
    unit_price  bigint not null check (unit_price > 0),
    quantity    bigint not null check (quantity > 0),
    primary key (order_id, position)
);

create table status_history (
    id        bigint generated always as identity primary key,
    order_id  uuid not null references orders (id),
    status    text not null,
    at        timestamptz not null default clock_timestamp()
);
create index status_history_by_order on status_history (order_id, id);

create table vouchers (
    code               text primary key,
    user_id            uuid not null,
    amount             bigint not null check (amount > 0),
    currency           text not null,
    -- The order that earned it: one voucher per order, however often `order.sent` arrives.
    order_id           uuid not null unique references orders (id),
    issued_at          timestamptz not null default now(),
    -- The order it was spent on: at most one at a time.
    redeemed_order_id  uuid unique references orders (id),
    redeemed_at        timestamptz,
    check ((redeemed_at is null) = (redeemed_order_id is null))
);
create index vouchers_by_user on vouchers (user_id, issued_at desc, order_id desc);

-- Message ids of events already applied: each takes effect once.
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
