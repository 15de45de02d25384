//! Transactions and the wallet's rules, as plain data and pure functions.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::LedgerError;
use crate::money::{self, Amount};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Deposit,
    Withdraw,
    Purchase,
    Cancellation,
    Reversal,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Deposit,
        Kind::Withdraw,
        Kind::Purchase,
        Kind::Cancellation,
        Kind::Reversal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deposit => "deposit",
            Kind::Withdraw => "withdraw",
            Kind::Purchase => "purchase",
            Kind::Cancellation => "cancellation",
            Kind::Reversal => "reversal",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == raw)
            .ok_or_else(|| format!("must be one of deposit, withdraw, purchase, cancellation, reversal (got {raw:?})"))
    }

    /// Cancellations and reversals undo a parent transaction.
    pub fn undoes_a_parent(self) -> bool {
        matches!(self, Kind::Cancellation | Kind::Reversal)
    }
}

/// Where a transaction came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `POST /wallet/transactions`.
    Api,
    /// A transaction request published to RabbitMQ by another system.
    Event,
    /// An order payment or refund.
    Order,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::Event => "event",
            Source::Order => "order",
        }
    }
}

/// A transaction request as it arrives (from gRPC or a message), before validation.
#[derive(Debug, Clone, Default)]
pub struct RawRequest {
    pub kind: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub parent_transaction_id: Option<String>,
    pub description: Option<String>,
    pub reference: Option<String>,
}

/// A validated transaction request.
#[derive(Debug, Clone)]
pub struct NewTransaction {
    pub user_id: Uuid,
    pub kind: Kind,
    /// Required for deposit, withdraw and purchase; optional for an undo (then it must
    /// equal the parent's).
    pub amount: Option<Amount>,
    pub parent_transaction_id: Option<Uuid>,
    pub description: Option<String>,
    pub source: Source,
    pub reference: Option<String>,
}

pub const MAX_DESCRIPTION_CHARS: usize = 500;
pub const MAX_REFERENCE_CHARS: usize = 200;

