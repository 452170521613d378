//! Newtype identifiers and the engine's timestamp.
//!
//! Ids are newtypes so a product id can never be passed where an order id is
//! expected. Order, reservation and cart ids are UUID v7, so they sort by
//! creation time; product ids are plain `u64`s because storefronts already
//! have them; user ids are the storefront's own strings, checked once here.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

/// A product's id: an unsigned 64-bit integer, never 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProductId(pub u64);

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The id as a 128-bit integer, the form used in storage keys.
            pub fn as_u128(&self) -> u128 {
                self.0.as_u128()
            }

            /// The id stored as a 128-bit integer key.
            pub fn from_u128(value: u128) -> Self {
                Self(Uuid::from_u128(value))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(text).map(Self)
            }
        }
    };
}

uuid_id!(
    /// An order's id (UUID v7). A reservation is keyed by the order it holds stock for.
    OrderId
);
uuid_id!(
    /// A reservation's own id (UUID v7), assigned by the engine.
    ReservationId
);
uuid_id!(
    /// A payment's id (UUID v7), assigned by the engine; also the
    /// idempotency key of its charge at the gateway.
    PaymentId
);
uuid_id!(
    /// A cart's id (UUID v7), assigned by the engine.
    CartId
);
uuid_id!(
    /// A notification's id (UUID v7), assigned by the engine.
    NotificationId
);

/// The longest user id, in characters.
pub const USER_ID_LENGTH_MAX: usize = 255;

/// A user's id, as the storefront names its users: 1 to
/// [`USER_ID_LENGTH_MAX`] characters, none of them a control character.
/// Only [`UserId::new`] makes one, so every `UserId` is valid.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    /// Checks `id`; [`Error::InvalidInput`] naming `user_id` when it is
    /// empty, too long or holds a control character.
    pub fn new(id: impl Into<String>) -> Result<UserId, Error> {
        let id = id.into();
        let length = id.chars().count();
        if length == 0 || length > USER_ID_LENGTH_MAX || id.chars().any(char::is_control) {
            return Err(Error::invalid(
                "user_id",
                format!("must be 1 to {USER_ID_LENGTH_MAX} characters, without control characters"),
            ));
        }
        Ok(UserId(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = Error;

    fn try_from(id: String) -> Result<UserId, Error> {
        UserId::new(id)
    }
}

impl From<UserId> for String {
    fn from(id: UserId) -> String {
        id.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A point in time: milliseconds since the Unix epoch, UTC.
///
/// Displayed as RFC 3339 (`2026-11-24T01:50:57.123Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Milliseconds since the Unix epoch.
    pub fn as_millis(&self) -> u64 {
        self.0
    }

    /// This time plus `duration`, saturating at the end of time.
    pub fn plus(self, duration: Duration) -> Timestamp {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(millis))
    }

    /// The same instant as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    /// The time formatted as RFC 3339 in UTC with millisecond precision.
    pub fn to_rfc3339(self) -> String {
        humantime::format_rfc3339_millis(self.to_system_time()).to_string()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_formats_as_rfc3339_utc() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_764_000_000_123).to_rfc3339(),
            "2025-11-24T16:00:00.123Z"
        );
    }

    #[test]
    fn uuid_ids_round_trip_through_u128_and_text() {
        let id = OrderId(Uuid::now_v7());
        assert_eq!(OrderId::from_u128(id.as_u128()), id);
        assert_eq!(id.to_string().parse::<OrderId>().unwrap(), id);
    }

    #[test]
    fn user_ids_are_checked() {
        assert_eq!(UserId::new("alice").unwrap().as_str(), "alice");
        assert!(UserId::new("é".repeat(USER_ID_LENGTH_MAX)).is_ok());
        for bad in [
            String::new(),
            "a".repeat(USER_ID_LENGTH_MAX + 1),
            "a\nb".to_owned(),
        ] {
            let error = UserId::new(bad).unwrap_err();
            assert!(matches!(error, Error::InvalidInput { ref field, .. } if field == "user_id"));
        }
    }
}
