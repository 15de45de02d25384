//! Transactions and the wallet's rules, as plain data and pure functions.

use uuid::Uuid;

pub use proto::messaging::wallet::TransactionCreated;
pub use proto::{TransactionSource, TransactionType};

use crate::error::LedgerError;
use crate::money::{self, Amount};

/// A transaction request as it arrives (from gRPC or a message), before validation.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub kind: TransactionType,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub parent_transaction_id: Option<String>,
    pub description: Option<String>,
    pub reference: Option<String>,
}

impl RawRequest {
    /// A request of `kind` with nothing else set.
    pub fn new(kind: TransactionType) -> Self {
        Self {
            kind,
            amount: None,
            currency: None,
            parent_transaction_id: None,
            description: None,
            reference: None,
        }
    }
}

/// A validated transaction request.
#[derive(Debug, Clone)]
pub struct NewTransaction {
    pub user_id: Uuid,
    pub kind: TransactionType,
    /// Required for deposit, withdraw and purchase; optional for an undo (then it must
    /// equal the parent's).
    pub amount: Option<Amount>,
    pub parent_transaction_id: Option<Uuid>,
    pub description: Option<String>,
    pub source: TransactionSource,
    pub reference: Option<String>,
}

pub const MAX_DESCRIPTION_CHARS: usize = 500;
pub const MAX_REFERENCE_CHARS: usize = 200;

