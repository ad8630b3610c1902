//! `ldcheck ksyms`: fake Kbuild trees built at test time — objects compiled with gcc, some with
//! `__ksymtab` entries made the way each kernel's EXPORT_SYMBOL makes them, stamps and objects
//! with mtimes set to the nanosecond — checked finding by finding and non-finding by
//! non-finding, through the library and the command line.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use ldcheck::kbuild::ksyms::{
    Content, Evidence, FindingKind, Granularity, Mechanism, Report, Severity, Status, check_tree,
};
use ldcheck::kbuild::tree::KernelVersion;

/// A whole second well inside every filesystem's range.
const T: u64 = 1_700_000_000;

/// EXPORT_SYMBOL as the kernel expands it, one macro per layout:
/// - `MARKER`: the `__ksym_marker_<sym>` of 5.0–6.4 trimming, emitted whether or not the export
///   is kept;
/// - `KSYMTAB_PREL32`: 5.x/6.x with relative references (x86_64): a `___ksymtab+<sym>` section
///   holding the `__ksymtab_<sym>` label, strings in `__ksymtab_strings`;
/// - `KSYMTAB_PLUS`: 4.x C layout, a `struct kernel_symbol __ksymtab_<sym>` in `___ksymtab+<sym>`;
/// - `KSYMTAB_FLAT`: the older layout, the same struct in one `__ksymtab` section.
const PRELUDE: &str = r#"
struct kernel_symbol { unsigned long value; const char *name; };
#define MARKER(sym) \
    static int __ksym_marker_##sym[0] __attribute__((section(".discard.ksym"), used))
#define KSYMTAB_PREL32(sym) \
    asm("\t.section \"___ksymtab+" #sym "\", \"a\"\n" \
        "\t.balign 4\n" \
        "__ksymtab_" #sym ":\n" \
        "\t.long " #sym " - .\n" \
        "\t.long __kstrtab_" #sym " - .\n" \
        "\t.long __kstrtabns_" #sym " - .\n" \
        "\t.previous\n" \
        "\t.section \"__ksymtab_strings\", \"aMS\", %progbits, 1\n" \
        "__kstrtab_" #sym ":\n\t.asciz \"" #sym "\"\n" \
        "__kstrtabns_" #sym ":\n\t.asciz \"\"\n" \
        "\t.previous\n")
