//! `ldcheck fix SCRIPT [kallsyms options] [--diff | --write] [-- LD-ARGS…]`

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ldcheck::analysis::fix::{PassCheck, candidates, unified_diff};
use ldcheck::analysis::hazards::analyze;
use ldcheck::analysis::passes::{PassOptions, Verdict, simulate};

/// Arguments of `ldcheck fix`.
#[derive(clap::Args)]
#[command(
    after_help = "Exit status: 0 nothing to fix, or the best verified fix was shown (--diff) or applied (--write); 1 no candidate removes the hazard; 2 usage or input error."
)]
pub struct Args {
    /// The linker script to fix.
    pub script: PathBuf,
    #[command(flatten)]
    pub kernel: super::kernel::KernelFlags,
    /// Print the best fix as a unified diff (the default).
    #[arg(long, conflicts_with = "write")]
    pub diff: bool,
    /// Apply the best fix: replace SCRIPT atomically, keep SCRIPT.orig, re-parse the result.
    #[arg(long)]
    pub write: bool,
    /// How candidates are listed (json: every candidate with its edits and cost; gnu: one
    /// `SCRIPT:LINE:COL: note: …` line per candidate, at its first edit).
    #[arg(long, value_enum, default_value = "human")]
    pub format: ldcheck::report::Format,
    /// Run the link command as if started in DIR.
    #[arg(short = 'C', long = "directory", value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// The final link's command line without the kallsyms object: verifies each candidate by
    /// simulating the passes and measures its cost.
    #[arg(last = true, value_name = "LD-ARGS")]
    pub ld_args: Vec<String>,
}

pub fn run(args: Args) -> ExitCode {
    let read = ldcheck::input::read_regular_file(&args.script).and_then(|bytes| {
        String::from_utf8(bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
    });
    let text = match read {
        Ok(t) => t,
        Err(e) => {
            return super::report_error(miette::miette!(
                "cannot read {}: {e}",
                args.script.display()
            ));
        }
    };
    let file = args.script.display().to_string();
    let script = match ldcheck::script::parse_script(&text) {
        Ok(s) => s,
        Err(e) => return super::report_error(e.with_file_name(&file).into()),
    };
    let hazards = analyze(&script);
    let kallsyms = args.kernel.options();
    let mut session = None;
    let mut baseline_end = 0;
    if !args.ld_args.is_empty() {
        let s = match super::layout::open_session(&args.directory, &args.ld_args) {
            Ok(s) => s,
            Err(code) => return code,
        };
        match simulate(
            s,
            &PassOptions {
                kallsyms,
                extra_pass: false,
            },
        ) {
            Ok(r) => baseline_end = r.image_end,
            Err(e) => return super::report_error(e.into()),
        }
        session = Some(s);
    }
    let mut verify = |candidate: &str| -> Option<(bool, u64)> {
        let s = session.as_mut()?;
        s.with_script_text(candidate.to_string()).ok()?;
        let report = simulate(
            s,
            &PassOptions {
                kallsyms,
                extra_pass: false,
            },
        )
        .ok()?;
        Some((
            matches!(report.verdict, Verdict::Converges { .. }),
            report.image_end.saturating_sub(baseline_end),
        ))
    };
    let verifier: Option<PassCheck<'_>> = if args.ld_args.is_empty() {
        None
    } else {
        Some(&mut verify)
    };
    let found = candidates(&text, &hazards, args.kernel.all_symbols, verifier);
    if found.is_empty() {
        println!("{file}: no build-breaking hazard to fix");
        return ExitCode::SUCCESS;
    }
    for (i, c) in found.iter().enumerate() {
        if args.format != ldcheck::report::Format::Human {
            break;
        }
        let status = match (c.script_clean, c.passes_converge) {
            (true, Some(true)) => "verified: no hazard left, passes converge",
            (true, None) => "verified over every size by the script analysis",
            (true, Some(false)) => "rejected: passes still disagree",
            (false, _) => "rejected: the hazard remains",
        };
        let cost = if c.cost_measured {
            format!("{} bytes", c.cost_bytes)
        } else {
            format!("at most {} bytes", c.cost_bytes)
        };
        println!("candidate {}: {} ({cost}; {status})", i + 1, c.description);
    }
    match args.format {
        ldcheck::report::Format::Json => match serde_json::to_string_pretty(&found) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                return super::report_error(miette::miette!("cannot encode the candidates: {e}"));
            }
        },
        ldcheck::report::Format::Gnu => {
            for c in &found {
                let (line, col) = c
                    .edits
                    .first()
                    .map_or((1, 1), |e| ldcheck::report::line_column(&text, e.at));
                let kind = if c.verified() { "note" } else { "warning" };
                println!(
                    "{file}:{line}:{col}: {kind}: fix candidate: {} ({} bytes)",
                    c.description, c.cost_bytes
                );
            }
        }
        ldcheck::report::Format::Human => {}
    }
    let Some(best) = found.iter().find(|c| c.verified()) else {
        println!("no candidate removes the hazard");
        return ExitCode::from(1);
    };
    if !args.write {
        if args.format == ldcheck::report::Format::Human {
            print!("{}", unified_diff(&file, &text, &best.script));
        }
        return ExitCode::SUCCESS;
    }
    match write_atomically(&args.script, &text, &best.script) {
        Ok(()) => {
            println!(
                "{file}: applied candidate: {} (original kept as {file}.orig)",
                best.description
            );
            ExitCode::SUCCESS
        }
        Err(e) => super::report_error(e),
    }
}

/// Keeps `FILE.orig`, writes a temporary file beside `path`, renames it over `path`, and
/// parses what landed there.
fn write_atomically(path: &Path, old: &str, new: &str) -> Result<(), miette::Report> {
    let orig = path.with_file_name(format!(
        "{}.orig",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    std::fs::write(&orig, old)
        .map_err(|e| miette::miette!("cannot write {}: {e}", orig.display()))?;
    let tmp = path.with_file_name(format!(
        ".{}.ldcheck-tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(new.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(miette::miette!("cannot replace {}: {e}", path.display()));
    }
    let landed = std::fs::read_to_string(path)
        .map_err(|e| miette::miette!("cannot re-read {}: {e}", path.display()))?;
    ldcheck::script::parse_script(&landed)
        .map(|_| ())
        .map_err(|e| e.with_file_name(path.display().to_string()).into())
}
