//! The wallet's `Idempotency-Key`s (see [`platform::idempotency`]): the outcome of a key's
//! first request is the transaction it created, or the [`Refusal`](crate::error::Refusal)
//! it got.

use std::sync::LazyLock;

use platform::idempotency::Keys;

pub static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys::new("idempotency_keys", "transaction_id"));
