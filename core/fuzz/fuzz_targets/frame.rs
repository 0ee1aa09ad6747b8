//! `kad_core::frame::decode` (the relay's frame parser) of arbitrary bytes never panics, and
//! what it accepts round-trips: a datagram frame and a HELLO frame of at most
//! `MAX_HELLO_PEERS` peers re-encode to the same bytes (the format has one encoding per frame).
#![no_main]

use kad_core::frame::{self, Frame, MAX_FRAME, MAX_HELLO, MAX_HELLO_PEERS};
use kad_core::wire::MAX_DATAGRAM;
use kad_core::PeerAddr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let f = match frame::decode(data) {
        Ok(f) => f,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    match f {
        Frame::Datagram { peer, payload } => {
            assert!(!payload.is_empty() && payload.len() <= MAX_DATAGRAM);
            let mut out = [0u8; MAX_FRAME];
            let n = frame::encode_datagram(&peer, payload, &mut out)
                .expect("a decoded datagram frame re-encodes");
            assert_eq!(&out[..n], data);
            assert_eq!(f.hello_peers().count(), 0);
            // The relay hands the payload on as a kad datagram: whatever it is, decoding returns.
            let _ = kad_core::wire::decode(payload);
        }
        Frame::Hello { local, peers } => {
            let all: Vec<PeerAddr> = f.hello_peers().collect();
            let encoded: usize = all.iter().map(|a| if matches!(a, PeerAddr::V4(..)) { 7 } else { 19 }).sum();
            assert_eq!(encoded, peers.len(), "hello_peers reads every address the frame carries");
            let mut out = [0u8; MAX_HELLO];
            let n = frame::encode_hello(&local, &all, &mut out).expect("a decoded HELLO frame re-encodes");
            if all.len() <= MAX_HELLO_PEERS {
                assert_eq!(&out[..n], data);
            } else {
                // More peers than a relay sends: the encoder keeps the first MAX_HELLO_PEERS.
                assert_eq!(&out[..n], &data[..n]);
                let again = frame::decode(&out[..n]).expect("the shortened frame decodes");
                assert!(again.hello_peers().eq(all.iter().copied().take(MAX_HELLO_PEERS)));
            }
        }
    }
});
