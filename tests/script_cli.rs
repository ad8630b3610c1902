//! `ldcheck parse`: exit status 0 on a good script, 2 with a report on a bad one or when the
//! file cannot be read; `--print` and `--json` outputs.

use std::process::Command;

fn ldcheck(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ldcheck"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("ldcheck runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path.display().to_string()
}

#[test]
fn good_script_exits_zero_and_prints() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(&dir, "ok.lds", b"SECTIONS { .text : { *(.text) } }\n");
    let (code, out, err) = ldcheck(&["parse", &path]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let (code, out, _) = ldcheck(&["parse", "--print", &path]);
    assert_eq!(code, 0);
    assert_eq!(out, "SECTIONS\n{\n  .text : {\n    *(.text)\n  }\n}\n");
    let (code, out, _) = ldcheck(&["parse", "--json", &path]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(
        json["commands"][0]["kind"]["Sections"][0]["OutputSection"]["name"]["text"],
        ".text"
    );
}

#[test]
fn bad_script_exits_two_with_a_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(&dir, "bad.lds", b"SECTIONS {\n  .data (FOO) : { }\n}\n");
    let (code, out, err) = ldcheck(&["parse", &path]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("unknown output section type `FOO`"), "{err}");
    assert!(err.contains("bad.lds:2:10"), "{err}");
}

#[test]
fn unreadable_or_non_utf8_file_exits_two() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.lds").display().to_string();
    let (code, _, err) = ldcheck(&["parse", &missing]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot read") && err.contains("missing.lds"),
        "{err}"
    );
    let latin1 = write(&dir, "latin1.lds", b"x = 1; /* \xe9 */\n");
    let (code, _, err) = ldcheck(&["parse", &latin1]);
    assert_eq!(code, 2);
    assert!(
        err.contains("not valid UTF-8") && err.contains("offset 10"),
        "{err}"
    );
}
