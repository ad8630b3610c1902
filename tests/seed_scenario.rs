//! The seed scenario, end to end and for real: a small kernel-like image whose real
//! link-vmlinux.sh passes (real `ld`, real `nm`, ldcheck's byte-identical kallsyms, real `as`)
//! fail with "Inconsistent kallsyms data" because a symbol lands exactly on `_sinittext` in one
//! pass and just before it in the next. ldcheck must predict it, reproduce the pass sizes, fix
//! the script so the real passes converge, and converge without touching the script in stable
//! mode.

mod common;

use std::path::Path;
use std::process::Command;

use ldcheck::analysis::mksysmap;
use ldcheck::analysis::passes::{PassOptions, Verdict, simulate};
use ldcheck::kallsyms::{Options, StableOptions, Version, build_tables, parse_symbol_map};
use ldcheck::simulate::LinkSession;

const SCRIPT: &str = r#"ENTRY(_start)
SECTIONS
{
 . = 0x401000;
 .text : { _text = .; _stext = .; *(.text) _etext = .; }
 . = ALIGN(4096);
 .rodata : { *(.rodata) }
 .pad : { *(.pad) __pad_end = .; }
 . = ALIGN(4096);
 .init.text : { _sinittext = .; *(.init.text) _einittext = .; }
 . = ALIGN(4096);
 .data..percpu : { __per_cpu_load = .; __per_cpu_start = .; *(.data..percpu) __per_cpu_end = .; }
 __init_end = .;
 . = ALIGN(8192);
 __data_loc = .;
 .data : AT(__data_loc) { _sdata = .; *(.data) _edata = .; }
 .bss : { *(.bss) }
}
"#;

/// The tools of one architecture, as link-vmlinux.sh would use them.
#[derive(Clone, Copy)]
struct Toolchain {
    prefix: &'static str,
    as_flags: &'static [&'static str],
    emulation: &'static str,
    bits: u32,
    ret: &'static str,
}

const X86_64: Toolchain = Toolchain {
    prefix: "",
    as_flags: &["--64"],
    emulation: "elf_x86_64",
    bits: 64,
    ret: "ret",
};

const ARM: Toolchain = Toolchain {
    prefix: "arm-linux-gnueabihf-",
    as_flags: &[],
    emulation: "armelf_linux_eabi",
    bits: 32,
    ret: "bx lr",
};

impl Toolchain {
    fn tool(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// Kernel-like code: text functions, init functions, data, and a `.pad` blob of `pad` bytes
/// right after the read-only data that holds the kallsyms tables.
fn kernel_asm(tc: Toolchain, pad: u64) -> String {
    let ret = tc.ret;
    let mut s = format!(".text\n.globl _start\n_start: {ret}\n");
    for i in 0..40 {
        s += &format!(".globl func_{i}\nfunc_{i}: nop\n{ret}\n");
    }
    s += ".section .init.text,\"ax\"\n";
    for i in 0..10 {
        s += &format!(".globl init_func_{i}\ninit_func_{i}: {ret}\n");
    }
    s += ".data\n";
    for i in 0..10 {
        s += &format!(".globl data_var_{i}\ndata_var_{i}: .long {i}\n");
    }
    s += &format!(".section .pad,\"a\"\n.zero {pad}\n");
    s
}

struct Build<'d> {
    dir: &'d Path,
    tc: Toolchain,
}

impl Build<'_> {
    fn run(&self, program: &str, args: &[&str]) -> Vec<u8> {
        let out = Command::new(program)
            .args(args)
            .current_dir(self.dir)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn link_args(&self, output: &str, kallsyms: Option<&str>) -> Vec<String> {
        let mut args: Vec<String> = [
            "-m",
            self.tc.emulation,
            "-z",
            "noexecstack",
            "--build-id=sha1",
            "-T",
            "vmlinux.lds",
            "-o",
            output,
            "kernel.o",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(kallsyms.map(str::to_string));
        args
    }

    fn link(&self, output: &str, kallsyms: &str) {
        let args = self.link_args(output, Some(kallsyms));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&self.tc.tool("ld"), &args);
    }

    /// `nm -n FILE | sed -f scripts/mksysmap`.
    fn sysmap(&self, file: &str) -> Vec<u8> {
        mksysmap::filter(
            &self.run(&self.tc.tool("nm"), &["-n", file]),
            Version::V6_12,
        )
    }

    /// 6.1's mksysmap (`grep -v` rules).
    fn sysmap_61(&self, file: &str) -> Vec<u8> {
        mksysmap::filter(&self.run(&self.tc.tool("nm"), &["-n", file]), Version::V6_1)
    }

    fn link_plain(&self, output: &str) {
        let args = self.link_args(output, None);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&self.tc.tool("ld"), &args);
    }

