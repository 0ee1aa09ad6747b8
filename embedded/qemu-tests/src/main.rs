//! kad-core's logic on a microcontroller: a test runner for an emulated Cortex-M4 (QEMU
//! `mps2-an386`). The core's unit tests, ported to `no_std` (ids, wire, routing, lookups, the
//! store, providers, signatures), and scenarios of ten `embedded`-preset nodes exchanging
//! datagrams in memory on virtual time. Output and the exit code go through semihosting, so
//! `cargo run` (the runner is QEMU) fails when a test fails.
//!
//! ```sh
//! cargo run --release        # in embedded/qemu-tests; needs qemu-system-arm
//! ```
#![no_std]
#![no_main]

mod net;
mod unit;

use core::cell::Cell;
use core::sync::atomic::{AtomicUsize, Ordering};

use cortex_m::interrupt::Mutex;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};

/// A test: a name that says the rule it checks, and a function that panics when it does not hold.
pub struct Test {
    /// The rule.
    pub name: &'static str,
    /// Panics on failure.
    pub run: fn(),
}

static PASSED: AtomicUsize = AtomicUsize::new(0);
static CURRENT: Mutex<Cell<&'static str>> = Mutex::new(Cell::new(""));

#[entry]
fn main() -> ! {
    let tests: &[&[Test]] = &[unit::TESTS, net::TESTS];
    let total: usize = tests.iter().map(|t| t.len()).sum();
    hprintln!("running {} tests on an emulated Cortex-M4 (qemu mps2-an386)", total);
    for test in tests.iter().flat_map(|t| t.iter()) {
        cortex_m::interrupt::free(|cs| CURRENT.borrow(cs).set(test.name));
        (test.run)();
        hprintln!("test {} ... ok", test.name);
        PASSED.fetch_add(1, Ordering::Relaxed);
    }
    unit::print_sizes();
    hprintln!("{} passed, 0 failed", PASSED.load(Ordering::Relaxed));
    debug::exit(debug::EXIT_SUCCESS);
    unreachable!("semihosting exit returned")
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let name = cortex_m::interrupt::free(|cs| CURRENT.borrow(cs).get());
    hprintln!("test {} ... FAILED\n{}", name, info);
    hprintln!("{} passed, 1 failed", PASSED.load(Ordering::Relaxed));
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}