#define KSYMTAB_STRUCT(sym, sec) \
    static const char __kstrtab_##sym[] \
        __attribute__((section("__ksymtab_strings"), aligned(1))) = #sym; \
    static const struct kernel_symbol __ksymtab_##sym \
        __attribute__((section(sec), used)) = { (unsigned long)&sym, __kstrtab_##sym }
#define KSYMTAB_PLUS(sym) KSYMTAB_STRUCT(sym, "___ksymtab+" #sym)
#define KSYMTAB_FLAT(sym) KSYMTAB_STRUCT(sym, "__ksymtab")
"#;

/// One fake tree: `obj/` is the Kbuild output tree, `src/` holds the C files.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new(release: Option<&str>, trim: bool) -> Self {
        let tree = Tree {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        std::fs::create_dir_all(tree.obj()).expect("objtree");
        if let Some(release) = release {
            tree.write("include/config/kernel.release", &format!("{release}\n"));
        }
        let trim = if trim {
            "CONFIG_TRIM_UNUSED_KSYMS=y\n"
        } else {
            "# CONFIG_TRIM_UNUSED_KSYMS is not set\n"
        };
        tree.write(".config", &format!("CONFIG_MODULES=y\n{trim}"));
        tree
    }

    fn obj(&self) -> PathBuf {
        self.dir.path().join("obj")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.obj().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
    }

    /// `#define __KSYM_<sym> 1` lines, as scripts/gen_autoksyms.sh writes them.
    fn wanted(&self, syms: &[&str]) {
        let mut text = "/*\n * Automatically generated file; DO NOT EDIT.\n */\n\n".to_string();
        for sym in syms {
            text.push_str(&format!("#define __KSYM_{sym} 1\n"));
        }
        self.write("include/generated/autoksyms.h", &text);
    }

    /// Compiles `body` (after the EXPORT_SYMBOL macros) into the object `rel`.
    fn compile(&self, rel: &str, body: &str) {
        let src = self
            .dir
            .path()
            .join("src")
            .join(rel.replace('/', "_") + ".c");
        std::fs::create_dir_all(src.parent().expect("parent")).expect("mkdir");
        std::fs::write(&src, format!("{PRELUDE}\n{body}\n")).expect("write source");
        let out = self.path(rel);
        std::fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
        common::run(
            self.dir.path(),
            "gcc",
            &[
                "-c",
                "-O2",
                "-o",
                &out.display().to_string(),
                &src.display().to_string(),
            ],
        );
    }

    /// The object's `.cmd` file as fixdep and gen_ksymdeps.sh leave it: `deps_` for 4.x stamps,
    /// a `ksymdeps_` block for 5.x stamps.
    fn cmd(&self, rel: &str, deps: &[&str], ksymdeps: &[&str]) {
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let mut text = format!(
            "cmd_{rel} := gcc -Wp,-MMD,{dir}/.{name}.d -c -o {rel} {src}\n\nsource_{rel} := \
             {src}\n\ndeps_{rel} := \\\n  include/linux/kconfig.h \\\n    $(wildcard \
             include/config/cpu/big/endian.h) \\\n",
            src = rel.replace(".o", ".c")
        );
        for dep in deps {
            text.push_str(&format!("    $(wildcard {dep}) \\\n"));
        }
        text.push_str(&format!("\n{rel}: $(deps_{rel})\n\n$(deps_{rel}):\n"));
        if !ksymdeps.is_empty() {
            text.push_str(&format!("\nksymdeps_{rel} := \\\n"));
            for dep in ksymdeps {
                text.push_str(&format!("    $(wildcard {dep}) \\\n"));
            }
            text.push_str(&format!(
                "\n{rel}: $(ksymdeps_{rel})\n\n$(ksymdeps_{rel}):\n"
            ));
        }
        let cmd = if dir.is_empty() {
            format!(".{name}.cmd")
        } else {
            format!("{dir}/.{name}.cmd")
        };
        self.write(&cmd, &text);
    }

    /// Sets a file's mtime to `secs` seconds after T plus `nanos`.
    fn mtime(&self, rel: &str, secs: i64, nanos: u32) {
        let at = UNIX_EPOCH
            + Duration::from_secs(T.checked_add_signed(secs).expect("time in range"))
            + Duration::from_nanos(u64::from(nanos));
        File::options()
            .write(true)
            .open(self.path(rel))
            .expect("open for set_modified")
            .set_modified(at)
            .expect("set mtime");
    }

    /// Creates (touches) a stamp and sets its mtime.
    fn stamp(&self, rel: &str, secs: i64, nanos: u32) {
        self.write(rel, "");
        self.mtime(rel, secs, nanos);
    }

    fn check(&self) -> Report {
        check_tree(&self.obj(), None).expect("tree checks")
    }
}

/// (kind, symbols, stale) of every finding about `object`, in report order.
fn about(report: &Report, object: &str) -> Vec<(FindingKind, Vec<String>, bool)> {
    report
        .findings
        .iter()
        .filter(|f| f.object.as_deref() == Some(object))
        .map(|f| (f.kind, f.symbols.clone(), f.stale))
        .collect()
}

