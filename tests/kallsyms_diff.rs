//! `ldcheck kallsyms-diff`: the corpus passes agree; constructed maps with a symbol on
//! `_einittext` in one pass disagree and name the reason; tie order changes are listed; bad
//! input exits 2; a C file built with `gcc -g` gets its symbols attributed to file:line and
//! the coincidence explained in layout terms.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use ldcheck::analysis::kdiff::{self, DiffOptions, PassInput, Reason, Side, Standing};
use ldcheck::kallsyms::{Options, Version};

fn ldcheck(args: &[&str], files: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ldcheck"))
        .arg("kallsyms-diff")
        .args(args)
        .args(files)
        .output()
        .expect("run ldcheck")
}

fn diff_maps(a: &[u8], b: &[u8], options: &Options) -> kdiff::PassDiff {
    let opts = DiffOptions {
        kallsyms: *options,
        ptr: None,
    };
    kdiff::diff(&PassInput::Map(a), &PassInput::Map(b), &opts).expect("diff")
}

#[test]
fn corpus_passes_agree() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut builds: Vec<_> = fs::read_dir(corpus.join("builds/6.12"))
        .expect("builds dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join(".tmp_vmlinux2.syms").is_file())
        .collect();
    builds.sort();
    assert!(!builds.is_empty());
    for build in builds {
        let (a, b) = (
            build.join(".tmp_vmlinux1.syms"),
            build.join(".tmp_vmlinux2.syms"),
        );
        let out = ldcheck(&["--all-symbols"], &[&a, &b]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}: {text}", build.display());
        assert!(text.contains("the passes agree"), "{text}");

        let (da, db) = (fs::read(&a).expect("read"), fs::read(&b).expect("read"));
        let options = Options {
            all_symbols: true,
            ..Options::default()
        };
        let report = diff_maps(&da, &db, &options);
        assert!(report.agree);
        assert!(report.joined.is_empty() && report.left.is_empty());
        assert_eq!(report.symbols.a, report.symbols.b);
        assert!(report.tables.iter().all(|t| t.size.a == t.size.b));
        assert_eq!(report.rodata.a, report.rodata.b);
        println!(
            "{}: {} symbols, .rodata {} bytes in both passes, {} order changes",
            build.display(),
            report.symbols.a,
            report.rodata.a,
            report.reordered.len()
        );
    }
}

/// `last_init` sits on `_einittext` in A (the kernel drops it) and below it in B.
const ON_END: &str = "\
ffffffff81000000 T _stext
ffffffff81000100 T do_work
ffffffff81001000 T _etext
ffffffff81002000 T _sinittext
ffffffff81002010 T init_fn
ffffffff81002100 T _einittext
ffffffff81002100 t last_init
ffffffff81003000 D some_data
";

const BELOW_END: &str = "\
ffffffff81000000 T _stext
ffffffff81000100 T do_work
ffffffff81001000 T _etext
ffffffff81002000 T _sinittext
ffffffff81002010 T init_fn
ffffffff810020f0 t last_init
ffffffff81002100 T _einittext
ffffffff81003000 D some_data
";

