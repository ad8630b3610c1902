//! `ldcheck passes [--kernel 6.12|6.1] [kallsyms options] -- LD-ARGS…`

use std::path::PathBuf;
use std::process::ExitCode;

use ldcheck::analysis::passes::{PassOptions, Verdict, simulate};
use ldcheck::report::Format;

/// Arguments of `ldcheck passes`.
#[derive(clap::Args)]
#[command(
    after_help = "Exit status: 0 the passes converge; 1 link-vmlinux.sh will fail with \"Inconsistent kallsyms data\"; 2 usage or input error."
)]
pub struct Args {
    #[command(flatten)]
    pub kernel: super::kernel::KernelFlags,
    /// KALLSYMS_EXTRA_PASS=1.
    #[arg(long)]
    pub extra_pass: bool,
    /// Run as if started in DIR.
    #[arg(short = 'C', long = "directory", value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// Output format (json: the whole report; gnu: one `SCRIPT:1:1: warning|note: …` line).
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Write the predicted System.map to FILE.
    #[arg(long, value_name = "FILE")]
    pub system_map: Option<PathBuf>,
    /// The final link's command line without the kallsyms object (a leading `ld` is skipped).
    #[arg(last = true, required = true, value_name = "LD-ARGS")]
    pub ld_args: Vec<String>,
}

pub fn run(args: Args) -> ExitCode {
    let kallsyms = args.kernel.options();
    let session = match super::layout::open_session(&args.directory, &args.ld_args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let report = match simulate(
        session,
        &PassOptions {
            kallsyms,
            extra_pass: args.extra_pass,
        },
    ) {
        Ok(r) => r,
        Err(e) => return super::report_error(e.into()),
    };
    if let Some(path) = &args.system_map
        && let Err(e) = std::fs::write(path, report.system_map.as_slice())
    {
        return super::report_error(miette::miette!("cannot write {}: {e}", path.display()));
    }
    if args.format == Format::Json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => return super::report_error(miette::miette!("cannot encode the report: {e}")),
        }
    } else if args.format == Format::Gnu {
        let script = session.script_path.display();
        match &report.verdict {
            Verdict::Converges { links } => {
                println!(
                    "{script}:1:1: note: kallsyms passes converge after {links} links [passes]"
                )
            }
            Verdict::Inconsistent { reason } => {
                println!("{script}:1:1: warning: Inconsistent kallsyms data: {reason} [passes]")
            }
        }
    } else {
        for p in &report.passes {
            let tables = p.tables.as_ref().map_or(String::new(), |t| {
                format!(
                    " -> tables .rodata {:#x} (object size key {})",
                    t.rodata_size, t.object_size_through_rodata
                )
            });
            println!(
                "{:<24} with {:<28} {:>7} map lines, {:+} / -{} symbols{}",
                p.link,
                p.kallsyms_object
                    .as_deref()
                    .unwrap_or("(no kallsyms object)"),
                p.map_lines,
                p.joined.len(),
                p.left.len(),
                tables
            );
        }
        match &report.verdict {
            Verdict::Converges { links } => {
                println!("converges: {links} links, System.map consistent")
            }
            Verdict::Inconsistent { reason } => println!("Inconsistent kallsyms data: {reason}"),
        }
    }
    match report.verdict {
        Verdict::Converges { .. } => ExitCode::SUCCESS,
        Verdict::Inconsistent { .. } => ExitCode::from(1),
    }
}