fn syms(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn ldcheck(args: &[&str], no_color: bool) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ldcheck"));
    cmd.args(args);
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    let out = cmd.output().expect("ldcheck runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A 6.1 tree (raw `include/ksym/<sym>` stamps) on a 1-second filesystem: every mtime whole.
fn raw_coarse_tree() -> Tree {
    let t = Tree::new(Some("6.1.0"), true);
    t.wanted(&[
        "good_fn", "stale_fn", "newer_fn", "lucky_fn", "plain_fn", "nocmd_fn",
    ]);
    // Built with the current list: exports what it should; stamp older.
    t.compile(
        "lib/good.o",
        "int good_fn(void) { return 1; }\nMARKER(good_fn);\nKSYMTAB_PREL32(good_fn);",
    );
    t.cmd("lib/good.o", &[], &["include/ksym/good_fn"]);
    // Built before `stale_fn` entered the list, stamp touched within the same second.
    t.compile(
        "lib/stale.o",
        "int stale_fn(void) { return 2; }\nMARKER(stale_fn);",
    );
    t.cmd("lib/stale.o", &[], &["include/ksym/stale_fn"]);
    // Same, but the stamp landed one second later: make will rebuild, it has not yet.
    t.compile(
        "lib/newer.o",
        "int newer_fn(void) { return 3; }\nMARKER(newer_fn);",
    );
    t.cmd("lib/newer.o", &[], &["include/ksym/newer_fn"]);
    // Equal mtimes, but it was rebuilt in time: exports already match.
    t.compile(
        "lib/lucky.o",
        "int lucky_fn(void) { return 4; }\nMARKER(lucky_fn);\nKSYMTAB_PREL32(lucky_fn);",
    );
    t.cmd("lib/lucky.o", &[], &["include/ksym/lucky_fn"]);
    // Not wanted, not exported, stamp older: nothing to say.
    t.compile(
        "lib/unused.o",
        "int unused_fn(void) { return 5; }\nMARKER(unused_fn);",
    );
    t.cmd("lib/unused.o", &[], &["include/ksym/unused_fn"]);
    // Defines a wanted symbol without EXPORT_SYMBOL; another object exports it.
    t.compile("lib/plain.o", "int plain_fn(void) { return 6; }");
    t.cmd("lib/plain.o", &[], &[]);
    t.compile(
        "lib/ksyms.o",
        "extern int plain_fn(void);\nMARKER(plain_fn);\nKSYMTAB_PREL32(plain_fn);",
    );
    t.cmd("lib/ksyms.o", &[], &["include/ksym/plain_fn"]);
    // Still exports a symbol the list dropped; the stamp's change was missed.
    t.compile(
        "lib/extra.o",
        "int gone_fn(void) { return 7; }\nMARKER(gone_fn);\nKSYMTAB_PREL32(gone_fn);",
    );
    t.cmd("lib/extra.o", &[], &["include/ksym/gone_fn"]);
    // No .cmd file: the markers name the stamps.
    t.compile(
        "lib/nocmd.o",
        "int nocmd_fn(void) { return 8; }\nMARKER(nocmd_fn);",
    );
    // A composite (ld -r) object: markers from its parts, no ksymdeps of its own.
    t.compile(
        "drivers/multi.o",
        "int part_fn(void) { return 9; }\nMARKER(part_fn);",
    );
    t.write(
        "drivers/.multi.o.cmd",
        "cmd_drivers/multi.o := ld -m elf_x86_64 -r -o drivers/multi.o @drivers/multi.mod\n",
    );
    t.wanted(&[
        "good_fn", "stale_fn", "newer_fn", "lucky_fn", "plain_fn", "nocmd_fn", "part_fn",
    ]);

    for (object, stamp, delta) in [
        ("lib/good.o", "include/ksym/good_fn", -10),
        ("lib/stale.o", "include/ksym/stale_fn", 0),
        ("lib/newer.o", "include/ksym/newer_fn", 1),
        ("lib/lucky.o", "include/ksym/lucky_fn", 0),
        ("lib/unused.o", "include/ksym/unused_fn", -3),
        ("lib/ksyms.o", "include/ksym/plain_fn", -4),
        ("lib/extra.o", "include/ksym/gone_fn", 0),
        ("lib/nocmd.o", "include/ksym/nocmd_fn", 0),
        ("drivers/multi.o", "include/ksym/part_fn", 0),
    ] {
        t.mtime(object, 0, 0);
        t.stamp(stamp, delta, 0);
    }
    t.mtime("lib/plain.o", 0, 0);
    t
}

#[test]
fn raw_stamps_on_a_coarse_filesystem() {
    if !common::have_tool("gcc") {
        return;
    }
    let t = raw_coarse_tree();
    let r = t.check();
    assert_eq!(r.status, Status::Checked);
    assert_eq!(r.version, Some(KernelVersion::new(6, 1)));
    assert_eq!(
        r.version_from.as_deref(),
        Some("include/config/kernel.release")
    );
    assert_eq!(r.mechanism, Some(Mechanism::KsymRaw));
    assert_eq!(r.stamp_dir, Some("include/ksym"));
    assert_eq!(r.timestamps, Granularity::Coarse);
    assert_eq!(r.objects_scanned, 10);
    assert_eq!(r.wanted_symbols, 7);
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);

    // Non-findings.
    for quiet in [
        "lib/good.o",
        "lib/unused.o",
        "lib/plain.o",
        "lib/ksyms.o",
        "drivers/multi.o",
    ] {
        assert_eq!(about(&r, quiet), vec![], "{quiet}");
    }
    // Findings.
    assert_eq!(
        about(&r, "lib/stale.o"),
        vec![
            (FindingKind::MissingExport, syms(&["stale_fn"]), true),
            (FindingKind::EqualMtime, syms(&["stale_fn"]), true),
        ]
    );
    assert_eq!(
        about(&r, "lib/newer.o"),
        vec![
            (FindingKind::MissingExport, syms(&["newer_fn"]), true),
            (FindingKind::StampNewer, syms(&["newer_fn"]), true),
        ]
    );
    assert_eq!(
        about(&r, "lib/lucky.o"),
        vec![(FindingKind::EqualMtime, syms(&["lucky_fn"]), false)]
    );
    assert_eq!(
        about(&r, "lib/extra.o"),
        vec![(FindingKind::EqualMtime, syms(&["gone_fn"]), true)]
    );
    assert_eq!(
        about(&r, "lib/nocmd.o"),
        vec![
            (FindingKind::MissingExport, syms(&["nocmd_fn"]), true),
            (FindingKind::EqualMtime, syms(&["nocmd_fn"]), true),
        ]
    );
    assert_eq!(r.findings.len(), 8);
    assert_eq!(
        r.stale_objects,
        ["lib/extra.o", "lib/newer.o", "lib/nocmd.o", "lib/stale.o"]
    );

    let find = |object: &str, kind: FindingKind| {
        r.findings
            .iter()
            .find(|f| f.object.as_deref() == Some(object) && f.kind == kind)
            .expect("finding present")
    };
    let missing = find("lib/stale.o", FindingKind::MissingExport);
    assert_eq!(missing.evidence, Some(Evidence::Marker));
    assert_eq!(missing.stamp.as_deref(), Some("include/ksym/stale_fn"));
    let at = missing.location.as_ref().expect("list line");
    assert_eq!(
        (at.file.as_str(), at.line, at.column),
        ("include/generated/autoksyms.h", 6, 16)
    );
    assert!(missing.message.contains("stale_fn"), "{}", missing.message);
    assert!(
        missing.fix.contains("delete lib/stale.o"),
        "{}",
        missing.fix
    );
    let equal = find("lib/stale.o", FindingKind::EqualMtime);
    assert_eq!(equal.severity, Severity::Warning);
    assert_eq!(equal.content, Some(Content::MissingExport));
    assert_eq!(equal.stamp_mtime, equal.object_mtime);
    let at = equal.location.as_ref().expect(".cmd line");
    assert_eq!(at.file, "lib/.stale.o.cmd");
    let cmd = std::fs::read_to_string(t.path(&at.file)).expect("read .cmd");
    let line = cmd.lines().nth(at.line - 1).expect("line exists");
    assert_eq!(
        &line[at.column - 1..],
        "include/ksym/stale_fn) \\",
        "{line}"
    );
    assert!(equal.fix.contains("sub-second"), "{}", equal.fix);
    let lucky = find("lib/lucky.o", FindingKind::EqualMtime);
    assert_eq!(
        (lucky.severity, lucky.content),
        (Severity::Note, Some(Content::Consistent))
    );
    assert_eq!(
        find("lib/extra.o", FindingKind::EqualMtime).content,
        Some(Content::ExtraExport)
    );
    assert!(
        find("lib/nocmd.o", FindingKind::EqualMtime)
            .location
            .is_none()
    );
}

#[test]
fn fine_timestamps_compare_exactly() {
    if !common::have_tool("gcc") {
        return;
    }
    let t = Tree::new(Some("5.15.0"), true);
    t.wanted(&["a_fn", "b_fn", "c_fn"]);
    for name in ["a", "b", "c"] {
        let rel = format!("fs/{name}.o");
        t.compile(
            &rel,
            &format!("int {name}_fn(void) {{ return 0; }}\nMARKER({name}_fn);"),
        );
        t.cmd(&rel, &[], &[&format!("include/ksym/{name}_fn")]);
    }
    // a: identical to the nanosecond (same jiffy on a fine filesystem).
    t.mtime("fs/a.o", 0, 500_000_000);
    t.stamp("include/ksym/a_fn", 0, 500_000_000);
    // b: same second, stamp 0.4 s older: make was right not to rebuild.
    t.mtime("fs/b.o", 0, 700_000_000);
    t.stamp("include/ksym/b_fn", 0, 300_000_000);
    // c: stamp one nanosecond newer.
    t.mtime("fs/c.o", 0, 500_000_000);
    t.stamp("include/ksym/c_fn", 0, 500_000_001);
    // An LLVM bitcode object (clang LTO) cannot be read: equal mtimes make it suspect.
    t.write("fs/lto.o", "BC\u{c0}\u{de}not really bitcode");
    t.cmd("fs/lto.o", &[], &["include/ksym/lto_fn"]);
    t.mtime("fs/lto.o", 0, 500_000_000);
    t.stamp("include/ksym/lto_fn", 0, 500_000_000);

    let r = t.check();
    assert_eq!(r.mechanism, Some(Mechanism::KsymRaw));
    assert_eq!(r.timestamps, Granularity::Fine);
    assert_eq!(
        about(&r, "fs/a.o"),
        vec![
            (FindingKind::MissingExport, syms(&["a_fn"]), true),
            (FindingKind::EqualMtime, syms(&["a_fn"]), true),
        ]
    );
    assert_eq!(
        about(&r, "fs/b.o"),
        vec![(FindingKind::MissingExport, syms(&["b_fn"]), true)]
    );
    assert_eq!(
        about(&r, "fs/c.o"),
        vec![
            (FindingKind::MissingExport, syms(&["c_fn"]), true),
            (FindingKind::StampNewer, syms(&["c_fn"]), true),
        ]
    );
    assert_eq!(
        about(&r, "fs/lto.o"),
        vec![(FindingKind::EqualMtime, syms(&["lto_fn"]), true)]
    );
    let lto = r
        .findings
        .iter()
        .find(|f| f.object.as_deref() == Some("fs/lto.o"))
        .expect("lto finding");
    assert_eq!(lto.content, Some(Content::Unknown));
    assert_eq!(r.objects_scanned, 4);
    assert_eq!(r.skipped.len(), 1);
    assert_eq!(r.skipped[0].object, "fs/lto.o");
    assert_eq!(
        r.skipped[0].reason,
        "not an ELF object or archive (no ELF magic)"
    );
    assert_eq!(r.stale_objects, ["fs/a.o", "fs/b.o", "fs/c.o", "fs/lto.o"]);
}

/// The background report's tree: Linux 4.14, `include/config/ksym/` stamps named by
/// `tr "A-Z_" "a-z/"`, fixdep listing them in `deps_`, a 1-second filesystem.
fn config_ksym_tree() -> Tree {
    let t = Tree::new(Some("4.14.23"), true);
    t.wanted(&[
        "__clear_user",
        "__put_user_2",
        "clear_user",
        "lonely_fn",
        "old_fn",
    ]);
    // Built before clear_user/__clear_user were wanted; their stamp was touched in the same
    // second, so make skipped the rebuild.
    t.compile(
        "arch/x86/lib/usercopy_64.o",
        "unsigned long clear_user(void *to, unsigned long n) { return n + (unsigned long)to; }\n\
         unsigned long __clear_user(void *to, unsigned long n) { return n - (unsigned long)to; }",
    );
    t.cmd(
        "arch/x86/lib/usercopy_64.o",
        &[
            "include/config/ksym/clear/user.h",
            "include/config/ksym///clear/user.h",
        ],
        &[],
    );
    t.compile(
        "arch/x86/lib/putuser.o",
        "int __put_user_2(void) { return 2; }\nKSYMTAB_PLUS(__put_user_2);",
    );
    t.cmd(
        "arch/x86/lib/putuser.o",
        &["include/config/ksym///put/user/2.h"],
        &[],
    );
    t.compile(
        "kernel/old_layout.o",
        "int old_fn(void) { return 3; }\nKSYMTAB_FLAT(old_fn);",
    );
    t.compile("kernel/nocmd.o", "int lonely_fn(void) { return 4; }");
    t.mtime("arch/x86/lib/usercopy_64.o", 0, 0);
    t.stamp("include/config/ksym///clear/user.h", 0, 0);
    t.mtime("arch/x86/lib/putuser.o", 0, 0);
    t.stamp("include/config/ksym///put/user/2.h", -5, 0);
    t.mtime("kernel/old_layout.o", 0, 0);
    t.mtime("kernel/nocmd.o", 0, 0);
    t
}

#[test]
fn config_ksym_stamps_of_linux_4() {
    if !common::have_tool("gcc") {
        return;
    }
    let t = config_ksym_tree();
    let r = t.check();
    assert_eq!(r.mechanism, Some(Mechanism::ConfigKsym));
    assert_eq!(r.stamp_dir, Some("include/config/ksym"));
    assert_eq!(r.timestamps, Granularity::Coarse);
    let clear = syms(&["__clear_user", "clear_user"]);
    assert_eq!(
        about(&r, "arch/x86/lib/usercopy_64.o"),
        vec![
            (FindingKind::MissingExport, syms(&["__clear_user"]), true),
            (FindingKind::MissingExport, syms(&["clear_user"]), true),
            (FindingKind::EqualMtime, clear.clone(), true),
            (FindingKind::RepeatedSlash, syms(&["__clear_user"]), false),
            (FindingKind::AliasedStamp, clear, false),
        ]
    );
    // Exports correctly (4.x `___ksymtab+sym` layout); only its stamp's spelling is flagged.
    assert_eq!(
        about(&r, "arch/x86/lib/putuser.o"),
        vec![(FindingKind::RepeatedSlash, syms(&["__put_user_2"]), false)]
    );
    // The flat `__ksymtab` layout counts as an export.
    assert_eq!(about(&r, "kernel/old_layout.o"), vec![]);
    // No .cmd file: defining a wanted symbol is the evidence.
    assert_eq!(
        about(&r, "kernel/nocmd.o"),
        vec![(FindingKind::MissingExport, syms(&["lonely_fn"]), true)]
    );
    let evidence: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::MissingExport)
        .map(|f| f.evidence)
        .collect();
    assert_eq!(
        evidence,
        [
            Some(Evidence::CmdDependency),
            Some(Evidence::CmdDependency),
            Some(Evidence::Definition)
        ]
    );
    let slash = r
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::RepeatedSlash && f.symbols == ["__clear_user"])
        .expect("repeated-slash finding");
    assert_eq!(
        slash.stamp.as_deref(),
        Some("include/config/ksym///clear/user.h")
    );
    assert!(
        slash.message.contains("include/config/ksym/clear/user.h"),
        "{}",
        slash.message
    );
    let at = slash.location.as_ref().expect(".cmd line");
    let cmd = std::fs::read_to_string(t.path(&at.file)).expect("read .cmd");
    assert_eq!(
        &cmd[at.offset..at.offset + at.len],
        "include/config/ksym///clear/user.h"
    );
    assert_eq!(
        r.stale_objects,
        ["arch/x86/lib/usercopy_64.o", "kernel/nocmd.o"]
    );
}

