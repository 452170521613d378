//! Who is calling: the admin token, and customer tokens minted by an admin.
//!
//! Customer tokens are stateless: `mct_<payload>.<signature>`, where the
//! payload (base64url) is the expiry in Unix milliseconds (8 bytes,
//! big-endian) followed by the user id, and the signature (base64url) is
//! HMAC-SHA256 of the payload under a secret kept in the data directory.
//! Nothing about them needs to be written per token; rotating the secret
//! file revokes them all. Comparisons are constant time.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use mercato_engine::Timestamp;
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::problem::ApiError;
use crate::state::AppState;

/// The file in the data directory holding the generated admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin_token";
/// The file in the data directory holding the customer-token secret.
const TOKEN_SECRET_FILE: &str = "token_secret";
const CUSTOMER_TOKEN_PREFIX: &str = "mct_";
/// The longest bearer token the server reads.
const TOKEN_LENGTH_MAX: usize = 1_024;

/// A caller that presented a valid token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// The admin: may do everything.
    Admin,
    /// A customer, bound to one user id.
    Customer {
        /// The user the token was minted for.
        user_id: String,
    },
}

impl Principal {
    /// True when this caller may act on `user_id`'s orders and payments:
    /// the admin always, a customer only on their own.
    pub(crate) fn may_act_for(&self, user_id: &str) -> bool {
        match self {
            Principal::Admin => true,
            Principal::Customer { user_id: own } => own == user_id,
        }
    }
}

/// Checks tokens and mints customer tokens.
pub struct Auth {
    admin_token: String,
    secret: Vec<u8>,
}

/// Where the admin token came from, for the startup message.
#[derive(Debug, Clone)]
pub enum AdminTokenSource {
    /// From `MERCATO_ADMIN_TOKEN` (or the caller).
    Given,
    /// Generated on first start and stored in this file.
    File(PathBuf),
}

impl Auth {
    /// Loads the secrets from `data_dir`, creating them on first start. With
    /// no `admin_token` given, the one stored in `data_dir/admin_token` is
    /// used (generated and written with mode 0600 if missing).
    pub fn load_or_create(
        data_dir: &Path,
        admin_token: Option<String>,
    ) -> std::io::Result<(Auth, AdminTokenSource)> {
        fs::create_dir_all(data_dir)?;
        let secret_hex = read_or_create_secret(&data_dir.join(TOKEN_SECRET_FILE))?;
        let secret = hex::decode(secret_hex.trim()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the token secret file is not hex",
            )
        })?;
        let (admin_token, source) = match admin_token {
            Some(token) => (token, AdminTokenSource::Given),
            None => {
                let path = data_dir.join(ADMIN_TOKEN_FILE);
                let token = read_or_create_secret(&path)?.trim().to_owned();
                (token, AdminTokenSource::File(path))
            }
        };
        if admin_token.len() < 16 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the admin token must be at least 16 characters",
            ));
        }
        Ok((
            Auth {
                admin_token,
                secret,
            },
            source,
        ))
    }

    /// Auth with the given admin token and secret (for embedding and tests).
    pub fn new(admin_token: String, secret: Vec<u8>) -> Auth {
        Auth {
            admin_token,
            secret,
        }
    }

    /// Mints a customer token for `user_id`, valid until `expires_at`.
    pub fn mint(&self, user_id: &str, expires_at: Timestamp) -> String {
        let mut payload = expires_at.0.to_be_bytes().to_vec();
        payload.extend_from_slice(user_id.as_bytes());
        let signature = self.sign(&payload);
        format!(
            "{CUSTOMER_TOKEN_PREFIX}{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// Who a bearer token belongs to, at time `now`.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Principal, ApiError> {
        if bool::from(token.as_bytes().ct_eq(self.admin_token.as_bytes())) {
            return Ok(Principal::Admin);
        }
        let unknown = || ApiError::unauthorized("unknown or malformed token");
        let rest = token
            .strip_prefix(CUSTOMER_TOKEN_PREFIX)
            .ok_or_else(unknown)?;
        let (payload, signature) = rest.split_once('.').ok_or_else(unknown)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| unknown())?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| unknown())?;
        let mut mac = self.mac();
        mac.update(&payload);
        mac.verify_slice(&signature).map_err(|_| unknown())?;
        if payload.len() <= 8 {
            return Err(unknown());
        }
        let (expiry, user_id) = payload.split_at(8);
        let expires_at = u64::from_be_bytes(expiry.try_into().expect("eight bytes"));
        if expires_at <= now.0 {
            return Err(ApiError::unauthorized("the token has expired"));
        }
        let user_id = String::from_utf8(user_id.to_vec()).map_err(|_| unknown())?;
        Ok(Principal::Customer { user_id })
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length")
    }

    fn sign(&self, payload: &[u8]) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }
}

