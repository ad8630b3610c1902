//! `ldcheck kallsyms` on bad input: the kernel tool's class of error, the line number, and
//! the kernel tool's exit status (1 for errors, 0 where it only warns).

use std::fs;
use std::process::{Command, Output};

fn run(args: &[&str], map: &[u8]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.syms");
    fs::write(&path, map).unwrap();
    Command::new(env!("CARGO_BIN_EXE_ldcheck"))
        .arg("kallsyms")
        .args(args)
        .arg(&path)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const GOOD: &[u8] = b"c0008000 T _stext\nc0008010 t f\nc0009000 T _etext\n";

#[test]
fn malformed_line_is_a_line_format_error_in_6_12() {
    let out = run(&[], b"c0008000 T _stext\nc0008010 t f\nnot a symbol\n");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("line 3") && err.contains("line format error"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn malformed_line_is_skipped_by_6_1() {
    let mut map = GOOD.to_vec();
    map.extend_from_slice(b"not a symbol\n");
    let out = run(&["--format", "6.1"], &map);
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("line 4"), "{}", stderr(&out));
    let strict = run(&["--format", "6.1", "--strict"], &map);
    assert_eq!(strict.status.code(), Some(1));
}

#[test]
fn over_long_name_is_dropped_with_a_warning() {
    for format in ["6.12", "6.1"] {
        let mut map = GOOD.to_vec();
        map.extend_from_slice(format!("c0008020 t {}\n", "x".repeat(600)).as_bytes());
        let out = run(&["--format", format], &map);
        assert_eq!(out.status.code(), Some(0), "{format}");
        let err = stderr(&out);
        assert!(err.contains("line 4") && err.contains("too long"), "{err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("xxxx"));
        let strict = run(&["--format", format, "--strict"], &map);
        assert_eq!(strict.status.code(), Some(1), "{format}");
    }
}

#[test]
fn empty_map_is_fine_for_6_12_and_an_error_for_6_1() {
    let out = run(&[], b"");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("kallsyms_num_syms:\n\t.long\t0\n"));
    let out = run(&["--format", "6.1"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("No valid symbol"), "{}", stderr(&out));
}

#[test]
fn offsets_out_of_range_fail_with_the_symbol_line() {
    let map = b"ffffffff00000000 T _stext\nffffffff00000010 t f\nffffffff80000000 t g\n1 T low\n";
    let out = run(&["--all-symbols"], map);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // The base is `low` (line 4); `_stext` on line 1 is the first that does not fit.
    assert!(
        err.contains("out of range") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn options_of_the_other_version_are_usage_errors() {
    let out = run(&["--base-relative"], GOOD);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--base-relative"));
    let out = run(&["--format", "6.1", "--base-relative", "--lto-clang"], GOOD);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn missing_input_fails() {
    let out = Command::new(env!("CARGO_BIN_EXE_ldcheck"))
        .args(["kallsyms", "/nonexistent/in.syms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn rodata_size_prints_the_layout() {
    let out = run(&["--rodata-size", "64"], GOOD);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("kallsyms_seqs_of_names") && text.contains("align 8"),
        "{text}"
    );
}

#[test]
fn help_documents_stable_mode() {
    let out = Command::new(env!("CARGO_BIN_EXE_ldcheck"))
        .args(["kallsyms", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--reserve") && text.contains("Stable mode"),
        "{text}"
    );
}
