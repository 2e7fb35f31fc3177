//! STUN/RTP/RTCP demux: datagrams as the SFU's socket readers and workers handle them.
//!
//! The first byte picks a mode:
//! - even: the input after it is a run of datagrams, each `[flags, len_hi, len_lo, bytes..]`
//!   (length capped at the SFU's 2 KiB datagram size; flags bit 0: from the second client
//!   address; bit 1: ICE-TCP instead of UDP; bits 2..8: milliseconds ×10 to advance the
//!   virtual clock). Each goes through `orbita_sfu::demux` (STUN USERNAME parse, routing by
//!   ufrag then by address) and, when routed, into a `str0m::Rtc` set up as the SFU's, which
//!   has accepted a browser's offer (so STUN checks, DTLS and SRTP/SRTCP are live), exactly
//!   as a worker feeds it (`Input::Receive`, then timeouts, then draining its output).
//! - odd: the rest is one datagram for the parsers alone: the SFU's STUN USERNAME parser and
//!   str0m's STUN, RTCP and RTP header parsers.

#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use orbita_fuzz::sfu_rtc::{self, SERVER_ADDR, SERVER_UFRAG};
use orbita_sfu::demux::{stun_server_ufrag, Demux, Route, Transport};
use orbita_sfu::net::MAX_DATAGRAM;
use str0m::change::SdpOffer;
use str0m::net::{Protocol, Receive};
use str0m::Input;

/// Most outputs drained from the connection after one input.
const MAX_OUTPUTS: usize = 1000;

/// A browser's offer, with the client's fixed ICE credentials ([`sfu_rtc::CLIENT_UFRAG`]).
const CLIENT_OFFER: &str = include_str!("../seeds/whip_sdp/browser-offer.sdp");

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 1 {
        parsers(rest);
    } else {
        path(rest);
    }
});

fn parsers(datagram: &[u8]) {
    if let Some(ufrag) = stun_server_ufrag(datagram) {
        assert!(!ufrag.contains(':'), "the ufrag is the part before ':'");
    }
    use str0m::_internal_test_exports::fuzz;
    fuzz::stun(datagram);
    fuzz::rtcp(datagram);
    fuzz::rtp_header(datagram);
}

fn path(mut input: &[u8]) {
    let start = Instant::now();
    let mut now = start;
    let mut rtc = sfu_rtc::sfu_rtc(now);
    let offer = SdpOffer::from_sdp_string(CLIENT_OFFER).expect("the seed offer parses");
    rtc.sdp_api()
        .accept_offer(offer)
        .expect("the seed offer is accepted");
    sfu_rtc::drain(&mut rtc, MAX_OUTPUTS);
    let demux = Demux::new();
    let ours = Route { worker: 0, conn: 1 };
    demux.register_ufrag(SERVER_UFRAG, ours);
    let local: SocketAddr = SERVER_ADDR.parse().expect("an address");
    let clients: [SocketAddr; 2] = [
        "127.0.0.1:50000".parse().expect("an address"),
        "127.0.0.2:50001".parse().expect("an address"),
    ];
    while let [flags, hi, lo, tail @ ..] = input {
        let len = (usize::from(u16::from_be_bytes([*hi, *lo]))).min(MAX_DATAGRAM);
        let len = len.min(tail.len());
        let (datagram, next) = tail.split_at(len);
        input = next;
        now += Duration::from_millis(u64::from(flags >> 2) * 10);
        let source = clients[usize::from(flags & 1)];
        let (transport, proto) = if flags & 2 == 0 {
            (Transport::Udp, Protocol::Udp)
        } else {
            (Transport::Tcp, Protocol::Tcp)
        };
        if demux.route(transport, source, datagram) == Some(ours) {
            if let Ok(receive) = Receive::new(proto, source, local, datagram) {
                let _ = rtc.handle_input(Input::Receive(now, receive));
            }
        }
        let _ = rtc.handle_input(Input::Timeout(now));
        if !sfu_rtc::drain(&mut rtc, MAX_OUTPUTS) {
            break;
        }
    }
}
