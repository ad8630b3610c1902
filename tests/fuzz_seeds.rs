//! The fuzz targets' seed inputs (`fuzz/corpus/`), replayed through the same entry points on
//! stable Rust, so a change that breaks them shows up without running the fuzzers.

use std::path::Path;

use ldcheck::input::{InputError, InputFile, parse_bytes};
use ldcheck::kallsyms::{Options, PtrWidth, Version, build_tables, parse_symbol_map, tables_size};
use ldcheck::layout::{LayoutOptions, link};
use ldcheck::script::parse_script;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("seed readable"))
        })
        .collect()
}

#[test]
fn script_seeds_parse_and_lay_out() {
    for target in ["parse_script", "eval"] {
        for (name, bytes) in seeds(target) {
            let text = std::str::from_utf8(&bytes).expect("seed is UTF-8");
            let wrapped = format!("SECTIONS {{ . = {text}; }}");
            let script = parse_script(text)
                .or_else(|_| parse_script(&wrapped))
                .unwrap_or_else(|e| panic!("{target}/{name}: {e}"));
            // Layout may fail (kernel scripts reference symbols no input defines); it must
            // return, not panic.
            let _ = link(&script, Vec::new(), &LayoutOptions::default());
        }
    }
}

#[test]
fn elf_seeds_parse_from_memory() {
    for (name, bytes) in seeds("elf_input") {
        let parsed = parse_bytes(Path::new(&name), &bytes, None);
        if bytes.starts_with(b"!<thin>\n") {
            // Thin members are separate files, which an in-memory buffer cannot name.
            assert!(
                matches!(parsed, Err(InputError::BadArchive { .. })),
                "{name}: {parsed:?}"
            );
            continue;
        }
        match parsed.unwrap_or_else(|e| panic!("{name}: {e}")) {
            InputFile::Object(o) => assert!(!o.symbols.is_empty(), "{name}"),
            InputFile::Archive(a) => assert_eq!(a.members.len(), 2, "{name}"),
        }
    }
}

#[test]
fn symbol_map_seeds_build_tables() {
    for (name, bytes) in seeds("symbol_map") {
        for version in [Version::V6_1, Version::V6_12] {
            let options = Options::new(version);
            let map = parse_symbol_map(&bytes, version).unwrap_or_else(|e| panic!("{name}: {e}"));
            // A map excerpt may hold no text symbol, which 6.1's tool rejects; either way the
            // size shortcut must agree with the built tables.
            let built = build_tables(&map, &options).map(|t| t.rodata_size(PtrWidth::Bits64));
            assert_eq!(
                tables_size(&bytes, &options, PtrWidth::Bits64).ok(),
                built.ok(),
                "{name} {version}"
            );
        }
    }
}

/// The `system_map` target's records (letter byte, eight value bytes, name ending at 0xff):
/// the map read from the symbols equals the one printed, filtered and parsed, and the
/// kernel-map seeds read without their text in 6.12.
#[test]
fn system_map_seeds_read_like_their_text() {
    use ldcheck::analysis::{mksysmap, system_map};
    use ldcheck::input::nm::{NmSymbol, format};
    const LETTERS: &str = "TtDdRrBbAaUwvWVNnuC?";
    for (name, bytes) in seeds("system_map") {
        let mut symbols: Vec<NmSymbol<'_>> = Vec::new();
        let mut rest = &bytes[..];
        while let Some((&letter, after)) = rest.split_first() {
            let (value, after) = after.split_first_chunk::<8>().expect(&name);
            let end = after.iter().position(|&b| b == 0xff).unwrap_or(after.len());
            symbols.push(NmSymbol {
                value: u64::from_le_bytes(*value),
                letter: LETTERS.as_bytes()[usize::from(letter)].into(),
                name: &after[..end],
            });
            rest = after.get(end + 1..).unwrap_or_default();
        }
        for version in [Version::V6_1, Version::V6_12] {
            let text = mksysmap::filter(&format(&symbols, 16), version);
            assert!(system_map::print(&symbols, 16, version) == text, "{name}");
            if let Some(direct) = system_map::read_directly(&symbols, version) {
                assert_eq!(
                    direct,
                    parse_symbol_map(&text, version).expect(&name),
                    "{name}"
                );
            } else {
                assert!(name == "odd-names" || version == Version::V6_1, "{name}");
            }
        }
    }
}