    /// link-vmlinux.sh 6.1 with real tools: no kallsyms object in the first link, and only the
    /// objects' file sizes decide the extra pass.
    fn real_passes_61(&self, options: &Options) -> (Vec<u64>, bool) {
        self.link_plain(".tmp_vmlinux.kallsyms1");
        let syms1 = self.sysmap_61(".tmp_vmlinux.kallsyms1");
        self.kallsyms(&syms1, ".tmp_vmlinux.kallsyms1.o", options);
        self.link(".tmp_vmlinux.kallsyms2", ".tmp_vmlinux.kallsyms1.o");
        let syms2 = self.sysmap_61(".tmp_vmlinux.kallsyms2");
        self.kallsyms(&syms2, ".tmp_vmlinux.kallsyms2.o", options);
        let mut sizes = vec![
            self.rodata_size(".tmp_vmlinux.kallsyms1.o"),
            self.rodata_size(".tmp_vmlinux.kallsyms2.o"),
        ];
        let (mut last_syms, mut last_object) = (syms2, ".tmp_vmlinux.kallsyms2.o");
        if self.size(".tmp_vmlinux.kallsyms1.o") != self.size(".tmp_vmlinux.kallsyms2.o") {
            self.link(".tmp_vmlinux.kallsyms3", ".tmp_vmlinux.kallsyms2.o");
            let syms3 = self.sysmap_61(".tmp_vmlinux.kallsyms3");
            self.kallsyms(&syms3, ".tmp_vmlinux.kallsyms3.o", options);
            sizes.push(self.rodata_size(".tmp_vmlinux.kallsyms3.o"));
            last_syms = syms3;
            last_object = ".tmp_vmlinux.kallsyms3.o";
        }
        self.link("vmlinux", last_object);
        (sizes, self.sysmap_61("vmlinux") == last_syms)
    }

    /// `scripts/kallsyms` (ldcheck's drop-in) and the assembler, like link-vmlinux.sh.
    fn kallsyms(&self, map: &[u8], object: &str, options: &Options) {
        let parsed = parse_symbol_map(map, options.version).expect("symbol map");
        let tables = build_tables(&parsed, options).expect("tables");
        let mut asm = Vec::new();
        tables.write_asm(&mut asm).expect("write asm");
        let source = object.replace(".o", ".S");
        std::fs::write(self.dir.join(&source), asm).expect("write .S");
        self.run(
            &self.tc.tool("gcc"),
            &["-c", "-Iinclude", "-o", object, &source],
        );
    }

    fn size(&self, file: &str) -> u64 {
        std::fs::metadata(self.dir.join(file))
            .expect("object")
            .len()
    }

    fn rodata_size(&self, object: &str) -> u64 {
        let text = String::from_utf8_lossy(&self.run(&self.tc.tool("readelf"), &["-SW", object]))
            .into_owned();
        text.lines()
            .find(|l| l.contains(" .rodata "))
            .and_then(|l| l.split_whitespace().rev().nth(5).map(str::to_string))
            .map(|s| u64::from_str_radix(&s, 16).expect("size"))
            .expect(".rodata in the kallsyms object")
    }

