//! Login session tokens: 256 random bits as 64 hex digits, stored only as their SHA-256, and
//! where requests carry them (the `orbita_session` cookie, `Authorization: Bearer`).

use aws_lc_rs::digest;
use axum::http::{header, HeaderMap};

/// The login cookie's name.
pub const COOKIE: &str = "orbita_session";

/// A fresh token (64 hex digits).
pub fn new_token() -> String {
    crate::logic::random_hex(32)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the database keeps of a token: its SHA-256 in hex.
pub fn token_hash(token: &str) -> String {
    hex(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

/// Whether `t` has a token's shape (so garbage never reaches the database).
pub fn well_formed(t: &str) -> bool {
    t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The bearer token of `Authorization: Bearer <token>`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The `orbita_session` cookie's value, if any.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"'))
}

/// Whether a cookie may be trusted on this request: no `Origin` header (not a cross-origin
/// browser request), or an `Origin` whose host is the request's `Host` (a WebSocket opened
/// by a page of another site must not act as the user whose cookie the browser sends).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(host)) = (
        origin.to_str(),
        headers.get(header::HOST).and_then(|h| h.to_str().ok()),
    ) else {
        return false;
    };
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    origin_host.eq_ignore_ascii_case(host.trim())
}

/// `Set-Cookie` for a new login session.
pub fn set_cookie(token: &str, max_age_secs: u64, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that removes the login cookie.
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", 0, secure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tokens_and_headers() {
        let t = new_token();
        assert!(well_formed(&t));
        assert_ne!(t, new_token());
        assert_eq!(token_hash(&t).len(), 64);
        assert_ne!(token_hash(&t), t);
        let mut h = HeaderMap::new();
        assert_eq!(cookie(&h), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; orbita_session=abc; b=2"),
        );
        assert_eq!(cookie(&h), Some("abc"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer  xyz"),
        );
        assert_eq!(bearer(&h), Some("xyz"));
        h.insert(header::HOST, HeaderValue::from_static("example.com:8443"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://example.com:8443"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.test"),
        );
        assert!(!same_origin(&h));
        assert_eq!(
            set_cookie("t", 60, true),
            "orbita_session=t; HttpOnly; SameSite=Lax; Path=/; Max-Age=60; Secure"
        );
    }
}