#[test]
fn folded_ksym_stamps_of_linux_5_with_version_from_srctree() {
    if !common::have_tool("gcc") {
        return;
    }
    let t = Tree::new(None, true);
    let src = t.dir.path().join("linux");
    std::fs::create_dir_all(&src).expect("srctree");
    std::fs::write(
        src.join("Makefile"),
        "# SPDX-License-Identifier: GPL-2.0\nVERSION = 5\nPATCHLEVEL = 4\nSUBLEVEL = 0\n",
    )
    .expect("Makefile");
    t.wanted(&["_foo_bar", "foo_bar"]);
    // gen_ksymdeps.sh of 5.0–5.14 drops leading underscores and folds: include/ksym/foo/bar.h.
    t.compile(
        "net/foo.o",
        "int foo_bar(void) { return 1; }\nMARKER(foo_bar);",
    );
    t.cmd("net/foo.o", &[], &["include/ksym/foo/bar.h"]);
    t.compile(
        "net/ufoo.o",
        "int _foo_bar(void) { return 2; }\nMARKER(_foo_bar);\nKSYMTAB_PREL32(_foo_bar);",
    );
    t.cmd("net/ufoo.o", &[], &["include/ksym/foo/bar.h"]);
    t.mtime("net/foo.o", 0, 250);
    t.mtime("net/ufoo.o", 9, 0);
    t.stamp("include/ksym/foo/bar.h", 0, 250);

    // Without the Makefile the stamp layout still tells the mechanism.
    let r = t.check();
    assert_eq!(r.version, None);
    assert_eq!(r.version_from.as_deref(), Some("stamp layout"));
    assert_eq!(r.mechanism, Some(Mechanism::KsymPath));
    let r = check_tree(&t.obj(), Some(&src)).expect("checks with srctree");
    assert_eq!(r.version, Some(KernelVersion::new(5, 4)));
    assert_eq!(
        r.version_from,
        Some(src.join("Makefile").display().to_string())
    );
    assert_eq!(r.mechanism, Some(Mechanism::KsymPath));
    assert_eq!(r.timestamps, Granularity::Fine);
    let both = syms(&["_foo_bar", "foo_bar"]);
    assert_eq!(
        about(&r, "net/foo.o"),
        vec![
            (FindingKind::MissingExport, syms(&["foo_bar"]), true),
            (FindingKind::EqualMtime, both.clone(), true),
            (FindingKind::RepeatedSlash, syms(&["_foo_bar"]), false),
            (FindingKind::AliasedStamp, both.clone(), false),
        ]
    );
    assert_eq!(
        about(&r, "net/ufoo.o"),
        vec![
            (FindingKind::RepeatedSlash, syms(&["_foo_bar"]), false),
            (FindingKind::AliasedStamp, both, false),
        ]
    );
    assert_eq!(r.stale_objects, ["net/foo.o"]);
}

