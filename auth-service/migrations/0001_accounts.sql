-- Accounts. Emails are stored lowercased, so uniqueness is case-insensitive.
create table users (
    id            uuid primary key,
    email         text not null unique check (email = lower(email)),
    password_hash text not null,
    roles         text[] not null check (cardinality(roles) > 0),
    created_at    timestamptz not null default now()
);

-- Ed25519 keys this service signs access tokens with. Only the public half leaves the service.
create table signing_keys (
    kid         text primary key,
    seed        bytea not null check (length(seed) = 32),
    public_key  bytea not null check (length(public_key) = 32),
    created_at  timestamptz not null default now()
);

-- Signed-out tokens, refused until they expire. Gateways follow new rows by `seq`.
create table revoked_tokens (
    seq         bigint generated always as identity primary key,
    jti         uuid not null unique,
    expires_at  timestamptz not null,
    revoked_at  timestamptz not null default now()
);
create index revoked_tokens_expires_at on revoked_tokens (expires_at);
