//! `Idempotency-Key` on `POST /orders`, with the wallet's semantics (see
//! [`platform::idempotency`]): the outcome of a key's first request is the order it placed,
//! or the rule it broke (out of stock, a withdrawn product, ...) as its problem type.

use std::sync::LazyLock;

use platform::idempotency::Keys;

pub static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys::new("order_idempotency_keys", "order_id"));
