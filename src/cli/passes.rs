//! `ldcheck passes [--kernel 6.12|6.1] [kallsyms options] -- LD-ARGS…`

use std::path::PathBuf;
use std::process::ExitCode;

use ldcheck::analysis::passes::{PassOptions, Verdict, simulate};
use ldcheck::kallsyms::{Options, Version};
use ldcheck::simulate::LinkSession;

/// Arguments of `ldcheck passes`.
#[derive(clap::Args)]
pub struct Args {
    /// Kernel whose link-vmlinux.sh procedure to replay.
    #[arg(long, value_parser = ["6.12", "6.1"], default_value = "6.12")]
    pub kernel: String,
    /// CONFIG_KALLSYMS_ALL.
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
    /// KALLSYMS_EXTRA_PASS=1.
    #[arg(long)]
    pub extra_pass: bool,
    /// Run as if started in DIR.
    #[arg(short = 'C', long = "directory", value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write the predicted System.map to FILE.
    #[arg(long, value_name = "FILE")]
    pub system_map: Option<PathBuf>,
    /// The final link's command line without the kallsyms object (a leading `ld` is skipped).
    #[arg(last = true, required = true, value_name = "LD-ARGS")]
    pub ld_args: Vec<String>,
}

pub fn run(args: Args) -> ExitCode {
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
    let session = match LinkSession::open(super::layout::strip_program_name(&args.ld_args), &base) {
        Ok(s) => s,
        Err(e) => return super::report_error(e.into()),
    };
    let report = match simulate(
        &session,
        &PassOptions {
            kallsyms,
            extra_pass: args.extra_pass,
        },
    ) {
        Ok(r) => r,
        Err(e) => return super::report_error(e.into()),
    };
    // One-shot command: the kernel drops the input mappings at exit faster than munmap would.
    std::mem::forget(session);
    if let Some(path) = &args.system_map
        && let Err(e) = std::fs::write(path, &report.system_map)
    {
        return super::report_error(miette::miette!("cannot write {}: {e}", path.display()));
    }
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => return super::report_error(miette::miette!("cannot encode the report: {e}")),
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
