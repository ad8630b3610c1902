//! Any symbol list (records of a letter byte, eight value bytes and a name that ends at the
//! next 0xff byte) read as a System.map straight from the symbols, against printing it as nm
//! text, filtering it with mksysmap and parsing it back: the same map and the same kallsyms
//! input, whatever the names hold.
#![no_main]

use ldcheck::analysis::{mksysmap, system_map};
use ldcheck::input::nm::{NmSymbol, format};
use ldcheck::kallsyms::{Version, parse_symbol_map};
use libfuzzer_sys::fuzz_target;

/// Letters nm prints, plus a non-ASCII one and a space that no nm prints.
const LETTERS: [char; 22] = [
    'T', 't', 'D', 'd', 'R', 'r', 'B', 'b', 'A', 'a', 'U', 'w', 'v', 'W', 'V', 'N', 'n', 'u', 'C',
    '?', 'é', ' ',
];

fuzz_target!(|data: &[u8]| {
    let mut symbols: Vec<NmSymbol<'_>> = Vec::new();
    let mut rest = data;
    while let Some((&letter, after)) = rest.split_first() {
        let Some((value, after)) = after.split_first_chunk::<8>() else {
            break;
        };
        let end = after.iter().position(|&b| b == 0xff).unwrap_or(after.len());
        symbols.push(NmSymbol {
            value: u64::from_le_bytes(*value),
            letter: LETTERS[usize::from(letter) % LETTERS.len()],
            name: &after[..end],
        });
        rest = after.get(end + 1..).unwrap_or_default();
    }
    for version in [Version::V6_1, Version::V6_12] {
        for width in [8, 16] {
            let text = mksysmap::filter(&format(&symbols, width), version);
            let printed = system_map::print(&symbols, width, version);
            assert!(printed == text, "System.map differs");
            let expected = parse_symbol_map(&text, version);
            match (system_map::read_directly(&symbols, version), &expected) {
                (Some(direct), Ok(b)) => assert_eq!(&direct, b),
                (Some(direct), Err(b)) => panic!("{direct:?} against {b:?}"),
                (None, _) => {}
            }
        }
    }
});