#[test]
fn mechanism_from_stamp_layout_without_a_version() {
    if !common::have_tool("gcc") {
        return;
    }
    let t = Tree::new(None, true);
    t.wanted(&["x_fn"]);
    t.compile("x.o", "int x_fn(void) { return 0; }\nKSYMTAB_PLUS(x_fn);");
    t.stamp("include/config/ksym/x/fn.h", -1, 0);
    let r = t.check();
    assert_eq!(r.version, None);
    assert_eq!(r.version_from.as_deref(), Some("stamp layout"));
    assert_eq!(r.mechanism, Some(Mechanism::ConfigKsym));
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert!(!r.has_stale());
}

#[test]
fn linux_6_5_and_later_cannot_race() {
    let t = Tree::new(Some("6.12.117"), true);
    let r = t.check();
    assert_eq!(r.status, Status::NoStamps);
    assert_eq!(r.mechanism, Some(Mechanism::Modpost));
    assert!(r.note.contains("cannot occur"), "{}", r.note);
    let obj = t.obj().display().to_string();
    for format in ["human", "json", "gnu"] {
        let (code, out, err) = ldcheck(&["ksyms", "--objtree", &obj, "--format", format], true);
        assert_eq!(code, 0, "{format}: {err}");
        assert!(out.contains("cannot occur"), "{format}: {out}");
    }
    let (_, out, _) = ldcheck(&["ksyms", "--objtree", &obj, "--format", "gnu"], true);
    assert_eq!(
        out.lines().next().map(|l| l.split(": note: ").next()),
        Some(Some(
            format!("{obj}/include/config/kernel.release:1:1").as_str()
        ))
    );
}

