//! The WHIP client side (RFC 9725): POST the offer, get `201 Created` with the resource URL in
//! `Location` and the answer as body; DELETE the resource to stop.
//!
//! Plain `http://` only (the node hands its apps a loopback URL); a blocking `ureq` agent with
//! short timeouts, no redirects.

use std::time::Duration;

use anyhow::{bail, Context};

/// A refused or failed publish: the status and body the endpoint sent.
#[derive(Debug)]
pub enum WhipError {
    /// The endpoint answered, but not with 201 Created.
    Refused { status: u16, body: String },
    /// It answered 201 but without a usable Location or answer.
    BadResponse(String),
    /// The request did not get through.
    Transport(String),
}

impl std::fmt::Display for WhipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WhipError::Refused { status, body } => {
                write!(
                    f,
                    "the WHIP endpoint refused the offer with status {status}"
                )?;
                if !body.trim().is_empty() {
                    write!(f, ": {}", body.trim())?;
                }
                Ok(())
            }
            WhipError::BadResponse(e) => write!(f, "bad WHIP response: {e}"),
            WhipError::Transport(e) => write!(f, "WHIP request failed: {e}"),
        }
    }
}

impl std::error::Error for WhipError {}

/// A published WHIP session.
#[derive(Debug, Clone)]
pub struct WhipSession {
    /// The resource URL (absolute), for DELETE.
    pub resource: String,
    /// The SDP answer.
    pub answer: String,
}

/// Longest response body read.
const MAX_BODY: u64 = 1 << 20;

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// POST `offer` to the WHIP endpoint `url` with `token` as bearer token (none if empty).
pub fn publish(url: &str, token: &str, offer: &str) -> Result<WhipSession, WhipError> {
    check_url(url).map_err(|e| WhipError::Transport(format!("{e:#}")))?;
    let mut req = agent(Duration::from_secs(10))
        .post(url)
        .header("Content-Type", "application/sdp")
        .header("Accept", "application/sdp");
    if !token.is_empty() {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let mut resp = req
        .send(offer)
        .map_err(|e| WhipError::Transport(format!("POST {url}: {e}")))?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .unwrap_or_else(|e| format!("(unreadable body: {e})"));
    if status != 201 {
        return Err(WhipError::Refused { status, body });
    }
    let Some(location) = location else {
        return Err(WhipError::BadResponse(
            "201 without a Location header".into(),
        ));
    };
    if !body.trim_start().starts_with("v=0") {
        return Err(WhipError::BadResponse(format!(
            "201 whose body is not an SDP answer: {:?}",
            body.chars().take(80).collect::<String>()
        )));
    }
    Ok(WhipSession {
        resource: resolve(url, &location),
        answer: body,
    })
}

/// DELETE the WHIP resource (end of the session). Errors are returned for logging.
pub fn unpublish(resource: &str, token: &str) -> anyhow::Result<u16> {
    let mut req = agent(Duration::from_secs(3)).delete(resource);
    if !token.is_empty() {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let resp = req.call().with_context(|| format!("DELETE {resource}"))?;
    Ok(resp.status().as_u16())
}

fn check_url(url: &str) -> anyhow::Result<()> {
    if url.starts_with("https://") {
        bail!("{url}: https WHIP URLs are not supported by the demo app (use the node's http address)");
    }
    if !url.starts_with("http://") {
        bail!("{url}: the WHIP URL must start with http://");
    }
    Ok(())
}

/// Resolve a `Location` value against the URL it came from (absolute URL, absolute path, or
/// path relative to the request URL's directory).
pub fn resolve(base: &str, location: &str) -> String {
    let location = location.trim();
    if location.contains("://") {
        return location.to_string();
    }
    // scheme://authority
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[after_scheme..]
        .find('/')
        .map(|i| i + after_scheme)
        .unwrap_or(base.len());
    let origin = &base[..path_start];
    if let Some(rest) = location.strip_prefix("//") {
        let scheme = &base[..after_scheme];
        return format!("{scheme}{rest}");
    }
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    // Relative: replace everything after the last '/' of the base path (query dropped).
    let path = &base[path_start..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    format!("{origin}{dir}{location}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_locations() {
        let base = "http://127.0.0.1:8080/whip/4821";
        assert_eq!(
            resolve(base, "/whip/4821/res/abc"),
            "http://127.0.0.1:8080/whip/4821/res/abc"
        );
        assert_eq!(
            resolve(base, "res/abc"),
            "http://127.0.0.1:8080/whip/res/abc"
        );
        assert_eq!(
            resolve("http://h:1/whip/4821/", "r1"),
            "http://h:1/whip/4821/r1"
        );
        assert_eq!(resolve(base, "http://other:9/x"), "http://other:9/x");
        assert_eq!(resolve(base, "//other:9/x"), "http://other:9/x");
        assert_eq!(resolve("http://h:1", "x"), "http://h:1/x");
        assert_eq!(resolve("http://h:1/a/b?t=1", "c"), "http://h:1/a/c");
    }

    #[test]
    fn refuses_bad_urls() {
        assert!(check_url("https://x/whip").is_err());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("http://x/whip").is_ok());
    }
}
