//! Cross-site request forgery: what a state-changing request (`POST`, `PUT`, `PATCH`,
//! `DELETE`) under `/api/` must show before it is served, so a page of another site cannot
//! act with the browser's login cookie, nor log the browser in as the attacker (login CSRF).
//!
//! * Its body is JSON: `Content-Type: application/json` (`415 unsupported_media_type`
//!   otherwise), or a picture (`image/...`: the logo's upload). Neither type is one an HTML
//!   form or a cross-site `fetch` may send without the browser asking the site first. A
//!   request without a body needs none (an HTML form always sends one of its own types, and
//!   a body-less request carries nothing to forge).
//! * An `Origin` header, when present, names this site: its host (and port) is the request's
//!   `Host` (with `trust_proxy_headers`, the proxy's `X-Forwarded-Host` when it sends one), and
//!   a request that came over HTTPS has an `https` origin (`403 bad_origin` otherwise).
//!   Requests with `Authorization: Bearer` and no cookie are programs, not pages: exempt.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::http::{ApiError, ClientInfo};
use super::tokens;
use crate::coordinator::Coordinator;

/// Whether `method` changes state (and so is checked).
pub fn changes_state(method: &Method) -> bool {
    [Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(method)
}

/// Checks a state-changing request's content type and origin ([module docs](self)); `https`:
/// it came over TLS (or a trusted proxy said so). Requests that change nothing pass.
pub fn check(
    method: &Method,
    headers: &HeaderMap,
    https: bool,
    trust_proxy: bool,
) -> Result<(), ApiError> {
    if !changes_state(method) {
        return Ok(());
    }
    if !json_or_empty(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the request body as JSON, with Content-Type: application/json (a picture as image/...)",
        ));
    }
    let program = tokens::bearer(headers).is_some() && tokens::cookie(headers).is_none();
    if !program && !origin_is_ours(headers, https, trust_proxy) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_origin",
            "this request came from a page of another site",
        ));
    }
    Ok(())
}

/// `Content-Type: application/json` or `image/...` (any parameters), or no content type and
/// no body.
fn json_or_empty(headers: &HeaderMap) -> bool {
    match headers.get(header::CONTENT_TYPE) {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase())
            .is_some_and(|t| t == "application/json" || t.starts_with("image/")),
        None => {
            headers.get(header::TRANSFER_ENCODING).is_none()
                && headers
                    .get(header::CONTENT_LENGTH)
                    .is_none_or(|n| n.to_str().is_ok_and(|n| n.trim() == "0"))
        }
    }
}

/// No `Origin`, or one naming this site (see the [module docs](self)).
fn origin_is_ours(headers: &HeaderMap, https: bool, trust_proxy: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let forwarded = trust_proxy
        .then(|| text(header::HeaderName::from_static("x-forwarded-host")))
        .flatten()
        .and_then(|h| h.split(',').next_back())
        .map(str::trim);
    let (Ok(origin), Some(host)) = (origin.to_str(), forwarded.or(text(header::HOST))) else {
        return false;
    };
    let Some((scheme, origin_host)) = origin.trim().split_once("://") else {
        return false; // "null" (a sandboxed or privacy-sensitive context) and garbage
    };
    let scheme_ok = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        // A page served over plain HTTP may not act on a site reached over HTTPS.
        "http" => !https,
        _ => false,
    };
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        ":443"
    } else {
        ":80"
    };
    let bare = |h: &str| {
        h.trim_end_matches('/')
            .trim_end_matches(default_port)
            .to_string()
    };
    scheme_ok && bare(origin_host).eq_ignore_ascii_case(&bare(host))
}

/// Middleware for the coordinator's API routes: [`check`] on every request.
pub async fn guard(
    State(coordinator): State<Arc<Coordinator>>,
    request: Request,
    next: Next,
) -> Response {
    let trust_proxy = coordinator.settings().trust_proxy_headers;
    let client = ClientInfo::of(request.extensions(), request.headers(), trust_proxy);
    match check(
        request.method(),
        request.headers(),
        client.https,
        trust_proxy,
    ) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn code(method: Method, pairs: &[(&str, &str)], https: bool, proxy: bool) -> Option<String> {
        check(&method, &headers(pairs), https, proxy)
            .err()
            .map(|e| e.code)
    }

    #[test]
    fn bodies_must_be_json() {
        let json = ("content-type", "application/json; charset=utf-8");
        assert_eq!(code(Method::POST, &[json], false, false), None);
        assert_eq!(code(Method::POST, &[], false, false), None);
        assert_eq!(
            code(Method::POST, &[("content-length", "0")], false, false),
            None
        );
        for bad in [
            [("content-type", "text/plain")],
            [("content-type", "application/x-www-form-urlencoded")],
            [("content-type", "multipart/form-data; boundary=x")],
            [("content-length", "12")],
            [("transfer-encoding", "chunked")],
        ] {
            assert_eq!(
                code(Method::POST, &bad, false, false).as_deref(),
                Some("unsupported_media_type"),
                "{bad:?}"
            );
        }
        // Reading changes nothing: not checked.
        assert_eq!(
            code(Method::GET, &[("content-type", "text/plain")], false, false),
            None
        );
    }

    #[test]
    fn origins_must_be_this_site() {
        let host = ("host", "video.example:8443");
        let ok = |o: &str, https| code(Method::POST, &[host, ("origin", o)], https, false);
        assert_eq!(ok("https://video.example:8443", true), None);
        assert_eq!(ok("http://video.example:8443", false), None);
        assert_eq!(ok("HTTPS://Video.Example:8443", true), None);
        for bad in [
            "https://evil.example",
            "https://video.example",
            "https://video.example:8443.evil.example",
            "null",
            "",
        ] {
            assert_eq!(ok(bad, true).as_deref(), Some("bad_origin"), "{bad}");
        }
        // An http page does not act on the https site.
        assert_eq!(
            ok("http://video.example:8443", true).as_deref(),
            Some("bad_origin")
        );
        // Default ports may be left out on either side.
        let plain = [
            ("host", "video.example:443"),
            ("origin", "https://video.example"),
        ];
        assert_eq!(code(Method::DELETE, &plain, true, false), None);
        // Behind a trusted proxy, the host it forwards; not believed otherwise.
        let proxied = [
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "video.example"),
            ("origin", "https://video.example"),
        ];
        assert_eq!(code(Method::PUT, &proxied, true, true), None);
        assert_eq!(
            code(Method::PUT, &proxied, true, false).as_deref(),
            Some("bad_origin")
        );
        // Programs with a bearer token are exempt; with a cookie too they are not.
        let bearer = ("authorization", "Bearer abc");
        let evil = ("origin", "https://evil.example");
        assert_eq!(code(Method::POST, &[host, bearer, evil], true, false), None);
        assert_eq!(
            code(
                Method::POST,
                &[host, bearer, evil, ("cookie", "orbita_session=x")],
                true,
                false
            )
            .as_deref(),
            Some("bad_origin")
        );
    }
}
