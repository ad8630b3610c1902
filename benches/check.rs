//! The full `ldcheck check SCRIPT -- LD-ARGS` (parse the script, static hazards, read the
//! inputs, replay link-vmlinux.sh's kallsyms passes) against one real `ld` link of the same
//! inputs, for every corpus build with link inputs (largest first). Prints medians and the
//! ratio (target: the whole check at most 1/5 of one link's wall time).
//!
//! Run with `cargo bench --bench check` (`LDCHECK_BENCH_RUNS=N` sets the repetitions). Skips
//! with a notice when the corpus or the build's linker is missing. A benchmark, not a test.

mod common;

use std::time::{Duration, Instant};

use ldcheck::analysis::hazards::analyze;
use ldcheck::analysis::margin::simulate_with_margins;
use ldcheck::analysis::passes::PassOptions;
use ldcheck::kallsyms::{Options, Version};
use ldcheck::simulate::LinkSession;

/// Split timings of one in-process check.
#[derive(Default, Clone, Copy)]
struct Phases {
    script: Duration,
    open: Duration,
    passes: Duration,
}

fn check_in_process(build: &common::Build, text: &str, args: &[String]) -> Option<Phases> {
    let start = Instant::now();
    let script = ldcheck::script::parse_script(text).ok()?;
    let hazards = analyze(&script);
    let script_done = Instant::now();
    let session = LinkSession::open(args, &build.objtree).ok()?;
    let opened = Instant::now();
    let mut kallsyms = Options::new(Version::V6_12);
    kallsyms.all_symbols = build.config_enabled("KALLSYMS_ALL");
    kallsyms.absolute_percpu = build.config_enabled("KALLSYMS_ABSOLUTE_PERCPU");
    let report = simulate_with_margins(
        &session,
        &PassOptions {
            kallsyms,
            extra_pass: false,
        },
        &hazards,
    )
    .ok()?;
    std::hint::black_box(report);
    let done = Instant::now();
    Some(Phases {
        script: script_done - start,
        open: opened - script_done,
        passes: done - opened,
    })
}

fn main() {
    let Some(builds) = common::builds() else {
        return;
    };
    let runs = common::runs();
    println!("median of {runs} runs each");
    for build in &builds {
        println!("{} (check vs one final link)", build.name());
        if !common::have_tool(&build.linker) {
            continue;
        }
        let Some(script) = build.script() else {
            println!("  the link command names no script, skipping");
            continue;
        };
        let Ok(text) = std::fs::read_to_string(&script) else {
            println!("  cannot read {}, skipping", script.display());
            continue;
        };
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

        let args = build.args_without_kallsyms();
        let mut phases = Vec::new();
        let Some(in_process) = common::median_of(runs, || {
            check_in_process(build, &text, &args)
                .map(|p| phases.push(p))
                .is_some()
        }) else {
            println!("  ldcheck cannot check this link, skipping");
            continue;
        };
        let median_by = |f: fn(&Phases) -> Duration| {
            let mut v: Vec<Duration> = phases.iter().map(f).collect();
            v.sort();
            v[v.len() / 2]
        };

        let mut cli = vec![
            "check".to_string(),
            "-C".to_string(),
            build.objtree.display().to_string(),
            script.display().to_string(),
        ];
        if build.config_enabled("KALLSYMS_ALL") {
            cli.push("--all-symbols".into());
        }
        if build.config_enabled("KALLSYMS_ABSOLUTE_PERCPU") {
            cli.push("--absolute-percpu".into());
        }
        cli.push("--".into());
        cli.extend(args.iter().cloned());
        // Exit status 1 is a verdict (a hazard), not a failure.
        let process = common::median_of(runs, || {
            common::run_quiet(common::ldcheck_bin(), &cli, &build.objtree, &[1])
        });

        println!(
            "  {:<34} {:>8.1} ms",
            format!("{} (one real link)", build.linker),
            common::ms(ld)
        );
        common::row("ldcheck check (in-process)", in_process, ld);
        println!(
            "    script {:.1} ms, open inputs {:.1} ms, passes and margins {:.1} ms",
            common::ms(median_by(|p| p.script)),
            common::ms(median_by(|p| p.open)),
            common::ms(median_by(|p| p.passes)),
        );
        match process {
            Some(p) => common::row("ldcheck check (process)", p, ld),
            None => println!("  ldcheck check (process) failed"),
        }
        let ours = process.unwrap_or(in_process);
        let ratio = ours.as_secs_f64() / ld.as_secs_f64();
        println!(
            "  ratio ldcheck/ld {ratio:.3} (target <= 0.200: {})",
            if ratio <= 0.2 { "met" } else { "not met" }
        );
    }
}
