//! A `str0m::Rtc` configured as `orbita_sfu` configures each peer connection
//! (`orbita_sfu::peer_config`: ICE-lite, RTP mode, Opus, VP8, H.264, VP9; one host candidate), but with fixed ICE credentials, so seed
//! inputs can carry STUN binding requests that pass the message-integrity check, and with a
//! DTLS certificate made once per process instead of once per connection (key generation
//! would otherwise dominate every execution).

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use str0m::config::DtlsCert;
use str0m::{Candidate, IceCreds, Rtc};

/// The server's ICE ufrag (the part before `:` in a binding request's USERNAME).
pub const SERVER_UFRAG: &str = "srvfuzz";
/// The server's ICE password (the key of a binding request's MESSAGE-INTEGRITY).
pub const SERVER_PASS: &str = "fuzzpasswordfuzzpassword";
/// The client's ICE ufrag.
pub const CLIENT_UFRAG: &str = "clifuzz";
/// The client's ICE password.
pub const CLIENT_PASS: &str = "clientpasswordclientpass";
/// The server's local address (the host candidate datagrams arrive at).
pub const SERVER_ADDR: &str = "127.0.0.1:7882";

fn cert() -> DtlsCert {
    static CERT: OnceLock<DtlsCert> = OnceLock::new();
    CERT.get_or_init(|| {
        str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
            .expect("a DTLS certificate")
    })
    .clone()
}

/// A new connection at `now`, as the SFU makes one, with [`SERVER_UFRAG`]/[`SERVER_PASS`].
pub fn sfu_rtc(now: Instant) -> Rtc {
    let mut rtc = orbita_sfu::peer_config()
        .set_dtls_cert(cert())
        .set_local_ice_credentials(IceCreds {
            ufrag: SERVER_UFRAG.into(),
            pass: SERVER_PASS.into(),
        })
        .build(now);
    let addr: SocketAddr = SERVER_ADDR.parse().expect("an address");
    let candidate = Candidate::host(addr, "udp").expect("a host candidate");
    rtc.add_local_candidate(candidate);
    rtc
}

/// Let the connection produce everything it has (at most `limit` outputs). Returns false when
/// it failed or closed.
pub fn drain(rtc: &mut Rtc, limit: usize) -> bool {
    for _ in 0..limit {
        if !rtc.is_alive() {
            return false;
        }
        match rtc.poll_output() {
            Ok(str0m::Output::Timeout(_)) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    true
}
