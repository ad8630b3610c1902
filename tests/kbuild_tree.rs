//! `ldcheck kbuild`: reading Kbuild trees (corpus build folders, trees laid out like a real
//! O= directory, trees missing pieces) and the verdict on their link: safe on every corpus
//! build, fails on a small kernel-like tree built at test time whose passes disagree.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ldcheck::analysis::passes::{PassOptions, simulate};
use ldcheck::kbuild::tree::{LdCall, MissingInput, Tree, TreeError, TreeOptions};
use ldcheck::kbuild::verdict::{DEFAULT_FRAGILE_REACH, KbuildError, KbuildOptions, check};
use ldcheck::simulate::LinkSession;
use serde_json::Value;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn ldcheck(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_ldcheck"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run ldcheck");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", run.stdout, run.stderr))
}

fn options(objtree: &Path) -> KbuildOptions {
    KbuildOptions {
        tree: TreeOptions {
            objtree: objtree.to_path_buf(),
            ..TreeOptions::default()
        },
        extra_pass: false,
        fragile_reach: DEFAULT_FRAGILE_REACH,
    }
}

fn tree_error(opts: &KbuildOptions) -> TreeError {
    match check(opts) {
        Err(KbuildError::Tree(e)) => e,
        Err(other) => panic!("expected a tree error, got {other}"),
        Ok(r) => panic!("expected a tree error, got a {:?} verdict", r.verdict),
    }
}

/// `CONFIG_<name>=y` in a config text.
fn enabled(config: &str, name: &str) -> bool {
    config.lines().any(|l| l == format!("CONFIG_{name}=y"))
}

/// The corpus build folders of 6.12.
fn corpus_builds() -> Option<Vec<PathBuf>> {
    let corpus = common::corpus()?;
    let mut builds: Vec<PathBuf> = std::fs::read_dir(corpus.join("builds/6.12"))
        .expect("builds")
        .map(|e| e.expect("entry").path())
        .collect();
    builds.sort();
    Some(builds)
}

/// `ldcheck kbuild --format json` of every corpus build folder with link inputs, run once and
/// shared by the tests (each run replays the whole procedure).
fn references() -> &'static [(PathBuf, Value)] {
    static REFERENCES: OnceLock<Vec<(PathBuf, Value)>> = OnceLock::new();
    REFERENCES.get_or_init(|| {
        corpus_builds()
            .unwrap_or_default()
            .into_iter()
            .filter(|b| b.join("objtree").is_dir())
            .map(|build| {
                let run = ldcheck(&[
                    "kbuild",
                    "--objtree",
                    build.to_str().expect("path"),
                    "--format",
                    "json",
                ]);
                let json = assert_converges(&build, &run);
                (build, json)
            })
            .collect()
    })
}