#[test]
fn symbol_on_einittext_in_one_pass_disagrees() {
    let report = diff_maps(ON_END.as_bytes(), BELOW_END.as_bytes(), &Options::default());
    assert!(!report.agree);
    assert_eq!(report.symbols.b, report.symbols.a + 1);
    assert!(report.left.is_empty());
    let [change] = report.joined.as_slice() else {
        panic!("one symbol joined: {:?}", report.joined);
    };
    assert_eq!(change.name, "last_init");
    assert_eq!(
        change.reason,
        Reason::EndCoincidence {
            marker: "_einittext".to_string(),
            side: Side::A
        }
    );
    let a = change.a.as_ref().expect("in A's map");
    let b = change.b.as_ref().expect("in B's map");
    assert!(!a.kept && b.kept);
    assert!(matches!(b.standing, Standing::InRange { .. }));
    let names = report
        .tables
        .iter()
        .find(|t| t.table == "kallsyms_names")
        .expect("names table");
    assert!(names.size.b > names.size.a);

    let dir = tempfile::tempdir().expect("tempdir");
    let (pa, pb) = (dir.path().join("a.syms"), dir.path().join("b.syms"));
    fs::write(&pa, ON_END).expect("write");
    fs::write(&pb, BELOW_END).expect("write");
    let out = ldcheck(&[], &[&pa, &pb]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("last_init") && text.contains("end coincidence with `_einittext` in A"),
        "{text}"
    );

    let out = ldcheck(&["--format", "json"], &[&pa, &pb]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["agree"], false);
    assert_eq!(json["joined"][0]["name"], "last_init");
    assert_eq!(json["joined"][0]["reason"], "end-coincidence");
    assert_eq!(json["joined"][0]["marker"], "_einittext");
    assert_eq!(json["joined"][0]["a"]["standing"], "end-coincidence");
    assert_eq!(json["joined"][0]["a"]["addr"], "0xffffffff81002100");
    assert_eq!(json["ptr_bits"], 64);

    // With --all-symbols the coincidence does not matter.
    let out = ldcheck(&["--all-symbols"], &[&pa, &pb]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn tie_order_changes_are_listed() {
    let a = "c0008000 T _stext\nc0008010 T beta\nc0008010 T alpha\nc0009000 T _etext\n";
    let b = "c0008000 T _stext\nc0008010 T alpha\nc0008014 T beta\nc0009000 T _etext\n";
    let report = diff_maps(a.as_bytes(), b.as_bytes(), &Options::default());
    assert_eq!(report.ptr_bits, 32);
    let [change] = report.reordered.as_slice() else {
        panic!("one order change: {:?}", report.reordered);
    };
    assert_eq!(
        (change.first.as_str(), change.second.as_str()),
        ("beta", "alpha")
    );
    assert_eq!(change.first_addr.a, change.second_addr.a);
    assert!(change.first_addr.b > change.second_addr.b);
    assert!(report.agree, "order alone does not change any size");
}

#[test]
fn bad_input_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.syms");
    fs::write(&good, "c0008000 T _stext\nc0009000 T _etext\n").expect("write");
    let bad = dir.path().join("bad.syms");
    fs::write(&bad, "c0008000 T _stext\nnot a symbol\n").expect("write");
    let out = ldcheck(&[], &[&good, &bad]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pass B") && err.contains("line 2"), "{err}");
    let missing = dir.path().join("missing");
    assert_eq!(ldcheck(&[], &[&good, &missing]).status.code(), Some(2));
    let out = ldcheck(&["--kernel", "6.12", "--lto-clang"], &[&good, &good]);
    assert_eq!(out.status.code(), Some(2));
}

const TINY_C: &str = "\
int data_words[4] = {1, 2, 3, 4};
char data_tail[0] __attribute__((section(\".data.tail\")));

__attribute__((section(\".init.text\"))) int init_fn(void)
{
\treturn data_words[1];
}

int do_work(void)
{
\treturn data_words[0];
}
";

/// `PAD` is empty in A: `.data` ends on a 16-byte boundary and `data_tail` equals
/// `_sinittext`. In B four bytes of padding push it below the next boundary.
const TINY_LDS: &str = "\
ENTRY(do_work)
SECTIONS {
  . = 0x400000;
  .text : { _stext = .; *(.text) _etext = .; }
  .data ALIGN(64) : { *(.data) PAD *(.data.tail) }
  .init.text ALIGN(16) : { _sinittext = .; *(.init.text) _einittext = .; }
  /DISCARD/ : { *(.note.GNU-stack) *(.comment) }
}
";

#[test]
fn dwarf_attributes_symbols_to_file_and_line() {
    if !common::have_tool("gcc") || !common::have_tool("ld") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::write(root.join("tiny.c"), TINY_C).expect("write C");
    common::run(
        root,
        "gcc",
        &[
            "-g",
            "-O0",
            "-fno-pic",
            "-ffreestanding",
            "-fno-asynchronous-unwind-tables",
            "-c",
            "tiny.c",
            "-o",
            "tiny.o",
        ],
    );
    for (name, pad) in [("a", ""), ("b", "LONG(0)")] {
        fs::write(
            root.join(format!("{name}.lds")),
            TINY_LDS.replace("PAD", pad),
        )
        .expect("write script");
        common::run(
            root,
            "ld",
            &[
                "-T",
                &format!("{name}.lds"),
                "--no-warn-rwx-segments",
                "-o",
                &format!("{name}.elf"),
                "tiny.o",
            ],
        );
    }
    let (da, db) = (
        fs::read(root.join("a.elf")).expect("read"),
        fs::read(root.join("b.elf")).expect("read"),
    );
    let version = Version::V6_12;
    let a = PassInput::read(&da, version).expect("image A");
    let b = PassInput::read(&db, version).expect("image B");
    let report = kdiff::diff(&a, &b, &DiffOptions::default()).expect("diff");
    assert!(!report.agree);
    let [change] = report.left.as_slice() else {
        panic!("data_tail left: {:?}", report.left);
    };
    assert_eq!(change.name, "data_tail");
    assert_eq!(change.reason, Reason::RangeMembership);
    let a_state = change.a.as_ref().expect("in A");
    assert!(matches!(
        a_state.standing,
        Standing::InRange { at_start: true, .. }
    ));
    assert_eq!(a_state.section.as_deref(), Some(".data"));

    let loc = report
        .sources
        .get("data_tail")
        .expect("data_tail attributed");
    assert!(loc.file.ends_with("tiny.c"), "{loc}");
    assert_eq!(loc.line, 2);
    assert!(
        !report.sources.contains_key("_sinittext"),
        "a linker-script symbol has no source line"
    );

    let [cause] = report.causes.as_slice() else {
        panic!("one cause: {:?}", report.causes);
    };
    assert_eq!(
        (cause.symbol.as_str(), cause.marker.as_str()),
        ("data_tail", "_sinittext")
    );
    assert_eq!(cause.equal_in, Side::A);
    let boundary = cause.facts.b.boundary.as_ref().expect("B boundary");
    assert_eq!(boundary.section, ".init.text");
    assert_eq!(boundary.previous.as_deref(), Some(".data"));
    assert_eq!(boundary.gap, Some(0xc));
    assert_eq!(cause.facts.a.boundary.as_ref().and_then(|b| b.gap), Some(0));
    assert!(
        cause
            .text
            .contains("`data_tail` equals `_sinittext` in A but not in B")
    );
    assert!(
        report
            .first_resized
            .as_deref()
            .is_some_and(|t| t.starts_with(".data changed size first"))
    );

    let out = ldcheck(&[], &[&root.join("a.elf"), &root.join("b.elf")]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("`data_tail` ("), "{text}");
    assert!(text.contains("tiny.c:2"), "{text}");

    // Stable mode decides by section: `data_tail` is in .data, out of the tables in both.
    let stable = DiffOptions {
        kallsyms: Options {
            stable: Some(ldcheck::kallsyms::StableOptions::default()),
            ..Options::default()
        },
        ptr: None,
    };
    let report = kdiff::diff(&a, &b, &stable).expect("diff");
    assert!(report.agree && report.left.is_empty() && report.joined.is_empty());

    // The same comparison without DWARF: nothing is attributed, nothing fails.
    let stripped = root.join("a.stripped");
    common::run(
        root,
        "ld",
        &[
            "-T",
            "a.lds",
            "--strip-debug",
            "--no-warn-rwx-segments",
            "-o",
            "a.stripped",
            "tiny.o",
        ],
    );
    let ds = fs::read(&stripped).expect("read");
    let s = PassInput::read(&ds, version).expect("image");
    let plain = kdiff::diff(&s, &b, &DiffOptions::default()).expect("diff");
    assert_eq!(plain.left.len(), 1);
    assert!(plain.sources.contains_key("data_tail"), "B still has DWARF");
    let both = kdiff::diff(&s, &s, &DiffOptions::default()).expect("diff");
    assert!(both.agree && both.sources.is_empty());
}
