-- Refresh tokens: one row per token ever issued. Only a SHA-256 of the token is stored, so a
-- copy of this table signs nobody in. Tokens issued one from another share a `family` (one
-- sign-in); presenting a used token again revokes the whole family (and the access tokens
-- issued with it), because only a thief or a replay can hold a used one.
create table refresh_tokens (
    token_hash       bytea primary key check (length(token_hash) = 32),
    family           uuid not null,
    user_id          uuid not null references users (id) on delete cascade,
    -- The access token issued together with this refresh token: sign-out finds the family
    -- through it, and a revoked family revokes it.
    access_jti       uuid not null unique,
    access_expires_at timestamptz not null,
    expires_at       timestamptz not null,
    used_at          timestamptz,
    revoked_at       timestamptz,
    created_at       timestamptz not null default now()
);
create index refresh_tokens_family on refresh_tokens (family);
create index refresh_tokens_expires_at on refresh_tokens (expires_at);
