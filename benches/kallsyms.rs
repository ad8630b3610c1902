//! ldcheck's kallsyms against the kernel's compiled `scripts/kallsyms` on the largest symbol
//! list of the corpus (arm vexpress_defconfig, pass 2), side by side.
//!
//! Times (median of several runs): the kernel tool as a process, `ldcheck kallsyms` as a
//! process (same work: read the map, write the assembly), and the library in-process split
//! into parse + tables and assembly text, plus `rodata_size`. Prints the process ratio.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ldcheck::kallsyms::{Options, PtrWidth, build_tables, parse_symbol_map};

/// The allocator the `ldcheck` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/support/kernel_tool.rs"]
mod support;

const INPUT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/corpus/builds/6.12/arm-vexpress_defconfig/.tmp_vmlinux2.syms"
);
const RUNS: usize = 9;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time_process(program: &Path, args: &[&str]) -> Duration {
    median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                let status = Command::new(program)
                    .args(args)
                    .stdout(Stdio::null())
                    .status()
                    .expect("spawn");
                assert!(status.success(), "{} failed", program.display());
                start.elapsed()
            })
            .collect(),
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    if !Path::new(INPUT).is_file() {
        println!("corpus not found at {INPUT}, skipping");
        return;
    }
    let input = fs::read(INPUT).expect("read input");
    let options = Options {
        all_symbols: true,
        ..Options::default()
    };

    let mut build = Vec::new();
    let mut text = Vec::new();
    let mut size = Vec::new();
    let mut asm = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let map = parse_symbol_map(&input, options.version).expect("parse");
        let tables = build_tables(&map, &options).expect("tables");
        build.push(start.elapsed());
        let start = Instant::now();
        asm.clear();
        tables.write_asm(&mut asm).expect("write");
        text.push(start.elapsed());
        let start = Instant::now();
        std::hint::black_box(tables.rodata_size(PtrWidth::Bits32));
        size.push(start.elapsed());
    }
    let (build, text, size) = (median(build), median(text), median(size));
    println!(
        "input: {INPUT} ({} lines)",
        input.split(|&c| c == b'\n').count() - 1
    );
    println!(
        "ldcheck library: parse+tables {:.1} ms, assembly text {:.1} ms ({} bytes), rodata_size {:.3} ms",
        ms(build),
        ms(text),
        asm.len(),
        ms(size)
    );

    let ours = Path::new(env!("CARGO_BIN_EXE_ldcheck"));
    let ours_time = time_process(ours, &["kallsyms", "--all-symbols", INPUT]);
    println!(
        "ldcheck kallsyms --all-symbols (process): {:.1} ms",
        ms(ours_time)
    );

    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/kallsyms-bench");
    match support::kernel_tool("6.12", &cache) {
        Ok(tool) => {
            let output = Command::new(&tool)
                .args(["--all-symbols", INPUT])
                .output()
                .expect("run kernel tool");
            assert!(output.stdout == asm, "outputs differ");
            let theirs = time_process(&tool, &["--all-symbols", INPUT]);
            println!(
                "kernel scripts/kallsyms --all-symbols (process): {:.1} ms",
                ms(theirs)
            );
            println!(
                "ratio kernel/ldcheck: {:.2}x (process), {:.2}x (in-process ldcheck)",
                theirs.as_secs_f64() / ours_time.as_secs_f64(),
                theirs.as_secs_f64() / (build + text).as_secs_f64()
            );
        }
        Err(notice) => println!("kernel tool unavailable: {notice}"),
    }
}
