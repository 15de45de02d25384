-- Admins list accounts newest first, a page at a time.
create index users_newest on users (created_at desc, id desc);