#[test]
fn untrimmed_and_ancient_trees_have_nothing_stale() {
    let t = Tree::new(Some("6.1.0"), false);
    let r = t.check();
    assert_eq!(r.status, Status::TrimDisabled);
    let t = Tree::new(Some("4.4.0"), true);
    let r = t.check();
    assert_eq!(r.status, Status::PredatesTrim);
    let obj = t.obj().display().to_string();
    let (code, out, _) = ldcheck(&["ksyms", "--objtree", &obj], true);
    assert_eq!(code, 0);
    assert!(out.contains("predates CONFIG_TRIM_UNUSED_KSYMS"), "{out}");
}

#[test]
fn usage_and_input_errors_exit_two() {
    let t = Tree::new(Some("6.1.0"), true);
    let obj = t.obj().display().to_string();
    let (code, _, err) = ldcheck(&["ksyms", "--objtree", &obj], true);
    assert_eq!(code, 2);
    assert!(err.contains("autoksyms.h"), "{err}");
    assert!(err.contains("is missing"), "{err}");
    let missing = t.dir.path().join("nope").display().to_string();
    let (code, _, err) = ldcheck(&["ksyms", "--objtree", &missing], true);
    assert_eq!(code, 2);
    assert!(err.contains("not a directory"), "{err}");
    let (code, _, err) = ldcheck(&["ksyms", "--objtree", &obj, "--write"], true);
    assert_eq!(code, 2);
    assert!(err.contains("--fix"), "{err}");
    let (code, _, _) = ldcheck(&["ksyms", "--objtree", &obj, "--format", "xml"], true);
    assert_eq!(code, 2);
    let bare = Tree::new(None, true);
    std::fs::remove_file(bare.path(".config")).expect("remove .config");
    let err = check_tree(&bare.obj(), None).expect_err("unconfigured");
    assert!(
        err.to_string().contains("not a configured Kbuild tree"),
        "{err}"
    );
}

