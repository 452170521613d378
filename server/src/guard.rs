//! What every answer carries and every request must respect, before any
//! route: security headers (`X-Content-Type-Options: nosniff`, and a
//! Content Security Policy on `/docs`), and bounds on the URI and the
//! headers answered as problem documents (`414 uri_too_long`, `431
//! headers_too_large`) rather than the framework's bare statuses.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::problem::ApiError;

/// The longest request target (path and query), in bytes.
pub(crate) const URI_LENGTH_MAX: usize = 8 * 1024;
/// The most bytes of header names and values in one request.
pub(crate) const HEADER_BYTES_MAX: usize = 16 * 1024;
/// The most headers in one request.
pub(crate) const HEADERS_MAX: usize = 100;

/// The policy of the API reference: everything from this origin, inline
/// styles and scripts (Swagger UI's page uses them), no framing.
const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
     script-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'";

/// The middleware.
pub(crate) async fn guard(request: Request, next: Next) -> Response {
    let docs = request.uri().path().starts_with("/docs");
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    let mut response = if target > URI_LENGTH_MAX {
        ApiError::new(
            "uri_too_long",
            format!("the request target is longer than {URI_LENGTH_MAX} bytes"),
        )
        .into_response()
    } else if request.headers().len() > HEADERS_MAX
        || request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum::<usize>()
            > HEADER_BYTES_MAX
    {
        ApiError::new(
            "headers_too_large",
            format!("more than {HEADERS_MAX} headers or {HEADER_BYTES_MAX} bytes of them"),
        )
        .into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if docs {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

/// An error message from a parser, with Rust's type names put in words a
/// client knows (`u64` → "a non-negative integer", `struct CreateProduct`
/// → "an object").
pub(crate) fn scrub(message: &str) -> String {
    let mut words = Vec::new();
    let mut tokens = message.split(' ').peekable();
    while let Some(token) = tokens.next() {
        let (core, trail) = split_trailing_punctuation(token);
        let bare = core.trim_matches('`');
        let replaced = match bare {
            "struct" | "enum" if tokens.peek().is_some() => {
                let next = tokens.next().unwrap_or_default();
                let (_, trail) = split_trailing_punctuation(next);
                words.push(format!(
                    "{}{trail}",
                    if bare == "struct" {
                        "an object"
                    } else {
                        "one of the documented values"
                    }
                ));
                continue;
            }
            "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => Some("a non-negative integer"),
            "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => Some("an integer"),
            "f32" | "f64" => Some("a number"),
            "Uuid" | "UUID" => Some("a UUID"),
            "Decimal" => Some("a decimal string"),
            "String" | "str" => Some("a string"),
            "bool" => Some("true or false"),
            "Vec" | "sequence" => Some("an array"),
            "map" => Some("an object"),
            _ => None,
        };
        match replaced {
            Some(words_for_it) => {
                // "to a `u64`" becomes "to a non-negative integer".
                if words_for_it.starts_with('a')
                    && words
                        .last()
                        .is_some_and(|last: &String| last == "a" || last == "an")
                {
                    words.pop();
                }
                words.push(format!("{words_for_it}{trail}"));
            }
            None => words.push(token.to_owned()),
        }
    }
    words.join(" ")
}

fn split_trailing_punctuation(token: &str) -> (&str, &str) {
    let end = token.trim_end_matches([',', '.', ';', ':', ')']).len();
    token.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_become_words() {
        assert_eq!(
            scrub("invalid type: string \"x\", expected u64 at line 1 column 9"),
            "invalid type: string \"x\", expected a non-negative integer at line 1 column 9"
        );
        assert_eq!(
            scrub("invalid type: integer `3`, expected struct CreateProduct"),
            "invalid type: integer `3`, expected an object"
        );
        assert_eq!(
            scrub("Cannot parse `abc` to a `u64`"),
            "Cannot parse `abc` to a non-negative integer"
        );
        assert_eq!(
            scrub("unknown variant `x`, expected enum Kind."),
            "unknown variant `x`, expected one of the documented values."
        );
    }
}
