//! The consumer of `order.sent` that issues the voucher a large order earns.
//!
//! It reads the order from the database rather than trusting the event, and the vouchers
//! table allows one voucher per order: however often `order.sent` arrives (redelivered,
//! republished, under new message ids), the order has one voucher and one `voucher.issued`.

use lapin::message::Delivery;
use platform::cloud_event::ReceivedEvent;
use platform::consumer::{Handler, Verdict};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::events::ORDER_SENT;
use crate::vouchers;

pub const QUEUE: &str = "order.voucher-issuing";

#[derive(Debug, Deserialize)]
struct SentOrder {
    order_id: Uuid,
}

pub struct VoucherIssuingHandler {
    pub pool: PgPool,
}

impl Handler for VoucherIssuingHandler {
    async fn handle(&self, delivery: &Delivery) -> anyhow::Result<Verdict> {
        let event: ReceivedEvent<SentOrder> = match serde_json::from_slice(&delivery.data) {
            Ok(event) => event,
            Err(error) => {
                return Ok(Verdict::Invalid(format!(
                    "not an order.sent event: {error}"
                )));
            }
        };
        if event.kind != ORDER_SENT {
            return Ok(Verdict::Invalid(format!(
                "unexpected event type {:?}",
                event.kind
            )));
        }
        let message_id = event.message_id(delivery);
        let mut tx = self.pool.begin().await?;
        if platform::inbox::record(&mut tx, &message_id, QUEUE).await?
            && let Some(voucher) = vouchers::issue_for(&mut tx, event.data.order_id).await?
        {
            tracing::info!(order_id = %voucher.order_id, "voucher issued");
        }
        platform::outbox::commit(&self.pool, tx).await?;
        Ok(Verdict::Done)
    }
}
