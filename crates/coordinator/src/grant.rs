//! Viewer grants: how a node learns who is looking at its recordings. Nodes keep no accounts
//! (the media server does not depend on them); the coordinator, which knows who is logged in,
//! signs a short-lived grant under the cluster secret, and each node checks it with the same
//! secret before listing or serving its recordings (`GET /api/recordings/grant`,
//! docs/recording.md).
//!
//! A grant is `g1.<hex of its JSON>.<hex HMAC-SHA256(secret, "orbita-viewer-v1\n" + that hex)>`.
//! It names the account and what it may see, and expires (`GRANT_TTL_MS`).

use aws_lc_rs::hmac;
use serde::{Deserialize, Serialize};

use crate::auth::unhex;

const CONTEXT: &str = "orbita-viewer-v1";
const PREFIX: &str = "g1.";
/// How long a grant is good for: the recordings page's links keep working this long.
pub const GRANT_TTL_MS: u64 = 30 * 60 * 1000;
/// The longest token checked (a longer one is refused unread).
pub const MAX_GRANT_LEN: usize = 1024;

/// Who may see which recordings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewerGrant {
    /// The account's id: its own calls' recordings.
    pub account: String,
    /// Every recording (supervisors, administrators).
    pub all: bool,
    /// The disk use too (administrators).
    pub admin: bool,
    /// Good until then (ms since the epoch).
    pub expires_ms: u64,
}

fn tag(secret: &str, payload: &str) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::sign(&key, format!("{CONTEXT}\n{payload}").as_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `grant` signed under `secret`.
pub fn sign(secret: &str, grant: &ViewerGrant) -> String {
    let payload = hex(&serde_json::to_vec(grant).expect("a grant serialises"));
    let mac = hex(tag(secret, &payload).as_ref());
    format!("{PREFIX}{payload}.{mac}")
}

/// Whether `token` looks like a grant (not an account's login token).
pub fn is_grant(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// The grant `token` carries, when `secret` signed it and it has not expired at `now_ms`.
/// An empty secret verifies nothing.
pub fn verify(secret: &str, token: &str, now_ms: u64) -> Option<ViewerGrant> {
    if secret.is_empty() || token.len() > MAX_GRANT_LEN {
        return None;
    }
    let (payload, mac) = token.strip_prefix(PREFIX)?.split_once('.')?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::verify(
        &key,
        format!("{CONTEXT}\n{payload}").as_bytes(),
        &unhex(mac)?,
    )
    .ok()?;
    let grant: ViewerGrant = serde_json::from_slice(&unhex(payload)?).ok()?;
    (now_ms < grant.expires_ms).then_some(grant)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> ViewerGrant {
        ViewerGrant {
            account: "7".into(),
            all: false,
            admin: false,
            expires_ms: 2_000,
        }
    }

    #[test]
    fn a_signed_grant_verifies_until_it_expires() {
        let token = sign("secret", &grant());
        assert!(is_grant(&token));
        assert_eq!(verify("secret", &token, 1_999), Some(grant()));
        assert_eq!(verify("secret", &token, 2_000), None, "expired");
    }

    #[test]
    fn forged_altered_and_foreign_grants_are_refused() {
        let token = sign("secret", &grant());
        assert_eq!(verify("other secret", &token, 0), None);
        assert_eq!(verify("", &token, 0), None);
        // Widened to every recording, with the old signature.
        let mut wider = grant();
        wider.all = true;
        let forged = sign("secret", &wider);
        let (payload, _) = forged.split_once('.').unwrap().1.split_once('.').unwrap();
        let (_, mac) = token.rsplit_once('.').unwrap();
        assert_eq!(
            verify("secret", &format!("{PREFIX}{payload}.{mac}"), 0),
            None
        );
        for bad in [
            "",
            "g1.",
            "g1.zz.zz",
            "x",
            &"g1.".repeat(400),
            &token[..token.len() - 1],
        ] {
            assert_eq!(verify("secret", bad, 0), None, "{bad:?}");
        }
    }
}
