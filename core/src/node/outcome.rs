//! Outcomes: how a finished query reports its result and its counters.

use core::fmt;

use heapless::Vec;

use crate::store::{Record, RecordStore};
use crate::time::Instant;
use crate::wire::{Peer, StoreStatus, MAX_CONTACTS, MAX_PROVIDERS};

use super::queries::{Kind, Query};
use super::Node;

/// Why a query failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryError {
    /// No peer had a value (or provider) for the key.
    NotFound,
    /// No peer acknowledged the store. `refusal` is the last reason a peer gave, if any.
    NoAcks {
        /// Peers asked.
        tried: u16,
        /// The last refusal, if a peer refused rather than stayed silent.
        refusal: Option<StoreStatus>,
    },
    /// No peer answered at all.
    NoPeers,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::NotFound => f.write_str("not found"),
            QueryError::NoAcks { tried, refusal: Some(r) } => {
                write!(f, "no peer stored the value ({tried} asked, last refusal: {r})")
            }
            QueryError::NoAcks { tried, refusal: None } => {
                write!(f, "no peer stored the value ({tried} asked, none answered)")
            }
            QueryError::NoPeers => f.write_str("no peer answered"),
        }
    }
}

/// How a query went, for metrics and the simulator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Requests sent (lookup and store phases).
    pub requests: u16,
    /// Answers received.
    pub responses: u16,
    /// Requests that timed out.
    pub timeouts: u16,
    /// Lookup rounds: the deepest hop among answering peers (for a found value: the hop of the
    /// peer that returned it).
    pub rounds: u8,
    /// A get: the holders that returned the value in its result (see `node/quorum.rs`); 0 for
    /// a value this node held itself, and for other queries.
    pub agreeing: u16,
    /// When the query started.
    pub started: Instant,
    /// When it finished.
    pub finished: Instant,
}

/// Acknowledgements of a put or provide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acks {
    /// Peers that stored it.
    pub stored: u16,
    /// Peers asked.
    pub tried: u16,
}

/// The result of a finished query.
#[derive(Clone, Debug, PartialEq, Eq)]
// No allocator to box the large variant; every variant is bounded by the capacities.
#[allow(clippy::large_enum_variant)]
pub enum Outcome<const V: usize> {
    /// Bootstrap: the number of contacts in the routing table; an error when its lookup of the
    /// own id reached no peer.
    Bootstrap(Result<usize, QueryError>),
    /// FIND_NODE: the closest peers that answered, nearest first.
    FindNode(Result<Vec<Peer, MAX_CONTACTS>, QueryError>),
    /// FIND_VALUE: the record.
    Get(Result<Record<V>, QueryError>),
    /// STORE on the closest peers.
    Put(Result<Acks, QueryError>),
    /// ADD_PROVIDER on the closest peers.
    Provide(Result<Acks, QueryError>),
    /// GET_PROVIDERS: the providers found.
    GetProviders(Result<Vec<Peer, MAX_PROVIDERS>, QueryError>),
}

impl<const V: usize> Outcome<V> {
    /// True when the query could not do its job: any error except "not found" (a get or
    /// provider lookup that found nothing ran fine and answered the question).
    pub fn is_failure(&self) -> bool {
        let err = match self {
            Outcome::Bootstrap(r) => r.as_ref().err(),
            Outcome::FindNode(r) => r.as_ref().err(),
            Outcome::Get(r) => r.as_ref().err(),
            Outcome::Put(r) | Outcome::Provide(r) => r.as_ref().err(),
            Outcome::GetProviders(r) => r.as_ref().err(),
        };
        err.is_some_and(|e| *e != QueryError::NotFound)
    }
}

impl<
        S: RecordStore<V>,
        const B: usize,
        const K: usize,
        const R: usize,
        const Q: usize,
        const P: usize,
        const V: usize,
        const PV: usize,
        const E: usize,
    > Node<S, B, K, R, Q, P, V, PV, E>
{
    pub(super) fn outcome(&self, q: Query<K, V>) -> Outcome<V> {
        let answered = q.lookup.succeeded().count();
        let no_peers = answered == 0 && q.record.is_none();
        match q.kind {
            // A server has joined when its own-id lookup reached a peer, a client when a seed
            // answered its ping (see `pings_done`).
            Kind::Bootstrap => Outcome::Bootstrap(
                if self.routing.is_empty()
                    || (answered == 0 && !(self.config.client_mode && q.stats.responses > 0))
                {
                    Err(QueryError::NoPeers)
                } else {
                    Ok(self.routing.len())
                },
            ),
            Kind::FindNode | Kind::Refresh => Outcome::FindNode(if no_peers {
                Err(QueryError::NoPeers)
            } else {
                Ok(q.lookup.succeeded().take(MAX_CONTACTS).map(|c| Peer { id: c.id, addr: c.addr }).collect())
            }),
            Kind::Get { .. } => Outcome::Get(q.record.ok_or(QueryError::NotFound)),
            Kind::Put | Kind::Republish | Kind::Provide => {
                let r = if q.acks > 0 {
                    Ok(Acks { stored: q.acks, tried: q.tried })
                } else if no_peers {
                    Err(QueryError::NoPeers)
                } else {
                    Err(QueryError::NoAcks { tried: q.tried, refusal: q.refusal })
                };
                if q.kind == Kind::Provide {
                    Outcome::Provide(r)
                } else {
                    Outcome::Put(r)
                }
            }
            Kind::GetProviders => Outcome::GetProviders(if q.providers.is_empty() {
                Err(QueryError::NotFound)
            } else {
                Ok(q.providers)
            }),
        }
    }
}

#[cfg(any(test, feature = "selftest"))]
pub(crate) mod tests {
    use super::*;

    crate::selftest::unit_tests! {
        fn a_query_that_found_nothing_did_not_fail_but_one_nobody_answered_did() {
            let not_found: [Outcome<8>; 3] = [
                Outcome::Get(Err(QueryError::NotFound)),
                Outcome::GetProviders(Err(QueryError::NotFound)),
                Outcome::FindNode(Ok(Vec::new())),
            ];
            for o in &not_found {
                assert!(!o.is_failure());
            }
            let no_acks = QueryError::NoAcks { tried: 3, refusal: Some(StoreStatus::Full) };
            let failed: [Outcome<8>; 5] = [
                Outcome::Bootstrap(Err(QueryError::NoPeers)),
                Outcome::FindNode(Err(QueryError::NoPeers)),
                Outcome::Get(Err(QueryError::NoPeers)),
                Outcome::Put(Err(no_acks)),
                Outcome::Provide(Err(QueryError::NoPeers)),
            ];
            for o in &failed {
                assert!(o.is_failure());
            }
            assert!(!Outcome::<8>::Put(Ok(Acks { stored: 1, tried: 3 })).is_failure());
        }

        fn a_refused_store_says_why_in_words() {
            use core::fmt::Write;
            let mut s = heapless::String::<200>::new();
            let e = QueryError::NoAcks { tried: 3, refusal: Some(StoreStatus::StaleSeq) };
            write!(s, "{e}").unwrap();
            assert_eq!(
                s.as_str(),
                "no peer stored the value (3 asked, last refusal: the peer holds a higher sequence \
                 number (or the same one with another value): publish with a higher seq)"
            );
        }
    }
}
