//! The [`Dht`] handle other tasks use, and the [`Shared`] queues between it and the runner.
//!
//! A call takes one of [`CALLERS`] reply slots (waiting while all are taken), sends its command
//! over a bounded channel and waits on its slot for the answer. Every call carries a ticket, so
//! an answer meant for a caller that gave up (its future was dropped) is never taken by the next
//! caller of the same slot.

use embassy_futures::select::select_array;
use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_sync::channel::Channel;
use embassy_sync::mutex::{Mutex, MutexGuard};
use embassy_sync::signal::Signal;
use heapless::Vec;
use kad_core::wire::MAX_PROVIDERS;
use kad_core::{Acks, Key, PeerAddr, QueryError, Record, ValueKind};

pub use kad_core::Peer;

/// Calls in progress at once through all [`Dht`] handles; further calls wait for a free slot.
/// Also the depth of the command queue. One: the `embedded` preset runs two queries at once, of
/// which maintenance (bucket refresh, republish) may take one, so a second caller would mostly
/// wait for the first anyway; each slot costs about `2 × V` bytes.
pub const CALLERS: usize = 1;

/// Bootstrap addresses accepted by one [`Dht::bootstrap`] call.
pub const MAX_BOOTSTRAP: usize = 4;

/// A value to store: text (read back as text by every front end) or bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// UTF-8 text.
    Text(&'a str),
    /// Raw bytes.
    Bytes(&'a [u8]),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Text(s)
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(b: &'a [u8]) -> Self {
        Value::Bytes(b)
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Value<'a> {
    fn from(b: &'a [u8; N]) -> Self {
        Value::Bytes(b)
    }
}

/// Why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DhtError {
    /// The node refused the command; nothing was sent (value too large, no peers, ...).
    Refused(kad_core::Error),
    /// The query ran and failed (not found, no peer stored the value, no peer answered).
    Failed(QueryError),
}

impl core::fmt::Display for DhtError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DhtError::Refused(e) => e.fmt(f),
            DhtError::Failed(e) => e.fmt(f),
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for DhtError {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self))
    }
}

/// A command for the runner.
#[derive(Clone, Debug)]
pub(crate) enum Command<const V: usize> {
    Bootstrap(Vec<PeerAddr, MAX_BOOTSTRAP>),
    Put { key: Key, kind: ValueKind, value: Vec<u8, V> },
    Get(Key),
    FindNode(Key),
    Provide(Key),
    GetProviders(Key),
}

/// A command from the caller holding reply slot `slot` with ticket `ticket`.
#[derive(Clone, Debug)]
pub(crate) struct Request<const V: usize> {
    pub slot: u8,
    pub ticket: u32,
    pub command: Command<V>,
}

/// A value found by [`Dht::get`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found<const V: usize> {
    /// Text or bytes, as it was put.
    pub kind: ValueKind,
    /// The value (without the salt of a signed record).
    pub data: Vec<u8, V>,
}

impl<const V: usize> Found<V> {
    /// The value as text, if it was put as text and is UTF-8.
    pub fn as_text(&self) -> Option<&str> {
        match self.kind {
            ValueKind::Text => core::str::from_utf8(&self.data).ok(),
            ValueKind::Bytes => None,
        }
    }
}

impl<const V: usize> From<Record<V>> for Found<V> {
    fn from(r: Record<V>) -> Self {
        // The value is a suffix of the record's data, so it always fits.
        Found { kind: r.kind, data: Vec::from_slice(r.value()).unwrap_or_default() }
    }
}

/// What the runner answers; only the parts of the core's outcome a caller needs, sized by `K`.
#[derive(Clone, Debug)]
// Bounded by the capacities; there is no allocator to box the large variants.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Answer<const V: usize, const K: usize> {
    Bootstrap(usize),
    Peers(Vec<Peer, K>),
    Providers(Vec<Peer, MAX_PROVIDERS>),
    Found(Found<V>),
    Acks(Acks),
}

pub(crate) type Reply<const V: usize, const K: usize> = Result<Answer<V, K>, DhtError>;

/// The queues between [`Dht`] handles and the runner: a command channel of depth [`CALLERS`] and
/// one reply slot per caller. Put it in a `static` (its constructor is `const`); about
/// `CALLERS × 2 × V` bytes.
pub struct Shared<M: RawMutex, const V: usize, const K: usize> {
    pub(crate) commands: Channel<M, Request<V>, CALLERS>,
    slots: [Mutex<M, u32>; CALLERS],
    pub(crate) replies: [Signal<M, (u32, Reply<V, K>)>; CALLERS],
}

impl<M: RawMutex, const V: usize, const K: usize> Default for Shared<M, V, K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: RawMutex, const V: usize, const K: usize> Shared<M, V, K> {
    /// Empty queues.
    pub const fn new() -> Self {
        Shared {
            commands: Channel::new(),
            slots: [const { Mutex::new(0) }; CALLERS],
            replies: [const { Signal::new() }; CALLERS],
        }
    }

    /// A handle for tasks to use the DHT; copy it freely.
    pub fn dht(&self) -> Dht<'_, M, V, K> {
        Dht { shared: self }
    }

    /// Takes a free reply slot, waiting (in turn on each slot) while all are taken.
    async fn slot(&self) -> (usize, MutexGuard<'_, M, u32>) {
        for (i, s) in self.slots.iter().enumerate() {
            if let Ok(guard) = s.try_lock() {
                return (i, guard);
            }
        }
        // All busy: wait for whichever frees first.
        let (guard, i) = select_array(self.slots.each_ref().map(|s| s.lock())).await;
        (i, guard)
    }
}

