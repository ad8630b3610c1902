//! `ldcheck [check] SCRIPT [kallsyms options] [-- LD-ARGS…]`: the default command.

use std::path::PathBuf;
use std::process::ExitCode;

use ldcheck::analysis::hazards::analyze;
use ldcheck::analysis::passes::{PassOptions, Verdict, simulate};
use ldcheck::kallsyms::{Options, Version};
use ldcheck::report::{Finding, Format, Place, render, use_color};
use ldcheck::simulate::LinkSession;

/// Arguments of `ldcheck check`.
#[derive(clap::Args)]
pub struct Args {
    /// The linker script (vmlinux.lds).
    pub script: PathBuf,
    /// Kernel whose link-vmlinux.sh procedure applies.
    #[arg(long, value_parser = ["6.12", "6.1"], default_value = "6.12")]
    pub kernel: String,
    /// CONFIG_KALLSYMS_ALL: kallsyms keeps symbols outside the text ranges.
    #[arg(long)]
    pub all_symbols: bool,
    /// CONFIG_KALLSYMS_ABSOLUTE_PERCPU.
    #[arg(long)]
    pub absolute_percpu: bool,
    /// CONFIG_KALLSYMS_BASE_RELATIVE (6.1).
    #[arg(long)]
    pub base_relative: bool,
    /// CONFIG_LTO_CLANG (6.1).
    #[arg(long)]
    pub lto_clang: bool,
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
        .map(|h| h.to_finding(args.all_symbols))
        .collect();
    let mut breaks = findings.iter().any(|f| f.breaks_build);
    if !args.ld_args.is_empty() {
        let version = if args.kernel == "6.1" {
            Version::V6_1
        } else {
            Version::V6_12
        };
        let mut kallsyms = Options::new(version);
        kallsyms.all_symbols = args.all_symbols;
        kallsyms.absolute_percpu = args.absolute_percpu;
        kallsyms.base_relative = args.base_relative;
        kallsyms.lto_clang = args.lto_clang;
        let base = args.directory.clone().unwrap_or_else(|| PathBuf::from("."));
        let session =
            match LinkSession::open(super::layout::strip_program_name(&args.ld_args), &base) {
                Ok(s) => s,
                Err(e) => return super::report_error(e.into()),
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
        // One-shot command: the kernel drops the input mappings at exit faster than munmap would.
        std::mem::forget(session);
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
        findings.retain(|f| f.breaks_build || f.code == "passes");
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
