//! `ldcheck SCRIPT` is `ldcheck check SCRIPT`, and bad inputs get a clear message and exit 2.

use std::process::Command;

fn ldcheck(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ldcheck"))
        .args(args)
        .output()
        .expect("run ldcheck");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn bare_script_runs_the_check() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/vmlinux-arm-vexpress-6.12.lds"
    );
    let (code, text) = ldcheck(&[example]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("hazard(s) that can break the build"),
        "{text}"
    );
    let (code, gnu) = ldcheck(&["check", example, "--format", "gnu", "--notes"]);
    assert_eq!(code, Some(0));
    assert!(
        gnu.lines()
            .all(|l| l.contains(": note: ") || l.contains(": warning: ")),
        "{gnu}"
    );
}

#[test]
fn bad_inputs_exit_2_with_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.lds");
    let (code, text) = ldcheck(&[missing.to_str().expect("utf-8 path")]);
    assert_eq!(code, Some(2));
    assert!(
        text.contains("cannot read") && text.contains("missing.lds"),
        "{text}"
    );
    let (code, text) = ldcheck(&[dir.path().to_str().expect("utf-8 path")]);
    assert_eq!(code, Some(2));
    assert!(text.contains("cannot read"), "{text}");
    let binary = dir.path().join("binary.lds");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x41]).expect("write");
    let (code, text) = ldcheck(&[binary.to_str().expect("utf-8 path")]);
    assert_eq!(code, Some(2));
    assert!(text.contains("not valid UTF-8"), "{text}");
    let bad = dir.path().join("bad.lds");
    std::fs::write(&bad, "SECTIONS { .text : { *(.text) }").expect("write");
    let (code, text) = ldcheck(&[bad.to_str().expect("utf-8 path")]);
    assert_eq!(code, Some(2));
    assert!(text.contains("bad.lds"), "{text}");
}
