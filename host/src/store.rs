//! The host's record store: records in memory, and with a data directory also in an embedded
//! redb database, written durably before a STORE is acknowledged. The same file keeps the
//! node's id and its routing contacts across restarts.
//!
//! A record is held as its encoding: a header of [`HEADER_LEN`] bytes ([`SIGNER_LEN`] more
//! when signed) and the data, in one allocation of exactly that length, both in memory and as
//! the redb value. So a record costs its value plus a constant (the header, its B-tree entry,
//! the allocator's rounding), not a full [`VALUE`]-byte buffer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use kad_core::addr::Prefix;
use kad_core::presets::host::VALUE;
use kad_core::store::{farthest, Record, RecordMeta, RecordStore, Signer, StoreError};
use kad_core::{Instant, Key, NodeId, Origin, ValueKind};
use kad_core::{PublicKey, Signature};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("records");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const CONTACTS: TableDefinition<&[u8], &str> = TableDefinition::new("contacts");

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "kad.redb";

/// A record of the host preset.
pub type HostRecord = Record<VALUE>;

/// Why the data directory or its database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {}: {source}", dir.display())]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database file could not be opened or created (another node may hold it).
    #[error("cannot open the database {}: {source} (a data directory serves one node at a time)", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: redb::DatabaseError,
    },
    /// The database could not be read.
    #[error("cannot read the database {}: {source}; move the file away to start with an empty store", path.display())]
    Read {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: redb::Error,
    },
    /// The database could not be written.
    #[error(
        "cannot write the database {}: {source}; check that its disk has space and the file is writable",
        path.display()
    )]
    Write {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: redb::Error,
    },
}

/// The database file and where it is.
struct Disk {
    db: Database,
    path: PathBuf,
}

impl Disk {
    /// Runs a write transaction and commits it.
    fn write(&self, f: impl FnOnce(&WriteTransaction) -> Result<(), redb::Error>) -> Result<(), DbError> {
        let run = || -> Result<(), redb::Error> {
            let tx = self.db.begin_write()?;
            f(&tx)?;
            Ok(tx.commit()?)
        };
        run().map_err(|source| DbError::Write { path: self.path.clone(), source })
    }
}

/// Records in memory, optionally backed by a redb file.
pub struct HostStore {
    /// Each record's encoding, by key.
    records: BTreeMap<Key, Box<[u8]>>,
    index: Index,
    capacity: usize,
    disk: Option<Disk>,
}

/// What the node asks of a full store, kept so that it needs no scan: each record's source
/// network (not in its encoding: a record loaded from disk has none) and the count per source,
/// and the keys of cached copies (evicted first; replicas are found in the records themselves,
/// see [`RecordStore::worst`]).
#[derive(Default)]
struct Index {
    sources: HashMap<Key, Prefix>,
    by_source: HashMap<Prefix, usize>,
    cached: BTreeSet<Key>,
}

impl Index {
    fn add(&mut self, key: Key, origin: Origin, source: Option<Prefix>) {
        if let Some(s) = source {
            self.sources.insert(key, s);
            *self.by_source.entry(s).or_default() += 1;
        }
        if origin == Origin::Cache {
            self.cached.insert(key);
        }
    }

    fn remove(&mut self, key: &Key, origin: Origin) {
        if let Some(s) = self.sources.remove(key) {
            if let Some(n) = self.by_source.get_mut(&s) {
                *n -= 1;
                if *n == 0 {
                    self.by_source.remove(&s);
                }
            }
        }
        if origin == Origin::Cache {
            self.cached.remove(key);
        }
    }
}

impl HostStore {
    /// A store that lives only in memory.
    pub fn in_memory(capacity: usize) -> Self {
        HostStore { records: BTreeMap::new(), index: Index::default(), capacity, disk: None }
    }

