//! The RabbitMQ contract, defined once: every exchange, queue and routing key the platform
//! uses, and every payload it publishes or accepts. The producer and the consumer of a message
//! use the same type from here, and `docs/asyncapi.yaml` is checked against this module by a
//! test (`proto/tests/asyncapi.rs`).
//!
//! - [`wallet`]: transaction outcomes, the request queues other systems publish to, and the
//!   wallet's queue of order payments.
//! - [`order`]: order events, and order-service's queues.
//! - [`statement`]: statement events, and statement-service's queues.
//!
//! Events are CloudEvents 1.0 in structured JSON mode (see `platform::cloud_event`); the
//! payloads here are their `data`.

pub mod order;
pub mod statement;
pub mod wallet;

/// A queue and what it is bound to: a topic exchange and the routing keys it takes from it,
/// or nothing (it is published to through the default exchange); who may publish to it; and
/// how it is declared.
#[derive(Debug, Clone, Copy)]
pub struct Queue {
    pub name: &'static str,
    pub exchange: Option<&'static str>,
    pub routing_keys: &'static [&'static str],
    pub publishers: Publishers,
    pub kind: QueueKind,
}

/// Whose messages a queue's consumer accepts. Any broker user that may publish can reach every
/// queue through the default exchange, so the consumer decides by the AMQP `user_id`
/// property, which RabbitMQ refuses unless it names the publishing connection's own user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publishers {
    /// Only the platform's services: a message must carry `user_id` = the platform's broker
    /// user (the user of `AMQP_URL`), or it is dead-lettered as `untrusted-publisher`.
    Platform,
    /// Other systems too (the two request queues): `user_id` is not checked.
    Anyone,
}

/// How a queue is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    /// A quorum queue that dead-letters to `<name>.dlq` beyond the delivery limit.
    Quorum,
    /// A durable classic queue with no arguments at all: its publishers declare it too
    /// (amqplib's `assertQueue` with its defaults), and RabbitMQ refuses a declaration whose
    /// arguments differ from the queue's. Its consumer still dead-letters to `<name>.dlq`.
    PlainDurable,
}

/// The reason a message from a publisher other than the platform's broker user is
/// dead-lettered with, on a [`Publishers::Platform`] queue.
pub const UNTRUSTED_PUBLISHER: &str = "untrusted-publisher";

/// Queue names that belong to the platform, now or later: every queue of [`QUEUES`] and its
/// dead-letter queue, and every name under the services' prefixes. A request's `reply_to`
/// may not name one, or a publisher could make the wallet publish into the platform's queues.
pub fn is_platform_queue(name: &str) -> bool {
    const PREFIXES: [&str; 3] = ["wallet.", "order.", "statement."];
    PREFIXES.iter().any(|prefix| name.starts_with(prefix))
        || QUEUES
            .iter()
            .any(|queue| name == queue.name || name == dead_letter_queue(queue.name))
}

/// Every exchange the platform declares.
pub const EXCHANGES: [&str; 4] = [
    wallet::EVENTS,
    wallet::ORDER_OUTCOMES,
    order::EVENTS,
    statement::EVENTS,
];

/// Every event the platform publishes, as (exchange, routing key). The outcomes of order
/// payments are published to `wallet.order-outcomes`, which forwards them into
/// `wallet.events`.
pub const PUBLISHED: [(&str, &str); 14] = [
    (wallet::EVENTS, wallet::TRANSACTION_CREATED),
    (wallet::EVENTS, wallet::TRANSACTION_REJECTED),
    (wallet::ORDER_OUTCOMES, wallet::TRANSACTION_CREATED),
    (wallet::ORDER_OUTCOMES, wallet::TRANSACTION_REJECTED),
    (order::EVENTS, order::ORDER_CREATED),
    (order::EVENTS, order::PAYMENT_REQUESTED),
    (order::EVENTS, order::ORDER_PAID),
    (order::EVENTS, order::ORDER_PAYMENT_FAILED),
    (order::EVENTS, order::ORDER_CANCELLED),
    (order::EVENTS, order::ORDER_EXPIRED),
    (order::EVENTS, order::ORDER_SENT),
    (order::EVENTS, order::ORDER_DELIVERED),
    (order::EVENTS, order::VOUCHER_ISSUED),
    (statement::EVENTS, statement::STATEMENT_GENERATED),
];

/// Every queue a platform service consumes (each also has a dead-letter queue, `<name>.dlq`).
pub const QUEUES: [Queue; 8] = [
    wallet::TRANSACTION_REQUESTS,
    wallet::LEGACY_REQUESTS,
    wallet::ORDER_PAYMENTS,
    statement::TRANSACTIONS,
    statement::JOBS,
    statement::EMAILS,
    order::PAYMENT_OUTCOMES,
    order::VOUCHER_ISSUING,
];

/// The dead-letter queue of `queue`.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}.dlq")
}

/// Times in events: RFC 3339, UTC, with microseconds (`2026-11-21T18:40:01.123456Z`).
pub mod time {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::Serializer;

    pub fn format(at: DateTime<Utc>) -> String {
        at.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(*at))
    }

    /// Any RFC 3339 time.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        serde::Deserialize::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platforms_queues_and_their_prefixes_are_platform_queues() {
        for queue in QUEUES {
            assert!(is_platform_queue(queue.name), "{}", queue.name);
            assert!(is_platform_queue(&dead_letter_queue(queue.name)));
        }
        assert!(is_platform_queue("wallet.anything-later"));
        for name in [
            "amq.gen-JzTY20BRgKO-HjmUJj0wLg",
            "my-outcomes",
            "publisher.replies",
            "wallet_queue2",
        ] {
            assert!(!is_platform_queue(name), "{name}");
        }
    }

    #[test]
    fn only_the_request_queues_are_public() {
        let public: Vec<&str> = QUEUES
            .iter()
            .filter(|queue| queue.publishers == Publishers::Anyone)
            .map(|queue| queue.name)
            .collect();
        assert_eq!(public, ["wallet.transaction-requests", "wallet_queue"]);
    }
}
