//! SHA-1 (FIPS 180-4), the hash that names keys: one 80-round loop, a fraction of the code a
//! general-purpose crate spends on 32-bit targets (the firmware and the browser package).

/// An incremental SHA-1.
pub(crate) struct Sha1 {
    state: [u32; 5],
    block: [u8; 64],
    /// Bytes hashed so far.
    len: u64,
}

impl Sha1 {
    /// The hash of nothing yet.
    pub(crate) const fn new() -> Self {
        Sha1 {
            state: [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0],
            block: [0; 64],
            len: 0,
        }
    }

    /// Adds `data` to the message.
    pub(crate) fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let at = (self.len % 64) as usize;
            let n = (64 - at).min(data.len());
            self.block[at..at + n].copy_from_slice(&data[..n]);
            self.len += n as u64;
            data = &data[n..];
            if at + n == 64 {
                compress(&mut self.state, &self.block);
            }
        }
    }

    /// The digest of the message: padding (0x80, zeros, the length in bits) and the last block.
    pub(crate) fn digest(mut self) -> [u8; 20] {
        let bits = self.len.wrapping_mul(8);
        let at = (self.len % 64) as usize;
        self.block[at] = 0x80;
        self.block[at + 1..].fill(0);
        if at >= 56 {
            compress(&mut self.state, &self.block);
            self.block = [0; 64];
        }
        self.block[56..].copy_from_slice(&bits.to_be_bytes());
        compress(&mut self.state, &self.block);
        let mut out = [0u8; 20];
        for (o, s) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&s.to_be_bytes());
        }
        out
    }
}

/// One 64-byte block into the state; the message schedule kept as a ring of 16 words.
fn compress(state: &mut [u32; 5], block: &[u8; 64]) {
    let mut w = [0u32; 16];
    for (w, b) in w.iter_mut().zip(block.chunks_exact(4)) {
        *w = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    }
    let [mut a, mut b, mut c, mut d, mut e] = *state;
    for i in 0..80 {
        if i >= 16 {
            let x = w[(i + 13) & 15] ^ w[(i + 8) & 15] ^ w[(i + 2) & 15] ^ w[i & 15];
            w[i & 15] = x.rotate_left(1);
        }
        let (f, k) = match i / 20 {
            0 => ((b & c) | (!b & d), 0x5A82_7999),
            1 => (b ^ c ^ d, 0x6ED9_EBA1),
            2 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
            _ => (b ^ c ^ d, 0xCA62_C1D6),
        };
        let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(w[i & 15]);
        e = d;
        d = c;
        c = b.rotate_left(30);
        b = a;
        a = t;
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e]) {
        *s = s.wrapping_add(v);
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;
    use crate::id::decode_hex;

    fn sha1(parts: &[&[u8]]) -> [u8; 20] {
        let mut h = Sha1::new();
        for p in parts {
            h.update(p);
        }
        h.digest()
    }

    crate::selftest::unit_tests! {
        fn digests_are_those_of_the_fips_180_examples() {
            let want = |hex: &str| decode_hex::<20>(hex).unwrap();
            assert_eq!(sha1(&[b""]), want("da39a3ee5e6b4b0d3255bfef95601890afd80709"));
            assert_eq!(sha1(&[b"abc"]), want("a9993e364706816aba3e25717850c26c9cd0d89d"));
            let two_blocks = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
            assert_eq!(sha1(&[two_blocks]), want("84983e441c3bd26ebaae4aa1f95129e5e54670f1"));
            let mut h = Sha1::new();
            for _ in 0..1000 {
                h.update(&[b'a'; 1000]);
            }
            assert_eq!(h.digest(), want("34aa973cd4c4daa4f61eeb2bdbad27316534016f"));
        }
    }

    #[cfg(test)]
    mod proptests {
        use super::sha1;
        use proptest::prelude::*;

        proptest! {
            /// Every length (padding in the last block or a block of its own) and every split
            /// into two parts gives the digest the sha1_smol crate gives.
            #[test]
            fn agrees_with_sha1_smol(data in proptest::collection::vec(any::<u8>(), 0..300), cut in any::<usize>()) {
                let cut = cut % (data.len() + 1);
                let want = sha1_smol::Sha1::from(&data[..]).digest().bytes();
                prop_assert_eq!(sha1(&[&data]), want);
                prop_assert_eq!(sha1(&[&data[..cut], &data[cut..]]), want);
            }
        }
    }
}
