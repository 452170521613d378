//! Money in requests: a JSON string of digits, an optional point and at
//! most the store's decimal places ([`PRODUCT_PRICE_SCALE_MAX`]), nothing
//! else: no sign, exponent, separator or spaces, and never silently
//! rounded. A JSON number is refused too (the contract's money is a
//! string).

use mercato_engine::{Decimal, PRODUCT_PRICE_SCALE_MAX};
use serde::{Deserialize, Deserializer};

/// The most digits before the point: prices stay below 10^18.
const INTEGER_DIGITS_MAX: usize = 18;

/// Parses a money amount, or says what is wrong with it.
pub(crate) fn parse_money(text: &str) -> Result<Decimal, String> {
    let expected = || {
        format!(
            "{text:?} is not an amount: expected a decimal string such as \"19.99\" \
             (digits, an optional point and at most {PRODUCT_PRICE_SCALE_MAX} decimals)"
        )
    };
    let (integer, fraction) = match text.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (text, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if !digits(integer) || fraction.is_some_and(|fraction| !digits(fraction)) {
        return Err(expected());
    }
    if fraction.is_some_and(|fraction| fraction.len() > PRODUCT_PRICE_SCALE_MAX as usize) {
        return Err(format!(
            "{text:?} has more than {PRODUCT_PRICE_SCALE_MAX} decimal places"
        ));
    }
    if integer.trim_start_matches('0').len() > INTEGER_DIGITS_MAX {
        return Err(format!("{text:?} is too large"));
    }
    text.parse().map_err(|_| expected())
}

/// `deserialize_with` for a required amount.
pub(crate) fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_money(&text).map_err(serde::de::Error::custom)
}

/// `deserialize_with` for an optional amount (with `#[serde(default)]`).
pub(crate) fn optional<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        Some(text) => parse_money(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_decimals_are_money() {
        for good in [
            "0",
            "1",
            "1.5",
            "19.99",
            "0.01",
            "007.10",
            "999999999999999999.99",
        ] {
            assert_eq!(
                parse_money(good).unwrap(),
                good.parse::<Decimal>().unwrap(),
                "{good}"
            );
        }
        for bad in [
            "",
            ".",
            "1.",
            ".5",
            "1.001",
            "1.000000000000000000000000000001",
            "1e2",
            "1.5E-1",
            "1_000.00",
            "1,000.00",
            "+1.00",
            "-0.00",
            "-1",
            " 1.00",
            "1.00 ",
            "0x10",
            "NaN",
            "inf",
            "١٢",
            "1000000000000000000",
        ] {
            assert!(parse_money(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
