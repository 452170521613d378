//! Carts: what a customer means to buy, before it is an order.
//!
//! A cart stores product ids and quantities only ([`StoredCart`]); prices
//! are never stored but looked up in the catalog each time a cart is
//! answered ([`price`]), so a cart always shows current prices. A line
//! whose product has been archived (or is gone) is left out of the priced
//! [`Cart`] and its subtotal, as archived products are not found anywhere
//! else; the next change to the cart drops it from storage too. Carts
//! untouched for [`EngineConfig::cart_ttl`](crate::EngineConfig::cart_ttl)
//! are removed by the writer (`writes::purge`).
//!
//! The decisions (limits, what a change does to the lines) are the pure
//! methods of [`StoredCart`]; `writes` loads, decides, then writes.

pub(crate) mod writes;

use rust_decimal::Decimal;

use crate::error::Error;
use crate::ids::{CartId, ProductId, Timestamp, UserId};
use crate::inventory::{RESERVATION_LINES_MAX, RESERVATION_QUANTITY_MAX};

/// The most lines in one cart.
pub const CART_LINES_MAX: usize = 100;
/// The most units of one product in one cart line.
pub const CART_QUANTITY_MAX: u64 = 1_000_000;
/// The most carts one user may hold at once: a client cannot grow the store
/// without bound. Carts left alone expire after `cart_ttl`.
pub const CARTS_PER_USER_MAX: usize = 100;

// A cart can always become an order: its lines fit in one reservation.
const _: () = assert!(CART_LINES_MAX <= RESERVATION_LINES_MAX);
const _: () = assert!(CART_QUANTITY_MAX <= RESERVATION_QUANTITY_MAX);
// A subtotal always fits in a `Decimal` (96-bit mantissa): prices are below
// 10^18 with 2 decimal places (`PRODUCT_PRICE_MAX`, `PRODUCT_PRICE_SCALE_MAX`),
// so each line is below 10^20 minor units times the quantity.
const _: () = assert!(
    100_000_000_000_000_000_000_u128 * (CART_QUANTITY_MAX as u128) * (CART_LINES_MAX as u128)
        < 1_u128 << 96
);

/// A cart, priced at the catalog's current prices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cart {
    /// The cart's id.
    pub id: CartId,
    /// The user whose cart it is.
    pub user_id: UserId,
    /// The lines whose products are live, in the order they were added.
    pub items: Vec<CartLine>,
    /// The sum of the lines' totals, two decimal places.
    pub subtotal: Decimal,
    /// The store's ISO 4217 currency code.
    pub currency: String,
    /// When the cart was created.
    pub created_at: Timestamp,
    /// When the cart last changed; it expires `cart_ttl` after this.
    pub updated_at: Timestamp,
}

/// One line of a cart, priced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CartLine {
    /// The product.
    pub product_id: ProductId,
    /// How many units, 1 to [`CART_QUANTITY_MAX`].
    pub quantity: u64,
    /// The product's current price.
    pub unit_price: Decimal,
    /// `unit_price * quantity`.
    pub line_total: Decimal,
}

/// A cart as stored: no prices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredCart {
    pub(crate) id: CartId,
    pub(crate) user_id: UserId,
    /// `(product, quantity)`, distinct products, quantities at least 1.
    pub(crate) lines: Vec<(ProductId, u64)>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

impl StoredCart {
    /// An empty cart for `user_id`, created at `now`.
    pub(crate) fn new(id: CartId, user_id: UserId, now: Timestamp) -> StoredCart {
        StoredCart {
            id,
            user_id,
            lines: Vec::new(),
            created_at: now,
            updated_at: now,
        }
    }

    /// What a stored cart always satisfies: checked before every write and
    /// after every read.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self.lines.len() > CART_LINES_MAX {
            return Err("too many lines");
        }
        if self.updated_at < self.created_at {
            return Err("updated before it was created");
        }
        for (index, &(product_id, quantity)) in self.lines.iter().enumerate() {
            if product_id.0 == 0 {
                return Err("product id 0");
            }
            if quantity == 0 || quantity > CART_QUANTITY_MAX {
                return Err("quantity out of range");
            }
            if self.lines[..index]
                .iter()
                .any(|&(other, _)| other == product_id)
            {
                return Err("a product appears twice");
            }
        }
        Ok(())
    }

    /// Sets a line's quantity: 0 removes the line (whether or not it is
    /// there), otherwise the line is changed in place or added at the end.
    /// The caller has checked that the product is live.
    pub(crate) fn set_quantity(
        &mut self,
        product_id: ProductId,
        quantity: u64,
    ) -> Result<(), Error> {
        validate_quantity(quantity)?;
        let position = self.lines.iter().position(|&(id, _)| id == product_id);
        match (position, quantity) {
            (Some(index), 0) => {
                self.lines.remove(index);
            }
            (None, 0) => {}
            (Some(index), quantity) => self.lines[index].1 = quantity,
            (None, quantity) => {
                if self.lines.len() == CART_LINES_MAX {
                    return Err(Error::invalid(
                        "items",
                        format!("a cart holds at most {CART_LINES_MAX} lines"),
                    ));
                }
                self.lines.push((product_id, quantity));
            }
        }
        Ok(())
    }

    /// Marks the cart changed at `now` (never earlier than its last change,
    /// should the clock go back).
    pub(crate) fn touch(&mut self, now: Timestamp) {
        self.updated_at = now.max(self.updated_at);
    }
}

