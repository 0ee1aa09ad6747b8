//! Errors as sentences a user can act on, the same for the `kad` command and the HTTP API:
//! what went wrong in words (no debug names), and whether the input or the network is the cause.

use std::net::SocketAddr;

use kad_core::wire::StoreStatus;
use kad_core::{PublicKey, QueryError};

use crate::node::{Error, Handle};

/// True when the cause is what was asked (the value, its signature or sequence number), so
/// asking again unchanged cannot succeed: exit code 4 of `kad`, a 4xx answer of the HTTP API.
pub fn is_input(e: &Error) -> bool {
    match e {
        Error::Query(QueryError::NoAcks { refusal: Some(r), .. }) => matches!(
            r,
            StoreStatus::TooLarge
                | StoreStatus::BadSignature
                | StoreStatus::StaleSeq
                | StoreStatus::CasMismatch
        ),
        Error::Refused(
            kad_core::Error::NoPeers | kad_core::Error::Busy { .. } | kad_core::Error::StoreFull,
        ) => false,
        Error::Refused(_) => true,
        _ => false,
    }
}

/// The error as a sentence.
pub fn describe(e: &Error) -> String {
    match e {
        Error::Query(QueryError::NoAcks { tried, refusal: Some(r) }) => {
            format!("no peer stored the value ({tried} asked; the last refusal: {})", refusal(*r))
        }
        e => e.to_string(),
    }
}

/// Why a peer refused a STORE, in words.
pub fn refusal(status: StoreStatus) -> &'static str {
    match status {
        StoreStatus::Stored => "none, it was stored",
        StoreStatus::TooLarge => "the value is larger than that peer accepts",
        StoreStatus::Full => "that peer's store is full",
        StoreStatus::BadSignature => "the signature does not verify for this public key, key, seq and value",
        StoreStatus::StaleSeq => "that peer holds a newer value (a higher seq)",
        StoreStatus::CasMismatch => "compare-and-swap did not match the seq that peer holds",
        StoreStatus::Unsupported => "that peer cannot verify signed records",
        StoreStatus::StorageError => "that peer's storage failed",
        StoreStatus::BadToken => "this node showed no valid write token (look the key up again, then store)",
        StoreStatus::OverShare => "this node's network already holds its share of that peer's store",
    }
}

/// For a signed put of `seq` that failed: the sequence number of the newer record the network
/// holds for (`public_key`, `name`), if there is one. `None` when the failure has another cause.
pub async fn newer_seq(h: &Handle, e: &Error, public_key: PublicKey, name: &str, seq: u64) -> Option<u64> {
    let refused_as_stale = matches!(
        e,
        Error::Query(QueryError::NoAcks {
            refusal: Some(StoreStatus::StaleSeq | StoreStatus::CasMismatch),
            ..
        }) | Error::Refused(kad_core::Error::Conflict(StoreStatus::StaleSeq | StoreStatus::CasMismatch))
    );
    if !refused_as_stale {
        return None;
    }
    let held = h.get_signed(public_key, name).await.ok()??.seq;
    (held >= seq).then_some(held)
}

/// "a newer value (seq N) is already stored under NAME for this public key"
pub fn stale(name: &str, held: u64) -> String {
    format!("a newer value (seq {held}) is already stored under {name:?} for this public key")
}

/// What to do when the node at `addr` knows no other node: it cannot store on or ask anyone.
pub fn lone_node(addr: SocketAddr) -> String {
    format!(
        "this node ({addr}) knows no other node yet: start a second one with \
         `kad node --port {} --data-dir DIR --bootstrap {addr}`, or restart this one with \
         --bootstrap HOST:PORT of a running node",
        addr.port().wrapping_add(1)
    )
}