/// The final `ld` line of link-commands.sh, without the program and the kallsyms object.
fn real_final_link(build: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(build.join("link-commands.sh")).expect("link-commands.sh");
    let line = text
        .lines()
        .rfind(|l| l.contains(" -o vmlinux "))
        .expect("the vmlinux link");
    line.split_whitespace()
        .skip(1)
        .filter(|a| !a.ends_with(".kallsyms.o"))
        .map(str::to_string)
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

/// Checks a safe verdict on a corpus build and returns the JSON report.
fn assert_converges(build: &Path, run: &Run) -> Value {
    assert_eq!(
        run.code,
        Some(0),
        "{}: {}{}",
        build.display(),
        run.stdout,
        run.stderr
    );
    let json = json_of(run);
    assert_eq!(json["schema"], "ldcheck-kbuild/1");
    assert_eq!(json["verdict"], "safe");
    assert!(
        json["passes"]["verdict"]["Converges"]["links"].as_u64() >= Some(3),
        "{}",
        json["passes"]["verdict"]
    );
    assert_eq!(json["tree"]["procedure"], "6.12");
    assert_eq!(json["tree"]["procedure_exact"], true);
    // The reconstructed command is the one link-vmlinux.sh ran.
    assert_eq!(strings(&json["link"]["args"]), real_final_link(build));
    json
}

#[test]
fn corpus_builds_converge_or_name_what_is_missing() {
    let Some(builds) = corpus_builds() else {
        return;
    };
    for (build, json) in references() {
        let config = std::fs::read_to_string(build.join("config")).expect("config");
        assert_eq!(json["tree"]["version_from"], "config (header)");
        assert_eq!(json["link"]["flags_from"], "build.link.log");
        assert_eq!(
            json["link"]["libs_from"],
            "build.link.log (the vmlinux.o link)"
        );
        assert_eq!(
            json["tree"]["config"]["kallsyms_all"],
            enabled(&config, "KALLSYMS_ALL")
        );
    }
    assert!(references().len() >= 2, "corpus builds with link inputs");
    for build in builds.iter().filter(|b| !b.join("objtree").is_dir()) {
        // No link inputs beside it: each missing file is named with what it is for.
        let config = std::fs::read_to_string(build.join("config")).expect("config");
        let run = ldcheck(&["kbuild", "--objtree", build.to_str().expect("path")]);
        assert_eq!(run.code, Some(2), "{}", run.stdout);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        let TreeError::MissingInputs { missing, .. } = tree_error(&options(build)) else {
            panic!("{}: expected missing inputs", build.display());
        };
        let arch = if enabled(&config, "X86") {
            "x86"
        } else {
            "arm"
        };
        let mut expected = vec![
            format!("arch/{arch}/kernel/vmlinux.lds"),
            "vmlinux.a".into(),
        ];
        if enabled(&config, "MODULES") {
            expected.push(".vmlinux.export.o".into());
        }
        expected.push("init/version-timestamp.o".into());
        let paths: Vec<&str> = missing.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, expected);
        for m in &missing {
            assert!(
                run.stderr.contains(&m.path),
                "{} not named: {}",
                m.path,
                run.stderr
            );
        }
        assert!(
            run.stderr.contains("link input(s) missing"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn corpus_objtree_with_explicit_config_and_log() {
    for (build, reference) in references() {
        let path = |name: &str| build.join(name).display().to_string();
        let run = ldcheck(&[
            "kbuild",
            "--objtree",
            &path("objtree"),
            "--config",
            &path("config"),
            "--link-log",
            &path("build.link.log"),
            "--format",
            "json",
        ]);
        let json = assert_converges(build, &run);
        assert_eq!(json["summary"], reference["summary"]);
        assert_eq!(json["margins"], reference["margins"]);
    }
}

/// Writes a `.cmd` line as Kbuild does: `$` doubled, `#` as `$(pound)`.
fn make_escape(text: &str) -> String {
    text.replace('$', "$$").replace('#', "$(pound)")
}

#[test]
fn tree_laid_out_like_a_real_one_gets_the_same_verdict() {
    for (build, reference) in references() {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = dir.path();
        common::copy_tree(&build.join("objtree"), o);
        let config = std::fs::read_to_string(build.join("config")).expect("config");
        std::fs::write(o.join(".config"), &config).expect(".config");
        let release = config
            .lines()
            .find_map(|l| l.strip_prefix("# Linux/")?.split_whitespace().nth(1))
            .expect("release in the header");
        std::fs::create_dir_all(o.join("include/config")).expect("include/config");
        std::fs::write(
            o.join("include/config/kernel.release"),
            format!("{release}\n"),
        )
        .expect("kernel.release");
        let log = std::fs::read_to_string(build.join("build.link.log")).expect("log");
        let call = LdCall::find(&log, false).expect("link-vmlinux.sh call in the log");
        std::fs::write(
            o.join(".vmlinux.cmd"),
            make_escape(&format!(
                "savedcmd_vmlinux := /src/scripts/link-vmlinux.sh \"{}\" \"{}\" \"{}\";  true\n",
                call.ld, call.kbuild_ldflags, call.ldflags_vmlinux
            )),
        )
        .expect(".vmlinux.cmd");

        let run = ldcheck(&[
            "kbuild",
            "--objtree",
            o.to_str().expect("path"),
            "--format",
            "json",
        ]);
        let json = assert_converges(build, &run);
        assert_eq!(
            json["tree"]["version_from"],
            "include/config/kernel.release"
        );
        assert_eq!(json["tree"]["config_file"], ".config");
        assert_eq!(json["link"]["flags_from"], ".vmlinux.cmd");
        assert!(
            json["link"]["libs_from"]
                .as_str()
                .is_some_and(|s| s.starts_with("derived from the libs-y order")),
            "{}",
            json["link"]["libs_from"]
        );
        assert_eq!(json["link"]["libs"], reference["link"]["libs"]);
        assert_eq!(json["summary"], reference["summary"]);
        assert_eq!(json["passes"], reference["passes"]);

        // With .vmlinux.o.cmd, KBUILD_VMLINUX_LIBS is read from the vmlinux.o link.
        let vmlinux_o = log
            .lines()
            .find(|l| l.contains(" -o vmlinux.o "))
            .expect("vmlinux.o link in the log");
        std::fs::write(
            o.join(".vmlinux.o.cmd"),
            make_escape(&format!("savedcmd_vmlinux.o := {}\n", vmlinux_o.trim())),
        )
        .expect(".vmlinux.o.cmd");
        let opts = options(o);
        let plan = Tree::open(&opts.tree)
            .and_then(|t| t.link_plan(&opts.tree))
            .expect("link plan");
        assert_eq!(plan.libs_from, ".vmlinux.o.cmd (the vmlinux.o link)");
        assert_eq!(plan.args, real_final_link(build));
    }
}

/// A tree directory written file by file.
struct FakeTree {
    dir: tempfile::TempDir,
}

impl FakeTree {
    fn new() -> Self {
        FakeTree {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    fn error(&self) -> String {
        tree_error(&options(self.path())).to_string()
    }
}

const X86_CONFIG: &str = "#\n# Linux/x86_64 6.12.9 Kernel Configuration\n#\nCONFIG_X86=y\n\
                          CONFIG_64BIT=y\nCONFIG_KALLSYMS=y\n";

const VMLINUX_CMD: &str = "savedcmd_vmlinux := /src/scripts/link-vmlinux.sh \"ld\" \
                           \"-m elf_x86_64 -z noexecstack\" \"--build-id=sha1\";  true\n";

#[test]
fn fake_trees_missing_pieces_get_exact_messages() {
    let t = FakeTree::new();
    let o = t.path().display().to_string();

    let absent = t.path().join("absent");
    assert_eq!(
        tree_error(&options(&absent)).to_string(),
        format!(
            "{}: not a directory (pass the Kbuild output tree, the O= directory)",
            absent.display()
        )
    );

    assert_eq!(
        t.error(),
        format!(
            "{o}: no .config, include/config/auto.conf or config: the configuration says \
             whether link-vmlinux.sh runs kallsyms passes (CONFIG_KALLSYMS*), which objects it \
             links (CONFIG_MODULES, CONFIG_LTO_CLANG, CONFIG_X86_KERNEL_IBT) and the \
             architecture (pass --config FILE)"
        )
    );
    let run = ldcheck(&["kbuild", "--objtree", &o]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("no .config"), "{}", run.stderr);

    t.write(".config", "CONFIG_X86=y\nCONFIG_KALLSYMS=y\n");
    assert_eq!(
        t.error(),
        format!(
            "{o}: cannot tell the kernel version: no include/config/kernel.release, no Makefile \
             with VERSION and PATCHLEVEL (pass --srctree), and no `# Linux/<arch> <release> \
             Kernel Configuration` line in {o}/.config; the version decides which \
             link-vmlinux.sh procedure to replay"
        )
    );

    t.write("include/config/kernel.release", "6.12.9\n");
    assert_eq!(
        t.error(),
        format!(
            "{o}: no .vmlinux.cmd and no V=1 trace (build.link.log): one of them holds the ld \
             flags Kbuild passes to link-vmlinux.sh (LD, KBUILD_LDFLAGS, LDFLAGS_vmlinux); pass \
             --link-log FILE or --ld-call LD KBUILD_LDFLAGS LDFLAGS_vmlinux"
        )
    );

    t.write(".vmlinux.cmd", "savedcmd_vmlinux := true\n");
    assert_eq!(
        t.error(),
        format!(
            "{o}/.vmlinux.cmd: no `link-vmlinux.sh \"LD\" \"KBUILD_LDFLAGS\" \"LDFLAGS_vmlinux\"` \
             call in it, so the ld flags Kbuild passes are unknown (pass --ld-call LD \
             KBUILD_LDFLAGS LDFLAGS_vmlinux)"
        )
    );

    t.write(".vmlinux.cmd", VMLINUX_CMD);
    let TreeError::MissingInputs { tree, missing } = tree_error(&options(t.path())) else {
        panic!("expected missing inputs");
    };
    assert_eq!(tree, t.path());
    let expected = [
        (
            "arch/x86/kernel/vmlinux.lds",
            "the linker script (KBUILD_LDS); make generates it before vmlinux.o",
        ),
        ("vmlinux.a", "the built-in objects, linked --whole-archive"),
        (
            "init/version-timestamp.o",
            "link-vmlinux.sh builds it at its start: run ldcheck after that step \
             (docs/kbuild.md)",
        ),
        (
            "lib/lib.a",
            "KBUILD_VMLINUX_LIBS (derived from the libs-y order of arch/x86/Makefile and \
             CONFIG_MODULES (not set): no .vmlinux.o.cmd or V=1 trace names them)",
        ),
        (
            "arch/x86/lib/lib.a",
            "KBUILD_VMLINUX_LIBS (derived from the libs-y order of arch/x86/Makefile and \
             CONFIG_MODULES (not set): no .vmlinux.o.cmd or V=1 trace names them)",
        ),
    ];
    let expected: Vec<MissingInput> = expected
        .iter()
        .map(|(path, why)| MissingInput {
            path: path.to_string(),
            why: why.to_string(),
        })
        .collect();
    assert_eq!(missing, expected);

    // With modules the libraries go into vmlinux.a, and the export object is linked.
    t.write(
        ".config",
        "CONFIG_X86=y\nCONFIG_KALLSYMS=y\nCONFIG_MODULES=y\n",
    );
    let TreeError::MissingInputs { missing, .. } = tree_error(&options(t.path())) else {
        panic!("expected missing inputs");
    };
    let paths: Vec<&str> = missing.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "arch/x86/kernel/vmlinux.lds",
            "vmlinux.a",
            ".vmlinux.export.o",
            "init/version-timestamp.o"
        ]
    );
    assert_eq!(
        missing[2].why,
        "CONFIG_MODULES: the export table scripts/Makefile.vmlinux builds"
    );

    // LTO links vmlinux.o and no libraries.
    t.write(
        ".config",
        "CONFIG_X86=y\nCONFIG_KALLSYMS=y\nCONFIG_LTO_CLANG=y\n",
    );
    let TreeError::MissingInputs { missing, .. } = tree_error(&options(t.path())) else {
        panic!("expected missing inputs");
    };
    let paths: Vec<&str> = missing.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "arch/x86/kernel/vmlinux.lds",
            "vmlinux.o",
            "init/version-timestamp.o"
        ]
    );

    // An architecture whose libs-y order ldcheck does not know needs --libs.
    t.write(".config", "CONFIG_KALLSYMS=y\n");
    t.write("arch/riscv/kernel/vmlinux.lds", "SECTIONS { }\n");
    assert_eq!(
        t.error(),
        "cannot derive KBUILD_VMLINUX_LIBS for ARCH=riscv: no .vmlinux.o.cmd or V=1 trace names \
         them, and ldcheck knows the libs-y order of x86, arm and arm64 only (pass --libs \
         \"$KBUILD_VMLINUX_LIBS\")"
    );
    let mut with_libs = options(t.path());
    with_libs.tree.libs = Some(String::new());
    let TreeError::MissingInputs { missing, .. } = tree_error(&with_libs) else {
        panic!("expected missing inputs");
    };
    let paths: Vec<&str> = missing.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(paths, ["vmlinux.a", "init/version-timestamp.o"]);

    // ARCH=um is refused.
    t.write(
        ".config",
        "# Linux/um 6.12.9 Kernel Configuration\nCONFIG_KALLSYMS=y\n",
    );
    assert_eq!(
        t.error(),
        "ARCH=um links vmlinux through the C compiler (-Wl, flags); ldcheck replays GNU ld \
         links only"
    );
}

#[test]
fn without_kallsyms_there_is_nothing_to_disagree() {
    let t = FakeTree::new();
    t.write(
        ".config",
        "# Linux/arm 6.1.50 Kernel Configuration\nCONFIG_ARM=y\n# CONFIG_KALLSYMS is not set\n",
    );
    let run = ldcheck(&[
        "kbuild",
        "--objtree",
        t.path().to_str().expect("path"),
        "--format",
        "json",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let json = json_of(&run);
    assert_eq!(json["verdict"], "safe");
    assert_eq!(json["link"], Value::Null);
    assert_eq!(json["tree"]["procedure"], "6.1");
    assert_eq!(json["tree"]["version"], "6.1");
    assert_eq!(json["tree"]["release"], "6.1.50");
    assert_eq!(json["tree"]["arch"], "arm");
    assert_eq!(
        json["summary"],
        "CONFIG_KALLSYMS is not set: link-vmlinux.sh links vmlinux once, with no kallsyms \
         passes that could disagree"
    );
}

/// A small kernel-like tree whose `__tail_end` may land on `_sinittext`: inside the kallsyms
/// range exactly when the tables end on a page boundary.
const SCRIPT: &str = r#"OUTPUT_FORMAT("elf64-x86-64")
ENTRY(_start)
SECTIONS
{
 . = 0x1000000;
 .text : { _text = .; _stext = .; *(.text) _etext = .; }
 . = ALIGN(0x1000);
 .rodata : { *(.rodata) }
 .tail : { *(.tail) __tail_end = .; }
 . = ALIGN(0x1000);
 .init.text : { _sinittext = .; *(.init.text) _einittext = .; }
 . = ALIGN(0x1000);
 .data : { _sdata = .; *(.data) _edata = .; }
 .bss : { *(.bss) }
}
"#;

fn kernel_asm(tail: u64) -> String {
    let mut s = String::from(".text\n.globl _start\n_start: ret\n");
    for i in 0..30 {
        s += &format!(".globl fn_{i}\nfn_{i}: nop\nret\n");
    }
    s += ".section .init.text,\"ax\"\n";
    for i in 0..8 {
        s += &format!(".globl init_fn_{i}\ninit_fn_{i}: ret\n");
    }
    s += ".data\n";
    for i in 0..8 {
        s += &format!(".globl var_{i}\nvar_{i}: .quad {i}\n");
    }
    s += &format!(".section .tail,\"a\"\n.zero {tail}\n");
    s
}

struct KernelTree {
    tree: FakeTree,
}

impl KernelTree {
    fn run(&self, program: &str, args: &[&str]) {
        common::run(self.tree.path(), program, args);
    }

    fn new() -> Self {
        let k = KernelTree {
            tree: FakeTree::new(),
        };
        let t = &k.tree;
        t.write(".config", X86_CONFIG);
        t.write("include/config/kernel.release", "6.12.9\n");
        t.write(".vmlinux.cmd", VMLINUX_CMD);
        t.write("arch/x86/kernel/vmlinux.lds", SCRIPT);
        t.write(
            "init/version-timestamp.s",
            ".section .rodata\n.globl linux_banner\nlinux_banner: .string \"Linux version\"\n",
        );
        k.run(
            "as",
            &[
                "--64",
                "-o",
                "init/version-timestamp.o",
                "init/version-timestamp.s",
            ],
        );
        for lib in ["lib", "arch/x86/lib"] {
            t.write(
                &format!("{lib}/helper.s"),
                &format!(
                    ".text\n.globl {0}_helper\n{0}_helper: ret\n",
                    lib.replace('/', "_")
                ),
            );
            k.run(
                "as",
                &[
                    "--64",
                    "-o",
                    &format!("{lib}/helper.o"),
                    &format!("{lib}/helper.s"),
                ],
            );
            k.run(
                "ar",
                &[
                    "cDPrsT",
                    &format!("{lib}/lib.a"),
                    &format!("{lib}/helper.o"),
                ],
            );
        }
        k
    }

    /// Rebuilds the kernel objects with a `.tail` of `tail` bytes.
    fn set_tail(&self, tail: u64) {
        self.tree.write("kernel/main.s", &kernel_asm(tail));
        self.run("as", &["--64", "-o", "kernel/main.o", "kernel/main.s"]);
        let _ = std::fs::remove_file(self.tree.path().join("vmlinux.a"));
        self.run("ar", &["cDPrST", "vmlinux.a", "kernel/main.o"]);
    }

    fn kbuild(&self, extra: &[&str]) -> (Run, Value) {
        let mut args = vec![
            "kbuild",
            "--objtree",
            self.tree.path().to_str().expect("path"),
            "--format",
            "json",
        ];
        args.extend(extra);
        let run = ldcheck(&args);
        let json = json_of(&run);
        (run, json)
    }

    /// Where `__tail_end` ends up in the predicted System.map.
    fn tail_end(&self) -> u64 {
        let opts = options(self.tree.path());
        let tree = Tree::open(&opts.tree).expect("tree");
        let plan = tree.link_plan(&opts.tree).expect("plan");
        let session = LinkSession::open(&plan.args, &tree.inputs).expect("session");
        let report = simulate(
            &session,
            &PassOptions {
                kallsyms: tree.kallsyms_options(),
                extra_pass: false,
            },
        )
        .expect("simulate");
        let map = String::from_utf8_lossy(&report.system_map).into_owned();
        map.lines()
            .find(|l| l.ends_with(" __tail_end"))
            .and_then(|l| u64::from_str_radix(l.split_whitespace().next()?, 16).ok())
            .expect("__tail_end in System.map")
    }
}

#[test]
fn kernel_like_tree_fragile_then_failing() {
    if !["as", "ar"].iter().all(|t| common::have_tool(t)) {
        return;
    }
    let k = KernelTree::new();
    k.set_tail(0);
    let o = k.tree.path().to_str().expect("path");
    let (run, json) = k.kbuild(&[]);
    assert_eq!(
        json["link"]["libs"],
        serde_json::json!(["lib/lib.a", "arch/x86/lib/lib.a"])
    );
    assert_eq!(json["passes"]["verdict"]["Converges"]["links"], 3);
    // The link converges, but growing the tables far enough puts __tail_end on the boundary:
    // the margin search finds the flip, and it feeds back.
    let flip = &json["margins"]["grow_flip"];
    assert_eq!(flip["feeds_back"], true, "{}", json["margins"]);
    assert!(
        flip["cause"]
            .as_str()
            .is_some_and(|c| c.contains("__tail_end")),
        "{flip}"
    );
    let at = flip["at"].as_i64().expect("flip size") as u64;
    assert_eq!(json["margins"]["grow"].as_u64(), Some(at - 1));
    let fragile = at <= DEFAULT_FRAGILE_REACH;
    assert_eq!(
        run.code,
        Some(if fragile { 1 } else { 0 }),
        "{}",
        run.stderr
    );
    assert_eq!(json["verdict"], if fragile { "fragile" } else { "safe" });
    // The reach decides: a flip at `at` bytes counts from a reach of `at` bytes on.
    let (run, json) = k.kbuild(&["--fragile-reach", &at.to_string()]);
    assert_eq!(run.code, Some(1));
    assert_eq!(json["verdict"], "fragile");
    assert!(
        json["summary"]
            .as_str()
            .is_some_and(|s| s.contains(&format!(
                "if the kallsyms tables grow by {at} bytes, __tail_end and the ALIGN(0x1000) \
             boundary flips them"
            ))),
        "{}",
        json["summary"]
    );
    let (run, json) = k.kbuild(&["--fragile-reach", &(at - 1).to_string()]);
    assert_eq!(run.code, Some(0));
    assert_eq!(json["verdict"], "safe");
    // Through the hook: fragile stops the build, unless the reach is lowered.
    let hook = run_hook(k.tree.path(), &[("LDCHECK", "1")]);
    assert_eq!(
        hook.code,
        Some(if fragile { 1 } else { 0 }),
        "{}",
        hook.stderr
    );
    let flags = format!("--fragile-reach {}", at - 1);
    let hook = run_hook(
        k.tree.path(),
        &[("LDCHECK", "1"), ("LDCHECK_FLAGS", flags.as_str())],
    );
    assert_eq!(hook.code, Some(0), "{}", hook.stderr);
    assert!(hook.stdout.ends_with("LINKED\n"), "{}", hook.stdout);
    assert!(hook.stderr.contains(": note: safe: "), "{}", hook.stderr);
    // A tree ldcheck cannot read (exit 2) does not stop the build.
    std::fs::rename(
        k.tree.path().join("init/version-timestamp.o"),
        k.tree.path().join("init/version-timestamp.o.away"),
    )
    .expect("rename");
    let hook = run_hook(k.tree.path(), &[("LDCHECK", "1")]);
    assert_eq!(hook.code, Some(0), "{}", hook.stderr);
    assert!(
        hook.stderr.contains("init/version-timestamp.o is missing"),
        "{}",
        hook.stderr
    );
    std::fs::rename(
        k.tree.path().join("init/version-timestamp.o.away"),
        k.tree.path().join("init/version-timestamp.o"),
    )
    .expect("rename back");
    let safe_summary = json["summary"].as_str().unwrap_or_default().to_string();

    // Human and GNU output carry the same verdict.
    let human = ldcheck(&["kbuild", "--objtree", o, "--fragile-reach", "0"]);
    assert_eq!(human.code, Some(0));
    assert!(
        human.stdout.contains("ld flags: .vmlinux.cmd"),
        "{}",
        human.stdout
    );
    assert_eq!(
        human.stdout.lines().last().unwrap_or_default(),
        format!("verdict: safe: {safe_summary}")
    );
    let gnu = ldcheck(&[
        "kbuild",
        "--objtree",
        o,
        "--format",
        "gnu",
        "--fragile-reach",
        "0",
    ]);
    assert_eq!(gnu.code, Some(0));
    // The script's hazard is located on its line; it is a warning even when the verdict is
    // safe, because the margin search is what bounds it.
    let script = k.tree.path().join("arch/x86/kernel/vmlinux.lds");
    let tail_line = SCRIPT
        .lines()
        .position(|l| l.contains("__tail_end = ."))
        .expect("the .tail line")
        + 1;
    assert!(
        gnu.stdout.lines().any(
            |l| l.starts_with(&format!("{}:{tail_line}:", script.display()))
                && l.contains(": warning: __tail_end can land on a kallsyms range boundary")
                && l.ends_with("[range-boundary]")
        ),
        "{}",
        gnu.stdout
    );
    assert!(
        gnu.stdout
            .lines()
            .last()
            .is_some_and(|l| l.ends_with(&format!("note: safe: {safe_summary} [kbuild-verdict]"))),
        "{}",
        gnu.stdout
    );

    // Grow .tail so that __tail_end lands exactly on the page boundary _sinittext takes.
    let end = k.tail_end();
    let tail = (0x1000 - end % 0x1000) % 0x1000;
    k.set_tail(tail);
    let (run, json) = k.kbuild(&[]);
    assert_eq!(
        run.code,
        Some(1),
        "tail {tail:#x}: {}{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(json["verdict"], "fails");
    let summary = json["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with(
            "link-vmlinux.sh (6.12 procedure) will fail with \"Inconsistent kallsyms data\""
        ),
        "{summary}"
    );
    assert!(
        json["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["code"] == "range-boundary"
                && f["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("__tail_end"))),
        "{}",
        json["findings"]
    );

    // The documented link-vmlinux.sh hook stops this build, and only this one.
    let hook = run_hook(k.tree.path(), &[("LDCHECK", "1")]);
    assert_eq!(hook.code, Some(1), "{}{}", hook.stdout, hook.stderr);
    assert!(!hook.stdout.contains("LINKED"), "{}", hook.stdout);
    assert!(hook.stdout.contains("  LDCHECK vmlinux"), "{}", hook.stdout);
    assert!(
        hook.stderr.contains(": error: fails: ")
            && hook
                .stderr
                .contains("ldcheck: the kallsyms passes would fail; LDCHECK=warn links anyway"),
        "{}",
        hook.stderr
    );
    let warn = run_hook(k.tree.path(), &[("LDCHECK", "warn")]);
    assert_eq!(warn.code, Some(0), "{}", warn.stderr);
    assert!(warn.stdout.contains("LINKED") && warn.stderr.contains(": error: fails: "));
    let off = run_hook(k.tree.path(), &[]);
    assert_eq!(off.code, Some(0));
    assert_eq!(off.stdout, "LINKED\n");
    assert_eq!(off.stderr, "");

    // The human report ends with the verdict; GNU output marks it as an error.
    let human = ldcheck(&["kbuild", "--objtree", o]);
    assert_eq!(human.code, Some(1));
    assert_eq!(
        human.stdout.lines().last().unwrap_or_default(),
        format!("verdict: fails: {summary}")
    );
    let gnu = ldcheck(&["kbuild", "--objtree", o, "--format", "gnu"]);
    assert_eq!(gnu.code, Some(1));
    assert!(
        gnu.stdout
            .lines()
            .last()
            .is_some_and(|l| l.ends_with(&format!(": error: fails: {summary} [kbuild-verdict]"))),
        "{}",
        gnu.stdout
    );
}

/// The lines the link-vmlinux.sh patch in docs/kbuild.md adds.
fn documented_hook() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/kbuild.md"))
        .expect("docs/kbuild.md");
    let patch = doc
        .split("```diff\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the diff block");
    patch
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .map(|l| format!("{}\n", &l[1..]))
        .collect()
}

/// Runs the hook the way link-vmlinux.sh would (`set -e`, its `info`, its three arguments and
/// Kbuild's environment) in `tree`, followed by the stand-in for the first link.
fn run_hook(tree: &Path, env: &[(&str, &str)]) -> Run {
    let script = format!(
        "set -e\ninfo() {{ printf '  %-7s %s\\n' \"$1\" \"$2\"; }}\nLD=\"$1\"\n\
         KBUILD_LDFLAGS=\"$2\"\nLDFLAGS_vmlinux=\"$3\"\n{}echo LINKED\n",
        documented_hook()
    );
    let mut command = Command::new("sh");
    command
        .args(["-c", &script, "link-vmlinux.sh"])
        .args(["ld", "-m elf_x86_64 -z noexecstack", "--build-id=sha1"])
        .current_dir(tree)
        .env("LDCHECK_BIN", env!("CARGO_BIN_EXE_ldcheck"))
        .env("srctree", "/nonexistent")
        .env("KBUILD_VMLINUX_LIBS", "lib/lib.a arch/x86/lib/lib.a")
        .env_remove("LDCHECK")
        .env_remove("LDCHECK_FLAGS")
        .env_remove("KALLSYMS_EXTRA_PASS");
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().expect("sh");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn completions_and_help_name_the_kbuild_options() {
    let bash = ldcheck(&["completions", "bash"]);
    assert_eq!(bash.code, Some(0), "{}", bash.stderr);
    for word in [
        "kbuild",
        "--objtree",
        "--srctree",
        "--ld-call",
        "--fragile-reach",
    ] {
        assert!(bash.stdout.contains(word), "{word} not completed");
    }
    let help = ldcheck(&["kbuild", "--help"]);
    assert_eq!(help.code, Some(0));
    for word in [
        "--objtree <O>",
        "--srctree <S>",
        "--config <FILE>",
        "--link-log <FILE>",
        "--ld-call <LD> <KBUILD_LDFLAGS> <LDFLAGS_vmlinux>",
        "--libs <LIBS>",
        "--format <FORMAT>",
        "Exit status: 0",
    ] {
        assert!(
            help.stdout.contains(word),
            "{word} not in:\n{}",
            help.stdout
        );
    }
}