    /// link-vmlinux.sh 6.12 with real tools. Returns each pass's tables size and whether
    /// System.map matched.
    fn real_passes(&self, options: &Options) -> (Vec<u64>, bool) {
        self.kallsyms(b"", ".tmp_vmlinux0.kallsyms.o", options);
        self.link(".tmp_vmlinux1", ".tmp_vmlinux0.kallsyms.o");
        let syms1 = self.sysmap(".tmp_vmlinux1");
        self.kallsyms(&syms1, ".tmp_vmlinux1.kallsyms.o", options);
        self.link(".tmp_vmlinux2", ".tmp_vmlinux1.kallsyms.o");
        let syms2 = self.sysmap(".tmp_vmlinux2");
        self.kallsyms(&syms2, ".tmp_vmlinux2.kallsyms.o", options);
        let mut sizes = vec![
            self.rodata_size(".tmp_vmlinux1.kallsyms.o"),
            self.rodata_size(".tmp_vmlinux2.kallsyms.o"),
        ];
        let nm = self.tc.tool("nm");
        let nm1 = self.run(&nm, &["-n", ".tmp_vmlinux1.kallsyms.o"]);
        let nm2 = self.run(&nm, &["-n", ".tmp_vmlinux2.kallsyms.o"]);
        let (mut last_syms, mut last_object) = (syms2, ".tmp_vmlinux2.kallsyms.o");
        if self.size(".tmp_vmlinux1.kallsyms.o") != self.size(".tmp_vmlinux2.kallsyms.o")
            || nm1 != nm2
        {
            self.link(".tmp_vmlinux3", ".tmp_vmlinux2.kallsyms.o");
            let syms3 = self.sysmap(".tmp_vmlinux3");
            self.kallsyms(&syms3, ".tmp_vmlinux3.kallsyms.o", options);
            sizes.push(self.rodata_size(".tmp_vmlinux3.kallsyms.o"));
            last_syms = syms3;
            last_object = ".tmp_vmlinux3.kallsyms.o";
        }
        self.link("vmlinux", last_object);
        (sizes, self.sysmap("vmlinux") == last_syms)
    }

    fn symbol(&self, file: &str, name: &str) -> u64 {
        let text = String::from_utf8_lossy(&self.run(&self.tc.tool("nm"), &[file])).into_owned();
        text.lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .and_then(|l| u64::from_str_radix(l.split_whitespace().next()?, 16).ok())
            .unwrap_or_else(|| panic!("{name} in {file}"))
    }

    fn set_up(&self, pad: u64, script: &str) {
        std::fs::create_dir_all(self.dir.join("include/asm")).expect("include dir");
        std::fs::write(
            self.dir.join("include/asm/bitsperlong.h"),
            format!("#define BITS_PER_LONG {}\n", self.tc.bits),
        )
        .expect("header");
        std::fs::write(self.dir.join("kernel.s"), kernel_asm(self.tc, pad)).expect("source");
        let mut as_args: Vec<&str> = self.tc.as_flags.to_vec();
        as_args.extend(["-o", "kernel.o", "kernel.s"]);
        self.run(&self.tc.tool("as"), &as_args);
        std::fs::write(self.dir.join("vmlinux.lds"), script).expect("script");
    }
}

fn tools_present(tc: Toolchain) -> bool {
    ["as", "ld", "nm", "gcc", "readelf"]
        .iter()
        .all(|t| common::have_tool(&tc.tool(t)))
}

/// Finds the pad size that puts `__pad_end` exactly on a page boundary when the tables hold
/// every symbol but `__pad_end` itself: measured with a real pass-2 link, not guessed.
fn failing_pad(build: &Build<'_>, options: &Options) -> u64 {
    build.set_up(0, SCRIPT);
    build.real_passes(options);
    let end = build.symbol(".tmp_vmlinux2", "__pad_end");
    (0x1000 - end % 0x1000) % 0x1000
}

fn options(stable: bool) -> Options {
    let mut o = Options::new(Version::V6_12);
    o.all_symbols = false;
    if stable {
        o.stable = Some(StableOptions { reserve: 256 });
    }
    o
}

