//! The simulator's omniscient view of who is up: the truth lookups are judged against.
//!
//! It never feeds anything into a node; it only answers "which live nodes are really the
//! closest to this target" so that a FIND_NODE result can be checked.

use std::collections::BTreeMap;

use kad_core::id::{ID_BITS, ID_LEN};
use kad_core::{Key, NodeId};

/// The ids of the nodes that are up, in key order.
#[derive(Default)]
pub struct Oracle {
    ids: BTreeMap<[u8; ID_LEN], u32>,
}

impl Oracle {
    /// An empty view.
    pub fn new() -> Self {
        Oracle::default()
    }

    /// Node `slot` with id `id` is up.
    pub fn insert(&mut self, id: NodeId, slot: u32) {
        self.ids.insert(*id.as_bytes(), slot);
    }

    /// Node `id` is down.
    pub fn remove(&mut self, id: &NodeId) {
        self.ids.remove(id.as_bytes());
    }

    /// Number of nodes up.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no node is up.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The `k` live nodes closest to `target` by XOR distance, nearest first, without
    /// `exclude`.
    ///
    /// Nodes sharing a prefix of `p` bits with the target are contiguous in key order and are
    /// all nearer than any other node, so the answer lies in the longest such prefix block
    /// that holds at least `k + 1` nodes; only that block is sorted.
    pub fn closest(&self, target: &Key, k: usize, exclude: Option<&NodeId>) -> Vec<NodeId> {
        let t = target.as_bytes();
        let want = k + usize::from(exclude.is_some());
        let mut block = Vec::new();
        for prefix in (0..=ID_BITS).rev() {
            let (lo, hi) = prefix_range(t, prefix);
            block.clear();
            block.extend(self.ids.range(lo..=hi).map(|(id, _)| NodeId::from_bytes(*id)).take(want));
            if block.len() >= want || prefix == 0 {
                block.clear();
                block.extend(self.ids.range(lo..=hi).map(|(id, _)| NodeId::from_bytes(*id)));
                break;
            }
        }
        block.retain(|id| Some(id) != exclude);
        block.sort_by_key(|id| target.distance(id));
        block.truncate(k);
        block
    }
}

/// The smallest and largest ids that share the first `prefix` bits of `t`.
fn prefix_range(t: &[u8; ID_LEN], prefix: usize) -> ([u8; ID_LEN], [u8; ID_LEN]) {
    let (mut lo, mut hi) = (*t, *t);
    for bit in prefix..ID_BITS {
        let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
        lo[byte] &= !mask;
        hi[byte] |= mask;
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn closest_agrees_with_sorting_everything() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut o = Oracle::new();
        let ids: Vec<NodeId> = (0..500).map(|_| NodeId::random(&mut rng)).collect();
        for (i, id) in ids.iter().enumerate() {
            o.insert(*id, i as u32);
        }
        for _ in 0..50 {
            let target = Key::from_bytes(*NodeId::random(&mut rng).as_bytes());
            let mut all = ids.clone();
            all.sort_by_key(|id| target.distance(id));
            assert_eq!(o.closest(&target, 20, None), all[..20].to_vec());
            assert_eq!(o.closest(&target, 3, Some(&all[0])), all[1..4].to_vec());
        }
    }
}
