-- The catalogue: products sellers put up for sale at prices the server keeps, and the stock
-- orders reserve. It lives beside the orders so that an order and its reservation commit in
-- one transaction.
--
-- `stock` is what is left to sell and `reserved` the part of it held by orders awaiting
-- payment; a payment moves units from `stock` to `sold`. So `stock - reserved` (available)
-- never goes negative, and `stock + sold` changes only when the seller edits the stock.

create table products (
    id           uuid primary key,
    seller_id    uuid not null,
    sku          text not null,
    name         text not null,
    description  text not null default '',
    price        bigint not null check (price > 0 and price <= 1000000000),
    currency     text not null check (currency = 'EUR'),
    stock        bigint not null check (stock >= reserved and stock <= 1000000),
    reserved     bigint not null default 0 check (reserved >= 0),
    sold         bigint not null default 0 check (sold >= 0),
    -- Counts the seller's edits (the ETag); reservations and sales leave it alone, so that a
    -- seller's edit is not refused because someone bought meanwhile.
    version      bigint not null default 1 check (version > 0),
    status       text not null check (status in ('active', 'withdrawn')),
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now()
);
create index products_newest on products (status, created_at desc, id desc);
create index products_by_seller on products (seller_id, created_at desc, id desc);

-- An order's items copy the product's price, name, sku and seller; `stock_state` says where
-- the units are: held for the unpaid order, sold, or given back. Items of orders placed before
-- the catalogue have no product and no state.
alter table order_items
    add column product_id uuid references products (id),
    add column seller_id uuid,
    add column stock_state text check (stock_state in ('reserved', 'sold', 'returned')),
    add constraint order_items_product_complete
        check ((product_id is null) = (seller_id is null)
           and (product_id is null) = (stock_state is null)),
    add constraint order_items_product_once unique (order_id, product_id);
create index order_items_by_seller on order_items (seller_id, order_id) where seller_id is not null;

-- `Idempotency-Key` of `POST /orders`, per user: the outcome of the first request with the
-- key, the order it placed or the rule it broke (`error_reason`, the problem type).
create table order_idempotency_keys (
    user_id        uuid not null,
    key            text not null,
    fingerprint    text not null,
    order_id       uuid references orders (id),
    error_reason   text,
    error_message  text,
    created_at     timestamptz not null default now(),
    primary key (user_id, key),
    check (order_id is null or error_reason is null)
);
