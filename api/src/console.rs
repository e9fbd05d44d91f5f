//! The console at `/console`: static files embedded in the binary
//! (`api/console/`, listed by `build.rs`), a small single-page app that
//! calls the public API with the credential the person signs in with,
//! exactly as any client would (invariant 11). The server adds nothing
//! but the files and their headers:
//!
//! - `GET /console` and `/console/`: the app;
//! - `GET /console/portal/{link id}`: the same app, framed only by the
//!   origins that portal link allows (`frame-ancestors`);
//! - `GET /console/assets/{name}`: its scripts, styles and images.
//!
//! Every response carries a strict Content-Security-Policy: scripts and
//! styles from this origin only (no inline script or style), requests to
//! this origin only, images also from https (a portal's logo).

use poem::http::{header, HeaderValue};
use poem::web::Path;
use poem::{handler, Response, Route};

use crate::error::ApiError;
use crate::state::AppState;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));
}

/// The console's files: (name, media type, bytes).
pub fn assets() -> &'static [(&'static str, &'static str, &'static [u8])] {
    embedded::ASSETS
}

/// The policy for every console response, framed by `frame_ancestors`.
pub fn content_security_policy(frame_ancestors: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {frame_ancestors}"
    )
}

fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    assets()
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, media, bytes)| (*media, *bytes))
}

/// A console response: the bytes, their type and the security headers.
fn respond(media: &str, bytes: &'static [u8], frame_ancestors: &str, cache: &str) -> Response {
    let mut response = Response::builder()
        .content_type(media)
        .header(header::CACHE_CONTROL, cache)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .body(bytes);
    if let Ok(policy) = HeaderValue::from_str(&content_security_policy(frame_ancestors)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    if frame_ancestors == "'none'" {
        response
            .headers_mut()
            .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

fn not_found() -> Response {
    poem::IntoResponse::into_response(ApiError::not_found("console file"))
}

/// The app's page, framed by `frame_ancestors`. Never cached: a portal's
/// framing can change when its link is revoked.
fn page(frame_ancestors: &str) -> Response {
    match asset("index.html") {
        Some((media, bytes)) => respond(media, bytes, frame_ancestors, "no-store"),
        None => not_found(),
    }
}

#[handler]
fn console_page() -> Response {
    page("'none'")
}

#[handler]
async fn portal_page(Path(link_id): Path<String>, state: poem::web::Data<&AppState>) -> Response {
    let ancestors = crate::routes::portal::frame_ancestors(&state, &link_id).await;
    page(&ancestors)
}

#[handler]
fn console_asset(Path(name): Path<String>) -> Response {
    match asset(&name) {
        // Revalidated on each load (the files change with each release,
        // and are small); an ETag would save the bytes, not the trip.
        Some((media, bytes)) if name != "index.html" => respond(media, bytes, "'none'", "no-cache"),
        _ => not_found(),
    }
}

/// The console's routes, to nest at `/console`.
pub fn routes() -> Route {
    Route::new()
        .at("/", poem::get(console_page))
        .at("/portal/:link_id", poem::get(portal_page))
        .at("/assets/:name", poem::get(console_asset))
}
