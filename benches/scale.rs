//! How ldcheck's cost grows with the size of the kernel: a generated x86_64 relocatable object
//! of defconfig scale (150k+ symbols, 50k+ input sections spread over the kernel's section
//! names, kernel-like name lengths) linked by a kernel-shaped script, from 1k to 200k symbols.
//!
//! For each size: one real `ld` link, the layout in-process, the whole `ldcheck check` as a
//! process (wall time and peak RSS from `/usr/bin/time` when present), and `ldcheck kallsyms`
//! against the kernel's compiled `scripts/kallsyms` on the predicted System.map.
//!
//! Run with `cargo bench --bench scale` (`LDCHECK_BENCH_RUNS=N` sets the repetitions,
//! `LDCHECK_SCALE_SIZES=1000,200000` the symbol counts, `LDCHECK_SCALE_DIR=DIR` keeps the
//! generated inputs in DIR). A benchmark, not a test.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ldcheck::analysis::passes::{PassOptions, simulate};
use ldcheck::kallsyms::{Options, Version};
use ldcheck::simulate::LinkSession;
use object::write::{Object, StandardSegment, Symbol, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, SectionKind, SymbolFlags, SymbolKind, SymbolScope,
};

#[path = "../tests/support/kernel_tool.rs"]
mod support;

/// The kernel-shaped script the generated object is linked with.
const SCRIPT: &str = r#"OUTPUT_FORMAT("elf64-x86-64")
OUTPUT_ARCH(i386:x86-64)
ENTRY(_stext)
SECTIONS
{
  . = 0xffffffff81000000;
  _text = .;
  .text : { _stext = .; *(.text.hot .text.hot.*) *(.text .text.*) _etext = .; }
  . = ALIGN(0x1000);
  .rodata : { __start_rodata = .; *(.rodata .rodata.*) __end_rodata = .; }
  . = ALIGN(0x1000);
  .init.text : { _sinittext = .; *(.init.text .init.text.*) _einittext = .; }
  .init.data : { *(.init.data .init.data.*) }
  . = ALIGN(0x1000);
  .data : { _sdata = .; *(.data .data.*) _edata = .; }
  .bss : { __bss_start = .; *(.bss .bss.*) __bss_stop = .; }
  _end = .;
  /DISCARD/ : { *(.comment) *(.note.*) }
}
"#;

/// Words kernel identifiers are made of; joined in threes they give names of 15–40 bytes.
const WORDS: [&str; 24] = [
    "acpi", "device", "driver", "probe", "irq", "handler", "sched", "entity", "page", "alloc",
    "netdev", "queue", "buffer", "inode", "dentry", "mutex", "lock", "timer", "work", "struct",
    "register", "notifier", "cgroup", "firmware",
];

/// A deterministic pseudo-random sequence (xorshift), so every run generates the same object.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Writes a relocatable object with `symbols` defined symbols to `path`; returns its input
/// section count. One section in three is a function's own `.text.NAME` (as with
/// -ffunction-sections); the others hold four symbols each of text, init code, rodata or data.
fn generate(path: &Path, symbols: usize) -> std::io::Result<usize> {
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut sections = 0;
    let mut made = 0;
    while made < symbols {
        let shape = sections % 6;
        let name = format!(
            "{}_{}_{}_{made}",
            WORDS[rng.below(24) as usize],
            WORDS[rng.below(24) as usize],
            WORDS[rng.below(24) as usize]
        );
        let (section_name, kind, per_section, sym_kind) = match shape {
            0 | 1 => (
                format!(".text.{name}"),
                SectionKind::Text,
                1,
                SymbolKind::Text,
            ),
            2 => (".text".to_string(), SectionKind::Text, 4, SymbolKind::Text),
            3 => (
                ".init.text".to_string(),
                SectionKind::Text,
                4,
                SymbolKind::Text,
            ),
            4 => (
                format!(".rodata.{name}"),
                SectionKind::ReadOnlyData,
                4,
                SymbolKind::Data,
            ),
            _ => (
                format!(".data.{name}"),
                SectionKind::Data,
                4,
                SymbolKind::Data,
            ),
        };
        let segment = obj.segment_name(StandardSegment::Text).to_vec();
        let id = obj.add_section(segment, section_name.into_bytes(), kind);
        sections += 1;
        for i in 0..per_section {
            if made >= symbols {
                break;
            }
            let size = 16 + rng.below(240);
            let align = if sym_kind == SymbolKind::Text { 16 } else { 8 };
            let offset = obj.append_section_data(id, &vec![0u8; size as usize], align);
            let sym_name = if i == 0 {
                name.clone()
            } else {
                format!("{name}_{i}")
            };
            obj.add_symbol(Symbol {
                name: sym_name.into_bytes(),
                value: offset,
                size,
                kind: sym_kind,
                scope: if rng.below(3) == 0 {
                    SymbolScope::Compilation
                } else {
                    SymbolScope::Linkage
                },
                weak: false,
                section: SymbolSection::Section(id),
                flags: SymbolFlags::None,
            });
            made += 1;
        }
    }
    let bytes = obj.write().map_err(std::io::Error::other)?;
    fs::write(path, bytes)?;
    Ok(sections)
}

