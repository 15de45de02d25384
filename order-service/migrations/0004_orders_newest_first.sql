-- Admins list every user's orders newest first, a page at a time (a user's own list has
-- `orders_by_user`).
create index orders_newest on orders (created_at desc, id desc);
