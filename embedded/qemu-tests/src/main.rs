//! kad-core on a microcontroller: a test runner for an emulated Cortex-M4 (QEMU `mps2-an386`).
//! It runs the core's own unit tests (`kad_core::selftest::ALL`) and the core's network
//! scenarios (`kad_core::testnet::scenarios`) on ten `embedded`-preset nodes exchanging
//! datagrams in memory on virtual time, then prints the RAM of each preset. Output and the exit
//! code go through semihosting, so `cargo run` (the runner is QEMU) fails when a test fails.
//!
//! ```sh
//! cargo run --release        # in embedded/qemu-tests; needs qemu-system-arm
//! ```
#![no_std]
#![no_main]

mod net;
mod sizes;

use core::cell::Cell;
use core::sync::atomic::{AtomicUsize, Ordering};

use cortex_m::interrupt::Mutex;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use kad_core::selftest;

static PASSED: AtomicUsize = AtomicUsize::new(0);
static CURRENT: Mutex<Cell<&'static str>> = Mutex::new(Cell::new(""));

/// Runs one test; a failure ends in the panic handler.
fn run(name: &'static str, test: impl FnOnce()) {
    cortex_m::interrupt::free(|cs| CURRENT.borrow(cs).set(name));
    test();
    hprintln!("test {} ... ok", name);
    PASSED.fetch_add(1, Ordering::Relaxed);
}

#[entry]
fn main() -> ! {
    let scenarios = net::TenNodes::SCENARIOS;
    let total = selftest::ALL.iter().map(|t| t.len()).sum::<usize>() + scenarios.len();
    hprintln!("running {} tests on an emulated Cortex-M4 (qemu mps2-an386)", total);
    for test in selftest::ALL.iter().flat_map(|t| t.iter()) {
        run(test.name, test.run);
    }
    for (seed, scenario) in (1..).zip(scenarios) {
        run(scenario.name, || (scenario.run)(&mut net::ten_nodes(seed)));
    }
    sizes::print_sizes();
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
