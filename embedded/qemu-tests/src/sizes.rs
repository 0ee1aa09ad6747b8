//! The RAM each capacity preset takes on this 32-bit target.

use core::mem::size_of;

use cortex_m_semihosting::hprintln;

/// Prints the RAM the DHT takes per capacity preset on this 32-bit target: the node, and the
/// node plus kad-embedded's socket buffers and queues (the runner task adds about 0.8 KiB).
pub fn print_sizes() {
    use embassy_sync::blocking_mutex::raw::NoopRawMutex;
    use kad_core::presets::{embedded, host, sim};
    type Shared<const V: usize, const K: usize> = kad_embedded::Shared<NoopRawMutex, V, K>;
    let buffers = size_of::<kad_embedded::SocketBuffers>();
    hprintln!("RAM per preset on Cortex-M4 (bytes): preset, node, store, node + socket buffers + queues");
    for (name, node, store, shared) in [
        (
            "host",
            size_of::<host::Node>(),
            size_of::<host::Store>(),
            size_of::<Shared<{ host::VALUE }, { host::K }>>(),
        ),
        (
            "embedded",
            size_of::<embedded::Node>(),
            size_of::<embedded::Store>(),
            size_of::<Shared<{ embedded::VALUE }, { embedded::K }>>(),
        ),
        (
            "sim",
            size_of::<sim::Node>(),
            size_of::<sim::Store>(),
            size_of::<Shared<{ sim::VALUE }, { sim::K }>>(),
        ),
    ] {
        hprintln!("size {} {} {} {}", name, node, store, node + buffers + shared);
    }
}