    /// Opens (or creates) `dir/kad.redb` and loads the records it holds.
    pub fn open(dir: &Path, capacity: usize) -> Result<Self, DbError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| DbError::CreateDir { dir: dir.to_path_buf(), source })?;
        let path = dir.join(DB_FILE);
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(source) => return Err(DbError::Open { path, source }),
        };
        let disk = Disk { db, path };
        disk.write(|tx| {
            tx.open_table(RECORDS)?;
            tx.open_table(META)?;
            tx.open_table(CONTACTS)?;
            Ok(())
        })?;
        let read = || -> Result<BTreeMap<Key, Box<[u8]>>, redb::Error> {
            let mut records = BTreeMap::new();
            let rx = disk.db.begin_read()?;
            let table = rx.open_table(RECORDS)?;
            for entry in table.iter()? {
                let (k, v) = entry?;
                let Ok(key) = <[u8; 20]>::try_from(k.value()) else { continue };
                let key = Key::from_bytes(key);
                if decode_record(key, v.value()).is_some() {
                    records.insert(key, Box::from(v.value()));
                }
            }
            Ok(records)
        };
        let records = read().map_err(|source| DbError::Read { path: disk.path.clone(), source })?;
        let mut index = Index::default();
        for (key, b) in &records {
            if let Some((h, _)) = decode_header(b) {
                index.add(*key, h.origin, None);
            }
        }
        Ok(HostStore { records, index, capacity, disk: Some(disk) })
    }

    /// True when records are written to disk.
    pub fn is_persistent(&self) -> bool {
        self.disk.is_some()
    }

    /// The metadata and data length (salt included) of every record, in key order.
    pub fn metas(&self) -> impl Iterator<Item = (RecordMeta, usize)> + '_ {
        self.records.iter().filter_map(|(k, b)| decode_header(b).map(|(h, data)| (h.meta(*k), data.len())))
    }

    /// The node id saved by an earlier run.
    pub fn saved_id(&self) -> Option<NodeId> {
        let rx = self.disk.as_ref()?.db.begin_read().ok()?;
        let t = rx.open_table(META).ok()?;
        let v = t.get("id").ok()??;
        Some(NodeId::from_bytes(v.value().try_into().ok()?))
    }

    /// Saves the node id.
    pub fn save_id(&self, id: &NodeId) -> Result<(), DbError> {
        let Some(disk) = &self.disk else { return Ok(()) };
        disk.write(|tx| {
            tx.open_table(META)?.insert("id", &id.as_bytes()[..])?;
            Ok(())
        })
    }

    /// The routing contacts saved by an earlier run.
    pub fn saved_contacts(&self) -> Vec<(NodeId, SocketAddr)> {
        let Some(disk) = &self.disk else { return Vec::new() };
        let read = || -> Result<Vec<(NodeId, SocketAddr)>, redb::Error> {
            let rx = disk.db.begin_read()?;
            let t = rx.open_table(CONTACTS)?;
            let mut out = Vec::new();
            for e in t.iter()? {
                let (k, v) = e?;
                if let (Ok(id), Ok(addr)) = (<[u8; 20]>::try_from(k.value()), v.value().parse()) {
                    out.push((NodeId::from_bytes(id), addr));
                }
            }
            Ok(out)
        };
        read().unwrap_or_default()
    }

    /// Replaces the saved routing contacts.
    pub fn save_contacts(&self, contacts: &[(NodeId, SocketAddr)]) -> Result<(), DbError> {
        let Some(disk) = &self.disk else { return Ok(()) };
        disk.write(|tx| {
            let mut t = tx.open_table(CONTACTS)?;
            t.retain(|_, _| false)?;
            for (id, addr) in contacts {
                t.insert(&id.as_bytes()[..], addr.to_string().as_str())?;
            }
            Ok(())
        })
    }

    /// Writes (or with `None` deletes) a record on disk; a failure refuses the STORE.
    fn write(&self, key: &Key, value: Option<&[u8]>) -> Result<(), StoreError> {
        let Some(disk) = &self.disk else { return Ok(()) };
        let written = disk.write(|tx| {
            let mut t = tx.open_table(RECORDS)?;
            match value {
                Some(v) => drop(t.insert(&key.as_bytes()[..], v)?),
                None => drop(t.remove(&key.as_bytes()[..])?),
            }
            Ok(())
        });
        written.map_err(|e| {
            tracing::error!(error = %e, "record store write failed");
            StoreError::Io
        })
    }
}

impl RecordStore<VALUE> for HostStore {
    fn get(&self, key: &Key) -> Option<HostRecord> {
        let source = self.index.sources.get(key).copied();
        self.records.get(key).and_then(|b| decode_record(*key, b)).map(|r| Record { source, ..r })
    }

    fn meta(&self, key: &Key) -> Option<RecordMeta> {
        let source = self.index.sources.get(key).copied();
        self.records
            .get(key)
            .and_then(|b| decode_header(b))
            .map(|(h, _)| RecordMeta { source, ..h.meta(*key) })
    }

    fn put(&mut self, record: HostRecord) -> Result<(), StoreError> {
        if !self.records.contains_key(&record.key) && self.records.len() >= self.capacity {
            return Err(StoreError::Full);
        }
        let encoded = encode_record(&record);
        // Durable first: the node acknowledges only after this returns.
        self.write(&record.key, Some(&encoded[..]))?;
        if let Some(old) = self.meta(&record.key) {
            self.index.remove(&old.key, old.origin);
        }
        self.index.add(record.key, record.origin, record.source);
        self.records.insert(record.key, encoded);
        Ok(())
    }