/// Reads a secret file, or creates it (mode 0600) with 32 random bytes in hex.
pub(crate) fn read_or_create_secret(path: &Path) -> std::io::Result<String> {
    match fs::read_to_string(path) {
        Ok(text) => return Ok(text),
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        Err(_) => {}
    }
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let text = hex::encode(bytes);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(text)
}

/// The bearer token of a request, if it has one. The scheme is
/// case-insensitive; more than one `Authorization` header is refused.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Result<Option<&str>, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::unauthorized("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    let (_, token) = value
        .trim()
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer TOKEN"))?;
    let token = token.trim();
    if token.is_empty() || token.len() > TOKEN_LENGTH_MAX {
        return Err(ApiError::unauthorized("malformed bearer token"));
    }
    Ok(Some(token))
}

/// Who is calling, when the request carries a valid token; `None` for an
/// anonymous request or a bad token (which the route itself refuses).
pub(crate) fn principal(headers: &axum::http::HeaderMap, state: &AppState) -> Option<Principal> {
    let token = bearer(headers).ok()??;
    let now = state.engine.config().clock.now();
    state.auth.verify(token, now).ok()
}

/// A request's caller, once its token was verified (put in the request's
/// extensions so that the token is verified once per request).
#[derive(Clone, Debug)]
pub(crate) struct Verified(pub(crate) Principal);

/// Any caller with a valid token.
pub(crate) struct Caller(pub(crate) Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The idempotency middleware may have verified the token already.
        if let Some(Verified(principal)) = parts.extensions.get::<Verified>() {
            return Ok(Caller(principal.clone()));
        }
        let token = bearer(&parts.headers)?.ok_or_else(|| {
            ApiError::unauthorized("this route needs Authorization: Bearer TOKEN")
        })?;
        let now = state.engine.config().clock.now();
        state.auth.verify(token, now).map(Caller)
    }
}

/// The admin, and only the admin.
pub(crate) struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await?.0 {
            Principal::Admin => Ok(Admin),
            Principal::Customer { .. } => Err(ApiError::forbidden()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new("admin-token-0123456789".into(), b"secret".to_vec())
    }

    #[test]
    fn customer_tokens_verify_until_they_expire() {
        let auth = auth();
        let token = auth.mint("alice", Timestamp(2_000));
        assert_eq!(
            auth.verify(&token, Timestamp(1_999)).unwrap(),
            Principal::Customer {
                user_id: "alice".into()
            }
        );
        assert_eq!(
            auth.verify(&token, Timestamp(2_000)).unwrap_err().code(),
            "unauthorized"
        );
        assert_eq!(
            auth.verify("admin-token-0123456789", Timestamp(0)).unwrap(),
            Principal::Admin
        );
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let auth = auth();
        let token = auth.mint("alice", Timestamp(u64::MAX));
        let other = Auth::new("admin-token-0123456789".into(), b"other".to_vec());
        assert!(other.verify(&token, Timestamp(0)).is_err());
        let forged = token.replace("mct_", "mct_A");
        assert!(auth.verify(&forged, Timestamp(0)).is_err());
        assert!(auth.verify("mct_", Timestamp(0)).is_err());
        assert!(auth.verify("nonsense", Timestamp(0)).is_err());
    }
}
