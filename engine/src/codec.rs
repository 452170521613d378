//! The one place that turns records into bytes and back.
//!
//! Every stored value is `[record version byte][bincode 2 body]`. Moving to
//! another format (postcard, wincode) touches this file only; a record whose
//! layout changes gets a new version byte and a decoder for the old one.

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The most bytes one record's strings may claim while it is decoded.
/// bincode allocates a string by the length written before it, so without
/// a limit a damaged length makes a read allocate gigabytes (or abort)
/// before it finds the record too short. Far above any record the engine
/// writes: their strings are bounded by the domains' `*_LENGTH_MAX`, the
/// largest a notification's bodies of a few hundred KiB.
pub(crate) const RECORD_STRINGS_BYTES_MAX: usize = 16 << 20;

const _: () = assert!(crate::NOTIFICATION_BODY_LENGTH_MAX * 4 <= RECORD_STRINGS_BYTES_MAX);

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

fn decode_config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<RECORD_STRINGS_BYTES_MAX>,
> {
    config().with_limit::<RECORD_STRINGS_BYTES_MAX>()
}

/// Encodes `record` behind its version byte.
pub(crate) fn encode<T: Serialize>(version: u8, record: &T) -> Vec<u8> {
    let mut bytes = vec![version];
    // Encoding into a Vec fails only for types serde cannot describe, which
    // would be a programming error caught by every test that writes.
    bincode::serde::encode_into_std_write(record, &mut bytes, config())
        .expect("records always encode");
    bytes
}

/// Decodes a record written by [`encode`] with the version `expected`; a
/// record of `&str` fields borrows them from `bytes`.
pub(crate) fn decode<'a, T: Deserialize<'a>>(
    what: &'static str,
    expected: u8,
    bytes: &'a [u8],
) -> Result<T, Error> {
    let Some((&version, body)) = bytes.split_first() else {
        return Err(Error::corrupt(what, "empty record"));
    };
    if version != expected {
        return Err(Error::corrupt(
            what,
            format!("record version {version}, this build reads version {expected}"),
        ));
    }
    let (record, read) = bincode::serde::borrow_decode_from_slice(body, decode_config())
        .map_err(|error| Error::corrupt(what, error.to_string()))?;
    if read != body.len() {
        return Err(Error::corrupt(what, "trailing bytes after the record"));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        name: String,
        price: Decimal,
    }

    #[test]
    fn round_trips_with_its_version() {
        let sample = Sample {
            name: "tea".into(),
            price: "19.99".parse().unwrap(),
        };
        let bytes = encode(3, &sample);
        assert_eq!(bytes[0], 3);
        assert_eq!(decode::<Sample>("sample", 3, &bytes).unwrap(), sample);
    }

    #[test]
    fn refuses_other_versions_and_garbage() {
        let bytes = encode(1, &7_u32);
        assert!(decode::<u32>("n", 2, &bytes).is_err());
        assert!(decode::<u32>("n", 1, &[]).is_err());
        assert!(decode::<Sample>("sample", 1, &[1, 0xff, 0xff]).is_err());
    }

    #[test]
    fn a_damaged_length_is_refused_before_anything_is_allocated() {
        // Found by the record_decode fuzz target: a string's length of
        // ~4 GiB made the read allocate it before finding the record short.
        let bytes = [1, 252, 255, 211, 249, 131];
        assert!(decode::<Sample>("sample", 1, &bytes).is_err());
        let long = Sample {
            name: "x".repeat(RECORD_STRINGS_BYTES_MAX + 1),
            price: Decimal::ONE,
        };
        assert!(decode::<Sample>("sample", 1, &encode(1, &long)).is_err());
        let largest = Sample {
            name: "x".repeat(RECORD_STRINGS_BYTES_MAX / 2),
            price: Decimal::ONE,
        };
        assert_eq!(
            decode::<Sample>("sample", 1, &encode(1, &largest)).unwrap(),
            largest
        );
    }
}
