//! Signed webhooks: the contract's `Mercato-Signature` scheme.
//!
//! A gateway signs each webhook with a secret it shares with the server:
//! `Mercato-Signature: t=UNIX_SECONDS,v1=HEX`, where HEX is
//! HMAC-SHA256(secret, `t` + `"."` + raw body). The time is inside the MAC,
//! so an old delivery cannot be replayed under a fresh `t`, and the receiver
//! refuses a `t` more than [`SIGNATURE_TOLERANCE`] away from its own clock,
//! either way. Several `v1` values may be given (a sender rotating its
//! secret signs with both) and any one matching is enough, as in Stripe's
//! scheme; keys other than `t` and `v1` (a `v0`, a later scheme) are
//! skipped. The MAC is compared in constant time, and checked before the
//! time so that a forgery is reported as one whatever its `t`.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

use crate::ids::Timestamp;

/// The header carrying a webhook's signature.
pub const SIGNATURE_HEADER: &str = "Mercato-Signature";
/// How far a webhook's `t` may be from the receiver's clock, either way.
pub const SIGNATURE_TOLERANCE: Duration = Duration::from_secs(300);
/// The longest signature header read; a longer one is malformed.
const SIGNATURE_HEADER_LENGTH_MAX: usize = 1_024;
/// The most `v1` values one header may carry.
const SIGNATURE_VALUES_MAX: usize = 8;
/// The most digits of `t`: enough for any `u64`.
const TIMESTAMP_DIGITS_MAX: usize = 20;
/// Bytes of an HMAC-SHA256.
const MAC_BYTES: usize = 32;

/// Why a webhook's signature was refused. Every case is HTTP 401
/// `invalid_signature`; the variants say why, for the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The request has no signature header.
    #[error("the webhook has no Mercato-Signature header")]
    Missing,
    /// The header is not `t=UNIX_SECONDS,v1=HEX[,v1=HEX...]`.
    #[error("malformed Mercato-Signature header: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No signature in the header matches the body and time: a forgery, a
    /// tampered body, or another secret.
    #[error("the webhook's signature does not match")]
    Mismatch,
    /// Correctly signed, but `t` is more than [`SIGNATURE_TOLERANCE`] away
    /// from now: a replay, or a badly wrong clock.
    #[error("the webhook's signature is stale")]
    Stale,
}

impl SignatureError {
    /// The stable code of every signature refusal: `invalid_signature`.
    pub fn code(&self) -> &'static str {
        "invalid_signature"
    }
}

/// The secret a gateway signs webhooks with and the server checks them
/// with. Its `Debug` form never shows it.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// A secret of these bytes (the server uses the text it was given or
    /// generated, as bytes).
    ///
    /// # Panics
    ///
    /// If `secret` is empty: a webhook signed with an empty key proves
    /// nothing.
    pub fn new(secret: impl Into<Vec<u8>>) -> WebhookSecret {
        let key = secret.into();
        assert!(!key.is_empty(), "a webhook secret must not be empty");
        WebhookSecret { key }
    }

    /// The `Mercato-Signature` header value for `body` sent at `time`
    /// (whole seconds are signed).
    pub fn sign(&self, body: &[u8], time: Timestamp) -> String {
        let seconds = (time.as_millis() / 1_000).to_string();
        let mac = self.mac(&seconds, body);
        format!("t={seconds},v1={}", hex::encode(mac))
    }

    /// Checks `header` (the `Mercato-Signature` value, `None` when absent)
    /// against `body` at time `now`, in constant time.
    pub fn verify(
        &self,
        header: Option<&str>,
        body: &[u8],
        now: Timestamp,
    ) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let parsed = parse_header(header)?;
        let expected = self.mac(parsed.seconds_text, body);
        let mut matched = Choice::from(0);
        // No early exit: every candidate is compared whatever the others gave.
        for candidate in &parsed.signatures {
            matched |= candidate.ct_eq(&expected);
        }
        if !bool::from(matched) {
            return Err(SignatureError::Mismatch);
        }
        let now_seconds = now.as_millis() / 1_000;
        if now_seconds.abs_diff(parsed.seconds) > SIGNATURE_TOLERANCE.as_secs() {
            return Err(SignatureError::Stale);
        }
        Ok(())
    }

    /// HMAC-SHA256 of `seconds_text + "." + body`, over `t` exactly as
    /// written in the header.
    fn mac(&self, seconds_text: &str, body: &[u8]) -> [u8; MAC_BYTES] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(seconds_text.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

struct ParsedHeader<'a> {
    seconds: u64,
    /// `t` as written, which is what was signed.
    seconds_text: &'a str,
    signatures: Vec<[u8; MAC_BYTES]>,
}

