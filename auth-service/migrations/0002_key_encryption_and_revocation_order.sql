-- Signing keys may be stored encrypted (AUTH_KEY_ENCRYPTION_KEY): `sealed_seed` holds the
-- XChaCha20-Poly1305 nonce and ciphertext of the seed, authenticated with the key's `kid`.
-- Rows written before stay readable in `seed` and are sealed at the next start with a key.
alter table signing_keys alter column seed drop not null;
alter table signing_keys add column sealed_seed bytea;
alter table signing_keys add constraint signing_keys_one_seed
    check ((seed is null) <> (sealed_seed is null));

-- The transaction that wrote each revocation, so that gateways follow revocations in commit
-- order (see revocations.rs): a `seq` is drawn at insert, so a lower one can commit later.
alter table revoked_tokens add column txid xid8 not null default pg_current_xact_id();
create index revoked_tokens_txid_seq on revoked_tokens (txid, seq);
