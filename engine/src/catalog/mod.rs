//! Products: the domain types, their limits and their validation.

pub(crate) mod writes;

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::error::Error;
use crate::ids::{ProductId, Timestamp};
use crate::inventory::ON_HAND_MAX;

/// The longest product name, in characters.
pub const PRODUCT_NAME_LENGTH_MAX: usize = 200;
/// The longest SKU, in characters.
pub const PRODUCT_SKU_LENGTH_MAX: usize = 64;
/// The longest description, in characters.
pub const PRODUCT_DESCRIPTION_LENGTH_MAX: usize = 10_000;
/// The longest category or brand, in characters.
pub const PRODUCT_LABEL_LENGTH_MAX: usize = 100;
/// The most attributes on one product.
pub const PRODUCT_ATTRIBUTES_MAX: usize = 64;
/// The longest attribute key, in characters.
pub const PRODUCT_ATTRIBUTE_KEY_LENGTH_MAX: usize = 64;
/// The longest attribute value, in characters.
pub const PRODUCT_ATTRIBUTE_VALUE_LENGTH_MAX: usize = 1_000;
/// The highest price (exclusive bound is one more minor unit).
pub const PRODUCT_PRICE_MAX: Decimal = Decimal::from_parts(2_808_348_672, 232_830_643, 0, false, 0); // 10^18
/// Decimal places a price may have.
pub const PRODUCT_PRICE_SCALE_MAX: u32 = 2;
/// The highest low-stock threshold.
pub const LOW_STOCK_THRESHOLD_MAX: u64 = 1_000_000_000;
/// The low-stock threshold of a product that does not name one.
pub const LOW_STOCK_THRESHOLD_DEFAULT: u64 = 10;
/// The most products in one [`Engine::import_products`](crate::Engine::import_products) call.
pub const IMPORT_PRODUCTS_MAX: usize = 10_000;

/// A catalog product, as the store holds it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    /// The product's id.
    pub id: ProductId,
    /// The stock-keeping unit.
    pub sku: String,
    /// The display name.
    pub name: String,
    /// Free text, may be empty.
    pub description: String,
    /// A category slug, may be empty.
    pub category: String,
    /// The brand, may be empty.
    pub brand: String,
    /// The unit price in the store currency, two decimal places.
    pub price: Decimal,
    /// The store's ISO 4217 currency code.
    pub currency: String,
    /// Free-form attributes (colour, size, ...).
    pub attributes: BTreeMap<String, String>,
    /// `inventory.stock.low` fires when available stock falls to or below this.
    pub low_stock_threshold: u64,
    /// When the product was created.
    pub created_at: Timestamp,
    /// When the product last changed.
    pub updated_at: Timestamp,
}

/// A product to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewProduct {
    /// The id to use; the engine assigns the next free one when `None`.
    pub id: Option<ProductId>,
    /// The SKU; `P` and the zero-padded id when `None`.
    pub sku: Option<String>,
    /// The display name (required, not blank).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// A category slug.
    pub category: Option<String>,
    /// The brand.
    pub brand: Option<String>,
    /// The unit price, at least 0, at most two decimal places.
    pub price: Decimal,
    /// Free-form attributes.
    pub attributes: BTreeMap<String, String>,
    /// Default [`LOW_STOCK_THRESHOLD_DEFAULT`].
    pub low_stock_threshold: Option<u64>,
    /// Units on hand at creation (default 0).
    pub on_hand: u64,
}

/// A partial update of a product: `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductPatch {
    /// A new SKU.
    pub sku: Option<String>,
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// A new category.
    pub category: Option<String>,
    /// A new brand.
    pub brand: Option<String>,
    /// A new price.
    pub price: Option<Decimal>,
    /// New attributes, replacing all the old ones.
    pub attributes: Option<BTreeMap<String, String>>,
    /// A new low-stock threshold.
    pub low_stock_threshold: Option<u64>,
}

impl ProductPatch {
    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == ProductPatch::default()
    }
}

