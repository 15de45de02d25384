//! `docs/asyncapi.yaml` describes exactly the RabbitMQ contract of `proto::messaging`: the
//! same exchanges, queues (each with its dead-letter queue), bindings and events, and each
//! event's `data` has the fields of its payload type. A queue, routing key or field added on
//! one side only fails here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use proto::messaging::{EXCHANGES, PUBLISHED, QUEUES, dead_letter_queue, order, statement, wallet};
use schemars::{JsonSchema, schema_for};
use serde_json::Value;

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/asyncapi.yaml");
    let text = std::fs::read_to_string(path).expect("docs/asyncapi.yaml");
    serde_norway::from_str(&text).expect("valid YAML")
}

/// `schema` with its `$ref`s followed and its `allOf` parts merged: the properties it has.
fn properties(document: &Value, schema: &Value) -> BTreeSet<String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let pointer = reference.strip_prefix('#').expect("a local $ref");
        return properties(document, document.pointer(pointer).expect(reference));
    }
    let mut names: BTreeSet<String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default();
    for part in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        names.extend(properties(document, part));
    }
    names
}

/// The schema of the property `name` of `schema` (following `$ref`s and `allOf`).
fn property<'a>(document: &'a Value, schema: &'a Value, name: &str) -> Option<&'a Value> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let pointer = reference.strip_prefix('#')?;
        return property(document, document.pointer(pointer)?, name);
    }
    let parts = schema.get("allOf").and_then(Value::as_array);
    // The last part that names it is the most specific (`allOf: [CloudEvent, {data: ...}]`).
    parts
        .into_iter()
        .flatten()
        .rev()
        .find_map(|part| property(document, part, name))
        .or_else(|| schema.get("properties")?.get(name))
}

fn fields_of<T: JsonSchema>() -> BTreeSet<String> {
    let schema = schema_for!(T);
    schema
        .as_value()
        .get("properties")
        .and_then(Value::as_object)
        .expect("a payload is an object")
        .keys()
        .cloned()
        .collect()
}

/// The payload type of each routing key the platform publishes.
fn contract_fields(routing_key: &str) -> BTreeSet<String> {
    match routing_key {
        wallet::TRANSACTION_CREATED => fields_of::<wallet::TransactionCreated>(),
        wallet::TRANSACTION_REJECTED => fields_of::<wallet::TransactionRejected>(),
        order::PAYMENT_REQUESTED => fields_of::<order::PaymentRequested>(),
        order::VOUCHER_ISSUED => fields_of::<order::VoucherIssued>(),
        order::ORDER_CREATED
        | order::ORDER_PAID
        | order::ORDER_PAYMENT_FAILED
        | order::ORDER_CANCELLED
        | order::ORDER_EXPIRED
        | order::ORDER_SENT
        | order::ORDER_DELIVERED => fields_of::<order::OrderChanged>(),
        statement::STATEMENT_GENERATED => fields_of::<statement::StatementGenerated>(),
        other => panic!("no payload type for {other:?}: name it in this test"),
    }
}

/// The channels of the document as (address, kind: `routingKey` or `queue`, message names).
fn channels(document: &Value) -> Vec<(String, String, BTreeSet<String>)> {
    let messages = &document["components"]["messages"];
    document["channels"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|channel| {
            let address = channel.get("address")?.as_str()?.to_owned();
            let kind = channel["bindings"]["amqp"]["is"].as_str()?.to_owned();
            let names = channel["messages"]
                .as_object()
                .unwrap()
                .values()
                .map(|message| {
                    let reference = message["$ref"].as_str().unwrap();
                    let key = reference.rsplit('/').next().unwrap();
                    messages[key]["name"].as_str().unwrap().to_owned()
                })
                .collect();
            Some((address, kind, names))
        })
        .collect()
}

#[test]
fn the_document_has_exactly_the_contracts_exchanges_and_queues() {
    let document = document();
    let channels = channels(&document);
    let of_kind = |kind: &str| -> BTreeSet<String> {
        channels
            .iter()
            .filter(|(_, is, _)| is == kind)
            .map(|(address, _, _)| address.clone())
            .collect()
    };
    let exchanges: BTreeSet<String> = EXCHANGES.iter().map(|name| (*name).to_owned()).collect();
    assert_eq!(of_kind("routingKey"), exchanges);
    let queues: BTreeSet<String> = QUEUES
        .iter()
        .flat_map(|queue| [queue.name.to_owned(), dead_letter_queue(queue.name)])
        .collect();
    assert_eq!(of_kind("queue"), queues);
}

#[test]
fn each_exchange_carries_exactly_the_events_published_to_it() {
    let document = document();
    for (address, kind, names) in channels(&document) {
        if kind != "routingKey" {
            continue;
        }
        let published: BTreeSet<String> = PUBLISHED
            .iter()
            .filter(|(exchange, _)| *exchange == address)
            .map(|(_, key)| (*key).to_owned())
            .collect();
        assert_eq!(names, published, "the events of {address}");
    }
}

#[test]
fn each_bound_queue_receives_exactly_its_routing_keys() {
    let document = document();
    let channels = channels(&document);
    for queue in QUEUES.iter().filter(|queue| queue.exchange.is_some()) {
        let (_, _, names) = channels
            .iter()
            .find(|(address, _, _)| address == queue.name)
            .unwrap_or_else(|| panic!("{} is documented", queue.name));
        let keys: BTreeSet<String> = queue
            .routing_keys
            .iter()
            .map(|key| (*key).to_owned())
            .collect();
        assert_eq!(names, &keys, "the messages of {}", queue.name);
    }
}

#[test]
fn each_events_data_has_the_fields_of_its_payload_type() {
    let document = document();
    let messages = document["components"]["messages"].as_object().unwrap();
    for (_, routing_key) in PUBLISHED {
        let message = messages
            .values()
            .find(|message| message["name"] == routing_key)
            .unwrap_or_else(|| panic!("{routing_key} is documented"));
        let data = property(&document, &message["payload"], "data")
            .unwrap_or_else(|| panic!("the payload of {routing_key} has data"));
        assert_eq!(
            properties(&document, data),
            contract_fields(routing_key),
            "the data of {routing_key}"
        );
    }
}

#[test]
fn the_request_and_job_messages_have_the_fields_of_their_types() {
    let document = document();
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        properties(&document, &schemas["TransactionRequest"]),
        fields_of::<wallet::TransactionRequest>()
    );
    assert_eq!(
        properties(&document, &schemas["StatementJobMessage"]),
        fields_of::<statement::JobMessage>()
    );
}
