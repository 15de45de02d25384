//! The gRPC enums (transaction type, order status) over real gRPC on loopback: a client that
//! sends `*_UNSPECIFIED` (0) or a number outside the enum gets INVALID_ARGUMENT naming the
//! field, never a panic or an internal error, and the service goes on answering.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use proto::order::v1 as order_pb;
use proto::wallet::v1 as wallet_pb;
use support::Services;
use tonic::Code;
use uuid::Uuid;

fn assert_invalid<T: std::fmt::Debug>(answer: Result<T, tonic::Status>, field: &str) {
    let status = answer.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .starts_with(&format!("{field}: must be one of")),
        "{status:?}"
    );
}

#[tokio::test]
async fn unspecified_and_unknown_enum_values_are_invalid_arguments() {
    let services = Services::start(Duration::from_secs(900), true).await;
    let user = Uuid::new_v4().to_string();
    for number in [0, 99, -1] {
        let create = services
            .wallet
            .clone()
            .create_transaction(wallet_pb::CreateTransactionRequest {
                user_id: user.clone(),
                r#type: number,
                amount: Some(100),
                ..Default::default()
            })
            .await;
        assert_invalid(create, "type");
        let list = services
            .wallet
            .clone()
            .list_transactions(wallet_pb::ListTransactionsRequest {
                user_id: user.clone(),
                r#type: Some(number),
                ..Default::default()
            })
            .await;
        assert_invalid(list, "type");
        let orders = services
            .orders
            .clone()
            .list_orders(order_pb::ListOrdersRequest {
                user_id: user.clone(),
                status: Some(number),
                ..Default::default()
            })
            .await;
        assert_invalid(orders, "status");
    }
    // Still serving, and a valid value works.
    services.deposit(Uuid::parse_str(&user).unwrap(), 100).await;
    services.stop().await;
}
