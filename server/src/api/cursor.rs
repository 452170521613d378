//! Page cursors: a letter naming the list, then the position in it as
//! fixed-width lowercase hex (`p000000000000002a`). Every string of that
//! shape is a position, so every cursor the document's pattern allows is
//! one the server takes, whether or not it issued it.

use crate::problem::ApiError;

/// A list's cursor: its letter and the hex digits of its positions.
pub(crate) struct Cursor {
    tag: char,
    width: usize,
}

/// Products, after a product id.
pub(crate) const PRODUCTS: Cursor = Cursor {
    tag: 'p',
    width: 16,
};
/// A user's orders, before an order id.
pub(crate) const ORDERS: Cursor = Cursor {
    tag: 'o',
    width: 32,
};
/// Notifications, before a notification id.
pub(crate) const NOTIFICATIONS: Cursor = Cursor {
    tag: 'n',
    width: 32,
};

impl Cursor {
    pub(crate) fn encode(&self, position: u128) -> String {
        format!("{}{position:0width$x}", self.tag, width = self.width)
    }

    pub(crate) fn decode(&self, text: &str) -> Result<u128, ApiError> {
        text.strip_prefix(self.tag)
            .filter(|hex| {
                hex.len() == self.width
                    && hex
                        .bytes()
                        .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
            })
            .and_then(|hex| u128::from_str_radix(hex, 16).ok())
            .ok_or_else(|| {
                ApiError::invalid(
                    "cursor",
                    format!(
                        "not a cursor: expected {:?} and {} lowercase hex digits, as a page's next_cursor",
                        self.tag, self.width
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_shapes() {
        assert_eq!(PRODUCTS.encode(42), "p000000000000002a");
        assert_eq!(PRODUCTS.decode("p000000000000002a").unwrap(), 42);
        assert_eq!(
            PRODUCTS.decode(&PRODUCTS.encode(u64::MAX.into())).unwrap(),
            u64::MAX.into()
        );
        let order = u128::MAX - 7;
        assert_eq!(ORDERS.decode(&ORDERS.encode(order)).unwrap(), order);
        for bad in [
            "",
            "p",
            "0",
            "p2a",
            "P000000000000002a",
            "p000000000000002A",
            "o000000000000002a",
            "p+00000000000002a",
            "p000000000000002a0",
        ] {
            assert!(PRODUCTS.decode(bad).is_err(), "{bad:?}");
        }
    }
}
