//! The core's unit tests as plain functions, so that the same tests run under `cargo test` and
//! on a microcontroller (`embedded/qemu-tests`, feature `selftest`) with no test harness and no
//! copies.
//!
//! A module declares its tests with `unit_tests!`; each becomes a `#[test]` under `cargo test`
//! and an entry of the module's `TESTS` list. Test bodies are `no_std`: no `std`, no `alloc`.

/// A unit test: the rule it checks, and a function that panics when the rule does not hold.
#[derive(Clone, Copy)]
pub struct Test {
    /// The rule, as `module::tests::rule_in_words`.
    pub name: &'static str,
    /// Panics on failure.
    pub run: fn(),
}

/// Declares the unit tests of a module (see the module docs).
macro_rules! unit_tests {
    ($($(#[$meta:meta])* fn $name:ident() $body:block)*) => {
        $($(#[$meta])* pub(crate) fn $name() $body)*

        #[cfg(test)]
        mod libtest {
            $(#[test]
            fn $name() {
                super::$name()
            })*
        }

        /// This module's unit tests.
        pub(crate) const TESTS: &[$crate::selftest::Test] = &[$($crate::selftest::Test {
            name: concat!(module_path!(), "::", stringify!($name)),
            run: $name,
        }),*];
    };
}
pub(crate) use unit_tests;

/// Every unit test of the core, module by module.
pub const ALL: &[&[Test]] = &[
    crate::backlog::tests::TESTS,
    crate::addr::tests::TESTS,
    crate::limits::tests::TESTS,
    crate::routing::diversity::tests::TESTS,
    crate::node::verify::tests::TESTS,
    crate::node::amplification::tests::TESTS,
    crate::id::tests::TESTS,
    crate::sha1::tests::TESTS,
    crate::time::tests::TESTS,
    crate::wire::tests::TESTS,
    crate::frame::tests::TESTS,
    crate::routing::tests::TESTS,
    crate::lookup::tests::TESTS,
    crate::lookup::stall_tests::TESTS,
    crate::store::tests::TESTS,
    crate::providers::tests::TESTS,
    #[cfg(feature = "signed")]
    crate::signed::tests::TESTS,
    crate::node::accept::tests::TESTS,
    crate::node::caching::tests::TESTS,
    crate::node::maintenance::tests::TESTS,
    crate::node::outcome::tests::TESTS,
    crate::node::peers::tests::TESTS,
    crate::node::queries::tests::TESTS,
    crate::node::rejoin::tests::TESTS,
    crate::node::replication::tests::TESTS,
    crate::node::rpc::tests::TESTS,
    crate::routing::liveness::tests::TESTS,
    crate::rtt::tests::TESTS,
    crate::stats::tests::TESTS,
    crate::token::tests::TESTS,
    crate::node::quorum::tests::TESTS,
    crate::node::quota::tests::TESTS,
    crate::node::requests::tests::TESTS,
    #[cfg(feature = "testnet")]
    crate::testnet::queue::tests::TESTS,
    #[cfg(feature = "testnet")]
    crate::testnet::link::tests::TESTS,
    #[cfg(feature = "testnet")]
    crate::testnet::medium::tests::TESTS,
];
