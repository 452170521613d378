//! Entry points for the fuzz targets in `fuzz/`, compiled only with the
//! `fuzzing` feature: the money parser is private to the server (requests
//! reach it through their bodies), and fuzzing it through the router would
//! spend nearly every run outside it.
//!
//! Nothing here is part of the server's API; it may change with any commit.

use mercato_engine::Decimal;

/// [`crate::money`]'s parser: a decimal string of digits, an optional
/// point and at most the store's decimal places, or why it is not one.
pub fn parse_money(text: &str) -> Result<Decimal, String> {
    crate::money::parse_money(text)
}
