//! The ICE servers each participant is told of at join: STUN, and TURN relays with
//! time-limited credentials of the TURN REST scheme that coturn checks with `use-auth-secret`
//! (username `EXPIRY:PARTICIPANT`, password `base64(HMAC-SHA1(secret, username))`), so no
//! long-lived TURN password ever reaches a browser.

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use orbita_protocol::IceServer;

/// The ICE servers of a media server and how to make TURN credentials for them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct IceServers {
    /// `stun:` URLs, given to clients as they are.
    pub stun_urls: Vec<String>,
    /// `turn:` / `turns:` URLs of relays that share [`IceServers::turn_secret`].
    pub turn_urls: Vec<String>,
    /// The relays' shared secret (coturn's `static-auth-secret`).
    pub turn_secret: String,
    /// How long the credentials given at join stay valid.
    pub turn_credential_ttl: Duration,
}

impl std::fmt::Debug for IceServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServers")
            .field("stun_urls", &self.stun_urls)
            .field("turn_urls", &self.turn_urls)
            .field("turn_secret", &"<hidden>")
            .field("turn_credential_ttl", &self.turn_credential_ttl)
            .finish()
    }
}

impl IceServers {
    /// What participant `participant` is told at `unix_now` (seconds since the epoch): the
    /// STUN servers, and the relays with a username `EXPIRY:PARTICIPANT` and its password.
    pub fn for_participant(&self, participant: &str, unix_now: u64) -> Vec<IceServer> {
        let mut servers = Vec::new();
        if !self.stun_urls.is_empty() {
            servers.push(IceServer {
                urls: self.stun_urls.clone(),
                username: None,
                credential: None,
            });
        }
        if !self.turn_urls.is_empty() {
            let expiry = unix_now.saturating_add(self.turn_credential_ttl.as_secs());
            let username = format!("{expiry}:{participant}");
            servers.push(IceServer {
                urls: self.turn_urls.clone(),
                credential: Some(turn_password(&self.turn_secret, &username)),
                username: Some(username),
            });
        }
        servers
    }
}

/// The TURN REST password of `username`: `base64(HMAC-SHA1(secret, username))`.
pub fn turn_password(secret: &str, username: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = hmac::sign(&key, username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_rest_password_matches_coturns_scheme() {
        // RFC 2202 test case 2 (HMAC-SHA1, key "Jefe"), base64 of
        // effcdf6ae5eb2fa2d27416d5f184df9c259a7c79.
        assert_eq!(
            turn_password("Jefe", "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
    }

    #[test]
    fn each_participant_gets_its_own_expiring_credentials() {
        let ice = IceServers {
            stun_urls: vec!["stun:turn.example.org:3478".into()],
            turn_urls: vec![
                "turn:turn.example.org:3478?transport=udp".into(),
                "turns:turn.example.org:5349?transport=tcp".into(),
            ],
            turn_secret: "s3cret".into(),
            turn_credential_ttl: Duration::from_secs(3600),
        };
        let servers = ice.for_participant("p7", 1_800_000_000);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].urls, ["stun:turn.example.org:3478"]);
        assert_eq!(servers[0].username, None);
        let turn = &servers[1];
        assert_eq!(turn.urls.len(), 2);
        assert_eq!(turn.username.as_deref(), Some("1800003600:p7"));
        assert_eq!(
            turn.credential.as_deref(),
            Some(turn_password("s3cret", "1800003600:p7").as_str())
        );
        let other = ice.for_participant("p8", 1_800_000_000);
        assert_ne!(other[1].credential, turn.credential);
        assert!(!format!("{ice:?}").contains("s3cret"));
        assert!(IceServers::default().for_participant("p7", 0).is_empty());
    }
}
