//! Products and their rules, as plain data and pure functions: what a seller may put up for
//! sale or change, and what an order of catalogue products costs.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::OrderError;
use crate::order::{
    CURRENCY, Item, MAX_ITEMS, MAX_NAME_CHARS, MAX_QUANTITY, MAX_SKU_CHARS, MAX_TOTAL,
    NO_CONTROL_CHARACTERS,
};

pub use proto::ProductStatus as Status;

/// The most units a product can have on sale.
pub const MAX_STOCK: i64 = 1_000_000;
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;

/// A product as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Product {
    pub id: Uuid,
    pub seller_id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price: i64,
    pub currency: String,
    pub stock: i64,
    pub reserved: i64,
    pub sold: i64,
    pub version: i64,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Product {
    /// What new orders can still take.
    pub fn available(&self) -> i64 {
        self.stock - self.reserved
    }
}

/// A validated new product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    pub seller_id: Uuid,
    /// `None`: the server names it after the product's id.
    pub sku: Option<String>,
    pub name: String,
    pub description: String,
    pub price: i64,
    pub stock: i64,
}

/// What a new product's request says, before any check.
#[derive(Debug, Clone, Default)]
pub struct ProductRequest {
    pub name: String,
    pub description: Option<String>,
    pub price: i64,
    pub currency: Option<String>,
    pub stock: i64,
    pub sku: Option<String>,
}

/// A validated change of the seller's: the fields given, at the version it is based on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductChange {
    pub expected_version: i64,
    pub name: Option<String>,
    pub description: Option<String>,
    pub price: Option<i64>,
    pub stock: Option<i64>,
}

type Violations = Vec<(&'static str, String)>;

impl NewProduct {
    /// Checks every field; each violation is named.
    pub fn parse(seller_id: Uuid, request: ProductRequest) -> Result<Self, OrderError> {
        let mut violations = Violations::new();
        let name = check_name(&mut violations, &request.name);
        let description = check_description(&mut violations, request.description.as_deref());
        check_price(&mut violations, request.price);
        check_stock(&mut violations, request.stock);
        let sku = request.sku.map(|sku| {
            let sku = sku.trim().to_owned();
            if sku.is_empty() || sku.chars().count() > MAX_SKU_CHARS {
                violations.push(("sku", format!("must be 1 to {MAX_SKU_CHARS} characters")));
            }
            if sku.chars().any(char::is_control) {
                violations.push(("sku", NO_CONTROL_CHARACTERS.into()));
            }
            sku
        });
        if let Some(currency) = request.currency
            && currency != CURRENCY
        {
            violations.push((
                "currency",
                format!("must be {CURRENCY}, the wallet's currency (got {currency:?})"),
            ));
        }
        if !violations.is_empty() {
            return Err(OrderError::Invalid(violations));
        }
        Ok(Self {
            seller_id,
            sku,
            name,
            description: description.unwrap_or_default(),
            price: request.price,
            stock: request.stock,
        })
    }
}

impl ProductChange {
    /// Checks the fields given; a change of nothing is refused, so that a typo in a field
    /// name is not a silent success.
    pub fn parse(
        expected_version: i64,
        name: Option<String>,
        description: Option<String>,
        price: Option<i64>,
        stock: Option<i64>,
    ) -> Result<Self, OrderError> {
        let mut violations = Violations::new();
        let name = name.map(|name| check_name(&mut violations, &name));
        let description = check_description(&mut violations, description.as_deref());
        if let Some(price) = price {
            check_price(&mut violations, price);
        }
        if let Some(stock) = stock {
            check_stock(&mut violations, stock);
        }
        if name.is_none() && description.is_none() && price.is_none() && stock.is_none() {
            violations.push((
                "body",
                "must change at least one of name, description, price, stock".into(),
            ));
        }
        if !violations.is_empty() {
            return Err(OrderError::Invalid(violations));
        }
        Ok(Self {
            expected_version,
            name,
            description,
            price,
            stock,
        })
    }
}

fn check_name(violations: &mut Violations, name: &str) -> String {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        violations.push(("name", format!("must be 1 to {MAX_NAME_CHARS} characters")));
    }
    if name.chars().any(char::is_control) {
        violations.push(("name", NO_CONTROL_CHARACTERS.into()));
    }
    name.to_owned()
}