/// A cheap, copyable handle to the node run by [`crate::Runner`]. Every method waits for the
/// query's end and returns its result.
pub struct Dht<'a, M: RawMutex, const V: usize, const K: usize> {
    shared: &'a Shared<M, V, K>,
}

impl<M: RawMutex, const V: usize, const K: usize> Clone for Dht<'_, M, V, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M: RawMutex, const V: usize, const K: usize> Copy for Dht<'_, M, V, K> {}

impl<M: RawMutex, const V: usize, const K: usize> Dht<'_, M, V, K> {
    async fn call(&self, command: Command<V>) -> Reply<V, K> {
        let (slot, mut ticket) = self.shared.slot().await;
        *ticket = ticket.wrapping_add(1);
        let mine = *ticket;
        self.shared.commands.send(Request { slot: slot as u8, ticket: mine, command }).await;
        // Answers of earlier callers of this slot that gave up are skipped; the runner sends at
        // most one answer per ticket, and ours comes after theirs.
        loop {
            let (t, reply) = self.shared.replies[slot].wait().await;
            if t == mine {
                return reply;
            }
        }
    }

    /// Joins the network through up to [`MAX_BOOTSTRAP`] known addresses; returns the number of
    /// contacts in the routing table afterwards. The runner also bootstraps by itself from the
    /// addresses it was given.
    pub async fn bootstrap(&self, addrs: &[PeerAddr]) -> Result<usize, DhtError> {
        let list = addrs.iter().take(MAX_BOOTSTRAP).copied().collect();
        match self.call(Command::Bootstrap(list)).await? {
            Answer::Bootstrap(n) => Ok(n),
            _ => unreachable!("a bootstrap is answered with a contact count"),
        }
    }

    /// Stores `value` under `key` (hashed with SHA-1, as every kad front end does) on the `K`
    /// closest nodes and keeps republishing it; returns how many stored it.
    pub async fn put(&self, key: impl AsRef<[u8]>, value: impl Into<Value<'_>>) -> Result<Acks, DhtError> {
        let (kind, bytes) = match value.into() {
            Value::Text(s) => (ValueKind::Text, s.as_bytes()),
            Value::Bytes(b) => (ValueKind::Bytes, b),
        };
        let max = V.min(kad_core::store::MAX_VALUE_LEN);
        let value = Vec::from_slice(bytes)
            .map_err(|_| DhtError::Refused(kad_core::Error::ValueTooLarge { len: bytes.len(), max }))?;
        let key = Key::hash(key.as_ref());
        match self.call(Command::Put { key, kind, value }).await? {
            Answer::Acks(a) => Ok(a),
            _ => unreachable!("a put is answered with acks"),
        }
    }

    /// Finds the value stored under `key` (hashed as in [`Dht::put`]).
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Found<V>, DhtError> {
        self.get_key(Key::hash(key.as_ref())).await
    }

    /// Finds the value stored under an already hashed key.
    pub async fn get_key(&self, key: Key) -> Result<Found<V>, DhtError> {
        match self.call(Command::Get(key)).await? {
            Answer::Found(f) => Ok(f),
            _ => unreachable!("a get is answered with a record"),
        }
    }

    /// Finds the `K` closest nodes to `target`, nearest first.
    pub async fn find_node(&self, target: Key) -> Result<Vec<Peer, K>, DhtError> {
        match self.call(Command::FindNode(target)).await? {
            Answer::Peers(p) => Ok(p),
            _ => unreachable!("a find_node is answered with peers"),
        }
    }

    /// Announces this node as a provider of `key` (hashed as in [`Dht::put`]) and keeps
    /// re-announcing it.
    pub async fn provide(&self, key: impl AsRef<[u8]>) -> Result<Acks, DhtError> {
        match self.call(Command::Provide(Key::hash(key.as_ref()))).await? {
            Answer::Acks(a) => Ok(a),
            _ => unreachable!("a provide is answered with acks"),
        }
    }

    /// Lists the providers of `key` (hashed as in [`Dht::put`]).
    pub async fn providers(&self, key: impl AsRef<[u8]>) -> Result<Vec<Peer, MAX_PROVIDERS>, DhtError> {
        match self.call(Command::GetProviders(Key::hash(key.as_ref()))).await? {
            Answer::Providers(p) => Ok(p),
            _ => unreachable!("a providers call is answered with providers"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kad_core::{Instant, Origin};

    #[test]
    fn a_found_value_drops_the_salt_of_a_signed_record_and_reads_as_text() {
        let mut data: Vec<u8, 16> = Vec::new();
        data.extend_from_slice(b"saltvalue").unwrap();
        let record = Record {
            key: Key::hash(b"k"),
            kind: ValueKind::Text,
            data,
            signer: Some(kad_core::store::Signer {
                public_key: kad_core::PublicKey([0; 32]),
                seq: 1,
                signature: kad_core::Signature([0; 64]),
                salt_len: 4,
            }),
            origin: Origin::Replica,
            expires_at: Instant::ZERO,
            stored_at: Instant::ZERO,
            republished_at: Instant::ZERO,
            source: None,
        };
        let found = Found::from(record);
        assert_eq!((found.as_text(), &found.data[..]), (Some("value"), &b"value"[..]));
        let bytes = Found::<4> { kind: ValueKind::Bytes, data: Vec::from_slice(b"abc").unwrap() };
        assert_eq!(bytes.as_text(), None);
    }

    #[test]
    fn values_say_whether_they_are_text_or_bytes() {
        assert_eq!(Value::from("hi"), Value::Text("hi"));
        assert_eq!(Value::from(&b"hi"[..]), Value::Bytes(b"hi"));
        assert_eq!(Value::from(b"hi"), Value::Bytes(b"hi"));
    }
}
