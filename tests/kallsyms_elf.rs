//! `ldcheck kallsyms` fed a linked ELF file: the corpus links, re-run with the real linker,
//! give the `.syms` map and the `scripts/kallsyms` output stored beside them; and stable mode
//! decides range membership by section, so a pass-2/pass-3 layout pair whose compatible tables
//! differ in size gives identical stable tables.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use ldcheck::analysis::image::LinkedImage;
use ldcheck::kallsyms::{
    Options, PtrWidth, SectionClass, StableOptions, Version, build_tables, parse_symbol_map,
};

fn asm(map: &ldcheck::kallsyms::SymbolMap<'_>, options: &Options) -> Vec<u8> {
    let mut out = Vec::new();
    build_tables(map, options)
        .expect("tables")
        .write_asm(&mut out)
        .expect("write");
    out
}

#[test]
fn corpus_images_give_the_stored_maps_and_tables() {
    if common::corpus().is_none() {
        return;
    }
    let builds = common::relink_corpus_builds();
    assert!(!builds.is_empty(), "the corpus has builds with link inputs");
    for relinked in &builds {
        let (build, root) = (&relinked.build, relinked.dir.path());
        let mut checked = 0;
        for pass in 1..=3 {
            let image_path = root.join(format!(".tmp_vmlinux{pass}"));
            let stored_syms = build.join(format!(".tmp_vmlinux{pass}.syms"));
            let stored_asm = build.join(format!(".tmp_vmlinux{pass}.kallsyms.S"));
            if !image_path.is_file() || !stored_syms.is_file() || !stored_asm.is_file() {
                continue;
            }
            let data = fs::read(&image_path).expect("read image");
            let image = LinkedImage::parse(&data, Version::V6_12).expect("parse image");
            let syms = fs::read(&stored_syms).expect("read syms");
            assert!(
                image.map_text() == syms.as_slice(),
                "{}: mksysmap of the image differs from {}",
                build.display(),
                stored_syms.display()
            );

            // The CLI on the ELF file, with the options the build used (KALLSYMS_ALL).
            let out = Command::new(env!("CARGO_BIN_EXE_ldcheck"))
                .args(["kallsyms", "--all-symbols"])
                .arg(&image_path)
                .output()
                .expect("run ldcheck");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let expected = fs::read(&stored_asm).expect("read .S");
            assert!(
                out.stdout == expected,
                "{}: kallsyms of the ELF differs from {}",
                build.display(),
                stored_asm.display()
            );

            // Without --all-symbols, sections are carried but compatible mode ignores them.
            let options = Options::default();
            let from_elf = image.symbol_map().expect("map");
            assert!(from_elf.symbols.iter().all(|s| s.section.is_some()));
            let from_text = parse_symbol_map(&syms, Version::V6_12).expect("map");
            assert!(asm(&from_elf, &options) == asm(&from_text, &options));

            // The section classes agree with the address ranges away from their edges.
            let tables = build_tables(&from_elf, &options).expect("tables");
            let ranges = *tables.ranges();
            for sym in &from_elf.symbols {
                let inside =
                    |r: ldcheck::kallsyms::AddrRange| sym.addr > r.start && sym.addr < r.end;
                if inside(ranges.text) && sym.kind.eq_ignore_ascii_case(&b't') {
                    assert_eq!(sym.section, Some(SectionClass::Text), "{sym:?}");
                }
                if inside(ranges.inittext) && sym.kind.eq_ignore_ascii_case(&b't') {
                    assert_eq!(sym.section, Some(SectionClass::InitText), "{sym:?}");
                }
            }
            checked += 1;
            println!(
                "{} pass {pass}: {} symbols, map and tables identical",
                build.display(),
                from_elf.symbols.len()
            );
        }
        assert!(checked >= 2, "{}: both passes checked", build.display());
    }
}