/// A description may span lines (but no other control character, and no NUL).
fn check_description(violations: &mut Violations, description: Option<&str>) -> Option<String> {
    let description = description?.trim();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        violations.push((
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    if description
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        violations.push((
            "description",
            "must not contain control characters other than line breaks and tabs".into(),
        ));
    }
    Some(description.to_owned())
}

fn check_price(violations: &mut Violations, price: i64) {
    if !(1..=MAX_TOTAL).contains(&price) {
        violations.push((
            "price",
            format!("must be 1 to {MAX_TOTAL} minor units (cents)"),
        ));
    }
}

fn check_stock(violations: &mut Violations, stock: i64) {
    if !(0..=MAX_STOCK).contains(&stock) {
        violations.push(("stock", format!("must be 0 to {MAX_STOCK} units")));
    }
}

/// One line of a buyer's order: a product and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub product_id: Uuid,
    pub quantity: i64,
}

/// Reads a buyer's lines (product ids as sent); every violation is named.
pub fn parse_lines(lines: Vec<(String, i64)>) -> Result<Vec<Line>, OrderError> {
    let mut violations = Violations::new();
    if lines.is_empty() || lines.len() > MAX_ITEMS {
        violations.push(("items", format!("must hold 1 to {MAX_ITEMS} items")));
    }
    let mut seen = HashSet::new();
    let mut parsed = Vec::with_capacity(lines.len());
    for (position, (product_id, quantity)) in (1..).zip(lines) {
        match Uuid::parse_str(&product_id) {
            Ok(product_id) if !seen.insert(product_id) => violations.push((
                "items.product_id",
                format!("item {position}: the product is already in the order; raise its quantity"),
            )),
            Ok(product_id) => parsed.push(Line {
                product_id,
                quantity,
            }),
            Err(_) => violations.push((
                "items.product_id",
                format!("item {position}: must be a product id (a UUID)"),
            )),
        }
        if !(1..=MAX_QUANTITY).contains(&quantity) {
            violations.push((
                "items.quantity",
                format!("item {position}: must be 1 to {MAX_QUANTITY}"),
            ));
        }
    }
    if violations.is_empty() {
        Ok(parsed)
    } else {
        Err(OrderError::Invalid(violations))
    }
}

/// The order's items as the catalogue prices them now, or why `buyer` cannot order them:
/// an unknown product, the buyer's own, a withdrawn one, too few available, or a total above
/// what the wallet can pay. `products` are the lines' products, as locked for the order.
pub fn price_lines(
    buyer: Uuid,
    lines: &[Line],
    products: &[Product],
) -> Result<(Vec<Item>, i64), OrderError> {
    let mut items = Vec::with_capacity(lines.len());
    let mut subtotal: Option<i64> = Some(0);
    for (position, line) in (1..).zip(lines) {
        let Some(product) = products.iter().find(|p| p.id == line.product_id) else {
            return Err(OrderError::UnknownProduct { position });
        };
        if product.seller_id == buyer {
            return Err(OrderError::OwnProduct { position });
        }
        if product.status == Status::Withdrawn {
            return Err(OrderError::ProductWithdrawn {
                product_id: product.id,
            });
        }
        if product.available() < line.quantity {
            return Err(OrderError::OutOfStock {
                product_id: product.id,
                available: product.available(),
            });
        }
        subtotal =
            subtotal.and_then(|sum| sum.checked_add(product.price.checked_mul(line.quantity)?));
        items.push(Item {
            sku: product.sku.clone(),
            name: product.name.clone(),
            unit_price: product.price,
            quantity: line.quantity,
            product_id: Some(product.id),
            seller_id: Some(product.seller_id),
        });
    }
    match subtotal {
        Some(subtotal) if subtotal <= MAX_TOTAL => Ok((items, subtotal)),
        _ => Err(OrderError::Invalid(vec![(
            "items",
            format!("the order must cost at most {MAX_TOTAL} minor units"),
        )])),
    }
}

