//! The pages: the storefront at `/` and the operator's console at
//! `/admin`, served from files embedded in the binary (`server/ui/`), so a
//! fresh `cargo build` serves them with nothing fetched from anywhere.
//!
//! Each page is a small HTML document that loads plain ES modules from
//! `/ui/`; the modules call the v1 API with the visitor's token and follow
//! server-sent event streams for live parts. Nothing is inline, so the
//! pages carry a strict Content Security Policy: scripts, styles and
//! connections from this origin only, no framing.
//!
//! The one thing rendered per request is whether the demo sign-in is on
//! (`data-demo-sign-in` on the storefront's `<body>`), so that the sign-in
//! page says at once that the shop signs people in elsewhere instead of
//! offering a form that can only be refused.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::problem::ApiError;
use crate::state::AppState;

/// The policy of every page and asset: this origin only, nothing inline.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

const SHOP_HTML: &str = include_str!("../ui/shop.html");
/// The storefront's `<body>` as written in `shop.html`: the demo sign-in
/// flag is filled in per request.
const SHOP_BODY: &str = "<body data-demo-sign-in=\"on\">";
const ADMIN_HTML: &str = include_str!("../ui/admin.html");

/// The embedded assets under `/ui/`: name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../ui/app.css"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/api.js"),
    ),
    (
        "shop.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/shop.js"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/admin.js"),
    ),
];

/// The storefront's paths (one page each; the module renders by path).
const SHOP_PATHS: &[&str] = &[
    "/",
    "/products/{id}",
    "/cart",
    "/checkout",
    "/orders",
    "/orders/{id}",
    "/sign-in",
];

/// The console's paths.
const ADMIN_PATHS: &[&str] = &[
    "/admin",
    "/admin/orders",
    "/admin/orders/{id}",
    "/admin/events",
];

/// The pages' routes, merged into the API router (outside the OpenAPI
/// document: they are pages, not API).
pub(crate) fn routes() -> Router<AppState> {
    let mut router = Router::new().route("/ui/{file}", get(asset));
    for path in SHOP_PATHS {
        router = router.route(path, get(shop_page));
    }
    for path in ADMIN_PATHS {
        router = router.route(path, get(|| async { page(ADMIN_HTML.to_owned()) }));
    }
    router
}

async fn shop_page(State(state): State<AppState>) -> Response {
    if state.is_demo_sign_in_enabled() {
        page(SHOP_HTML.to_owned())
    } else {
        page(SHOP_HTML.replacen(SHOP_BODY, "<body data-demo-sign-in=\"off\">", 1))
    }
}

fn page(html: String) -> Response {
    with_page_headers(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, content)) => with_page_headers(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, *content_type)],
                *content,
            )
                .into_response(),
        ),
        None => ApiError::not_found(format!("no asset {file}")).into_response(),
    }
}

fn with_page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Assets change with the binary; revalidate rather than keep stale ones.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_storefront_has_the_body_the_flag_is_rendered_into() {
        assert_eq!(SHOP_HTML.matches(SHOP_BODY).count(), 1);
    }
}
