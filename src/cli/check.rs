//! `ldcheck [check] SCRIPT [kallsyms options] [-- LD-ARGS…]`: the default command.

use std::path::PathBuf;
use std::process::ExitCode;

use ldcheck::analysis::hazards::{analyze, unread_includes};
use ldcheck::analysis::margin::simulate_with_margins;
use ldcheck::analysis::passes::PassOptions;
use ldcheck::report::{Finding, Format, render, use_color};

/// Arguments of `ldcheck check`.
#[derive(clap::Args)]
#[command(
    after_help = "Exit status: 0 no hazard that can break the build (with LD-ARGS: the passes converge); 1 a hazard that can break it (with LD-ARGS: link-vmlinux.sh will fail with \"Inconsistent kallsyms data\"); 2 usage or input error."
)]
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

pub fn run(args: Args) -> ExitCode {
    let text = match ldcheck::input::read_regular_file(&args.script) {
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
    let hazards = analyze(&script);
    let mut findings: Vec<Finding> = hazards
        .iter()
        .map(|h| h.to_finding(args.kernel.all_symbols))
        .chain(unread_includes(&script))
        .collect();
    let mut breaks = findings.iter().any(|f| f.breaks_build);
    // With the link inputs, what the simulated passes concluded (true: they fail).
    let mut link_fails = None;
    if !args.ld_args.is_empty() {
        let kallsyms = args.kernel.options();
        let session = match super::layout::open_session(&args.directory, &args.ld_args) {
            Ok(s) => s,
            Err(code) => return code,
        };
        let pass_options = PassOptions {
            kallsyms,
            extra_pass: false,
        };
        let (report, margins) = match simulate_with_margins(session, &pass_options, &hazards) {
            Ok(done) => done,
            Err(e) => return super::report_error(e.into()),
        };
        let passes_finding = report.to_finding();
        // With the link inputs the simulation is the verdict; script findings explain it.
        breaks = passes_finding.breaks_build;
        link_fails = Some(breaks);
        findings.insert(0, margins.to_finding());
        findings.insert(0, passes_finding);
    }
    let notes = findings.iter().filter(|f| !f.breaks_build).count();
    if args.format != Format::Json && !args.notes {
        findings.retain(|f| f.breaks_build || ["passes", "margin", "include"].contains(&&*f.code));
    }
    print!(
        "{}",
        render(&findings, &file, &text, args.format, use_color())
    );
    if args.format == Format::Human {
        let hazards = findings.iter().filter(|f| f.breaks_build).count();
        // A script hazard does not break a link whose passes converge: say which holds.
        let verdict = match link_fails {
            Some(true) => "this link's kallsyms passes fail; ",
            Some(false) => "this link's kallsyms passes converge; ",
            None => "",
        };
        println!(
            "{file}: {verdict}{hazards} hazard(s) that can break the build, {notes} note(s){}",
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