/// The ETag of a product at `version`: `"<version>"` (the gateway reads `If-Match` back).
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(seller_id: Uuid, price: i64, stock: i64, reserved: i64) -> Product {
        Product {
            id: Uuid::now_v7(),
            seller_id,
            sku: "TICKET-1".into(),
            name: "A ticket".into(),
            description: String::new(),
            price,
            currency: CURRENCY.into(),
            stock,
            reserved,
            sold: 0,
            version: 1,
            status: Status::Active,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn fields(error: OrderError) -> Vec<&'static str> {
        match error {
            OrderError::Invalid(violations) => violations.iter().map(|(field, _)| *field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn every_invalid_product_field_is_named() {
        let request = ProductRequest {
            name: " ".into(),
            description: Some("a\u{0}b".into()),
            price: 0,
            currency: Some("USD".into()),
            stock: -1,
            sku: Some("x".repeat(65)),
        };
        assert_eq!(
            fields(NewProduct::parse(Uuid::nil(), request).unwrap_err()),
            ["name", "description", "price", "stock", "sku", "currency"]
        );
        let too_much = ProductRequest {
            name: "Ticket".into(),
            price: MAX_TOTAL + 1,
            stock: MAX_STOCK + 1,
            ..Default::default()
        };
        assert_eq!(
            fields(NewProduct::parse(Uuid::nil(), too_much).unwrap_err()),
            ["price", "stock"]
        );
    }

    #[test]
    fn a_valid_product_is_trimmed_and_may_span_lines() {
        let parsed = NewProduct::parse(
            Uuid::nil(),
            ProductRequest {
                name: " Ticket ".into(),
                description: Some("Row 3\nSeat 12".into()),
                price: 4_500,
                currency: Some("EUR".into()),
                stock: 0,
                sku: None,
            },
        )
        .unwrap();
        assert_eq!(parsed.name, "Ticket");
        assert_eq!(parsed.description, "Row 3\nSeat 12");
        assert_eq!(parsed.sku, None);
    }

    #[test]
    fn a_change_of_nothing_or_of_bad_values_is_refused() {
        assert_eq!(
            fields(ProductChange::parse(1, None, None, None, None).unwrap_err()),
            ["body"]
        );
        assert_eq!(
            fields(
                ProductChange::parse(1, Some(String::new()), None, Some(-5), Some(-1)).unwrap_err()
            ),
            ["name", "price", "stock"]
        );
        assert!(ProductChange::parse(1, None, None, Some(1), None).is_ok());
    }

    #[test]
    fn lines_name_bad_ids_repeats_and_quantities() {
        let id = Uuid::now_v7().to_string();
        assert_eq!(
            fields(parse_lines(vec![(id.clone(), 1), (id, 2), ("nope".into(), 0)]).unwrap_err()),
            ["items.product_id", "items.product_id", "items.quantity"]
        );
        assert_eq!(fields(parse_lines(vec![]).unwrap_err()), ["items"]);
    }

    #[test]
    fn items_copy_the_catalogue_and_the_subtotal_adds_up() {
        let seller = Uuid::now_v7();
        let a = product(seller, 250, 10, 2);
        let b = product(Uuid::now_v7(), 1_000, 1, 0);
        let lines = [
            Line {
                product_id: a.id,
                quantity: 3,
            },
            Line {
                product_id: b.id,
                quantity: 1,
            },
        ];
        let (items, subtotal) =
            price_lines(Uuid::now_v7(), &lines, &[b.clone(), a.clone()]).unwrap();
        assert_eq!(subtotal, 1_750);
        assert_eq!(items[0].unit_price, 250);
        assert_eq!(items[0].seller_id, Some(seller));
        assert_eq!(items[1].product_id, Some(b.id));
    }

    #[test]
    fn an_order_is_refused_for_stock_ownership_withdrawal_and_unknown_products() {
        let seller = Uuid::now_v7();
        let buyer = Uuid::now_v7();
        let mut p = product(seller, 100, 5, 4);
        let line = |quantity| {
            [Line {
                product_id: p.id,
                quantity,
            }]
        };
        assert!(matches!(
            price_lines(buyer, &line(2), std::slice::from_ref(&p)),
            Err(OrderError::OutOfStock { available: 1, .. })
        ));
        assert!(price_lines(buyer, &line(1), std::slice::from_ref(&p)).is_ok());
        assert!(matches!(
            price_lines(seller, &line(1), std::slice::from_ref(&p)),
            Err(OrderError::OwnProduct { position: 1 })
        ));
        assert!(matches!(
            price_lines(buyer, &line(1), &[]),
            Err(OrderError::UnknownProduct { position: 1 })
        ));
        p.status = Status::Withdrawn;
        assert!(matches!(
            price_lines(buyer, &line(1), std::slice::from_ref(&p)),
            Err(OrderError::ProductWithdrawn { .. })
        ));
    }

    #[test]
    fn an_order_costing_more_than_the_wallet_can_pay_is_refused_without_overflow() {
        let p = product(Uuid::now_v7(), MAX_TOTAL, MAX_STOCK, 0);
        let lines = [Line {
            product_id: p.id,
            quantity: 1_000,
        }];
        assert_eq!(
            fields(price_lines(Uuid::now_v7(), &lines, &[p]).unwrap_err()),
            ["items"]
        );
    }
}
