//! The one place that turns records into bytes and back.
//!
//! Every stored value is `[record version byte][bincode 2 body]`. Moving to
//! another format (postcard, wincode) touches this file only; a record whose
//! layout changes gets a new version byte and a decoder for the old one.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
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

/// Decodes a record written by [`encode`] with the version `expected`.
pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    expected: u8,
    bytes: &[u8],
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
    let (record, read) = bincode::serde::decode_from_slice(body, config())
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
}
