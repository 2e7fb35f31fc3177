//! Node authentication: every node proves it knows the shared cluster secret.
//!
//! On a new node link the coordinator sends `{"msg":"CHALLENGE","nonce":"<64 hex>"}` (32 fresh
//! random bytes). The node answers `REGISTER_NODE` with
//! `auth = hex(HMAC-SHA256(secret, "orbita-node-v1\n" + nonce + "\n" + server_name))`.
//! The coordinator recomputes it and compares in constant time; the secret never crosses the
//! wire, and a recorded answer is useless for another connection (another nonce). Use TLS
//! (`wss://`) as well so the link's later messages cannot be read or altered.

use aws_lc_rs::hmac;
use rand::Rng;

const CONTEXT: &str = "orbita-node-v1";

/// A fresh challenge nonce (64 hex digits).
pub fn new_nonce() -> String {
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

fn message(nonce: &str, server_name: &str) -> Vec<u8> {
    format!("{CONTEXT}\n{nonce}\n{server_name}").into_bytes()
}

/// The node's answer to `nonce` (hex).
pub fn prove(secret: &str, nonce: &str, server_name: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, &message(nonce, server_name));
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() & 1 == 1 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether `proof` answers `nonce` for `server_name` under `secret` (constant-time compare).
/// An empty secret never verifies.
pub fn verify(secret: &str, nonce: &str, server_name: &str, proof: &str) -> bool {
    if secret.is_empty() {
        return false;
    }
    let Some(tag) = unhex(proof.trim()) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::verify(&key, &message(nonce, server_name), &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_verifies_only_for_the_same_secret_nonce_and_name() {
        let nonce = new_nonce();
        assert_eq!(nonce.len(), 64);
        assert_ne!(nonce, new_nonce());
        let p = prove("s3cret", &nonce, "node-a");
        assert_eq!(p.len(), 64);
        assert!(verify("s3cret", &nonce, "node-a", &p));
        assert!(!verify("other", &nonce, "node-a", &p));
        assert!(!verify("s3cret", &new_nonce(), "node-a", &p));
        assert!(!verify("s3cret", &nonce, "node-b", &p));
        assert!(!verify("s3cret", &nonce, "node-a", "zz"));
        assert!(!verify("s3cret", &nonce, "node-a", &p[..62]));
        assert!(!verify("", &nonce, "node-a", &prove("", &nonce, "node-a")));
    }
}
