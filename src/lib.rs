//! ldcheck: makes Linux kernel links predictable.
//!
//! Data flows one way: linker script → [`script`] AST → evaluated layout → analysis → report.
//! The binary in `main.rs` only parses flags and calls into this library.

pub mod analysis;
pub mod hash;
pub mod input;
pub mod kallsyms;
pub mod kbuild;
pub mod layout;
pub mod link_args;
mod prefetch;
pub mod report;
pub mod script;
pub mod simulate;
mod sync;
pub mod target;
#[cfg(test)]
mod test_rng;
pub mod verify;
