//! WHIP SDP path: the body of `POST /whip/{code}` as `whip.rs` handles it. The offer's tracks
//! are read by `tracks_of_offer`, a publish-only participant joins a real SFU room (where a
//! viewer already waits, so published tracks are offered on to it) and hands the offer over;
//! the SFU answers or refuses. An answer must itself parse as SDP. The offer is also parsed
//! and accepted directly by a `str0m::Rtc` set up as the SFU sets up its publisher
//! connections, so str0m's SDP code is reached even without the SFU's round trip.

#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use orbita_fuzz::sfu_rtc;
use orbita_fuzz::sfu_session::Session;
use orbita_protocol::{ClientMsg, PcKind, ServerMsg};
use orbita_server::whip::{tracks_of_offer, MAX_OFFER_BYTES};
use str0m::change::{SdpAnswer, SdpOffer};

/// Most outputs drained from the directly made connection.
const MAX_OUTPUTS: usize = 1000;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_OFFER_BYTES {
        return;
    }
    let Ok(sdp) = std::str::from_utf8(data) else {
        return;
    };
    accept_directly(sdp);
    let tracks = tracks_of_offer(sdp);
    if tracks.is_empty() {
        return;
    }
    let mut session = Session::new();
    let viewer = session.join("viewer", false);
    let whip = session.join("WHIP (fuzz)", true);
    session.send(
        whip,
        ClientMsg::Offer {
            pc: PcKind::Publisher,
            sdp: sdp.to_string(),
            tracks,
        },
    );
    for msg in session.settle(whip) {
        if let ServerMsg::Answer { sdp: answer, .. } = msg {
            if let Err(e) = SdpAnswer::from_sdp_string(&answer) {
                panic!("the SFU's answer does not parse: {e}\n{answer}");
            }
        }
    }
    session.settle(viewer);
});

/// Parse and accept the offer on an `Rtc` configured as `orbita_sfu`'s publisher connections.
fn accept_directly(sdp: &str) {
    let Ok(offer) = SdpOffer::from_sdp_string(sdp) else {
        return;
    };
    let mut rtc = sfu_rtc::sfu_rtc(Instant::now());
    if let Ok(answer) = rtc.sdp_api().accept_offer(offer) {
        let text = answer.to_sdp_string();
        if let Err(e) = SdpAnswer::from_sdp_string(&text) {
            panic!("str0m's answer does not parse: {e}\n{text}");
        }
    }
    sfu_rtc::drain(&mut rtc, MAX_OUTPUTS);
}