/// `ldcheck check` in its human format with `check_args` less `--format gnu`, in `dir`: the
/// exit code and what it printed.
fn human_check(check_args: &[String], dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ldcheck"))
        .args(
            check_args
                .iter()
                .filter(|a| !["--format", "gnu"].contains(&a.as_str())),
        )
        .current_dir(dir)
        .output()
        .expect("ldcheck check");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn real_passes_disagree_and_ldcheck_predicts_fixes_and_stabilises() {
    seed_scenario(X86_64);
}

#[test]
fn the_same_on_arm_with_the_cross_tools() {
    seed_scenario(ARM);
}

fn seed_scenario(tc: Toolchain) {
    if !tools_present(tc) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let build = Build {
        dir: dir.path(),
        tc,
    };
    let compat = options(false);
    let pad = failing_pad(&build, &compat);
    build.set_up(pad, SCRIPT);
    let (real_sizes, consistent) = build.real_passes(&compat);
    assert!(
        !consistent,
        "pad {pad:#x}: the real passes should disagree (sizes {real_sizes:x?})"
    );
    assert_eq!(real_sizes.len(), 3, "the oscillation forces the extra pass");

    // ldcheck passes predicts the same pass sizes and the failure.
    let args = build.link_args("vmlinux", None);
    let session = LinkSession::open(&args, build.dir).expect("session");
    let report = simulate(
        &session,
        &PassOptions {
            kallsyms: compat,
            extra_pass: false,
        },
    )
    .expect("simulate");
    let predicted: Vec<u64> = report
        .passes
        .iter()
        .filter_map(|p| p.tables.as_ref().map(|t| t.rodata_size))
        .collect();
    assert_eq!(predicted, real_sizes);
    assert!(
        matches!(report.verdict, Verdict::Inconsistent { .. }),
        "{:?}",
        report.verdict
    );

    // ldcheck check names the symbol and the boundary, and exits 1.
    let exe = env!("CARGO_BIN_EXE_ldcheck");
    let mut check_args = vec![
        "check".to_string(),
        "vmlinux.lds".into(),
        "--format".into(),
        "gnu".into(),
        "--".into(),
    ];
    check_args.extend(args.iter().cloned());
    let out = Command::new(exe)
        .args(&check_args)
        .current_dir(build.dir)
        .output()
        .expect("ldcheck check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("__pad_end") && text.contains("_sinittext") && text.contains("0x1000"),
        "{text}"
    );
    assert!(
        text.contains("may grow") && text.contains("passes stop agreeing"),
        "{text}"
    );
    println!("{text}");
    // The human summary line says what the simulated passes concluded.
    let (code, summary) = human_check(&check_args, build.dir);
    assert_eq!(code, Some(1), "{summary}");
    assert!(
        summary.contains("vmlinux.lds: this link's kallsyms passes fail; "),
        "{summary}"
    );

    // The 6.1 procedure on the same build: ldcheck's 6.1 model matches the real 6.1 passes.
    let mut v61 = Options::new(Version::V6_1);
    v61.all_symbols = false;
    let (real_61, consistent_61) = build.real_passes_61(&v61);
    let report_61 = simulate(
        &session,
        &PassOptions {
            kallsyms: v61,
            extra_pass: false,
        },
    )
    .expect("simulate 6.1");
    let predicted_61: Vec<u64> = report_61
        .passes
        .iter()
        .filter_map(|p| p.tables.as_ref().map(|t| t.rodata_size))
        .collect();
    assert_eq!(predicted_61, real_61, "6.1 pass sizes");
    assert_eq!(
        matches!(report_61.verdict, Verdict::Converges { .. }),
        consistent_61,
        "6.1 verdict: {:?}",
        report_61.verdict
    );
    // 6.1 links no kallsyms object in its first pass, so its tables start from a map without
    // the kallsyms labels and settle where 6.12's oscillate: the verdicts differ.
    assert!(
        consistent_61,
        "6.1 converges on the build where 6.12 fails (sizes {real_61:x?})"
    );
    println!("6.1 on the same build: sizes {real_61:x?}, consistent: {consistent_61}");

    // ldcheck fix --write: the real passes converge afterwards.
    let mut fix_args = vec![
        "fix".to_string(),
        "vmlinux.lds".into(),
        "--write".into(),
        "--".into(),
    ];
    fix_args.extend(args.iter().cloned());
    let out = Command::new(exe)
        .args(&fix_args)
        .current_dir(build.dir)
        .output()
        .expect("ldcheck fix");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        build.dir.join("vmlinux.lds.orig").is_file(),
        "the original is kept"
    );
    let (_, consistent) = build.real_passes(&compat);
    assert!(consistent, "after ldcheck fix the real passes converge");
    // And ldcheck check agrees: exit 0, the summary says the passes converge.
    let (code, summary) = human_check(&check_args, build.dir);
    assert_eq!(code, Some(0), "{summary}");
    assert!(
        summary.contains("vmlinux.lds: this link's kallsyms passes converge; "),
        "{summary}"
    );

    // Stable tables converge without touching the script.
    build.set_up(pad, SCRIPT);
    let (sizes, consistent) = build.real_passes(&options(true));
    assert!(consistent, "stable tables converge (sizes {sizes:x?})");
}
