//! Helpers the benchmarks share: the corpus builds with link inputs, their final link command,
//! tool detection and median timing.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The allocator the `ldcheck` binary uses, so in-process figures match the process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus");

/// A corpus build whose link inputs are stored, with its final (`-o vmlinux`) link command.
pub struct Build {
    pub dir: PathBuf,
    pub objtree: PathBuf,
    /// The linker program of link-commands.sh (`ld`, `arm-linux-gnueabihf-ld`).
    pub linker: String,
    /// The final link's arguments, program name dropped, kallsyms object included.
    pub args: Vec<String>,
    /// Total bytes of the objtree, which orders builds largest first.
    pub bytes: u64,
}

impl Build {
    /// Short name for tables (`6.12/x86_64-tinyconfig`).
    pub fn name(&self) -> String {
        let version = self
            .dir
            .parent()
            .and_then(Path::file_name)
            .map_or_else(String::new, |v| v.to_string_lossy().into_owned());
        let config = self
            .dir
            .file_name()
            .map_or_else(String::new, |v| v.to_string_lossy().into_owned());
        format!("{version}/{config}")
    }

    /// The final link's arguments without the kallsyms object (what `ldcheck check` takes).
    pub fn args_without_kallsyms(&self) -> Vec<String> {
        self.args
            .iter()
            .filter(|a| !a.ends_with(".kallsyms.o"))
            .cloned()
            .collect()
    }

    /// The arguments with `-o` redirected to `output` (the objtree is read-only).
    pub fn args_with_output(&self, output: &Path) -> Vec<String> {
        let mut args = self.args.clone();
        if let Some(i) = args.iter().position(|a| a == "-o")
            && let Some(slot) = args.get_mut(i + 1)
        {
            *slot = output.display().to_string();
        }
        args
    }

    /// The `-T`/`--script=` file, relative to the objtree.
    pub fn script(&self) -> Option<PathBuf> {
        let mut it = self.args.iter();
        while let Some(a) = it.next() {
            if let Some(s) = a.strip_prefix("--script=") {
                return Some(self.objtree.join(s));
            }
            if a == "-T" || a == "--script" {
                return it.next().map(|s| self.objtree.join(s));
            }
        }
        None
    }

    /// Whether the build's config enables `CONFIG_<name>`.
    pub fn config_enabled(&self, name: &str) -> bool {
        std::fs::read_to_string(self.dir.join("config"))
            .is_ok_and(|c| c.lines().any(|l| l == format!("CONFIG_{name}=y")))
    }
}

/// Every corpus build with link inputs, largest first; None (with a notice) without a corpus.
pub fn builds() -> Option<Vec<Build>> {
    let root = Path::new(CORPUS).join("builds");
    if !root.is_dir() {
        println!("corpus not found at {CORPUS}, skipping");
        return None;
    }
    let mut out = Vec::new();
    for version in read_dir(&root) {
        for dir in read_dir(&version) {
            let objtree = dir.join("objtree");
            let Ok(text) = std::fs::read_to_string(dir.join("link-commands.sh")) else {
                continue;
            };
            let Some(line) = text.lines().rfind(|l| l.contains(" -o vmlinux ")) else {
                continue;
            };
            if !objtree.is_dir() {
                continue;
            }
            let mut words = line.split_whitespace().map(str::to_string);
            let Some(linker) = words.next() else { continue };
            out.push(Build {
                bytes: tree_bytes(&objtree),
                dir,
                objtree,
                linker,
                args: words.collect(),
            });
        }
    }
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.dir.cmp(&b.dir)));
    if out.is_empty() {
        println!(
            "no corpus build under {} has link inputs, skipping",
            root.display()
        );
        return None;
    }
    Some(out)
}

fn read_dir(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    entries
}

fn tree_bytes(dir: &Path) -> u64 {
    read_dir(dir)
        .iter()
        .map(|p| {
            if p.is_dir() {
                tree_bytes(p)
            } else {
                std::fs::metadata(p).map_or(0, |m| m.len())
            }
        })
        .sum()
}

/// Whether `tool` runs; prints a skip notice when it does not.
pub fn have_tool(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("notice: {tool} not found, skipping");
    }
    ok
}

/// Repetitions per measurement: `LDCHECK_BENCH_RUNS`, default 11.
pub fn runs() -> usize {
    std::env::var("LDCHECK_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(11)
}

/// The median of `runs` timings of `f` (after one warm-up call); None if any call fails.
pub fn median_of(runs: usize, mut f: impl FnMut() -> bool) -> Option<Duration> {
    if !f() {
        return None;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        if !f() {
            return None;
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    Some(samples[samples.len() / 2])
}

/// Runs a program in `dir` with output discarded; true when it exits with status 0 (or with
/// one of `ok_codes`).
pub fn run_quiet(program: &Path, args: &[String], dir: &Path, ok_codes: &[i32]) -> bool {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success() || s.code().is_some_and(|c| ok_codes.contains(&c)))
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The path of the `ldcheck` binary built for this benchmark.
pub fn ldcheck_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ldcheck"))
}

/// One row of a side-by-side table: what was timed, its median, and its share of the link.
pub fn row(what: &str, time: Duration, link: Duration) {
    println!(
        "  {what:<34} {:>8.1} ms   {:>5.2}x of ld ({:.1}x faster)",
        ms(time),
        time.as_secs_f64() / link.as_secs_f64(),
        link.as_secs_f64() / time.as_secs_f64()
    );
}