fn exists(t: &Tree, rel: &str) -> bool {
    Path::new(&t.path(rel)).exists()
}

#[test]
fn fix_lists_and_write_deletes_exactly_the_stale_objects() {
    if !common::have_tool("gcc") {
        return;
    }
    let t = raw_coarse_tree();
    let obj = t.obj().display().to_string();
    let stale = ["lib/extra.o", "lib/newer.o", "lib/nocmd.o", "lib/stale.o"];
    let kept = [
        "lib/good.o",
        "lib/lucky.o",
        "lib/unused.o",
        "lib/plain.o",
        "lib/ksyms.o",
        "drivers/multi.o",
    ];

    let (code, out, _) = ldcheck(&["ksyms", "--objtree", &obj, "--fix"], true);
    assert_eq!(code, 1);
    for rel in stale {
        assert!(
            out.contains(&format!("would remove {obj}/{rel}")),
            "{rel}: {out}"
        );
        assert!(exists(&t, rel), "{rel} deleted without --write");
    }
    let (code, out, _) = ldcheck(
        &["ksyms", "--objtree", &obj, "--fix", "--format", "json"],
        true,
    );
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json["removal"]["written"], false);
    assert_eq!(json["removal"]["objects"].as_array().map(Vec::len), Some(4));
    assert!(stale.iter().all(|rel| exists(&t, rel)));

    // GNU: a finding with no text position points at its object, line 1 column 1; a note
    // points at the .cmd line listing the stamp.
    let (code, out, _) = ldcheck(&["ksyms", "--objtree", &obj, "--format", "gnu"], true);
    assert_eq!(code, 1);
    assert!(
        out.lines().any(|l| l.starts_with(&format!(
            "{obj}/lib/nocmd.o:1:1: warning: stamp include/ksym/nocmd_fn and object lib/nocmd.o"
        )) && l.ends_with("[ksyms-equal-mtime]")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with(&format!(
            "{obj}/lib/.lucky.o.cmd:14:16: note: stamp include/ksym/lucky_fn"
        ))),
        "{out}"
    );

    let (code, out, _) = ldcheck(
        &[
            "ksyms",
            "--objtree",
            &obj,
            "--fix",
            "--write",
            "--format",
            "json",
        ],
        true,
    );
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json["removal"]["written"], true);
    let removed: Vec<&str> = json["removal"]["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| o["object"].as_str().expect("object"))
        .collect();
    assert_eq!(removed, stale);
    for rel in stale {
        assert!(!exists(&t, rel), "{rel} survived --fix --write");
    }
    for rel in kept {
        assert!(exists(&t, rel), "{rel} was deleted");
    }
    for stamp in ["include/ksym/stale_fn", "include/generated/autoksyms.h"] {
        assert!(exists(&t, stamp), "{stamp} was deleted");
    }

    // What is left is clean apart from the harmless equal-mtime note.
    let (code, out, _) = ldcheck(&["ksyms", "--objtree", &obj, "--format", "gnu"], true);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().filter(|l| l.contains(": warning: ")).count(), 0);
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("[ksyms-equal-mtime]"))
            .count(),
        1
    );
}

