//! Hostile and broken inputs given to the command line: each must end in a non-zero exit with
//! one message naming the file and the problem, without a panic, a hang, or a file written.
//! Inputs ld itself accepts (an empty script, ALIGN by a non-power of two, address wrap-around)
//! must be accepted the same way.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longest any single run may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(60);

/// Runs `ldcheck ARGS` in `dir`, killing it (and failing the test) if it outlives [`HANG`].
fn ldcheck(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ldcheck"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start ldcheck");
    // Drain both pipes while waiting, or a long report would block the child on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes)
                .expect("cannot read ldcheck output");
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("cannot wait for ldcheck") {
            break status;
        }
        if start.elapsed() > HANG {
            child.kill().expect("cannot kill ldcheck");
            child.wait().expect("cannot reap ldcheck");
            panic!("ldcheck {args:?} hung for more than {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Asserts a clean failure: exit status 2, no panic, and stderr naming `file` and `keyword`.
fn assert_rejected(out: &Output, file: &str, keyword: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
    assert_eq!(out.status.code(), Some(2), "exit status; stderr:\n{stderr}");
    assert!(stderr.contains(file), "file `{file}` not named:\n{stderr}");
    assert!(
        stderr.to_lowercase().contains(&keyword.to_lowercase()),
        "problem `{keyword}` not named:\n{stderr}"
    );
}

/// Asserts success without a panic.
fn assert_accepted(out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
    assert!(out.status.success(), "failed:\n{stderr}");
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
}

/// Writes `script` to `dir/name` and checks `parse`, `check` and `fix --write` all reject it
/// with `keyword`, leaving the file byte-identical and no new file in `dir`.
fn reject_script(dir: &Path, name: &str, script: &[u8], keyword: &str) {
    let path = dir.join(name);
    fs::write(&path, script).unwrap();
    let before = listing(dir);
    for command in ["parse", "check"] {
        assert_rejected(&ldcheck(dir, &[command, name]), name, keyword);
    }
    assert_rejected(&ldcheck(dir, &["fix", name, "--write"]), name, keyword);
    assert_eq!(fs::read(&path).unwrap(), script, "{name} was modified");
    assert_eq!(listing(dir), before, "files appeared beside {name}");
}

/// A minimal relocatable ELF header without sections.
fn elf_header(class64: bool, big_endian: bool, machine: u16) -> Vec<u8> {
    let mut h = vec![0x7f, b'E', b'L', b'F'];
    h.extend([
        if class64 { 2 } else { 1 },
        if big_endian { 2 } else { 1 },
        1,
    ]);
    h.resize(16, 0);
    let mut put = |value: u64, width: usize| {
        let bytes = value.to_le_bytes();
        let field = &bytes[..width];
        if big_endian {
            h.extend(field.iter().rev());
        } else {
            h.extend(field);
        }
    };
    let word = if class64 { 8 } else { 4 };
    put(1, 2); // e_type: ET_REL
    put(machine.into(), 2);
    put(1, 4); // e_version
    put(0, word); // e_entry
    put(0, word); // e_phoff
    put(0, word); // e_shoff
    put(0, 4); // e_flags
    put(if class64 { 64 } else { 52 }, 2); // e_ehsize
    put(0, 2); // e_phentsize
    put(0, 2); // e_phnum
    put(if class64 { 64 } else { 40 }, 2); // e_shentsize
    put(0, 2); // e_shnum
    put(0, 2); // e_shstrndx
    h
}

const EM_386: u16 = 3;
const EM_ARM: u16 = 40;
const EM_X86_64: u16 = 62;

/// A directory holding a trivial script `ok.lds` and an empty x86_64 object `ok.o`.
fn link_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("ok.lds"),
        "SECTIONS { .text : { *(.text) } }\n",
    )
    .unwrap();
    fs::write(dir.path().join("ok.o"), elf_header(true, false, EM_X86_64)).unwrap();
    dir
}

/// `ldcheck layout -- -T SCRIPT OBJECTS… -o out` in `dir`; `out` must never be written.
fn layout(dir: &Path, script: &str, objects: &[&str]) -> Output {
    let mut args = vec!["layout", "--", "-T", script];
    args.extend(objects);
    args.extend(["-o", "out"]);
    let out = ldcheck(dir, &args);
    assert!(!dir.join("out").exists(), "layout wrote its output file");
    out
}

#[test]
fn truncated_elf_header() {
    let dir = link_dir();
    let full = elf_header(true, false, EM_X86_64);
    fs::write(dir.path().join("short.o"), &full[..30]).unwrap();
    let out = layout(dir.path(), "ok.lds", &["ok.o", "short.o"]);
    assert_rejected(&out, "short.o", "header");
}