/// What one [`Engine::upsert_products`](crate::Engine::upsert_products)
/// call did, product by product.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Upserted {
    /// Products that did not exist and were created.
    pub created: usize,
    /// Existing products whose fields or `on_hand` changed.
    pub updated: usize,
    /// Existing products that already matched: nothing written for them.
    pub unchanged: usize,
}

/// What the store holds of a product that an upsert names: enough to decide
/// whether the upsert may apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UpsertTarget {
    pub(crate) archived: bool,
    pub(crate) reserved: u64,
}

/// Decides one product of an upsert before anything is written: its id and
/// its validated fields, or why it cannot apply. `target` is the product of
/// the same id in the store, if any. Errors name the field as a product has
/// it (`price`, `attributes.colour`). The writer and
/// [`Engine::check_upsert`](crate::Engine::check_upsert) both decide with
/// this, so a check up front and the write agree.
pub(crate) fn check_upsert(
    new: &NewProduct,
    target: Option<UpsertTarget>,
) -> Result<(ProductId, ProductFields), Error> {
    let id = match new.id {
        None => {
            return Err(Error::invalid(
                "id",
                "is required: an upsert names every product by its id",
            ));
        }
        Some(ProductId(0)) => return Err(Error::invalid("id", "must be at least 1")),
        Some(id) => id,
    };
    let fields = ProductFields::from_new(id, new)?;
    if new.on_hand > ON_HAND_MAX {
        return Err(Error::invalid(
            "on_hand",
            format!("must be at most {ON_HAND_MAX}"),
        ));
    }
    match target {
        Some(target) if target.archived => Err(Error::invalid(
            "id",
            format!("product {id} is archived, and an archived product's id is not reused"),
        )),
        Some(target) if new.on_hand < target.reserved => Err(Error::BelowReserved {
            product_id: id,
            reserved: target.reserved,
            requested_on_hand: i128::from(new.on_hand),
        }),
        _ => Ok((id, fields)),
    }
}

/// One page of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Where the next page starts, `None` on the last page.
    pub next_after: Option<ProductId>,
}

/// The fields of a product that the store keeps, validated, with the id and
/// times added by the writer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProductFields {
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) category: String,
    pub(crate) brand: String,
    pub(crate) price: Decimal,
    pub(crate) attributes: BTreeMap<String, String>,
    pub(crate) low_stock_threshold: u64,
}

impl ProductFields {
    pub(crate) fn from_new(id: ProductId, new: &NewProduct) -> Result<ProductFields, Error> {
        let fields = ProductFields {
            sku: new.sku.clone().unwrap_or_else(|| format!("P{:08}", id.0)),
            name: new.name.clone(),
            description: new.description.clone().unwrap_or_default(),
            category: new.category.clone().unwrap_or_default(),
            brand: new.brand.clone().unwrap_or_default(),
            price: new.price,
            attributes: new.attributes.clone(),
            low_stock_threshold: new
                .low_stock_threshold
                .unwrap_or(LOW_STOCK_THRESHOLD_DEFAULT),
        };
        fields.validated()
    }

    pub(crate) fn patched(&self, patch: &ProductPatch) -> Result<ProductFields, Error> {
        let mut fields = self.clone();
        if let Some(sku) = &patch.sku {
            fields.sku = sku.clone();
        }
        if let Some(name) = &patch.name {
            fields.name = name.clone();
        }
        if let Some(description) = &patch.description {
            fields.description = description.clone();
        }
        if let Some(category) = &patch.category {
            fields.category = category.clone();
        }
        if let Some(brand) = &patch.brand {
            fields.brand = brand.clone();
        }
        if let Some(price) = patch.price {
            fields.price = price;
        }
        if let Some(attributes) = &patch.attributes {
            fields.attributes = attributes.clone();
        }
        if let Some(threshold) = patch.low_stock_threshold {
            fields.low_stock_threshold = threshold;
        }
        fields.validated()
    }

