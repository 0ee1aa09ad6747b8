//! Routing-table diversity (as discv5 and go-libp2p-kad-dht keep it): at most
//! [`Limits::bucket_per_prefix`] contacts of one network prefix (IPv4 /24, IPv6 /64) in a
//! bucket, [`Limits::table_per_prefix`] in the whole table, and one in
//! [`Limits::table_fraction`] of the table's contacts (its first always), so that one operator
//! with many addresses in one network cannot fill the table (an eclipse), however small the
//! table. Checked when a contact enters a bucket, a replacement's promotion included; sources
//! [`Limits::apply_to`] spares (loopback by default, private networks when trusted) are exempt.

use crate::addr::PeerAddr;
use crate::limits::Limits;

use super::Contact;

/// Whether one more contact at `addr` may join a bucket holding `bucket` in a table holding
/// `table`. A contact at `addr` itself does not count: the newcomer takes its place (one
/// address holds one id).
pub fn admits<'a>(
    limits: &Limits,
    addr: &PeerAddr,
    bucket: impl Iterator<Item = &'a Contact>,
    table: impl Iterator<Item = &'a Contact>,
) -> bool {
    if !limits.apply_to(addr) {
        return true;
    }
    let p = addr.prefix();
    let same = |c: &&Contact| c.addr.prefix() == p && c.addr != *addr;
    let (mut in_table, mut len) = (0, 0);
    for c in table.filter(|c| c.addr != *addr) {
        len += 1;
        in_table += usize::from(same(&c));
    }
    let share_ok = in_table == 0 || (in_table + 1) * usize::from(limits.table_fraction) <= len + 1;
    bucket.filter(same).count() < usize::from(limits.bucket_per_prefix)
        && in_table < usize::from(limits.table_per_prefix)
        && share_ok
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use crate::addr::PeerAddr;
    use crate::id::NodeId;
    use crate::limits::Limits;
    use crate::routing::{Insert, RoutingConfig, RoutingTable};
    use crate::time::Instant;

    /// Id `n` at prefix length `cpl` from the zero id (bucket `cpl` once the table is deep).
    fn id(cpl: usize, n: u8) -> NodeId {
        let mut b = [0u8; 20];
        b[cpl / 8] |= 0x80 >> (cpl % 8);
        b[19] = n;
        NodeId::from_bytes(b)
    }

    /// A table with the default limits except the share of the table (off), so that each
    /// count can be tested on its own.
    fn table() -> RoutingTable<16, 8, 2> {
        RoutingTable::new(NodeId::from_bytes([0; 20]), RoutingConfig::default(), Instant::ZERO)
            .with_limits(Limits { table_fraction: 1, ..Limits::default() })
    }

    crate::selftest::unit_tests! {
        fn one_prefix_holds_at_most_two_contacts_of_a_bucket() {
            let mut t = table();
            for n in 0..2 {
                assert_eq!(t.insert(id(0, n), PeerAddr::V4([192, 0, 2, n], 1), true, Instant::ZERO), Insert::Added);
            }
            let third = t.insert(id(0, 2), PeerAddr::V4([192, 0, 2, 2], 1), true, Instant::ZERO);
            assert_eq!(third, Insert::Refused);
            // Another /24 is welcome in the same bucket.
            let other = t.insert(id(0, 3), PeerAddr::V4([192, 0, 3, 3], 1), true, Instant::ZERO);
            assert_eq!(other, Insert::Added);
            let v6 = |n: u8| PeerAddr::V6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, n], 1);
            assert_eq!(t.insert(id(0, 11), v6(1), true, Instant::ZERO), Insert::Added);
            assert_eq!(t.insert(id(0, 12), v6(2), true, Instant::ZERO), Insert::Added);
            assert_eq!(t.insert(id(0, 13), v6(3), true, Instant::ZERO), Insert::Refused, "one /64");
        }

        fn one_prefix_holds_at_most_ten_contacts_of_the_table() {
            let mut t = table().with_limits(Limits { bucket_per_prefix: 20, table_fraction: 1, ..Limits::default() });
            let mut added = 0;
            for cpl in 0..10 {
                for n in 0..2 {
                    let a = PeerAddr::V4([192, 0, 2, (cpl * 2 + n) as u8], 1);
                    added += usize::from(t.insert(id(cpl, n as u8), a, true, Instant::ZERO) == Insert::Added);
                }
            }
            assert_eq!(added, 10);
        }

        fn one_prefix_holds_at_most_a_tenth_of_the_table_but_always_one_contact() {
            let mut t = RoutingTable::<16, 8, 2>::new(NodeId::from_bytes([0; 20]), RoutingConfig::default(), Instant::ZERO);
            let sybil = |n: u8| PeerAddr::V4([192, 0, 2, n], 1);
            assert_eq!(t.insert(id(0, 100), sybil(100), true, Instant::ZERO), Insert::Added, "the first one");
            assert_eq!(t.insert(id(0, 101), sybil(101), true, Instant::ZERO), Insert::Refused, "2 of 2");
            // 17 contacts of other networks: a second one of 192.0.2 would be 2 of 19.
            for n in 0..17u8 {
                let a = PeerAddr::V4([198, 51, n, 1], 1);
                assert_eq!(t.insert(id(usize::from(n % 6), n), a, true, Instant::ZERO), Insert::Added);
            }
            assert_eq!(t.insert(id(3, 101), sybil(101), true, Instant::ZERO), Insert::Refused, "2 of 19");
            t.insert(id(4, 30), PeerAddr::V4([198, 51, 30, 1], 1), true, Instant::ZERO);
            assert_eq!(t.insert(id(3, 101), sybil(101), true, Instant::ZERO), Insert::Added, "2 of 20");
        }

        fn loopback_is_exempt_unless_the_limits_apply_to_it() {
            let lo = |n: u8| PeerAddr::V4([127, 0, 0, n], 1);
            let mut t = table();
            for n in 0..3 {
                assert_eq!(t.insert(id(0, n), lo(n), true, Instant::ZERO), Insert::Added);
            }
            let mut t = table().with_limits(Limits { on_loopback: true, table_fraction: 1, ..Limits::default() });
            for n in 0..2 {
                assert_eq!(t.insert(id(0, n), lo(n), true, Instant::ZERO), Insert::Added);
            }
            assert_eq!(t.insert(id(0, 2), lo(2), true, Instant::ZERO), Insert::Refused);
        }

        fn a_replacement_of_a_full_prefix_is_not_promoted() {
            let at = |n: u8, h: u8| PeerAddr::V4([192, 0, n, h], 1);
            let mut t = RoutingTable::<1, 2, 2>::new(NodeId::from_bytes([0; 20]), RoutingConfig::default(), Instant::ZERO)
                .with_limits(Limits { bucket_per_prefix: 1, table_fraction: 1, ..Limits::default() });
            t.insert(id(0, 1), at(2, 1), true, Instant::ZERO);
            t.insert(id(0, 2), at(3, 1), true, Instant::ZERO);
            // The bucket is full: 192.0.4.1 waits as a replacement.
            assert!(matches!(t.insert(id(0, 3), at(4, 1), true, Instant::ZERO), Insert::Cached { .. }));
            // Contact 2 answers from 192.0.4.7 now: that /24 has its one place in the bucket.
            t.insert(id(0, 2), at(4, 7), true, Instant::ZERO);
            let f = t.on_failure(&id(0, 1));
            assert!(matches!(f, crate::routing::Failure::Removed { replacement: None, .. }), "{f:?}");
            assert_eq!(t.len(), 1);
        }
    }
}