#[test]
fn section_headers_outside_the_file() {
    let dir = link_dir();
    let mut elf = elf_header(true, false, EM_X86_64);
    elf[0x28..0x30].copy_from_slice(&0x10_0000u64.to_le_bytes()); // e_shoff
    elf[0x3c..0x3e].copy_from_slice(&4u16.to_le_bytes()); // e_shnum
    fs::write(dir.path().join("shoff.o"), elf).unwrap();
    let out = layout(dir.path(), "ok.lds", &["ok.o", "shoff.o"]);
    assert_rejected(&out, "shoff.o", "section header");
}

#[test]
fn absurd_section_count() {
    let dir = link_dir();
    // Extended numbering: e_shnum 0, the count in section 0's sh_size.
    let mut elf = elf_header(true, false, EM_X86_64);
    elf[0x28..0x30].copy_from_slice(&64u64.to_le_bytes()); // e_shoff
    let mut section0 = vec![0u8; 64];
    section0[32..40].copy_from_slice(&(1u64 << 23).to_le_bytes()); // sh_size
    elf.extend(section0);
    fs::write(dir.path().join("many.o"), elf).unwrap();
    let out = layout(dir.path(), "ok.lds", &["ok.o", "many.o"]);
    assert_rejected(&out, "many.o", "8388608 sections");
}

#[test]
fn symbol_name_over_the_limit() {
    use object::write::{Object, Symbol, SymbolSection};
    use object::{Architecture, BinaryFormat, Endianness, SymbolFlags, SymbolKind, SymbolScope};
    let dir = link_dir();
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
    obj.add_symbol(Symbol {
        name: vec![b'x'; 70_000],
        value: 0,
        size: 0,
        kind: SymbolKind::Data,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Absolute,
        flags: SymbolFlags::None,
    });
    fs::write(dir.path().join("long.o"), obj.write().unwrap()).unwrap();
    let out = layout(dir.path(), "ok.lds", &["ok.o", "long.o"]);
    assert_rejected(&out, "long.o", "70000 bytes long");
}

#[test]
fn big_endian_object_in_a_little_endian_link() {
    let dir = link_dir();
    fs::write(dir.path().join("be.o"), elf_header(true, true, EM_X86_64)).unwrap();
    let out = layout(dir.path(), "ok.lds", &["ok.o", "be.o"]);
    assert_rejected(&out, "be.o", "big-endian");

    fs::write(dir.path().join("arm.o"), elf_header(false, false, EM_ARM)).unwrap();
    fs::write(dir.path().join("armeb.o"), elf_header(false, true, EM_ARM)).unwrap();
    let out = layout(dir.path(), "ok.lds", &["arm.o", "armeb.o"]);
    assert_rejected(&out, "armeb.o", "big-endian");
}

#[test]
fn mixed_elf_classes() {
    let dir = link_dir();
    fs::write(
        dir.path().join("x32.o"),
        elf_header(false, false, EM_X86_64),
    )
    .unwrap();
    let out = layout(dir.path(), "ok.lds", &["ok.o", "x32.o"]);
    assert_rejected(&out, "x32.o", "Elf32");

    fs::write(dir.path().join("i386.o"), elf_header(false, false, EM_386)).unwrap();
    let out = layout(dir.path(), "ok.lds", &["ok.o", "i386.o"]);
    assert_rejected(&out, "i386.o", "conflicting targets");
}

#[test]
fn directory_given_as_a_file() {
    let dir = link_dir();
    fs::create_dir(dir.path().join("sub.lds")).unwrap();
    fs::create_dir(dir.path().join("sub.o")).unwrap();
    for command in ["parse", "check"] {
        assert_rejected(
            &ldcheck(dir.path(), &[command, "sub.lds"]),
            "sub.lds",
            "directory",
        );
    }
    let out = ldcheck(dir.path(), &["fix", "sub.lds", "--write"]);
    assert_rejected(&out, "sub.lds", "directory");
    assert_rejected(
        &layout(dir.path(), "sub.lds", &["ok.o"]),
        "sub.lds",
        "directory",
    );
    assert_rejected(
        &layout(dir.path(), "ok.lds", &["sub.o"]),
        "sub.o",
        "directory",
    );
}

#[test]
fn fifo_given_as_a_file() {
    let dir = link_dir();
    let made = Command::new("mkfifo")
        .args(["pipe.lds", "pipe.o"])
        .current_dir(dir.path())
        .status();
    if !made.is_ok_and(|s| s.success()) {
        println!("notice: mkfifo unavailable, skipping");
        return;
    }
    for command in ["parse", "check"] {
        assert_rejected(
            &ldcheck(dir.path(), &[command, "pipe.lds"]),
            "pipe.lds",
            "FIFO",
        );
    }
    let out = ldcheck(dir.path(), &["fix", "pipe.lds", "--write"]);
    assert_rejected(&out, "pipe.lds", "FIFO");
    assert_rejected(
        &layout(dir.path(), "pipe.lds", &["ok.o"]),
        "pipe.lds",
        "FIFO",
    );
    assert_rejected(&layout(dir.path(), "ok.lds", &["pipe.o"]), "pipe.o", "FIFO");
}

