//! Feeds arbitrary datagrams to the wire decoder and to a node that has requests in flight,
//! so both request and response paths see hostile input.
#![no_main]

use kad_core::wire::MAX_DATAGRAM;
use kad_core::{Config, Instant, Key, MemoryStore, Node, NodeId, PeerAddr, ValueKind};
use libfuzzer_sys::fuzz_target;

/// A deterministic RNG, so that transaction ids are the same in every run and the fuzzer can
/// learn them from comparisons.
struct Counter(u64);

impl rand_core::RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next_u64() as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

type FuzzNode = Node<MemoryStore<4, 1000>, 8, 4, 1, 2, 8, 1000, 4, 2>;

fuzz_target!(|data: &[u8]| {
    let _ = kad_core::wire::decode(data);

    let mut rng = Counter(7);
    let peer = PeerAddr::V4([127, 0, 0, 2], 9);
    let mut node = FuzzNode::new(NodeId::from_bytes([1; 20]), Config::default(), MemoryStore::new(), &mut rng, Instant::ZERO);
    let _ = node.bootstrap(&[peer], Instant::ZERO);
    let mut buf = [0u8; MAX_DATAGRAM];
    while node.poll_transmit(&mut buf).is_some() {}
    // The input is a sequence of [length, bytes...] datagrams, all from the bootstrap peer.
    let mut rest = data;
    let mut now = 0u64;
    while let Some((&len, tail)) = rest.split_first() {
        let n = (len as usize).min(tail.len());
        let (datagram, tail) = tail.split_at(n);
        rest = tail;
        now += 100;
        node.handle_datagram(Instant::from_millis(now), peer, datagram);
        node.handle_timeout(Instant::from_millis(now));
        let _ = node.put(Key::hash(datagram), ValueKind::Bytes, datagram, Instant::from_millis(now));
        while let Some(t) = node.poll_transmit(&mut buf) {
            assert!(kad_core::wire::decode(&buf[..t.len]).is_ok(), "the node sent an invalid datagram");
        }
        while node.poll_event().is_some() {}
    }
});
