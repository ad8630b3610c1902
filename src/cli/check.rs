//! `ldcheck [check] SCRIPT [kallsyms options] [-- LD-ARGS…]`: the default command.

use std::path::PathBuf;
use std::process::ExitCode;

use ldcheck::analysis::hazards::analyze;
use ldcheck::analysis::margin::{Flip, Margins, margins};
use ldcheck::analysis::passes::{PassOptions, Verdict, simulate};
use ldcheck::report::{Finding, Format, Place, render, use_color};

/// Arguments of `ldcheck check`.
#[derive(clap::Args)]
pub struct Args {
    /// The linker script (vmlinux.lds).
    pub script: PathBuf,
    #[command(flatten)]
    pub kernel: super::kernel::KernelFlags,
    /// Run the link command as if started in DIR.
    #[arg(short = 'C', long = "directory", value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Also show notes (coincidences that cannot change table sizes, removable sections);
    /// JSON output always has them.
    #[arg(long)]
    pub notes: bool,
    /// The final link's command line without the kallsyms object; enables the pass simulation.
    #[arg(last = true, value_name = "LD-ARGS")]
    pub ld_args: Vec<String>,
}

fn describe(direction: &str, margin: Option<u64>, flip: Option<&Flip>) -> String {
    match (margin, flip) {
        (Some(m), Some(f)) => format!(
            "{direction} {m} bytes (then {} flips the tables by {:+} bytes{})",
            f.cause,
            f.tables_delta,
            if f.feeds_back {
                " and the passes stop agreeing"
            } else {
                ""
            }
        ),
        _ => format!("{direction} with no flip at any coincidence the script analysis finds"),
    }
}

fn margin_finding(m: &Margins) -> Finding {
    let fragile = [&m.grow_flip, &m.shrink_flip]
        .iter()
        .any(|f| f.as_ref().is_some_and(|f| f.feeds_back));
    Finding {
        code: "margin".into(),
        breaks_build: false,
        message: format!(
            "the kallsyms tables ({:#x} bytes) may {}, and {} ({} layouts searched){}",
            m.tables_size,
            describe("grow", m.grow, m.grow_flip.as_ref()),
            describe("shrink", m.shrink, m.shrink_flip.as_ref()),
            m.probes,
            if fragile {
                "; a flip within reach makes consecutive passes disagree"
            } else {
                ""
            }
        ),
        help: None,
        places: vec![Place {
            span: ldcheck::script::ast::Span::new(0, 0),
            text: "this script".into(),
        }],
    }
}

pub fn run(args: Args) -> ExitCode {
    let text = match std::fs::read(&args.script) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => {
                return super::report_error(miette::miette!(
                    "{}: not valid UTF-8",
                    args.script.display()
                ));
            }
        },
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
    let mut findings: Vec<Finding> = analyze(&script)
        .iter()
        .map(|h| h.to_finding(args.kernel.all_symbols))
        .collect();
    let mut breaks = findings.iter().any(|f| f.breaks_build);
    if !args.ld_args.is_empty() {
        let kallsyms = args.kernel.options();
        let session = match super::layout::open_session(&args.directory, &args.ld_args) {
            Ok(s) => s,
            Err(code) => return code,
        };
        let report = match simulate(
            &session,
            &PassOptions {
                kallsyms,
                extra_pass: false,
            },
        ) {
            Ok(r) => r,
            Err(e) => return super::report_error(e.into()),
        };
        let sizes: Vec<String> = report
            .passes
            .iter()
            .filter_map(|p| {
                p.tables
                    .as_ref()
                    .map(|t| format!("{}: {:#x}", p.link, t.rodata_size))
            })
            .collect();
        let (breaks_now, message) = match &report.verdict {
            Verdict::Converges { links } => (
                false,
                format!(
                    "kallsyms passes converge after {links} links (tables {})",
                    sizes.join(", ")
                ),
            ),
            Verdict::Inconsistent { reason } => (
                true,
                format!(
                    "link-vmlinux.sh will fail with \"Inconsistent kallsyms data\": {reason} (tables {})",
                    sizes.join(", ")
                ),
            ),
        };
        // With the link inputs the simulation is the verdict; script findings explain it.
        breaks = breaks_now;
        let hazards = analyze(&script);
        match margins(
            &session,
            &PassOptions {
                kallsyms,
                extra_pass: false,
            },
            &hazards,
        ) {
            Ok(m) => findings.insert(0, margin_finding(&m)),
            Err(e) => return super::report_error(e.into()),
        }
        findings.insert(
            0,
            Finding {
                code: "passes".into(),
                breaks_build: breaks_now,
                message,
                help: None,
                places: vec![Place {
                    span: ldcheck::script::ast::Span::new(0, 0),
                    text: "this script".into(),
                }],
            },
        );
    }
    let notes = findings.iter().filter(|f| !f.breaks_build).count();
    if args.format != Format::Json && !args.notes {
        findings.retain(|f| f.breaks_build || f.code == "passes" || f.code == "margin");
    }
    print!(
        "{}",
        render(&findings, &file, &text, args.format, use_color())
    );
    if args.format == Format::Human {
        let hazards = findings.iter().filter(|f| f.breaks_build).count();
        println!(
            "{file}: {hazards} hazard(s) that can break the build, {notes} note(s){}",
            if args.notes {
                ""
            } else {
                " (--notes shows them)"
            }
        );
    }
    if breaks {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