#[test]
fn unreadable_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = link_dir();
    let path = dir.path().join("secret.lds");
    fs::write(&path, "SECTIONS { }\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read(&path).is_ok() {
        println!("notice: a mode-000 file is readable here (root?), skipping");
        return;
    }
    for command in ["parse", "check"] {
        let out = ldcheck(dir.path(), &[command, "secret.lds"]);
        assert_rejected(&out, "secret.lds", "permission denied");
    }
    let out = ldcheck(dir.path(), &["fix", "secret.lds", "--write"]);
    assert_rejected(&out, "secret.lds", "permission denied");
    let out = layout(dir.path(), "secret.lds", &["ok.o"]);
    assert_rejected(&out, "secret.lds", "permission denied");
}

#[test]
fn script_with_nul_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let script = b"SECTIONS { .t\0ext : { *(.text) } }\n";
    reject_script(dir.path(), "nul.lds", script, "invalid character");
}

#[test]
fn script_with_invalid_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let script = b"SECTIONS { .t\xffext : { *(.text) } }\n";
    reject_script(dir.path(), "latin.lds", script, "UTF-8");
}

#[test]
fn deeply_nested_expression() {
    let dir = tempfile::tempdir().unwrap();
    let depth = 100_000;
    let script = format!(
        "SECTIONS {{ x = {}1{}; }}\n",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    reject_script(dir.path(), "deep.lds", script.as_bytes(), "nesting");
    // The report quotes a window of the 200 KB line, not all of it.
    let out = ldcheck(dir.path(), &["check", "deep.lds"]);
    assert!(
        out.stderr.len() < 2_000,
        "{} bytes of report",
        out.stderr.len()
    );
}

#[test]
fn empty_script_is_accepted_like_ld() {
    let dir = link_dir();
    fs::write(dir.path().join("empty.lds"), "").unwrap();
    assert_accepted(&ldcheck(dir.path(), &["parse", "empty.lds"]));
    let out = ldcheck(dir.path(), &["check", "empty.lds"]);
    assert_accepted(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("empty.lds"));
}

#[test]
fn fifty_megabyte_script() {
    let dir = tempfile::tempdir().unwrap();
    let mut script = String::from("SECTIONS {\n");
    let mut n = 0u64;
    while script.len() < 50 << 20 {
        script.push_str(&format!("  sym_{n} = . + {n};\n"));
        n += 1;
    }
    script.push_str("}\n");
    fs::write(dir.path().join("big.lds"), &script).unwrap();
    assert_accepted(&ldcheck(dir.path(), &["parse", "big.lds"]));
    assert_accepted(&ldcheck(dir.path(), &["check", "big.lds"]));
}

#[test]
fn location_counter_moved_backwards() {
    let dir = link_dir();
    fs::write(
        dir.path().join("back.lds"),
        "SECTIONS { .text 0x1000 : { . = 0x2000; *(.text) . = 0x1000; } }\n",
    )
    .unwrap();
    let out = layout(dir.path(), "back.lds", &["ok.o"]);
    assert_rejected(&out, "back.lds", "cannot move location counter backwards");
}

#[test]
fn include_is_refused_rather_than_ignored() {
    let dir = link_dir();
    fs::write(dir.path().join("part.lds"), ".data : { *(.data) }\n").unwrap();
    for script in [
        "INCLUDE part.lds\nSECTIONS { .text : { *(.text) } }\n",
        "SECTIONS { .text : { *(.text) } INCLUDE part.lds }\n",
        "SECTIONS { .text : { *(.text) INCLUDE part.lds } }\n",
    ] {
        fs::write(dir.path().join("inc.lds"), script).unwrap();
        let out = layout(dir.path(), "inc.lds", &["ok.o"]);
        assert_rejected(&out, "inc.lds", "INCLUDE (the included script is not read)");
        // The script-only check runs, and says what it did not read.
        let out = ldcheck(dir.path(), &["check", "inc.lds"]);
        assert_accepted(&out);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("INCLUDE part.lds is not read"), "{stdout}");
    }
}

#[test]
fn align_by_a_non_power_of_two_is_accepted_like_ld() {
    let dir = link_dir();
    fs::write(
        dir.path().join("align3.lds"),
        "SECTIONS { . = 0x1000; .text : { *(.text) } .data : { . = ALIGN(3); *(.data) } }\n",
    )
    .unwrap();
    assert_accepted(&layout(dir.path(), "align3.lds", &["ok.o"]));
}

#[test]
fn address_arithmetic_wraps_like_ld() {
    let dir = link_dir();
    fs::write(
        dir.path().join("wrap.lds"),
        "SECTIONS { . = 0xffffffffffffffff; . = . + 0x10; .text : { BYTE(0) } }\n",
    )
    .unwrap();
    let out = layout(dir.path(), "wrap.lds", &["ok.o"]);
    assert_accepted(&out);
    // ld 2.4x places .text at 0xf: the sum wraps modulo 2^64.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(".text") && l.contains("000000000000000f")),
        "{stdout}"
    );
}