fn parse_header(header: &str) -> Result<ParsedHeader<'_>, SignatureError> {
    let malformed = |reason| Err(SignatureError::Malformed { reason });
    if header.len() > SIGNATURE_HEADER_LENGTH_MAX {
        return malformed("too long");
    }
    let mut time: Option<(u64, &str)> = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            return malformed("every item must be key=value");
        };
        match key {
            "t" => {
                if time.is_some() {
                    return malformed("more than one t");
                }
                if value.is_empty()
                    || value.len() > TIMESTAMP_DIGITS_MAX
                    || !value.bytes().all(|byte| byte.is_ascii_digit())
                {
                    return malformed("t must be Unix seconds");
                }
                let Ok(seconds) = value.parse::<u64>() else {
                    return malformed("t must be Unix seconds");
                };
                time = Some((seconds, value));
            }
            "v1" => {
                if signatures.len() == SIGNATURE_VALUES_MAX {
                    return malformed("too many v1 values");
                }
                let mut signature = [0_u8; MAC_BYTES];
                if hex::decode_to_slice(value, &mut signature).is_err() {
                    return malformed("v1 must be 64 hexadecimal digits");
                }
                signatures.push(signature);
            }
            _ => {}
        }
    }
    let Some((seconds, seconds_text)) = time else {
        return malformed("no t");
    };
    if signatures.is_empty() {
        return malformed("no v1");
    }
    assert!(signatures.len() <= SIGNATURE_VALUES_MAX);
    Ok(ParsedHeader {
        seconds,
        seconds_text,
        signatures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_764_000_000_000);
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment.succeeded","payment_id":"0199"}"#;

    fn secret() -> WebhookSecret {
        WebhookSecret::new("whsec_test_secret")
    }

    fn malformed(header: &str) -> Option<&'static str> {
        match secret().verify(Some(header), BODY, NOW) {
            Err(SignatureError::Malformed { reason }) => Some(reason),
            _ => None,
        }
    }

    #[test]
    fn a_signed_body_verifies() {
        let header = secret().sign(BODY, NOW);
        assert!(header.starts_with("t=1764000000,v1="));
        assert_eq!(secret().verify(Some(&header), BODY, NOW), Ok(()));
    }

    #[test]
    fn the_signature_is_the_contracts_hmac() {
        // HMAC-SHA256(secret, "1764000000." + body), computed independently.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_test_secret").unwrap();
        mac.update(b"1764000000.");
        mac.update(BODY);
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(
            secret().sign(BODY, NOW),
            format!("t=1764000000,v1={expected}")
        );
    }

    #[test]
    fn another_secret_is_a_mismatch() {
        let header = WebhookSecret::new("another").sign(BODY, NOW);
        assert_eq!(
            secret().verify(Some(&header), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_tampered_body_is_a_mismatch() {
        let header = secret().sign(BODY, NOW);
        let tampered = String::from_utf8(BODY.to_vec())
            .unwrap()
            .replace("succeeded", "failed");
        assert_eq!(
            secret().verify(Some(&header), tampered.as_bytes(), NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_changed_time_is_a_mismatch() {
        let header = secret().sign(BODY, NOW);
        let moved = header.replace("t=1764000000", "t=1764000001");
        assert_eq!(
            secret().verify(Some(&moved), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_tolerance_is_300_seconds_both_ways() {
        let header = secret().sign(BODY, NOW);
        let at = |seconds: i64| Timestamp(NOW.0.checked_add_signed(seconds * 1_000).unwrap());
        assert_eq!(secret().verify(Some(&header), BODY, at(300)), Ok(()));
        assert_eq!(secret().verify(Some(&header), BODY, at(-300)), Ok(()));
        assert_eq!(
            secret().verify(Some(&header), BODY, at(301)),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            secret().verify(Some(&header), BODY, at(-301)),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn a_forgery_with_an_old_time_is_a_mismatch_not_stale() {
        let header = WebhookSecret::new("another").sign(BODY, Timestamp(0));
        assert_eq!(
            secret().verify(Some(&header), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_missing_header_is_refused() {
        assert_eq!(
            secret().verify(None, BODY, NOW),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let valid = secret().sign(BODY, NOW);
        let signature = valid.split_once(",v1=").unwrap().1.to_owned();
        assert_eq!(malformed(""), Some("every item must be key=value"));
        assert_eq!(malformed(&format!("v1={signature}")), Some("no t"));
        assert_eq!(malformed("t=1764000000"), Some("no v1"));
        assert_eq!(
            malformed(&format!("t=1764000000,v0={signature}")),
            Some("no v1")
        );
        assert_eq!(
            malformed(&format!("t=soon,v1={signature}")),
            Some("t must be Unix seconds")
        );
        assert_eq!(
            malformed(&format!("t=-5,v1={signature}")),
            Some("t must be Unix seconds")
        );
        assert_eq!(
            malformed(&format!("t=99999999999999999999,v1={signature}")),
            Some("t must be Unix seconds")
        );
        assert_eq!(
            malformed(&format!("t=1764000000,t=1764000000,v1={signature}")),
            Some("more than one t")
        );
        assert_eq!(
            malformed("t=1764000000,v1=zz"),
            Some("v1 must be 64 hexadecimal digits")
        );
        assert_eq!(
            malformed(&format!("t=1764000000,v1={}", "g".repeat(64))),
            Some("v1 must be 64 hexadecimal digits")
        );
        assert_eq!(
            malformed(&format!("t=1764000000,v1={}", &signature[..62])),
            Some("v1 must be 64 hexadecimal digits")
        );
        assert_eq!(
            malformed(&format!("t=1764000000,v1={signature}00")),
            Some("v1 must be 64 hexadecimal digits")
        );
        assert_eq!(
            malformed(&format!("{valid},")),
            Some("every item must be key=value")
        );
        assert_eq!(
            malformed(&format!(
                "{valid},{}",
                "x".repeat(SIGNATURE_HEADER_LENGTH_MAX)
            )),
            Some("too long")
        );
        let many = format!("t=1764000000{}", format!(",v1={signature}").repeat(9));
        assert_eq!(malformed(&many), Some("too many v1 values"));
    }

    #[test]
    fn any_matching_v1_is_enough() {
        let valid = secret().sign(BODY, NOW);
        let signature = valid.split_once(",v1=").unwrap().1;
        let other = "0".repeat(64);
        let first = format!("t=1764000000,v1={signature},v1={other}");
        let last = format!("t=1764000000,v1={other},v1={signature}");
        let none = format!("t=1764000000,v1={other},v1={}", "1".repeat(64));
        assert_eq!(secret().verify(Some(&first), BODY, NOW), Ok(()));
        assert_eq!(secret().verify(Some(&last), BODY, NOW), Ok(()));
        assert_eq!(
            secret().verify(Some(&none), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn unknown_keys_and_spaces_are_skipped() {
        let valid = secret().sign(BODY, NOW);
        let signature = valid.split_once(",v1=").unwrap().1;
        let header = format!("t=1764000000, v0=abc, v1={signature}");
        assert_eq!(secret().verify(Some(&header), BODY, NOW), Ok(()));
    }

    #[test]
    fn t_is_checked_as_written() {
        // Leading zeros change the signed text, so a signature over
        // "1764000000." does not cover "01764000000.".
        let valid = secret().sign(BODY, NOW);
        let padded = valid.replace("t=", "t=0");
        assert_eq!(
            secret().verify(Some(&padded), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_secret_is_not_printed() {
        assert_eq!(format!("{:?}", secret()), "WebhookSecret(..)");
    }
}
