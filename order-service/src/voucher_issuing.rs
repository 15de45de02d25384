//! The consumer of `order.sent` that issues the voucher a large order earns.
//!
//! It reads the order from the database rather than trusting the event, and the vouchers
//! table allows one voucher per order: however often `order.sent` arrives (redelivered,
//! republished, under new message ids), the order has one voucher and one `voucher.issued`.

use lapin::message::Delivery;
use platform::cloud_event::ReceivedEvent;
use platform::consumer::{Handler, Verdict};
use platform::outbox::Outbox;
use proto::messaging::order::{ORDER_SENT, OrderChanged, VOUCHER_ISSUING};

use crate::vouchers;

pub struct VoucherIssuingHandler {
    pub outbox: Outbox,
}

impl Handler for VoucherIssuingHandler {
    async fn handle(&self, delivery: &Delivery) -> anyhow::Result<Verdict> {
        let invalid = |error: serde_json::Error| {
            Ok(Verdict::Invalid(format!(
                "not an order.sent event: {error}"
            )))
        };
        let event: ReceivedEvent<serde_json::Value> = match serde_json::from_slice(&delivery.data) {
            Ok(event) => event,
            Err(error) => return invalid(error),
        };
        if event.kind != ORDER_SENT {
            return Ok(Verdict::Invalid(format!(
                "unexpected event type {:?}",
                event.kind
            )));
        }
        let message_id = event.message_id(delivery);
        let order_id = match serde_json::from_value::<OrderChanged>(event.data) {
            Ok(order) => order.order_id,
            Err(error) => return invalid(error),
        };
        let issued = self
            .outbox
            .apply_once(&message_id, VOUCHER_ISSUING.name, async |tx| {
                Ok(vouchers::issue_for(tx, order_id).await?)
            })
            .await?;
        if let Some(Some(voucher)) = issued {
            tracing::info!(order_id = %voucher.order_id, "voucher issued");
        }
        Ok(Verdict::Done)
    }
}
