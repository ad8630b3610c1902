//! Stable mode: a layout change between link passes that changes the kernel tool's table size
//! leaves stable-mode tables the same size; `--reserve` absorbs a small symbol-set change; the
//! padded assembly still assembles to the size the library predicts.

use std::fs;
use std::process::Command;

use ldcheck::kallsyms::{
    Options, PtrWidth, SectionClass, StableOptions, SymbolMap, Version, build_tables,
    parse_symbol_map,
};

/// Pass 2 of a 32-bit kernel: `.data` ends exactly where the 16-byte aligned `.init.text`
/// begins, so `__end_of_data` has the value of `_sinittext`.
const PASS2: &str = "\
c0008000 T _text
c0008000 T _stext
c0008100 T do_work
c0008200 t helper
c0009000 T _etext
c000a000 R some_table
c000b008 D __end_of_data
c000b008 T _sinittext
c000b010 T init_fn
c000b100 T _einittext
c000b100 d init_data_first
";

/// Pass 3: the kallsyms tables grew by 4 bytes, `.data` ends at ...b00c, and `.init.text`
/// moves up to the next 16-byte boundary; `__end_of_data` no longer touches `_sinittext`.
const PASS3: &str = "\
c0008000 T _text
c0008000 T _stext
c0008100 T do_work
c0008200 t helper
c0009000 T _etext
c000a000 R some_table
c000b00c D __end_of_data
c000b010 T _sinittext
c000b018 T init_fn
c000b108 T _einittext
c000b108 d init_data_first
";

/// What an ELF reader would say about each symbol's section.
fn classify(map: &mut SymbolMap<'_>) {
    for sym in &mut map.symbols {
        sym.section = Some(match sym.name {
            b"_text" | b"_stext" | b"do_work" | b"helper" | b"_etext" => SectionClass::Text,
            b"_sinittext" | b"init_fn" | b"_einittext" => SectionClass::InitText,
            _ => SectionClass::Other,
        });
    }
}

fn size(text: &str, options: &Options) -> (u64, usize, Vec<u64>) {
    let mut map = parse_symbol_map(text.as_bytes(), options.version).unwrap();
    classify(&mut map);
    let tables = build_tables(&map, options).unwrap();
    let layout = tables.rodata_layout(PtrWidth::Bits32);
    let offsets = layout.tables.iter().map(|t| t.offset).collect();
    (layout.size, tables.symbols().len(), offsets)
}

#[test]
fn compatible_tables_change_size_between_passes_but_stable_ones_do_not() {
    for version in [Version::V6_12, Version::V6_1] {
        let compatible = Options::new(version);
        let (size2, count2, _) = size(PASS2, &compatible);
        let (size3, count3, _) = size(PASS3, &compatible);
        assert_eq!(
            count2,
            count3 + 1,
            "{version}: __end_of_data is in pass 2 only"
        );
        assert_ne!(size2, size3, "{version}: compatible sizes should differ");

        let stable = Options {
            stable: Some(StableOptions::default()),
            ..compatible
        };
        let (size2, count2, offsets2) = size(PASS2, &stable);
        let (size3, count3, offsets3) = size(PASS3, &stable);
        assert_eq!(count2, count3, "{version}");
        assert_eq!(size2, size3, "{version}: stable sizes must agree");
        assert_eq!(offsets2, offsets3, "{version}: every label must stay put");
    }
}

#[test]
fn stable_ties_do_not_depend_on_input_order() {
    let a = "c0008000 T _stext\nc0008010 T beta\nc0008010 T alpha\nc0009000 T _etext\n";
    let b = "c0008000 T _stext\nc0008010 T alpha\nc0008010 T beta\nc0009000 T _etext\n";
    let asm = |text: &str, options: &Options| {
        let map = parse_symbol_map(text.as_bytes(), options.version).unwrap();
        let mut out = Vec::new();
        build_tables(&map, options)
            .unwrap()
            .write_asm(&mut out)
            .unwrap();
        out
    };
    let compatible = Options::default();
    assert_ne!(asm(a, &compatible), asm(b, &compatible));
    let stable = Options {
        stable: Some(StableOptions::default()),
        ..compatible
    };
    assert_eq!(asm(a, &stable), asm(b, &stable));
}

/// `count` text symbols with distinct names.
fn text_map(count: usize) -> String {
    let mut text = String::from("c0008000 T _stext\n");
    for i in 0..count {
        text.push_str(&format!(
            "{:08x} T function_number_{i}\n",
            0xc000_8010 + i * 16
        ));
    }
    text.push_str("c0100000 T _etext\n");
    text
}

#[test]
fn reserve_absorbs_a_small_change_in_the_symbol_set() {
    let small = text_map(300);
    let grown = text_map(301);
    let sizes = |options: &Options| {
        [&small, &grown].map(|text| {
            let map = parse_symbol_map(text.as_bytes(), options.version).unwrap();
            build_tables(&map, options)
                .unwrap()
                .rodata_size(PtrWidth::Bits64)
        })
    };
    let [a, b] = sizes(&Options::default());
    assert_ne!(a, b);
    let reserved = Options {
        stable: Some(StableOptions { reserve: 4096 }),
        ..Options::default()
    };
    let [a, b] = sizes(&reserved);
    assert_eq!(a, b);
    assert_eq!(a % 8, 0);
}

/// The padded assembly, including 6.1's pointer-sized addresses table whose padding depends
/// on BITS_PER_LONG, assembles to the predicted size.
#[test]
fn padded_assembly_matches_the_predicted_size() {
    if Command::new("gcc").arg("--version").output().is_err() {
        println!("gcc not found, skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = text_map(77);
    for version in [Version::V6_12, Version::V6_1] {
        let options = Options {
            version,
            stable: Some(StableOptions { reserve: 100 }),
            ..Options::default()
        };
        let map = parse_symbol_map(text.as_bytes(), version).unwrap();
        let tables = build_tables(&map, &options).unwrap();
        let mut asm = Vec::new();
        tables.write_asm(&mut asm).unwrap();
        let source = dir.path().join("k.S");
        fs::write(&source, asm).unwrap();
        for (bits, ptr) in [(32, PtrWidth::Bits32), (64, PtrWidth::Bits64)] {
            let include = dir.path().join(format!("inc{bits}"));
            fs::create_dir_all(include.join("asm")).unwrap();
            fs::write(
                include.join("asm/bitsperlong.h"),
                format!("#define BITS_PER_LONG {bits}\n"),
            )
            .unwrap();
            let object = dir.path().join("k.o");
            let status = Command::new("gcc")
                .arg("-c")
                .arg("-I")
                .arg(&include)
                .arg("-o")
                .arg(&object)
                .arg(&source)
                .status()
                .unwrap();
            assert!(status.success());
            let data = fs::read(&object).unwrap();
            use object::{Object, ObjectSection};
            let file = object::File::parse(&*data).unwrap();
            let actual = file.section_by_name(".rodata").map_or(0, |s| s.size());
            assert_eq!(tables.rodata_size(ptr), actual, "{version} {bits}-bit");
            let layout = tables.rodata_layout(ptr);
            assert!(layout.tables.iter().any(|t| t.padding > 0));
        }
    }
}