/// A linker script shaped like a kernel's: `.data` ends with `__end_of_data`, then the init
/// text starts at the next 16-byte boundary. The kallsyms tables (in `.rodata`) come first,
/// so their size decides whether `__end_of_data` lands on `_sinittext`.
const SCRIPT: &str = "\
ENTRY(do_work)
SECTIONS {
  . = 0x100000;
  .text : { _text = .; _stext = .; *(.text) _etext = .; }
  .rodata : { *(.rodata) }
  .data : { *(.data) __end_of_data = .; }
  .init.text ALIGN(16) : { _sinittext = .; *(.init.text) _einittext = .; }
  /DISCARD/ : { *(.note.GNU-stack) }
}
";

fn source(tables: usize) -> String {
    format!(
        "\t.section .text,\"ax\"\n\t.globl do_work\ndo_work:\n\t.skip 0x100\n\
         helper:\n\t.skip 0x10\n\
         \t.section .rodata,\"a\"\n\t.globl kallsyms_tables\nkallsyms_tables:\n\t.skip {tables}\n\
         \t.section .data,\"aw\"\n\t.globl data_word\ndata_word:\n\t.long 1\n\
         \t.section .init.text,\"ax\"\n\t.globl init_fn\ninit_fn:\n\t.skip 0x10\n"
    )
}

/// Links the scenario with tables of `tables` bytes and returns the image bytes.
fn link(dir: &Path, name: &str, tables: usize) -> Vec<u8> {
    fs::write(dir.join(format!("{name}.s")), source(tables)).expect("write source");
    fs::write(dir.join("scenario.lds"), SCRIPT).expect("write script");
    common::run(
        dir,
        "as",
        &["-o", &format!("{name}.o"), &format!("{name}.s")],
    );
    common::run(
        dir,
        "ld",
        &["-T", "scenario.lds", "-o", name, &format!("{name}.o")],
    );
    fs::read(dir.join(name)).expect("read image")
}

#[test]
fn stable_tables_from_elf_do_not_change_where_compatible_ones_do() {
    if !common::have_tool("as") || !common::have_tool("ld") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // .text is 0x110 bytes, so .rodata starts at 0x100110 and .data right after it. With
    // 0xfc bytes of tables .data ends at 0x100210, already 16-aligned: `__end_of_data` equals
    // `_sinittext`. With 0x100 bytes it ends at 0x100214 and the init text moves to 0x100220.
    let pass2 = link(dir.path(), "pass2", 0xfc);
    let pass3 = link(dir.path(), "pass3", 0x100);
    let value = |data: &[u8], name: &[u8]| {
        LinkedImage::parse(data, Version::V6_12)
            .expect("image")
            .symbol(name)
            .map(|s| s.value)
    };
    assert_eq!(
        value(&pass2, b"__end_of_data"),
        value(&pass2, b"_sinittext")
    );
    assert_ne!(
        value(&pass3, b"__end_of_data"),
        value(&pass3, b"_sinittext")
    );

    for version in [Version::V6_12, Version::V6_1] {
        let sizes = |options: &Options| {
            [&pass2, &pass3].map(|data| {
                let image = LinkedImage::parse(data, version).expect("image");
                let map = image.symbol_map().expect("map");
                let tables = build_tables(&map, options).expect("tables");
                let layout = tables.rodata_layout(PtrWidth::Bits64);
                let offsets: Vec<u64> = layout.tables.iter().map(|t| t.offset).collect();
                (layout.size, tables.symbols().len(), offsets)
            })
        };
        let compatible = Options::new(version);
        let [c2, c3] = sizes(&compatible);
        assert_eq!(
            c2.1,
            c3.1 + 1,
            "{version}: __end_of_data is kept in pass 2 only"
        );
        assert_ne!(c2.0, c3.0, "{version}: compatible tables change size");

        let stable = Options {
            stable: Some(StableOptions::default()),
            ..compatible
        };
        let [s2, s3] = sizes(&stable);
        assert_eq!(
            s2, s3,
            "{version}: stable tables are the same in both passes"
        );
        assert_eq!(
            s2.1, c3.1,
            "{version}: stable mode drops the data symbol in both"
        );
    }
}