impl NewTransaction {
    /// Checks everything that does not need the database.
    pub fn parse(
        user_id: Uuid,
        raw: &RawRequest,
        source: TransactionSource,
    ) -> Result<Self, LedgerError> {
        let mut violations: Vec<(&'static str, String)> = Vec::new();
        let kind = raw.kind;
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
        if kind.undoes_a_parent() {
            if raw.parent_transaction_id.is_none() {
                violations.push(("parent_transaction_id", format!("is required for a {kind}")));
            }
        } else {
            if raw.amount.is_none() {
                violations.push(("amount", format!("is required for a {kind}")));
            }
            if raw.parent_transaction_id.is_some() {
                violations.push((
                    "parent_transaction_id",
                    "is only for a cancellation or a reversal".into(),
                ));
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
        if !violations.is_empty() {
            return Err(LedgerError::Invalid(violations));
        }
        Ok(Self {
            user_id,
            kind,
            amount,
            parent_transaction_id: parent,
            description,
            source,
            reference: raw.reference.clone(),
        })
    }

    /// The request in a canonical form: the same request always gives the same string, so an
    /// `Idempotency-Key` reused with another request is detected.
    pub fn fingerprint(&self) -> String {
        format!(
            "{}|{:?}|{:?}|{:?}",
            self.kind,
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
    pub kind: TransactionType,
    pub amount: i64,
    pub source: TransactionSource,
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
            TransactionType::Deposit => (amount, amount),
            _ => (amount, -amount),
        });
    };
    if parent.user_id != new.user_id {
        return Err(LedgerError::ParentNotFound);
    }
    check_undone_where_made(new.source, parent.source)?;
    use TransactionType::{Cancellation, Deposit, Purchase, Reversal, Withdraw};
    let refund = match (new.kind, parent.kind) {
        (Cancellation, Purchase) => parent.amount,
        (Cancellation, other) => {
            return Err(LedgerError::NotUndoable(format!(
                "only a purchase can be cancelled; this parent is a {other}"
            )));
        }
        (Reversal, Deposit) => -parent.amount,
        (Reversal, Withdraw) => parent.amount,
        (Reversal, other) => {
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

/// Undo only what you did: a transaction is cancelled or reversed only through the way in
/// that made it. A user over HTTP undoes what they made through the API (`api`); an order's
/// purchase is refunded only by its order (`order`), so that the order and the wallet never
/// disagree about whether it was paid; a transaction another system requested through the
/// broker (`event`) is undone only by a request from the broker, so that a user cannot take
/// back, say, a withdrawal that system made and already acted on.
pub fn check_undone_where_made(
    undo: TransactionSource,
    parent: TransactionSource,
) -> Result<(), LedgerError> {
    if undo == parent {
        return Ok(());
    }
    let how = match parent {
        TransactionSource::Api => "it was made through the API; undo it there",
        TransactionSource::Event => {
            "it was made by another system through the broker; only a request from the broker can undo it"
        }
        TransactionSource::Order => "this purchase paid an order; cancel the order instead",
    };
    Err(LedgerError::NotUndoableHere(format!(
        "this transaction cannot be undone from here ({undo}): {how}"
    )))
}

/// A ledger row, as stored: the data of its `transaction.created` event, one type for both.
pub type Transaction = TransactionCreated;

#[cfg(test)]
mod tests {
    use super::*;

    use TransactionType::*;

    fn request(kind: TransactionType, amount: Option<i64>, parent: Option<Uuid>) -> RawRequest {
        RawRequest {
            amount,
            parent_transaction_id: parent.map(|id| id.to_string()),
            ..RawRequest::new(kind)
        }
    }

    fn parsed(user: Uuid, raw: RawRequest) -> NewTransaction {
        NewTransaction::parse(user, &raw, TransactionSource::Api).unwrap()
    }

    fn parent(user: Uuid, kind: TransactionType, amount: i64) -> Parent {
        Parent {
            id: Uuid::new_v4(),
            user_id: user,
            kind,
            amount,
            source: TransactionSource::Api,
        }
    }

    #[test]
    fn an_order_purchase_is_cancelled_only_through_its_order() {
        let user = Uuid::new_v4();
        let id = Some(Uuid::new_v4());
        let mut purchase = parent(user, Purchase, 300);
        purchase.source = TransactionSource::Order;
        let by_hand = parsed(user, request(Cancellation, None, id));
        assert!(matches!(
            effect(&by_hand, Some(&purchase)),
            Err(LedgerError::NotUndoableHere(_))
        ));
        let by_order = NewTransaction::parse(
            user,
            &request(Cancellation, None, id),
            TransactionSource::Order,
        )
        .unwrap();
        assert_eq!(effect(&by_order, Some(&purchase)).unwrap(), (300, 300));
    }

    #[test]
    fn a_transaction_is_undone_only_through_the_way_in_that_made_it() {
        use TransactionSource::{Api, Event, Order};
        let user = Uuid::new_v4();
        let id = Some(Uuid::new_v4());
        for made_by in [Api, Event, Order] {
            for undone_by in [Api, Event, Order] {
                let mut withdraw = parent(user, Withdraw, 200);
                withdraw.source = made_by;
                let reversal =
                    NewTransaction::parse(user, &request(Reversal, None, id), undone_by).unwrap();
                let outcome = effect(&reversal, Some(&withdraw));
                if made_by == undone_by {
                    assert_eq!(outcome.unwrap(), (200, 200), "{made_by} by {undone_by}");
                } else {
                    assert!(
                        matches!(outcome, Err(LedgerError::NotUndoableHere(_))),
                        "{made_by} by {undone_by}: {outcome:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn deposits_add_withdraws_and_purchases_take() {
        let user = Uuid::new_v4();
        assert_eq!(
            effect(&parsed(user, request(Deposit, Some(500), None)), None).unwrap(),
            (500, 500)
        );
        assert_eq!(
            effect(&parsed(user, request(Withdraw, Some(200), None)), None).unwrap(),
            (200, -200)
        );
        assert_eq!(
            effect(&parsed(user, request(Purchase, Some(300), None)), None).unwrap(),
            (300, -300)
        );
    }

    #[test]
    fn undoing_follows_the_parent_type() {
        let user = Uuid::new_v4();
        let id = Some(Uuid::new_v4());
        let cancel = parsed(user, request(Cancellation, None, id));
        let reverse = parsed(user, request(Reversal, None, id));
        assert_eq!(
            effect(&cancel, Some(&parent(user, Purchase, 300))).unwrap(),
            (300, 300)
        );
        assert_eq!(
            effect(&reverse, Some(&parent(user, Deposit, 500))).unwrap(),
            (500, -500)
        );
        assert_eq!(
            effect(&reverse, Some(&parent(user, Withdraw, 200))).unwrap(),
            (200, 200)
        );
        for kind in [Deposit, Withdraw, Cancellation, Reversal] {
            assert!(
                matches!(
                    effect(&cancel, Some(&parent(user, kind, 1))),
                    Err(LedgerError::NotUndoable(_))
                ),
                "cancel {kind}"
            );
        }
        for kind in [Purchase, Cancellation, Reversal] {
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
        let cancel = parsed(user, request(Cancellation, None, Some(Uuid::new_v4())));
        assert!(matches!(
            effect(&cancel, Some(&parent(Uuid::new_v4(), Purchase, 300))),
            Err(LedgerError::ParentNotFound)
        ));
        let with_amount = parsed(user, request(Cancellation, Some(299), Some(Uuid::new_v4())));
        assert!(matches!(
            effect(&with_amount, Some(&parent(user, Purchase, 300))),
            Err(LedgerError::AmountMismatch(300))
        ));
    }

    #[test]
    fn requests_are_validated_field_by_field() {
        let user = Uuid::new_v4();
        let invalid =
            |raw: RawRequest| match NewTransaction::parse(user, &raw, TransactionSource::Api) {
                Err(LedgerError::Invalid(violations)) => violations
                    .into_iter()
                    .map(|(field, _)| field)
                    .collect::<Vec<_>>(),
                other => panic!("expected invalid, got {other:?}"),
            };
        assert_eq!(invalid(request(Deposit, None, None)), ["amount"]);
        assert_eq!(invalid(request(Deposit, Some(0), None)), ["amount"]);
        assert_eq!(
            invalid(request(Deposit, Some(5), Some(Uuid::new_v4()))),
            ["parent_transaction_id"]
        );
        assert_eq!(
            invalid(request(Reversal, Some(5), None)),
            ["parent_transaction_id"]
        );
        let mut usd = request(Deposit, Some(5), None);
        usd.currency = Some("USD".into());
        assert_eq!(invalid(usd), ["currency"]);
        let mut bad_parent = request(Cancellation, None, None);
        bad_parent.parent_transaction_id = Some("not-a-uuid".into());
        assert_eq!(invalid(bad_parent), ["parent_transaction_id"]);
        let mut nul = request(Deposit, Some(5), None);
        nul.description = Some("a\u{0}b".into());
        nul.reference = Some("line\nbreak".into());
        assert_eq!(invalid(nul), ["description", "reference"]);
    }
}