    fn remove(&mut self, key: &Key) {
        if let Some(old) = self.meta(key) {
            self.records.remove(key);
            self.index.remove(key, old.origin);
            let _ = self.write(key, None);
        }
    }

    fn len(&self) -> usize {
        self.records.len()
    }

    fn next_key(&self, after: Option<&Key>) -> Option<Key> {
        use std::ops::Bound::{Excluded, Unbounded};
        let lower = after.map_or(Unbounded, Excluded);
        self.records.range((lower, Unbounded)).next().map(|(k, _)| *k)
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    fn count_from(&self, source: &Prefix) -> usize {
        self.index.by_source.get(source).copied().unwrap_or(0)
    }

    /// The farthest cached copy, else the farthest replica: 160 range queries, of the index of
    /// cached copies or of the records (a range query passes over the publisher's own records
    /// in it, few), no scan. `None` when only the publisher's own records are held (never
    /// evicted).
    fn worst(&self, own: &NodeId) -> Option<RecordMeta> {
        let cached = || farthest(own, |lo, hi| self.index.cached.range(*lo..=*hi).next().is_some());
        let replica = || {
            farthest(own, |lo, hi| {
                let origin = |b: &[u8]| decode_header(b).map(|(h, _)| h.origin);
                self.records.range(*lo..=*hi).any(|(_, b)| origin(b) == Some(Origin::Replica))
            })
        };
        cached().or_else(replica).and_then(|k| self.meta(&k))
    }
}

const FORMAT: u8 = 1;
/// Bytes of an encoded record before its data: format, kind, origin, three times, signer flag.
pub const HEADER_LEN: usize = 3 + 3 * 8 + 1;
/// Further header bytes of a signed record: public key, sequence number, signature, salt length.
pub const SIGNER_LEN: usize = 32 + 8 + 64 + 1;

/// Layout: format, kind, origin, expires_at, stored_at, republished_at (u64 LE ms),
/// signature flag [public key, seq, signature, salt length], data.
fn encode_record(r: &HostRecord) -> Box<[u8]> {
    let len = HEADER_LEN + if r.signer.is_some() { SIGNER_LEN } else { 0 } + r.data.len();
    let mut out = Vec::with_capacity(len);
    out.push(FORMAT);
    out.push(match r.kind {
        ValueKind::Bytes => 0,
        ValueKind::Text => 1,
    });
    out.push(match r.origin {
        Origin::Publisher => 0,
        Origin::Replica => 1,
        Origin::Cache => 2,
    });
    for t in [r.expires_at, r.stored_at, r.republished_at] {
        out.extend_from_slice(&t.as_millis().to_le_bytes());
    }
    match &r.signer {
        Some(s) => {
            out.push(1);
            out.extend_from_slice(s.public_key.as_bytes());
            out.extend_from_slice(&s.seq.to_le_bytes());
            out.extend_from_slice(s.signature.as_bytes());
            out.push(s.salt_len);
        }
        None => out.push(0),
    }
    out.extend_from_slice(&r.data);
    debug_assert_eq!(out.len(), len);
    out.into_boxed_slice()
}

/// A record's fields other than its key and data.
struct Header {
    kind: ValueKind,
    origin: Origin,
    expires_at: Instant,
    stored_at: Instant,
    republished_at: Instant,
    signer: Option<Signer>,
}

impl Header {
    fn meta(&self, key: Key) -> RecordMeta {
        RecordMeta {
            key,
            origin: self.origin,
            expires_at: self.expires_at,
            stored_at: self.stored_at,
            republished_at: self.republished_at,
            seq: self.signer.map(|s| s.seq),
            source: None,
        }
    }
}

/// The header of an encoded record and its data; `None` when the bytes are not one.
fn decode_header(b: &[u8]) -> Option<(Header, &[u8])> {
    let mut r = Reader(b);
    if r.u8()? != FORMAT {
        return None;
    }
    let kind = match r.u8()? {
        0 => ValueKind::Bytes,
        1 => ValueKind::Text,
        _ => return None,
    };
    let origin = match r.u8()? {
        0 => Origin::Publisher,
        1 => Origin::Replica,
        2 => Origin::Cache,
        _ => return None,
    };
    let expires_at = Instant::from_millis(r.u64()?);
    let stored_at = Instant::from_millis(r.u64()?);
    let republished_at = Instant::from_millis(r.u64()?);
    let signer = match r.u8()? {
        0 => None,
        1 => Some(Signer {
            public_key: PublicKey(r.take(32)?.try_into().ok()?),
            seq: r.u64()?,
            signature: Signature(r.take(64)?.try_into().ok()?),
            salt_len: r.u8()?,
        }),
        _ => return None,
    };
    Some((Header { kind, origin, expires_at, stored_at, republished_at, signer }, r.0))
}

fn decode_record(key: Key, b: &[u8]) -> Option<HostRecord> {
    let (h, data) = decode_header(b)?;
    Some(Record {
        key,
        kind: h.kind,
        data: heapless::Vec::from_slice(data).ok()?,
        signer: h.signer,
        origin: h.origin,
        expires_at: h.expires_at,
        stored_at: h.stored_at,
        republished_at: h.republished_at,
        source: None,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(k: &str, signed: bool) -> HostRecord {
        Record {
            key: Key::hash(k.as_bytes()),
            kind: ValueKind::Text,
            data: heapless::Vec::from_slice(b"saltvalue").unwrap(),
            signer: signed.then_some(Signer {
                public_key: PublicKey([1; 32]),
                seq: 9,
                signature: Signature([2; 64]),
                salt_len: 4,
            }),
            origin: Origin::Replica,
            expires_at: Instant::from_millis(3),
            stored_at: Instant::from_millis(1),
            republished_at: Instant::from_millis(2),
            source: None,
        }
    }

    #[test]
    fn records_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = HostStore::open(dir.path(), 10).unwrap();
            s.put(record("a", false)).unwrap();
            s.put(record("b", true)).unwrap();
            s.put(record("c", false)).unwrap();
            s.remove(&Key::hash(b"c"));
            s.save_id(&NodeId::from_bytes([7; 20])).unwrap();
            s.save_contacts(&[(NodeId::from_bytes([8; 20]), "127.0.0.1:9".parse().unwrap())]).unwrap();
        }
        let s = HostStore::open(dir.path(), 10).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.get(&Key::hash(b"a")), Some(record("a", false)));
        assert_eq!(s.get(&Key::hash(b"b")), Some(record("b", true)));
        assert_eq!(s.saved_id(), Some(NodeId::from_bytes([7; 20])));
        assert_eq!(s.saved_contacts().len(), 1);
    }