/// Wall time and peak RSS (KiB) of one process, from `/usr/bin/time`.
fn time_with_rss(program: &Path, args: &[String], dir: &Path) -> Option<(Duration, u64)> {
    let start = std::time::Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg(program)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .output()
        .ok()?;
    let elapsed = start.elapsed();
    if !matches!(out.status.code(), Some(0 | 1)) {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let rss = text.lines().last()?.trim().parse().ok()?;
    Some((elapsed, rss))
}

fn sizes() -> Vec<usize> {
    std::env::var("LDCHECK_SCALE_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 50_000, 100_000, 200_000])
}

fn main() {
    if !common::have_tool("ld") {
        return;
    }
    let runs = common::runs().min(5);
    // LDCHECK_SCALE_DIR keeps the generated inputs there (for profiling one size by hand).
    let kept = std::env::var_os("LDCHECK_SCALE_DIR").map(PathBuf::from);
    let temp = match &kept {
        Some(path) => fs::create_dir_all(path).map(|()| None),
        None => tempfile::tempdir().map(Some),
    };
    let Ok(temp) = temp else {
        println!("cannot create a working directory, skipping");
        return;
    };
    let dir = match (&kept, &temp) {
        (Some(path), _) => path.as_path(),
        (None, Some(temp)) => temp.path(),
        (None, None) => return,
    };
    if fs::write(dir.join("vmlinux.lds"), SCRIPT).is_err() {
        println!("cannot write the script, skipping");
        return;
    }
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/kallsyms-bench");
    let kernel_tool = support::kernel_tool("6.12", &cache)
        .map_err(|notice| println!("kernel kallsyms unavailable: {notice}"))
        .ok();
    println!("median of {runs} runs each; times in ms, RSS in MiB");
    println!(
        "{:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9} {:>10} {:>10}",
        "symbols",
        "sections",
        "ld",
        "layout",
        "check",
        "check RSS",
        "check/ld",
        "kallsyms",
        "kernel/us"
    );
    for symbols in sizes() {
        let object = dir.join(format!("gen{symbols}.o"));
        let Ok(sections) = generate(&object, symbols) else {
            println!("{symbols:>8} cannot generate the object");
            continue;
        };
        let args: Vec<String> = [
            "-m",
            "elf_x86_64",
            "--no-warn-rwx-segments",
            "-T",
            "vmlinux.lds",
            object.to_str().unwrap_or_default(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut ld_args = args.clone();
        ld_args.extend(["-o".to_string(), "vmlinux".to_string()]);
        let Some(ld) = common::median_of(runs, || {
            common::run_quiet(Path::new("ld"), &ld_args, dir, &[])
        }) else {
            println!("{symbols:>8} ld failed on the generated object");
            continue;
        };
        let Some(layout) = common::median_of(runs, || {
            LinkSession::open(&args, dir).is_ok_and(|s| s.layout().is_ok())
        }) else {
            println!("{symbols:>8} ldcheck cannot lay out the generated object");
            continue;
        };
        let mut cli = vec!["check".to_string(), "-C".to_string()];
        cli.push(dir.display().to_string());
        cli.push("vmlinux.lds".to_string());
        cli.push("--".to_string());
        cli.extend(args.iter().cloned());
        let mut checks: Vec<(Duration, u64)> = (0..runs)
            .filter_map(|_| time_with_rss(common::ldcheck_bin(), &cli, dir))
            .collect();
        checks.sort();
        let check = checks.get(checks.len() / 2).copied();

        let kallsyms = kallsyms_ratio(dir, &args, kernel_tool.as_deref(), runs);
        println!(
            "{symbols:>8} {sections:>8} {:>8.1} {:>8.1} {:>8} {:>10} {:>9} {:>10} {:>10}",
            common::ms(ld),
            common::ms(layout),
            check.map_or("-".into(), |(t, _)| format!("{:.1}", common::ms(t))),
            check.map_or("-".into(), |(_, rss)| format!("{:.0}", rss as f64 / 1024.0)),
            check.map_or("-".into(), |(t, _)| format!(
                "{:.2}",
                t.as_secs_f64() / ld.as_secs_f64()
            )),
            kallsyms.map_or("-".into(), |(t, _)| format!("{:.1}", common::ms(t))),
            kallsyms
                .and_then(|(_, r)| r)
                .map_or("-".into(), |r| format!("{r:.2}x")),
        );
    }
}

/// `ldcheck kallsyms` on the link's predicted System.map as a process, and the kernel tool's
/// time over ours when it is available.
fn kallsyms_ratio(
    dir: &Path,
    args: &[String],
    kernel_tool: Option<&Path>,
    runs: usize,
) -> Option<(Duration, Option<f64>)> {
    let session = LinkSession::open(args, dir).ok()?;
    let options = PassOptions {
        kallsyms: Options::new(Version::V6_12),
        extra_pass: false,
    };
    let report = simulate(&session, &options).ok()?;
    let map: PathBuf = dir.join("System.map");
    fs::write(&map, report.system_map.as_slice()).ok()?;
    let map_arg = vec!["kallsyms".to_string(), map.display().to_string()];
    let ours = common::median_of(runs, || {
        common::run_quiet(common::ldcheck_bin(), &map_arg, dir, &[])
    })?;
    let theirs = kernel_tool.and_then(|tool| {
        common::median_of(runs, || {
            common::run_quiet(tool, &[map.display().to_string()], dir, &[])
        })
    });
    Some((ours, theirs.map(|t| t.as_secs_f64() / ours.as_secs_f64())))
}
