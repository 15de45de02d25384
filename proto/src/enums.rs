//! The platform's closed vocabularies: transaction types and sources, order, product and
//! statement job statuses, user roles. Each is one Rust enum used everywhere the value
//! travels: gRPC (converted to and from the protobuf enum, whose `*_UNSPECIFIED = 0` and
//! unknown numbers are refused), event payloads and HTTP bodies (serde, by its lowercase
//! name), and database rows (`sqlx`, as text, with the `sqlx` feature). Nothing compares
//! these values as strings.

use std::fmt;
use std::str::FromStr;

/// A value outside an enum: an unknown name, `*_UNSPECIFIED` or an unknown protobuf number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of {allowed} (got {got})")]
pub struct UnknownValue {
    /// The allowed names, comma-separated.
    pub allowed: String,
    /// What was given, as written for a human (`"gift"`, `0`).
    pub got: String,
}

macro_rules! contract_enum {
    (
        $(#[$meta:meta])*
        $name:ident as $wire:path {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        // The names are the variants' in snake_case, for every derive alike (`as_str` spells
        // them out; a test checks that the two agree).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[cfg_attr(
            feature = "sqlx",
            derive(sqlx::Type),
            sqlx(type_name = "text", rename_all = "snake_case")
        )]
        #[derive(utoipa::ToSchema)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        pub enum $name {
            $(
                $(#[$variant_meta])*
                $variant,
            )+
        }

        impl $name {
            pub const ALL: &[Self] = &[$(Self::$variant),+];

            /// The name in events, HTTP bodies and the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            fn unknown(got: String) -> UnknownValue {
                UnknownValue {
                    allowed: [$($text),+].join(", "),
                    got,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(raw: &str) -> Result<Self, UnknownValue> {
                match raw {
                    $($text => Ok(Self::$variant),)+
                    other => Err(Self::unknown(format!("{other:?}"))),
                }
            }
        }

        impl From<$name> for $wire {
            fn from(value: $name) -> Self {
                match value {
                    $($name::$variant => <$wire>::$variant,)+
                }
            }
        }

        impl From<$name> for i32 {
            fn from(value: $name) -> Self {
                <$wire>::from(value) as i32
            }
        }

        /// A protobuf enum number: `*_UNSPECIFIED` (0) and unknown numbers are refused.
        impl TryFrom<i32> for $name {
            type Error = UnknownValue;

            fn try_from(number: i32) -> Result<Self, UnknownValue> {
                match <$wire>::try_from(number) {
                    $(Ok(<$wire>::$variant) => Ok(Self::$variant),)+
                    _ => Err(Self::unknown(number.to_string())),
                }
            }
        }
    };
}

contract_enum! {
    /// The kind of a wallet transaction; the wallet's rules say what each does.
    TransactionType as crate::wallet::v1::TransactionType {
        /// + amount.
        Deposit = "deposit",
        /// − amount, never below a zero balance.
        Withdraw = "withdraw",
        /// − amount, never below a zero balance.
        Purchase = "purchase",
        /// Refunds a purchase, once.
        Cancellation = "cancellation",
        /// Undoes a deposit or a withdraw, once.
        Reversal = "reversal",
    }
}

impl TransactionType {
    /// Cancellations and reversals undo a parent transaction.
    pub fn undoes_a_parent(self) -> bool {
        matches!(self, Self::Cancellation | Self::Reversal)
    }
}

contract_enum! {
    /// Who made a wallet transaction.
    TransactionSource as crate::wallet::v1::TransactionSource {
        /// `POST /wallet/transactions`.
        Api = "api",
        /// A transaction request another system published to RabbitMQ.
        Event = "event",
        /// An order's payment, refund or payout.
        Order = "order",
    }
}

contract_enum! {
    /// Where an order is in its life.
    OrderStatus as crate::order::v1::OrderStatus {
        PendingPayment = "pending_payment",
        Paid = "paid",
        PaymentFailed = "payment_failed",
        Cancelled = "cancelled",
        Expired = "expired",
        Sent = "sent",
        Delivered = "delivered",
    }
}

contract_enum! {
    /// Whether a product is on sale.
    ProductStatus as crate::order::v1::ProductStatus {
        Active = "active",
        /// Off sale: no new orders; orders already placed are unaffected.
        Withdrawn = "withdrawn",
    }
}

contract_enum! {
    /// Where a statement job is.
    JobStatus as crate::statement::v1::JobStatus {
        Pending = "pending",
        Running = "running",
        Done = "done",
        Failed = "failed",
    }
}

contract_enum! {
    /// What a user may do: in the access token's `roles` claim, in `/auth/me`, and in the
    /// auth database.
    Role as crate::auth::v1::Role {
        Customer = "customer",
        /// Ships and delivers orders.
        Admin = "admin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_from_its_name_and_its_protobuf_number() {
        for &kind in TransactionType::ALL {
            assert_eq!(kind.as_str().parse(), Ok(kind));
            assert_eq!(TransactionType::try_from(i32::from(kind)), Ok(kind));
        }
        for &status in OrderStatus::ALL {
            assert_eq!(status.as_str().parse(), Ok(status));
            assert_eq!(OrderStatus::try_from(i32::from(status)), Ok(status));
        }
    }

    #[test]
    fn unspecified_and_unknown_values_are_refused_with_the_allowed_names() {
        let unspecified = TransactionSource::try_from(0).unwrap_err();
        assert_eq!(
            unspecified.to_string(),
            "must be one of api, event, order (got 0)"
        );
        assert!(JobStatus::try_from(99).is_err());
        assert_eq!(
            "gift".parse::<TransactionType>().unwrap_err().to_string(),
            "must be one of deposit, withdraw, purchase, cancellation, reversal (got \"gift\")"
        );
    }

    fn assert_serde_names<T: serde::Serialize + Copy + fmt::Display>(values: &[T]) {
        for value in values {
            let serde_name = serde_json::to_value(value).unwrap();
            assert_eq!(serde_name, value.to_string(), "{value}");
        }
    }

    #[test]
    fn names_are_the_serde_names() {
        assert_serde_names(TransactionType::ALL);
        assert_serde_names(TransactionSource::ALL);
        assert_serde_names(OrderStatus::ALL);
        assert_serde_names(ProductStatus::ALL);
        assert_serde_names(JobStatus::ALL);
        assert_serde_names(Role::ALL);
        assert_eq!(OrderStatus::PendingPayment.as_str(), "pending_payment");
    }
}
