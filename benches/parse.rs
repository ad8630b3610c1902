//! Parse throughput on the largest corpus linker script, in MB/s (a benchmark, not a test).
//!
//! Run with `cargo bench --bench parse`. Skips with a notice when the corpus is absent.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ldcheck::script::parse_script;

/// The allocator the `ldcheck` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus");

fn scripts(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            scripts(&path, out);
        } else if path.file_name().is_some_and(|n| n == "vmlinux.lds") {
            out.push(path);
        }
    }
}

fn main() {
    let mut found = Vec::new();
    scripts(Path::new(CORPUS), &mut found);
    let Some(largest) = found
        .iter()
        .max_by_key(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
    else {
        println!("corpus not found at {CORPUS}, skipping");
        return;
    };
    let text = match std::fs::read_to_string(largest) {
        Ok(text) => text,
        Err(e) => {
            println!("cannot read {}: {e}", largest.display());
            return;
        }
    };
    if let Err(e) = parse_script(&text) {
        println!("{}: {e}", largest.display());
        return;
    }
    // Warm up, then take the best of several timed rounds of many parses each.
    for _ in 0..200 {
        std::hint::black_box(parse_script(std::hint::black_box(&text)).is_ok());
    }
    // Many short rounds: on a shared machine the best round is the least disturbed one.
    let rounds = 200;
    let per_round = 50;
    let mut best = Duration::MAX;
    let mut total = Duration::ZERO;
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..per_round {
            std::hint::black_box(parse_script(std::hint::black_box(&text)).is_ok());
        }
        let elapsed = start.elapsed();
        best = best.min(elapsed);
        total += elapsed;
    }
    let bytes = (text.len() * per_round) as f64;
    let mbps = |d: Duration| bytes / d.as_secs_f64() / 1e6;
    println!(
        "parse {} ({} bytes): best {:.1} MB/s, mean {:.1} MB/s ({:.1} µs per parse)",
        largest.display(),
        text.len(),
        mbps(best),
        mbps(total / rounds as u32),
        best.as_secs_f64() * 1e6 / per_round as f64
    );
}
