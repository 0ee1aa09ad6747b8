//! `kad_core::wire::decode` of arbitrary bytes never panics, and what it accepts round-trips:
//! the message re-encodes into one datagram, no longer than the input, that decodes to the same
//! message; an input already in the canonical (shortest) form comes back byte for byte.
#![no_main]

use kad_core::wire::{self, MAX_DATAGRAM};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let msg = match wire::decode(data) {
        Ok(msg) => msg,
        Err(e) => {
            // Every error has a message a log line can use.
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let mut buf = [0u8; MAX_DATAGRAM];
    let n = wire::encode(&msg, &mut buf).expect("a decoded message re-encodes into one datagram");
    assert!(n <= data.len(), "re-encoding grew the message from {} to {n} bytes", data.len());
    assert_eq!(wire::decode(&buf[..n]).as_ref(), Ok(&msg), "the re-encoded message decodes to itself");
    if n == data.len() {
        assert_eq!(&buf[..n], data, "two encodings of the same length for one message");
    }
});