#[test]
fn output_formats() {
    if !common::have_tool("gcc") {
        return;
    }
    let t = config_ksym_tree();
    let obj = t.obj().display().to_string();

    let (code, out, _) = ldcheck(&["ksyms", "--objtree", &obj, "--format", "json"], true);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["status"], "checked");
    assert_eq!(json["version"], "4.14");
    assert_eq!(json["mechanism"], "config-ksym");
    assert_eq!(json["timestamps"], "coarse");
    assert!(json.get("removal").is_none());
    let findings = json["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 7);
    let first = findings
        .iter()
        .find(|f| f["kind"] == "missing-export")
        .expect("a missing-export finding");
    assert_eq!(first["kind"], "missing-export");
    assert_eq!(first["object"], "arch/x86/lib/usercopy_64.o");
    assert_eq!(first["symbols"][0], "__clear_user");
    assert_eq!(first["evidence"], "cmd-dependency");
    assert_eq!(first["location"]["file"], "include/generated/autoksyms.h");
    assert_eq!(first["location"]["line"], 5);
    assert_eq!(first["object_mtime"]["secs"], T);
    assert_eq!(
        json["stale_objects"],
        serde_json::json!(["arch/x86/lib/usercopy_64.o", "kernel/nocmd.o"])
    );

    let (code, out, _) = ldcheck(&["ksyms", "--objtree", &obj, "--format", "gnu"], true);
    assert_eq!(code, 1);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 14, "{out}");
    let missing = lines
        .iter()
        .position(|l| l.ends_with("[ksyms-missing-export]"))
        .expect("missing-export line");
    assert!(
        lines[missing].starts_with(&format!(
            "{obj}/include/generated/autoksyms.h:5:16: warning: stale object \
             arch/x86/lib/usercopy_64.o"
        )),
        "{}",
        lines[missing]
    );
    assert!(
        lines[missing + 1].contains(": note: fix: delete arch/x86/lib/usercopy_64.o"),
        "{}",
        lines[missing + 1]
    );
    assert!(
        lines.iter().any(
            |l| l.starts_with(&format!("{obj}/arch/x86/lib/.usercopy_64.o.cmd:"))
                && l.contains("[ksyms-equal-mtime]")
        ),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "{obj}/include/generated/autoksyms.h:8:16: warning: stale object kernel/nocmd.o"
        ))),
        "{out}"
    );

    // Human: miette reports with the list line as a snippet; no colour when piped, even
    // without NO_COLOR.
    let (code, out, _) = ldcheck(&["ksyms", "--objtree", &obj], false);
    assert_eq!(code, 1);
    assert!(!out.contains('\u{1b}'), "colour on a pipe: {out}");
    assert!(out.contains("#define __KSYM___clear_user 1"), "{out}");
    assert!(out.contains("wanted here"), "{out}");
    assert!(out.contains("listed as a prerequisite here"), "{out}");
    assert!(out.contains("2 stale objects"), "{out}");

    // On a terminal (util-linux `script` provides one): colour, unless NO_COLOR is set.
    if !common::have_tool("script") {
        return;
    }
    let on_tty = |no_color: bool| {
        let line = format!("{} ksyms --objtree {obj}", env!("CARGO_BIN_EXE_ldcheck"));
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"]);
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let out = cmd.output().expect("script runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = on_tty(false);
    assert_eq!(code, Some(1));
    assert!(out.contains("\u{1b}["), "no colour on a terminal: {out}");
    let (code, out) = on_tty(true);
    assert_eq!(code, Some(1));
    assert!(!out.contains('\u{1b}'), "colour despite NO_COLOR: {out}");
    assert!(out.contains("wanted here"), "{out}");
}