    #[test]
    fn a_data_directory_that_cannot_be_used_says_why_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let _first = HostStore::open(dir.path(), 1).unwrap();
        let Err(in_use) = HostStore::open(dir.path(), 1) else { panic!("the database is open already") };
        assert!(matches!(in_use, DbError::Open { .. }), "{in_use}");
        assert!(in_use.to_string().ends_with("(a data directory serves one node at a time)"), "{in_use}");
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let Err(not_a_dir) = HostStore::open(&file.join("sub"), 1) else {
            panic!("a file is not a directory")
        };
        assert!(matches!(not_a_dir, DbError::CreateDir { .. }), "{not_a_dir}");
        assert!(not_a_dir.to_string().starts_with("cannot create the data directory"), "{not_a_dir}");
    }

    /// The index answers what a scan of every record answers (the trait's defaults, as
    /// `MemoryStore` runs them), through puts that replace and removes.
    #[test]
    fn the_index_agrees_with_a_scan() {
        let mut s = HostStore::in_memory(1000);
        let mut scan = Box::new(kad_core::MemoryStore::<256, VALUE>::new());
        let sources = [kad_core::PeerAddr::V4([10, 0, 0, 1], 1), kad_core::PeerAddr::V4([10, 0, 1, 1], 1)];
        for i in 0..300u32 {
            let origin = [Origin::Cache, Origin::Replica, Origin::Publisher][(i % 7 % 3) as usize];
            let source = (i % 5 != 0).then(|| sources[(i % 2) as usize].prefix());
            let r = Record { origin, source, ..record(&(i % 250).to_string(), false) };
            s.put(r.clone()).unwrap();
            scan.put(r).unwrap();
            if i % 11 == 0 {
                let k = Key::hash((i / 2).to_string().as_bytes());
                s.remove(&k);
                scan.remove(&k);
            }
        }
        for own in 0..20u8 {
            let own = NodeId::from_bytes([own.wrapping_mul(37); 20]);
            assert_eq!(s.worst(&own), scan.worst(&own));
        }
        for src in sources {
            assert_eq!(s.count_from(&src.prefix()), scan.count_from(&src.prefix()));
        }
        let publishers = HostStore::in_memory(1);
        assert_eq!(publishers.worst(&NodeId::from_bytes([0; 20])), None);
    }

    #[test]
    fn a_full_store_refuses_new_keys() {
        let mut s = HostStore::in_memory(1);
        s.put(record("a", false)).unwrap();
        assert_eq!(s.put(record("b", false)), Err(StoreError::Full));
        assert!(s.put(record("a", true)).is_ok());
    }
}