    fn validated(mut self) -> Result<ProductFields, Error> {
        self.name = self.name.trim().to_owned();
        self.sku = self.sku.trim().to_owned();
        self.category = self.category.trim().to_owned();
        self.brand = self.brand.trim().to_owned();
        check_text("name", &self.name, 1, PRODUCT_NAME_LENGTH_MAX)?;
        check_text("sku", &self.sku, 1, PRODUCT_SKU_LENGTH_MAX)?;
        check_text("category", &self.category, 0, PRODUCT_LABEL_LENGTH_MAX)?;
        check_text("brand", &self.brand, 0, PRODUCT_LABEL_LENGTH_MAX)?;
        check_length(
            "description",
            &self.description,
            0,
            PRODUCT_DESCRIPTION_LENGTH_MAX,
        )?;
        if self.attributes.len() > PRODUCT_ATTRIBUTES_MAX {
            return Err(Error::invalid(
                "attributes",
                format!("at most {PRODUCT_ATTRIBUTES_MAX} attributes"),
            ));
        }
        for (key, value) in &self.attributes {
            check_text(
                &format!("attributes.{key}"),
                key,
                1,
                PRODUCT_ATTRIBUTE_KEY_LENGTH_MAX,
            )?;
            check_length(
                &format!("attributes.{key}"),
                value,
                0,
                PRODUCT_ATTRIBUTE_VALUE_LENGTH_MAX,
            )?;
        }
        self.price = validate_price(self.price)?;
        if self.low_stock_threshold > LOW_STOCK_THRESHOLD_MAX {
            return Err(Error::invalid(
                "low_stock_threshold",
                format!("must be at most {LOW_STOCK_THRESHOLD_MAX}"),
            ));
        }
        Ok(self)
    }
}

/// Checks a price and brings it to two decimal places (`19.9` → `19.90`).
pub(crate) fn validate_price(price: Decimal) -> Result<Decimal, Error> {
    if price.is_sign_negative() && !price.is_zero() {
        return Err(Error::invalid("price", "must not be negative"));
    }
    if price.normalize().scale() > PRODUCT_PRICE_SCALE_MAX {
        return Err(Error::invalid(
            "price",
            format!("at most {PRODUCT_PRICE_SCALE_MAX} decimal places"),
        ));
    }
    if price >= PRODUCT_PRICE_MAX {
        return Err(Error::invalid("price", "is too large"));
    }
    let mut price = price.abs();
    price.rescale(PRODUCT_PRICE_SCALE_MAX);
    Ok(price)
}

fn check_length(field: &str, text: &str, min: usize, max: usize) -> Result<(), Error> {
    let length = text.chars().count();
    if length < min {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if length > max {
        return Err(Error::invalid(field, format!("at most {max} characters")));
    }
    Ok(())
}

fn check_text(field: &str, text: &str, min: usize, max: usize) -> Result<(), Error> {
    check_length(field, text, min, max)?;
    if text.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_product() -> NewProduct {
        NewProduct {
            name: "Tea".into(),
            price: "4.5".parse().unwrap(),
            ..NewProduct::default()
        }
    }

    #[test]
    fn price_is_brought_to_two_places() {
        let fields = ProductFields::from_new(ProductId(7), &new_product()).unwrap();
        assert_eq!(fields.price.to_string(), "4.50");
        assert_eq!(fields.sku, "P00000007");
        assert_eq!(fields.low_stock_threshold, LOW_STOCK_THRESHOLD_DEFAULT);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (
                NewProduct {
                    name: "  ".into(),
                    ..new_product()
                },
                "name",
            ),
            (
                NewProduct {
                    price: "-1".parse().unwrap(),
                    ..new_product()
                },
                "price",
            ),
            (
                NewProduct {
                    price: "1.001".parse().unwrap(),
                    ..new_product()
                },
                "price",
            ),
            (
                NewProduct {
                    category: Some("a\nb".into()),
                    ..new_product()
                },
                "category",
            ),
            (
                NewProduct {
                    low_stock_threshold: Some(u64::MAX),
                    ..new_product()
                },
                "low_stock_threshold",
            ),
        ];
        for (product, field) in cases {
            match ProductFields::from_new(ProductId(1), &product) {
                Err(Error::InvalidInput { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn price_max_is_one_quintillion() {
        assert_eq!(
            PRODUCT_PRICE_MAX,
            Decimal::from(1_000_000_000_000_000_000_u64)
        );
    }
}