impl NewTransaction {
    /// Checks everything that does not need the database.
    pub fn parse(user_id: Uuid, raw: &RawRequest, source: Source) -> Result<Self, LedgerError> {
        let mut violations: Vec<(&'static str, String)> = Vec::new();
        let kind = Kind::parse(&raw.kind)
            .map_err(|reason| violations.push(("type", reason)))
            .ok();
        let amount = match raw.amount {
            Some(minor) => Amount::parse(minor)
                .map_err(|reason| violations.push(("amount", reason)))
                .ok(),
            None => None,
        };
        if let Err(reason) = money::check_currency(raw.currency.as_deref()) {
            violations.push(("currency", reason));
        }
        let parent = match raw.parent_transaction_id.as_deref() {
            Some(text) => Uuid::parse_str(text)
                .map_err(|_| violations.push(("parent_transaction_id", "must be a UUID".into())))
                .ok(),
            None => None,
        };
        if let Some(kind) = kind {
            if kind.undoes_a_parent() {
                if raw.parent_transaction_id.is_none() {
                    violations.push((
                        "parent_transaction_id",
                        format!("is required for a {}", kind.as_str()),
                    ));
                }
            } else {
                if raw.amount.is_none() {
                    violations.push(("amount", format!("is required for a {}", kind.as_str())));
                }
                if raw.parent_transaction_id.is_some() {
                    violations.push((
                        "parent_transaction_id",
                        "is only for a cancellation or a reversal".into(),
                    ));
                }
            }
        }
        let description = raw
            .description
            .clone()
            .filter(|text| !text.trim().is_empty());
        if description
            .as_ref()
            .is_some_and(|text| text.chars().count() > MAX_DESCRIPTION_CHARS)
        {
            violations.push((
                "description",
                format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        if raw
            .reference
            .as_ref()
            .is_some_and(|text| text.chars().count() > MAX_REFERENCE_CHARS)
        {
            violations.push((
                "reference",
                format!("must be at most {MAX_REFERENCE_CHARS} characters"),
            ));
        }
        // Texts are one line, and PostgreSQL cannot store a NUL character in one.
        let texts = [
            ("description", description.as_deref()),
            ("reference", raw.reference.as_deref()),
        ];
        for (field, text) in texts {
            if text.is_some_and(|text| text.chars().any(char::is_control)) {
                violations.push((
                    field,
                    "must not contain control characters (such as NUL or a line break)".into(),
                ));
            }
        }
        match kind {
            Some(kind) if violations.is_empty() => Ok(Self {
                user_id,
                kind,
                amount,
                parent_transaction_id: parent,
                description,
                source,
                reference: raw.reference.clone(),
            }),
            _ => Err(LedgerError::Invalid(violations)),
        }
    }

    /// The request in a canonical form: the same request always gives the same string, so an
    /// `Idempotency-Key` reused with another request is detected.
    pub fn fingerprint(&self) -> String {
        format!(
            "{}|{:?}|{:?}|{:?}",
            self.kind.as_str(),
            self.amount.map(Amount::minor_units),
            self.parent_transaction_id,
            self.description,
        )
    }
}

/// What the rules need to know of a parent transaction.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Parent {
    pub id: Uuid,
    pub user_id: Uuid,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub amount: i64,
    pub source: String,
}

/// The amount a transaction moves and its effect on the balance (signed), by the rules
/// table: a deposit adds, a withdraw or purchase takes, a cancellation refunds a purchase,
/// a reversal undoes a deposit or a withdraw.
pub fn effect(new: &NewTransaction, parent: Option<&Parent>) -> Result<(i64, i64), LedgerError> {
    let Some(parent) = parent else {
        let amount = new
            .amount
            .ok_or_else(|| LedgerError::Invalid(vec![("amount", "is required".into())]))?
            .minor_units();
        return Ok(match new.kind {
            Kind::Deposit => (amount, amount),
            _ => (amount, -amount),
        });
    };
    if parent.user_id != new.user_id {
        return Err(LedgerError::ParentNotFound);
    }
    // An order's purchase is refunded by cancelling the order, so that the order and the
    // wallet never disagree about whether it was paid.
    if parent.source == Source::Order.as_str() && new.source != Source::Order {
        return Err(LedgerError::NotUndoable(
            "this purchase paid an order; cancel the order instead".into(),
        ));
    }
    let refund = match (new.kind, parent.kind.as_str()) {
        (Kind::Cancellation, "purchase") => parent.amount,
        (Kind::Cancellation, other) => {
            return Err(LedgerError::NotUndoable(format!(
                "only a purchase can be cancelled; this parent is a {other}"
            )));
        }
        (Kind::Reversal, "deposit") => -parent.amount,
        (Kind::Reversal, "withdraw") => parent.amount,
        (Kind::Reversal, other) => {
            return Err(LedgerError::NotUndoable(format!(
                "only a deposit or a withdraw can be reversed; this parent is a {other}"
            )));
        }
        _ => {
            return Err(LedgerError::Invalid(vec![(
                "parent_transaction_id",
                "is only for a cancellation or a reversal".into(),
            )]));
        }
    };
    if let Some(amount) = new.amount
        && amount.minor_units() != parent.amount
    {
        return Err(LedgerError::AmountMismatch(parent.amount));
    }
    Ok((parent.amount, refund))
}

/// A ledger row, as stored. `transaction.created` publishes it with these names (see
/// `ledger::apply`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Transaction {
    pub id: Uuid,
    pub user_id: Uuid,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub amount: i64,
    pub currency: String,
    pub balance_after: i64,
    pub parent_transaction_id: Option<Uuid>,
    pub description: Option<String>,
    pub source: String,
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: &str, amount: Option<i64>, parent: Option<Uuid>) -> RawRequest {
        RawRequest {
            kind: kind.into(),
            amount,
            parent_transaction_id: parent.map(|id| id.to_string()),
            ..RawRequest::default()
        }
    }

    fn parsed(user: Uuid, raw: RawRequest) -> NewTransaction {
        NewTransaction::parse(user, &raw, Source::Api).unwrap()
    }

    fn parent(user: Uuid, kind: &str, amount: i64) -> Parent {
        Parent {
            id: Uuid::new_v4(),
            user_id: user,
            kind: kind.into(),
            amount,
            source: "api".into(),
        }
    }

    #[test]
    fn an_order_purchase_is_cancelled_only_through_its_order() {
        let user = Uuid::new_v4();
        let id = Some(Uuid::new_v4());
        let mut purchase = parent(user, "purchase", 300);
        purchase.source = "order".into();
        let by_hand = parsed(user, request("cancellation", None, id));
        assert!(matches!(
            effect(&by_hand, Some(&purchase)),
            Err(LedgerError::NotUndoable(_))
        ));
        let by_order =
            NewTransaction::parse(user, &request("cancellation", None, id), Source::Order).unwrap();
        assert_eq!(effect(&by_order, Some(&purchase)).unwrap(), (300, 300));
    }

    #[test]
    fn deposits_add_withdraws_and_purchases_take() {
        let user = Uuid::new_v4();
        assert_eq!(
            effect(&parsed(user, request("deposit", Some(500), None)), None).unwrap(),
            (500, 500)
        );
        assert_eq!(
            effect(&parsed(user, request("withdraw", Some(200), None)), None).unwrap(),
            (200, -200)
        );
        assert_eq!(
            effect(&parsed(user, request("purchase", Some(300), None)), None).unwrap(),
            (300, -300)
        );
    }

    #[test]
    fn undoing_follows_the_parent_type() {
        let user = Uuid::new_v4();
        let id = Some(Uuid::new_v4());
        let cancel = parsed(user, request("cancellation", None, id));
        let reverse = parsed(user, request("reversal", None, id));
        assert_eq!(
            effect(&cancel, Some(&parent(user, "purchase", 300))).unwrap(),
            (300, 300)
        );
        assert_eq!(
            effect(&reverse, Some(&parent(user, "deposit", 500))).unwrap(),
            (500, -500)
        );
        assert_eq!(
            effect(&reverse, Some(&parent(user, "withdraw", 200))).unwrap(),
            (200, 200)
        );
        for kind in ["deposit", "withdraw", "cancellation", "reversal"] {
            assert!(
                matches!(
                    effect(&cancel, Some(&parent(user, kind, 1))),
                    Err(LedgerError::NotUndoable(_))
                ),
                "cancel {kind}"
            );
        }
        for kind in ["purchase", "cancellation", "reversal"] {
            assert!(
                matches!(
                    effect(&reverse, Some(&parent(user, kind, 1))),
                    Err(LedgerError::NotUndoable(_))
                ),
                "reverse {kind}"
            );
        }
    }

    #[test]
    fn another_users_parent_is_not_found_and_a_different_amount_is_refused() {
        let user = Uuid::new_v4();
        let cancel = parsed(user, request("cancellation", None, Some(Uuid::new_v4())));
        assert!(matches!(
            effect(&cancel, Some(&parent(Uuid::new_v4(), "purchase", 300))),
            Err(LedgerError::ParentNotFound)
        ));
        let with_amount = parsed(
            user,
            request("cancellation", Some(299), Some(Uuid::new_v4())),
        );
        assert!(matches!(
            effect(&with_amount, Some(&parent(user, "purchase", 300))),
            Err(LedgerError::AmountMismatch(300))
        ));
    }

    #[test]
    fn requests_are_validated_field_by_field() {
        let user = Uuid::new_v4();
        let invalid = |raw: RawRequest| match NewTransaction::parse(user, &raw, Source::Api) {
            Err(LedgerError::Invalid(violations)) => violations
                .into_iter()
                .map(|(field, _)| field)
                .collect::<Vec<_>>(),
            other => panic!("expected invalid, got {other:?}"),
        };
        assert_eq!(invalid(request("gift", Some(5), None)), ["type"]);
        assert_eq!(invalid(request("deposit", None, None)), ["amount"]);
        assert_eq!(invalid(request("deposit", Some(0), None)), ["amount"]);
        assert_eq!(
            invalid(request("deposit", Some(5), Some(Uuid::new_v4()))),
            ["parent_transaction_id"]
        );
        assert_eq!(
            invalid(request("reversal", Some(5), None)),
            ["parent_transaction_id"]
        );
        let mut usd = request("deposit", Some(5), None);
        usd.currency = Some("USD".into());
        assert_eq!(invalid(usd), ["currency"]);
        let mut bad_parent = request("cancellation", None, None);
        bad_parent.parent_transaction_id = Some("not-a-uuid".into());
        assert_eq!(invalid(bad_parent), ["parent_transaction_id"]);
        let mut nul = request("deposit", Some(5), None);
        nul.description = Some("a\u{0}b".into());
        nul.reference = Some("line\nbreak".into());
        assert_eq!(invalid(nul), ["description", "reference"]);
    }
}
