//! The ARM backend against the real arm-linux-gnueabihf-ld: small Thumb/ARM objects assembled at
//! test time that need each modelled stub type, Cortex-A8 erratum veneers and `.ARM.exidx`
//! editing, plus the arm-tinyconfig corpus links. Every case must verify with zero differences.

use std::path::{Path, PathBuf};
use std::process::Command;

use ldcheck::layout::Layout;
use ldcheck::simulate::LinkSession;
use ldcheck::verify::compare;

const AS: &str = "arm-linux-gnueabihf-as";
const LD: &str = "arm-linux-gnueabihf-ld";

fn tools_present() -> bool {
    let ok = [AS, LD].iter().all(|t| {
        Command::new(t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !ok {
        eprintln!("{AS} / {LD} not found, skipping");
    }
    ok
}

/// What one test link produced: the differences and the simulated layout.
struct Checked {
    diffs: Vec<String>,
    layout: Layout,
}

impl Checked {
    fn assert_clean(&self) {
        assert!(
            self.diffs.is_empty(),
            "differences:\n{}",
            self.diffs.join("\n")
        );
    }

    fn has_symbol(&self, name: &str) -> bool {
        self.layout.symbols.iter().any(|s| &*s.name == name)
    }

    /// Linker stub symbols without a name (Cortex-A8 veneers).
    fn unnamed_stubs(&self) -> usize {
        self.layout
            .symbols
            .iter()
            .filter(|s| s.name.is_empty() && s.nm == 't')
            .count()
    }

    fn size(&self, section: &str) -> u64 {
        self.layout.section(section).map_or(0, |s| s.size)
    }
}

/// Assembles `sources` (name, text) with `as_flags`, links them with `ld_flags` under `script`,
/// lays the same command line out and compares.
fn link_and_verify(
    sources: &[(&str, &str)],
    as_flags: &[&str],
    script: &str,
    ld_flags: &[&str],
) -> Checked {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = dir.path();
    let mut objects = Vec::new();
    for (name, text) in sources {
        let src = base.join(format!("{name}.s"));
        std::fs::write(&src, text).expect("write source");
        let obj = format!("{name}.o");
        let out = Command::new(AS)
            .args(as_flags)
            .arg("-o")
            .arg(base.join(&obj))
            .arg(&src)
            .output()
            .expect("run as");
        assert!(
            out.status.success(),
            "as failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        objects.push(obj);
    }
    std::fs::write(base.join("link.lds"), script).expect("write script");
    let mut args: Vec<String> = ld_flags.iter().map(|s| s.to_string()).collect();
    args.extend(["-T".into(), "link.lds".into(), "-o".into(), "out".into()]);
    args.extend(objects);
    let out = Command::new(LD)
        .args(&args)
        .current_dir(base)
        .output()
        .expect("run ld");
    assert!(
        out.status.success(),
        "ld failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let session = LinkSession::open(&args, base).expect("open link");
    let layout = session.layout().expect("layout");
    let data = std::fs::read(base.join("out")).expect("read output");
    let diffs = compare(&layout, &data)
        .expect("compare")
        .iter()
        .map(|d| d.to_string())
        .collect();
    Checked { diffs, layout }
}

const V7: &[&str] = &["-march=armv7-a", "-mfloat-abi=soft"];

/// Two code sections far apart, so that branches between them need long-branch stubs.
const FAR_SCRIPT: &str = "SECTIONS {
  . = 0x10000;
  .text : { *(.text) *(.text.*) }
  . = 0x4000000;
  .far : { *(.far) }
  .ARM.exidx : { *(.ARM.exidx*) }
  .data : { *(.data) }
}
";

const NEAR_SCRIPT: &str = "SECTIONS {
  . = 0x10000;
  .text : { *(.text) *(.text.*) }
  .ARM.exidx : { __exidx_start = .; *(.ARM.exidx*) __exidx_end = .; }
  .data : { *(.data) }
}
";

/// Thumb and ARM callers of Thumb and ARM functions in another, far away section.
const FAR_CALLS: &str = "
    .syntax unified
    .text
    .thumb
    .global tstart
    .type tstart, %function
tstart:
    bl far_thumb
    bl far_arm
    b.w far_thumb
    bl near_arm
    b.w near_arm
    .arm
    .global astart
    .type astart, %function
astart:
    bl far_arm
    bl far_thumb
    b far_thumb
    b near_thumb
    bl near_thumb
    .type near_arm, %function
near_arm:
    bx lr
    .thumb
    .type near_thumb, %function
    .thumb_func
near_thumb:
    bx lr

    .section .far, \"ax\"
    .thumb
    .global far_thumb
    .type far_thumb, %function
    .thumb_func
far_thumb:
    bl tstart
    bx lr
    .arm
    .global far_arm
    .type far_arm, %function
far_arm:
    bl astart
    bx lr
";

#[test]
fn long_branch_and_interworking_stubs() {
    if !tools_present() {
        return;
    }
    let c = link_and_verify(&[("calls", FAR_CALLS)], V7, FAR_SCRIPT, &[]);
    c.assert_clean();
    for stub in [
        "__far_thumb_veneer",
        "__far_arm_from_thumb",
        "__near_arm_from_thumb",
        "__near_thumb_from_arm",
        "__tstart_veneer",
        "__astart_veneer",
    ] {
        assert!(c.has_symbol(stub), "{stub} missing");
    }
}

#[test]
fn pic_veneers() {
    if !tools_present() {
        return;
    }
    let plain = link_and_verify(&[("calls", FAR_CALLS)], V7, FAR_SCRIPT, &[]);
    let pic = link_and_verify(&[("calls", FAR_CALLS)], V7, FAR_SCRIPT, &["--pic-veneer"]);
    pic.assert_clean();
    assert!(pic.size(".text") > plain.size(".text"));
}

#[test]
fn armv5_stub_forms() {
    if !tools_present() {
        return;
    }
    let flags = ["-march=armv5te", "-mfloat-abi=soft"];
    let v5 = FAR_CALLS
        .replace("    b.w far_thumb\n", "")
        .replace("    b.w near_arm\n", "");
    let plain = link_and_verify(&[("calls", &v5)], &flags, FAR_SCRIPT, &[]);
    plain.assert_clean();
    assert!(plain.has_symbol("__far_arm_from_thumb"));
    link_and_verify(&[("calls", &v5)], &flags, FAR_SCRIPT, &["--pic-veneer"]).assert_clean();
}

/// A 32-bit Thumb-2 branch whose first half is the last halfword of a 4 KiB page, after a
/// 32-bit non-branch instruction, branching back into its page: Cortex-A8 erratum veneers.
fn a8_source(branch: &str) -> String {
    format!(
        "
    .syntax unified
    .text
    .thumb
    .p2align 12
    .global page_start
    .type page_start, %function
    .thumb_func
page_start:
    nop
    .space 0xff8
    add.w r0, r0, #1
    {branch}
    bx lr
    .global other
    .type other, %function
    .thumb_func
other:
    bx lr
"
    )
}

#[test]
fn cortex_a8_veneers() {
    if !tools_present() {
        return;
    }
    for branch in [
        "b.w page_start",
        "bl page_start",
        "beq.w page_start",
        "blx far_arm",
    ] {
        let mut src = a8_source(branch);
        src.push_str(
            "    .arm\n    .global far_arm\n    .type far_arm, %function\nfar_arm:\n    bx lr\n",
        );
        let fixed = link_and_verify(&[("a8", &src)], V7, NEAR_SCRIPT, &[]);
        assert!(
            fixed.diffs.is_empty(),
            "{branch}: {}",
            fixed.diffs.join("\n")
        );
        let plain = link_and_verify(&[("a8", &src)], V7, NEAR_SCRIPT, &["--no-fix-cortex-a8"]);
        assert!(
            plain.diffs.is_empty(),
            "{branch} without fix: {}",
            plain.diffs.join("\n")
        );
        assert_eq!(plain.unnamed_stubs(), 0);
        if branch.starts_with("blx") {
            assert_eq!(fixed.unnamed_stubs(), 0, "{branch}: target in another page");
        } else {
            assert_eq!(fixed.unnamed_stubs(), 1, "{branch}");
            assert!(fixed.size(".text") > plain.size(".text"));
        }
    }
}

/// Functions with and without unwind entries, repeated inline entries and cantunwind markers.
const UNWIND: &str = "
    .syntax unified
    .text
    .thumb
    .global f1
    .type f1, %function
    .thumb_func
f1:
    .fnstart
    push {r4, lr}
    .save {r4, lr}
    pop {r4, pc}
    .fnend
    .global f2
    .type f2, %function
    .thumb_func
f2:
    .fnstart
    push {r4, lr}
    .save {r4, lr}
    pop {r4, pc}
    .fnend
    .global f3
    .type f3, %function
    .thumb_func
f3:
    .fnstart
    .cantunwind
    bx lr
    .fnend
    .global f4
    .type f4, %function
    .thumb_func
f4:
    .fnstart
    .cantunwind
    bx lr
    .fnend
    .global __aeabi_unwind_cpp_pr0
    .type __aeabi_unwind_cpp_pr0, %function
    .thumb_func
__aeabi_unwind_cpp_pr0:
    bx lr
    .section .text.nounwind, \"ax\"
    .thumb_func
f5:
    bx lr
    .section .text.late, \"ax\"
    .thumb_func
f6:
    .fnstart
    push {r4, r5, lr}
    .save {r4, r5, lr}
    pop {r4, r5, pc}
    .fnend
";

const UNWIND2: &str = "
    .syntax unified
    .section .text.first, \"ax\"
    .thumb
    .p2align 2
    nop
    .thumb_func
g1:
    .fnstart
    push {r4, lr}
    .save {r4, lr}
    pop {r4, pc}
    .fnend
    .section .text.plain, \"ax\"
    .thumb_func
g2:
    bx lr
";

#[test]
fn exidx_merging_and_cantunwind_insertion() {
    if !tools_present() {
        return;
    }
    let sources = [("u1", UNWIND), ("u2", UNWIND2)];
    let merged = link_and_verify(&sources, V7, NEAR_SCRIPT, &[]);
    merged.assert_clean();
    let unmerged = link_and_verify(&sources, V7, NEAR_SCRIPT, &["--no-merge-exidx-entries"]);
    unmerged.assert_clean();
    assert!(merged.size(".ARM.exidx") < unmerged.size(".ARM.exidx"));
}

fn corpus_build() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus"))
        .join("builds/6.12/arm-tinyconfig")
}

#[test]
fn arm_tinyconfig_links_verify_exactly() {
    let build = corpus_build();
    if !build.join("objtree").is_dir() {
        eprintln!("corpus not found at {}, skipping", build.display());
        return;
    }
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let status = Command::new("cp")
        .arg("-r")
        .arg(build.join("objtree/."))
        .arg(dir.path())
        .status()
        .expect("copy objtree");
    assert!(status.success());
    let _ = Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(dir.path())
        .status();
    let commands = std::fs::read_to_string(build.join("link-commands.sh")).expect("commands");
    let links: Vec<&str> = commands
        .lines()
        .filter(|l| l.starts_with("arm-linux-gnueabihf-ld "))
        .collect();
    assert_eq!(links.len(), 3);
    for line in links {
        let args: Vec<String> = line.split_whitespace().skip(1).map(String::from).collect();
        let out = Command::new(LD)
            .args(&args)
            .current_dir(dir.path())
            .output()
            .expect("run ld");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let output = args
            .iter()
            .position(|a| a == "-o")
            .map(|i| args[i + 1].clone())
            .expect("-o");
        let session = LinkSession::open(&args, dir.path()).expect("open");
        let layout = session.layout().expect("layout");
        let data = std::fs::read(dir.path().join(&output)).expect("output");
        let diffs = compare(&layout, &data).expect("compare");
        assert!(
            diffs.is_empty(),
            "{output}: {}",
            diffs
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
