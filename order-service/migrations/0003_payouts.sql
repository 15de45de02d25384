-- What each seller is paid for a delivered order: their share of its total, written in the
-- transaction that delivers it and carried by `order.delivered` to the wallet. One row per
-- (order, seller), however often the order is handled.
create table order_payouts (
    order_id    uuid not null references orders (id),
    seller_id   uuid not null,
    amount      bigint not null check (amount > 0),
    created_at  timestamptz not null default now(),
    primary key (order_id, seller_id)
);
