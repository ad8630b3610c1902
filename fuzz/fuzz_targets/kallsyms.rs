//! The kallsyms generator on any symbol map: tables, their size, and the assembly output;
//! then the pass simulator's cached path on the map and on the map without its first line
//! (a resumed compression when the two differ by one kept symbol), which must give the full
//! tool's layout. The first byte picks the options; the rest is the map.
#![no_main]

use ldcheck::kallsyms::{
    CompressCache, Options, PtrWidth, StableOptions, Version, build_tables, parse_symbol_map,
    rodata_layout_cached, tables_size,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, map)) = data.split_first() else {
        return;
    };
    let bit = |n: u8| flags & (1 << n) != 0;
    let version = if bit(0) {
        Version::V6_1
    } else {
        Version::V6_12
    };
    let options = Options {
        version,
        all_symbols: bit(1),
        absolute_percpu: bit(2),
        base_relative: bit(3) && version == Version::V6_1,
        lto_clang: bit(4) && version == Version::V6_1,
        stable: bit(5).then_some(StableOptions {
            reserve: if bit(7) { 256 } else { 0 },
        }),
    };
    let ptr = if bit(6) {
        PtrWidth::Bits32
    } else {
        PtrWidth::Bits64
    };
    let Ok(symbols) = parse_symbol_map(map, version) else {
        return;
    };
    if let Ok(tables) = build_tables(&symbols, &options) {
        let size = tables.rodata_size(ptr);
        let mut asm = Vec::new();
        tables
            .write_asm(&mut asm)
            .expect("writing to memory cannot fail");
        assert_eq!(
            tables_size(map, &options, ptr).ok(),
            Some(size),
            "tables_size disagrees with build_tables"
        );
    }
    let rest = map
        .iter()
        .position(|&b| b == b'\n')
        .map_or(&[][..], |nl| &map[nl + 1..]);
    let mut cache = CompressCache::default();
    for text in [map, rest, map] {
        let Ok(symbols) = parse_symbol_map(text, version) else {
            return;
        };
        let full = build_tables(&symbols, &options).map(|t| t.rodata_layout(ptr));
        let cached = rodata_layout_cached(&symbols, &options, ptr, &mut cache);
        match (&full, &cached) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "cached layout differs"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("cached path disagrees: {full:?} against {cached:?}"),
        }
    }
});
