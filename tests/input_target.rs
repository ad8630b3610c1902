//! Target data: resolution rules, and the embedded numbers checked against the real linkers.

use std::process::Command;

use ldcheck::target::{ElfClass, Target, TargetError};

fn tool(name: &str) -> bool {
    let found = Command::new(name).arg("--version").output().is_ok();
    if !found {
        println!("{name} not found, skipping");
    }
    found
}

#[test]
fn every_target_file_parses() {
    let all = Target::all().expect("embedded targets parse");
    let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["x86_64", "i386", "arm", "arm64"]);
    for t in all {
        assert!(
            !t.emulations.is_empty() && !t.bfd_targets.is_empty() && !t.output_arches.is_empty()
        );
        assert!(t.layout.max_page_size.is_power_of_two());
        assert!(t.layout.common_page_size <= t.layout.max_page_size);
    }
}

#[test]
fn resolve_precedence_and_conflicts() {
    let t = Target::resolve(Some("elf_x86_64"), None, None, &[]).unwrap();
    assert_eq!(t.name, "x86_64");
    assert_eq!(t.class, ElfClass::Elf64);
    let t = Target::resolve(None, Some("i386"), Some("elf32-i386"), &[(3, "a.o")]).unwrap();
    assert_eq!(t.name, "i386");
    let t = Target::resolve(None, None, None, &[(40, "a.o"), (40, "b.o")]).unwrap();
    assert_eq!(t.name, "arm");
    let t = Target::resolve(None, Some("aarch64"), None, &[]).unwrap();
    assert_eq!(t.name, "arm64");

    let err = Target::resolve(Some("elf_x86_64"), Some("i386"), None, &[]).unwrap_err();
    assert!(matches!(err, TargetError::Conflict { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("-m elf_x86_64") && msg.contains("OUTPUT_ARCH(i386)"),
        "{msg}"
    );

    let err = Target::resolve(Some("elf_i386"), None, None, &[(62, "a.o")]).unwrap_err();
    assert!(matches!(err, TargetError::Conflict { .. }));
    let err = Target::resolve(None, None, None, &[(62, "a.o"), (3, "b.o")]).unwrap_err();
    assert!(matches!(err, TargetError::Conflict { .. }));

    let err = Target::resolve(Some("elf_sparc"), None, None, &[]).unwrap_err();
    assert!(err.to_string().contains("elf_sparc") && err.to_string().contains("elf_x86_64"));
    assert!(matches!(
        Target::resolve(None, None, Some("elf64-sparc"), &[]),
        Err(TargetError::UnknownFormat(..))
    ));
    assert!(matches!(
        Target::resolve(None, None, None, &[(2, "a.o")]),
        Err(TargetError::UnknownMachine { machine: 2, .. })
    ));
    assert_eq!(
        Target::resolve(None, None, None, &[]),
        Err(TargetError::Undetermined)
    );
}

#[test]
fn code_fill_shapes() {
    let x86 = Target::by_name("x86_64").unwrap().unwrap();
    assert_eq!(x86.code_fill(1), [0x90]);
    let f = x86.code_fill(23);
    assert_eq!(f.len(), 23);
    assert_eq!(&f[..10], &x86.code_nops[9][..]);
    assert_eq!(&f[20..], &x86.code_nops[2][..]);
    let arm = Target::by_name("arm").unwrap().unwrap();
    assert_eq!(arm.code_fill(6), [0; 6]);
}

/// Links two objects with the real linker of `target` and reads back MAXPAGESIZE,
/// COMMONPAGESIZE and the padding ld put between the two code sections.
fn check_against_ld(target: &Target, as_cmd: &[&str], ld_cmd: &[&str], nm: &str) {
    if !tool(as_cmd[0]) || !tool(ld_cmd[0]) || !tool(nm) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.s"), ".text\n.globl _start\n_start: .byte 0xcc\n").unwrap();
    std::fs::write(
        d.join("b.s"),
        ".text\n.p2align 5\n.globl b\nb: .byte 0xcc\n",
    )
    .unwrap();
    std::fs::write(
        d.join("s.lds"),
        "SECTIONS { maxp = CONSTANT(MAXPAGESIZE); commp = CONSTANT(COMMONPAGESIZE);\n\
         hdr = SIZEOF_HEADERS; .text 0x1000 : { *(.text) } }\n",
    )
    .unwrap();
    for f in ["a", "b"] {
        let st = Command::new(as_cmd[0])
            .args(&as_cmd[1..])
            .arg(format!("{f}.s"))
            .arg("-o")
            .arg(format!("{f}.o"))
            .current_dir(d)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let st = Command::new(ld_cmd[0])
        .args(&ld_cmd[1..])
        .args(["-T", "s.lds", "a.o", "b.o", "-o", "out"])
        .current_dir(d)
        .status()
        .unwrap();
    assert!(st.success());
    let out = Command::new(nm).arg("out").current_dir(d).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let value = |name: &str| {
        text.lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .and_then(|l| u64::from_str_radix(l.split(' ').next().unwrap(), 16).ok())
            .unwrap()
    };
    assert_eq!(
        value("maxp"),
        target.layout.max_page_size,
        "{}",
        target.name
    );
    assert_eq!(
        value("commp"),
        target.layout.common_page_size,
        "{}",
        target.name
    );
    let bytes = std::fs::read(d.join("out")).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    use object::{Object, ObjectSection};
    let text_sec = file.section_by_name(".text").unwrap();
    let data = text_sec.data().unwrap();
    assert!(data.len() >= 33);
    assert_eq!(&data[1..32], &target.code_fill(31)[..], "{}", target.name);
}

#[test]
fn page_sizes_and_fill_match_real_ld() {
    let all = Target::all().unwrap();
    let by = |n: &str| all.iter().find(|t| t.name == n).unwrap();
    check_against_ld(
        by("x86_64"),
        &["as", "--64"],
        &["ld", "-m", "elf_x86_64"],
        "nm",
    );
    check_against_ld(by("i386"), &["as", "--32"], &["ld", "-m", "elf_i386"], "nm");
    check_against_ld(
        by("arm"),
        &["arm-linux-gnueabihf-as"],
        &["arm-linux-gnueabihf-ld", "-m", "armelf_linux_eabi"],
        "arm-linux-gnueabihf-nm",
    );
    check_against_ld(
        by("arm64"),
        &["aarch64-linux-gnu-as"],
        &["aarch64-linux-gnu-ld", "-m", "aarch64linux"],
        "aarch64-linux-gnu-nm",
    );
    // The kernel links arm64 with `-maarch64elf`: the same page sizes and fill.
    check_against_ld(
        by("arm64"),
        &["aarch64-linux-gnu-as"],
        &["aarch64-linux-gnu-ld", "-m", "aarch64elf"],
        "aarch64-linux-gnu-nm",
    );
}

#[test]
fn text_segment_start_matches_ld_verbose() {
    let all = Target::all().unwrap();
    for (ld, emul) in [
        ("ld", "elf_x86_64"),
        ("ld", "elf_i386"),
        ("arm-linux-gnueabihf-ld", "armelf_linux_eabi"),
        ("aarch64-linux-gnu-ld", "aarch64linux"),
        ("aarch64-linux-gnu-ld", "aarch64elf"),
    ] {
        if !tool(ld) {
            continue;
        }
        let out = Command::new(ld)
            .args(["--verbose", "-m", emul])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let t = all
            .iter()
            .find(|t| t.emulations.iter().any(|e| e == emul))
            .unwrap();
        let needle = "SEGMENT_START(\"text-segment\", ";
        let at = text.find(needle).unwrap() + needle.len();
        let num = &text[at..at + text[at..].find(')').unwrap()];
        let num = u64::from_str_radix(num.trim_start_matches("0x"), 16).unwrap();
        assert_eq!(num, t.layout.text_segment_start, "{emul}");
        let fmt = format!("OUTPUT_FORMAT(\"{}\"", t.bfd_targets[0]);
        assert!(text.contains(&fmt), "{emul}: {fmt}");
        assert!(
            text.contains(&format!("OUTPUT_ARCH({})", t.output_arches[0])),
            "{emul}"
        );
    }
}
