//! `ldcheck layout` against the real linker on the same inputs, for every corpus build with
//! link inputs (largest first): the final link of link-vmlinux.sh, simulated in-process
//! (`LinkSession::open` + `layout`), as an `ldcheck layout` process, and linked by the real
//! `ld`. Prints medians and the ratio (target: ldcheck at most 1/5 of ld's wall time).
//!
//! Run with `cargo bench --bench layout` (`LDCHECK_BENCH_RUNS=N` sets the repetitions). Skips
//! with a notice when the corpus or the build's linker is missing. A benchmark, not a test.

mod common;

use std::time::Duration;

use ldcheck::simulate::LinkSession;

fn main() {
    let Some(builds) = common::builds() else {
        return;
    };
    let runs = common::runs();
    println!("median of {runs} runs each");
    for build in &builds {
        println!(
            "{} (final link, {} KiB of inputs)",
            build.name(),
            build.bytes / 1024
        );
        if !common::have_tool(&build.linker) {
            continue;
        }
        let Ok(out_dir) = tempfile::tempdir() else {
            println!("  cannot create a temporary directory, skipping");
            continue;
        };
        let ld_args = build.args_with_output(&out_dir.path().join("vmlinux"));
        let Some(ld) = common::median_of(runs, || {
            common::run_quiet(build.linker.as_ref(), &ld_args, &build.objtree, &[])
        }) else {
            println!("  {} failed on these inputs, skipping", build.linker);
            continue;
        };

        let mut open = Vec::new();
        let Some(in_process) = common::median_of(runs, || {
            let start = std::time::Instant::now();
            let Ok(session) = LinkSession::open(&build.args, &build.objtree) else {
                return false;
            };
            open.push(start.elapsed());
            std::hint::black_box(session.layout()).is_ok()
        }) else {
            println!("  ldcheck cannot simulate this link, skipping");
            continue;
        };
        open.sort();
        let open = open[open.len() / 2];

        let mut cli = vec![
            "layout".to_string(),
            "-C".to_string(),
            build.objtree.display().to_string(),
            "--".to_string(),
        ];
        cli.extend(build.args.iter().cloned());
        let process = common::median_of(runs, || {
            common::run_quiet(common::ldcheck_bin(), &cli, &build.objtree, &[])
        });

        println!(
            "  {:<34} {:>8.1} ms",
            format!("{} (real link)", build.linker),
            common::ms(ld)
        );
        common::row("ldcheck layout (in-process)", in_process, ld);
        println!(
            "    of which LinkSession::open       {:>8.1} ms, layout {:.1} ms",
            common::ms(open),
            common::ms(in_process.saturating_sub(open))
        );
        match process {
            Some(p) => common::row("ldcheck layout (process)", p, ld),
            None => println!("  ldcheck layout (process) failed"),
        }
        verdict(process.unwrap_or(in_process), ld);
    }
}

fn verdict(ours: Duration, ld: Duration) {
    let ratio = ours.as_secs_f64() / ld.as_secs_f64();
    println!(
        "  ratio ldcheck/ld {ratio:.3} (target <= 0.200: {})",
        if ratio <= 0.2 { "met" } else { "not met" }
    );
}
