//! `money_parse`: the server's money parser against a reference model of
//! the grammar the contract gives money: ASCII digits, then optionally a
//! point and one to [`SCALE_MAX`] more digits, below 10^18, nothing else
//! (no sign, exponent, separator, space or other script's digits). An
//! accepted amount is exactly the written value, never rounded.

use mercato_engine::{Decimal, PRODUCT_PRICE_SCALE_MAX};
use mercato_server::fuzzing::parse_money;

/// Decimal places the store keeps.
const SCALE_MAX: usize = PRODUCT_PRICE_SCALE_MAX as usize;
/// Digits before the point, leading zeros aside: amounts stay below 10^18.
const INTEGER_DIGITS_MAX: usize = 18;

/// The body: the input as text (invalid UTF-8 cannot be a JSON string).
pub fn run(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
}

fn check(text: &str) {
    match (parse_money(text), model(text)) {
        (Ok(parsed), Some(hundredths)) => {
            let expected = Decimal::from_i128_with_scale(hundredths, SCALE_MAX as u32);
            assert_eq!(parsed, expected, "{text:?} parsed to another value");
            assert!(
                parsed.scale() <= PRODUCT_PRICE_SCALE_MAX,
                "{text:?} parsed with scale {}",
                parsed.scale()
            );
        }
        (Err(_), None) => {}
        (Ok(parsed), None) => panic!("{text:?} was accepted as {parsed}; the grammar refuses it"),
        (Err(message), Some(hundredths)) => {
            panic!("{text:?} was refused ({message}); the grammar reads {hundredths} hundredths")
        }
    }
}

/// The reference model: the amount in hundredths, or `None` when `text`
/// is not money.
fn model(text: &str) -> Option<i128> {
    let (integer, fraction) = match text.find('.') {
        Some(point) => (&text[..point], Some(&text[point + 1..])),
        None => (text, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if !digits(integer) {
        return None;
    }
    let fraction = match fraction {
        None => "",
        Some(fraction) if digits(fraction) && fraction.len() <= SCALE_MAX => fraction,
        Some(_) => return None,
    };
    let significant = integer.trim_start_matches('0');
    if significant.len() > INTEGER_DIGITS_MAX {
        return None;
    }
    let mut hundredths: i128 = 0;
    for byte in significant.bytes() {
        hundredths = hundredths * 10 + i128::from(byte - b'0');
    }
    let mut scale = 0;
    for byte in fraction.bytes() {
        hundredths = hundredths * 10 + i128::from(byte - b'0');
        scale += 1;
    }
    while scale < SCALE_MAX {
        hundredths *= 10;
        scale += 1;
    }
    Some(hundredths)
}
