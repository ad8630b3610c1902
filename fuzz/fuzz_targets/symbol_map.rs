//! Any bytes as a `System.map`-style symbol map, in both kernel versions' input rules.
#![no_main]

use ldcheck::kallsyms::{Version, parse_symbol_map};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for version in [Version::V6_1, Version::V6_12] {
        let _ = parse_symbol_map(data, version);
    }
});
