//! Security headers on every answer of the HTTP server (pages, assets, API, WebSocket
//! upgrades), set where a handler did not set its own.
//!
//! - `Content-Security-Policy`: scripts, styles and connections only from this origin (the
//!   client is plain ES modules and one stylesheet, nothing inline; `'self'` covers `ws:`/`wss:`
//!   to the same host), images also as `data:`/`blob:` (avatars, snapshots), no plugins, no
//!   `<base>` rewriting, forms only to this origin, and no framing by any other page
//!   (`frame-ancestors 'none'`: a call page cannot be laid under another site's clicks).
//! - `X-Frame-Options: DENY`: the same for browsers without `frame-ancestors`.
//! - `X-Content-Type-Options: nosniff`: an upload or an API answer is never run as a script.
//! - `Referrer-Policy: no-referrer`: a room's address holds its join code; links followed from a
//!   call page must not hand it to another site.

use axum::extract::Request;
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

/// The Content-Security-Policy of every answer.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the headers to every answer of `router`.
pub fn layer<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(axum::middleware::from_fn(add))
}

async fn add(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (CONTENT_SECURITY_POLICY, CSP),
        (X_FRAME_OPTIONS, "DENY"),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "no-referrer"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn every_answer_gets_the_headers_unless_it_set_its_own() {
        let app = layer(Router::new().route("/", get(|| async { "page" })).route(
            "/own",
            get(|| async { ([(REFERRER_POLICY, "same-origin")], "own") }),
        ));
        for (path, referrer) in [
            ("/", "no-referrer"),
            ("/own", "same-origin"),
            ("/missing", "no-referrer"),
        ] {
            let response = app
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let h = response.headers();
            assert_eq!(h[CONTENT_SECURITY_POLICY], CSP, "{path}");
            assert!(CSP.contains("frame-ancestors 'none'") && !CSP.contains("unsafe-inline"));
            assert_eq!(h[X_FRAME_OPTIONS], "DENY");
            assert_eq!(h[X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(h[REFERRER_POLICY], referrer, "{path}");
        }
    }
}
