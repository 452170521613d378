//! The sample catalog: loaded into an empty store on first start.

use std::collections::BTreeMap;

use mercato_engine::{Decimal, Engine, IMPORT_PRODUCTS_MAX, NewProduct, ProductId};
use serde::Deserialize;

use crate::extract::parse_json;

/// The catalog shipped in `data/catalog.jsonl`, compiled in.
pub const SAMPLE_CATALOG: &str = include_str!("../../data/catalog.jsonl");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogLine {
    id: u64,
    sku: String,
    name: String,
    description: String,
    category: String,
    brand: String,
    price: Decimal,
    attributes: BTreeMap<String, String>,
    low_stock_threshold: u64,
    on_hand: u64,
}

/// Parses a catalog (one JSON product per line; blank lines are skipped).
/// The error names the line.
pub fn parse_catalog(text: &str) -> Result<Vec<NewProduct>, String> {
    let mut products = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line: CatalogLine = parse_json(line.as_bytes())
            .map_err(|error| format!("line {}: {}", index + 1, error.detail()))?;
        products.push(NewProduct {
            id: Some(ProductId(line.id)),
            sku: Some(line.sku),
            name: line.name,
            description: Some(line.description),
            category: Some(line.category),
            brand: Some(line.brand),
            price: line.price,
            attributes: line.attributes,
            low_stock_threshold: Some(line.low_stock_threshold),
            on_hand: line.on_hand,
        });
    }
    if products.is_empty() {
        return Err("the catalog has no products".to_owned());
    }
    if products.len() > IMPORT_PRODUCTS_MAX {
        return Err(format!(
            "the catalog has more than {IMPORT_PRODUCTS_MAX} products"
        ));
    }
    Ok(products)
}

/// Loads `catalog` into the engine in one transaction: all of it or none.
pub async fn load_catalog(engine: &Engine, catalog: &str) -> Result<usize, String> {
    let products = parse_catalog(catalog)?;
    let count = products.len();
    engine
        .import_products(products)
        .await
        .map_err(|error| format!("the catalog was not loaded: {error}"))?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalog_parses() {
        let products = parse_catalog(SAMPLE_CATALOG).unwrap();
        assert!(products.len() >= 1_000);
        assert!(products.iter().any(|product| product.on_hand == 0));
    }

    #[test]
    fn a_bad_line_is_named() {
        let error = parse_catalog("\n{\"id\": 1}\n").unwrap_err();
        assert!(error.starts_with("line 2:"), "{error}");
    }
}