/// Checks a line's quantity on its own: 0 (remove) to [`CART_QUANTITY_MAX`].
pub(crate) fn validate_quantity(quantity: u64) -> Result<(), Error> {
    if quantity > CART_QUANTITY_MAX {
        return Err(Error::invalid(
            "quantity",
            format!("must be at most {CART_QUANTITY_MAX}"),
        ));
    }
    Ok(())
}

/// Prices `cart` with `price_of`, which answers a live product's current
/// price or `None` for a product that is archived or unknown (its line is
/// left out).
pub(crate) fn price(
    cart: &StoredCart,
    currency: &str,
    mut price_of: impl FnMut(ProductId) -> Result<Option<Decimal>, Error>,
) -> Result<Cart, Error> {
    let mut items = Vec::with_capacity(cart.lines.len());
    // Scale 2, so an empty cart's subtotal reads "0.00".
    let mut subtotal = Decimal::new(0, 2);
    for &(product_id, quantity) in &cart.lines {
        let Some(unit_price) = price_of(product_id)? else {
            continue;
        };
        // Cannot overflow: see the assertion on the limits above.
        let line_total = unit_price * Decimal::from(quantity);
        subtotal += line_total;
        items.push(CartLine {
            product_id,
            quantity,
            unit_price,
            line_total,
        });
    }
    Ok(Cart {
        id: cart.id,
        user_id: cart.user_id.clone(),
        items,
        subtotal,
        currency: currency.to_owned(),
        created_at: cart.created_at,
        updated_at: cart.updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn cart() -> StoredCart {
        StoredCart::new(
            CartId(Uuid::from_u128(1)),
            UserId::new("alice").unwrap(),
            Timestamp(1_000),
        )
    }

    #[test]
    fn setting_quantities_adds_changes_and_removes_lines() {
        let mut cart = cart();
        cart.set_quantity(ProductId(1), 2).unwrap();
        cart.set_quantity(ProductId(2), 1).unwrap();
        cart.set_quantity(ProductId(1), 5).unwrap();
        assert_eq!(cart.lines, [(ProductId(1), 5), (ProductId(2), 1)]);
        cart.set_quantity(ProductId(1), 0).unwrap();
        cart.set_quantity(ProductId(9), 0).unwrap();
        assert_eq!(cart.lines, [(ProductId(2), 1)]);
        assert!(cart.check().is_ok());
    }

    #[test]
    fn limits_refuse_without_changing_the_cart() {
        let mut cart = cart();
        let error = cart
            .set_quantity(ProductId(1), CART_QUANTITY_MAX + 1)
            .unwrap_err();
        assert!(matches!(error, Error::InvalidInput { ref field, .. } if field == "quantity"));
        for id in 1..=CART_LINES_MAX as u64 {
            cart.set_quantity(ProductId(id), CART_QUANTITY_MAX).unwrap();
        }
        let before = cart.clone();
        let error = cart.set_quantity(ProductId(1_000), 1).unwrap_err();
        assert!(matches!(error, Error::InvalidInput { ref field, .. } if field == "items"));
        assert_eq!(cart, before);
        // A line already there can still change.
        cart.set_quantity(ProductId(1), 1).unwrap();
        assert!(cart.check().is_ok());
    }

    #[test]
    fn checks_catch_broken_carts() {
        let mut twice = cart();
        twice.lines = vec![(ProductId(1), 1), (ProductId(1), 2)];
        assert!(twice.check().is_err());
        let mut zero = cart();
        zero.lines = vec![(ProductId(1), 0)];
        assert!(zero.check().is_err());
        let mut backwards = cart();
        backwards.updated_at = Timestamp(999);
        assert!(backwards.check().is_err());
    }

    #[test]
    fn prices_skip_unavailable_products_and_keep_two_places() {
        let mut cart = cart();
        assert_eq!(
            price(&cart, "USD", |_| Ok(None))
                .unwrap()
                .subtotal
                .to_string(),
            "0.00"
        );
        cart.set_quantity(ProductId(1), 3).unwrap();
        cart.set_quantity(ProductId(2), 1).unwrap();
        cart.set_quantity(ProductId(3), 2).unwrap();
        let priced = price(&cart, "USD", |id| {
            Ok((id != ProductId(2)).then(|| Decimal::new(250 * id.0 as i64, 2)))
        })
        .unwrap();
        let totals: Vec<_> = priced
            .items
            .iter()
            .map(|line| (line.product_id.0, line.line_total.to_string()))
            .collect();
        assert_eq!(totals, [(1, "7.50".to_owned()), (3, "15.00".to_owned())]);
        assert_eq!(priced.subtotal.to_string(), "22.50");
        assert_eq!(priced.currency, "USD");
    }

    #[test]
    fn the_largest_cart_prices_without_overflow() {
        let mut cart = cart();
        for id in 1..=CART_LINES_MAX as u64 {
            cart.set_quantity(ProductId(id), CART_QUANTITY_MAX).unwrap();
        }
        let price_max = crate::catalog::PRODUCT_PRICE_MAX - Decimal::new(1, 2);
        let priced = price(&cart, "USD", |_| Ok(Some(price_max))).unwrap();
        assert_eq!(priced.items.len(), CART_LINES_MAX);
        assert_eq!(
            priced.subtotal,
            price_max * Decimal::from(CART_QUANTITY_MAX) * Decimal::from(CART_LINES_MAX)
        );
    }
}
