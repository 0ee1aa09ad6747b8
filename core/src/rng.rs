//! The node's random numbers: ChaCha8 (RFC 7539's block function with 8 rounds, a 64-bit
//! block counter and a zero nonce), the stream `rand_chacha::ChaCha8Rng` gives for the same
//! seed, in a compact form: one block at a time and one round loop (112 bytes of state, a few
//! hundred bytes of code on 32-bit targets instead of several KB).

use rand_core::{Error, RngCore, SeedableRng};

/// Words in a ChaCha block.
const WORDS: usize = 16;

/// The quarter rounds of one double round: four on the columns, four on the diagonals.
const QUARTERS: [[usize; 4]; 8] = [
    [0, 4, 8, 12],
    [1, 5, 9, 13],
    [2, 6, 10, 14],
    [3, 7, 11, 15],
    [0, 5, 10, 15],
    [1, 6, 11, 12],
    [2, 7, 8, 13],
    [3, 4, 9, 14],
];

/// A ChaCha8 random number generator: transaction ids, refresh targets, node ids, and the test
/// network's draws. Seeded with 32 bytes (or `seed_from_u64`, as rand_core expands it).
#[derive(Clone)]
pub struct NodeRng {
    key: [u32; 8],
    /// The block after the one in `block`.
    counter: u64,
    block: [u32; WORDS],
    /// Words of `block` handed out; `WORDS` when a new block is due.
    used: usize,
}

impl NodeRng {
    fn next_word(&mut self) -> u32 {
        if self.used >= WORDS {
            self.block = chacha8(&self.key, self.counter);
            self.counter = self.counter.wrapping_add(1);
            self.used = 0;
        }
        let w = self.block[self.used % WORDS];
        self.used += 1;
        w
    }
}

/// The block at `counter`: 4 double rounds over (constants, key, counter, zero nonce), plus
/// the input.
fn chacha8(key: &[u32; 8], counter: u64) -> [u32; WORDS] {
    let mut s = [0u32; WORDS];
    s[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
    s[4..12].copy_from_slice(key);
    s[12] = counter as u32;
    s[13] = (counter >> 32) as u32;
    let input = s;
    for _ in 0..4 {
        for [a, b, c, d] in QUARTERS {
            s[a] = s[a].wrapping_add(s[b]);
            s[d] = (s[d] ^ s[a]).rotate_left(16);
            s[c] = s[c].wrapping_add(s[d]);
            s[b] = (s[b] ^ s[c]).rotate_left(12);
            s[a] = s[a].wrapping_add(s[b]);
            s[d] = (s[d] ^ s[a]).rotate_left(8);
            s[c] = s[c].wrapping_add(s[d]);
            s[b] = (s[b] ^ s[c]).rotate_left(7);
        }
    }
    for (s, i) in s.iter_mut().zip(input) {
        *s = s.wrapping_add(i);
    }
    s
}

impl SeedableRng for NodeRng {
    type Seed = [u8; 32];

    fn from_seed(seed: [u8; 32]) -> Self {
        let mut key = [0u32; 8];
        for (k, b) in key.iter_mut().zip(seed.chunks_exact(4)) {
            *k = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        NodeRng { key, counter: 0, block: [0; WORDS], used: WORDS }
    }
}

impl RngCore for NodeRng {
    fn next_u32(&mut self) -> u32 {
        self.next_word()
    }

    /// Two words, the first in the low half.
    fn next_u64(&mut self) -> u64 {
        let lo = self.next_word();
        u64::from(lo) | (u64::from(self.next_word()) << 32)
    }

    /// One word per 4 bytes, little-endian; a last partial chunk takes a whole word.
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(4) {
            let w = self.next_word().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::NodeRng;
    use proptest::prelude::{any, prop_assert_eq, proptest};
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};

    proptest! {
        /// The stream is rand_chacha's ChaCha8Rng's, through every way of reading it, across
        /// block and buffer boundaries (rand_chacha fills 4 blocks at a time).
        #[test]
        fn is_rand_chacha_chacha8(seed in any::<[u8; 32]>(), reads in proptest::collection::vec(0u8..4, 1..400)) {
            let (mut ours, mut theirs) = (NodeRng::from_seed(seed), ChaCha8Rng::from_seed(seed));
            for (i, r) in reads.into_iter().enumerate() {
                match r {
                    0 => prop_assert_eq!(ours.next_u32(), theirs.next_u32()),
                    1 => prop_assert_eq!(ours.next_u64(), theirs.next_u64()),
                    _ => {
                        let n = (i * 7) % 70;
                        let (mut a, mut b) = ([0u8; 70], [0u8; 70]);
                        ours.fill_bytes(&mut a[..n]);
                        theirs.fill_bytes(&mut b[..n]);
                        prop_assert_eq!(&a[..], &b[..]);
                    }
                }
            }
        }

        #[test]
        fn seed_from_u64_is_rand_chacha_chacha8(seed in any::<u64>()) {
            let (mut ours, mut theirs) = (NodeRng::seed_from_u64(seed), ChaCha8Rng::seed_from_u64(seed));
            for _ in 0..40 {
                prop_assert_eq!(ours.next_u64(), theirs.next_u64());
            }
        }
    }
}
