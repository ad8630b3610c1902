//! `ldcheck kallsyms-diff A B`: why two link passes give different kallsyms tables.

use std::io::Write;
use std::path::PathBuf;

use ldcheck::report::Format;
use std::process::ExitCode;

use ldcheck::analysis::kdiff::{self, DiffOptions, PassInput};
use ldcheck::kallsyms::{Options, PtrWidth, StableOptions, Version};

const AFTER_HELP: &str = "\
A and B are two link passes: linked ELF files (.tmp_vmlinuxN, vmlinux), read as
`nm -n | mksysmap` would list them, or their `.syms` maps. Both go through the kallsyms
generator with the same options. The report lists the symbols that joined or left the
tables and why (range membership, end coincidence with _etext/_einittext, type change,
absence from a map), adjacent pairs whose order flipped, every table's size and offset in
both passes, and for ELF files the sections that moved and the layout facts behind each
coincidence with a range marker. Symbols named are attributed to file:line when the ELF
files carry DWARF.

The passes agree when every table has the same size in both (the check link-vmlinux.sh
makes between passes); membership or order changes alone are listed but do not disagree.
Exit status: 0 when the passes agree, 1 when they do not, 2 on unreadable or malformed input.
The JSON format is described in docs/kallsyms-diff.md.";

/// Arguments of `ldcheck kallsyms-diff`.
#[derive(clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct Args {
    /// The earlier pass (ELF file or .syms map).
    #[arg(value_name = "A")]
    pub a: PathBuf,

    /// The later pass (ELF file or .syms map).
    #[arg(value_name = "B")]
    pub b: PathBuf,

    /// Keep every symbol, not only those in the text ranges (CONFIG_KALLSYMS_ALL).
    #[arg(long)]
    pub all_symbols: bool,

    /// Store per-cpu symbols as absolute values (CONFIG_KALLSYMS_ABSOLUTE_PERCPU).
    #[arg(long)]
    pub absolute_percpu: bool,

    /// 6.1 only: 32-bit offsets from kallsyms_relative_base (CONFIG_KALLSYMS_BASE_RELATIVE).
    #[arg(long)]
    pub base_relative: bool,

    /// 6.1 only: order names ignoring `.llvm.` suffixes (CONFIG_LTO_CLANG).
    #[arg(long)]
    pub lto_clang: bool,

    /// Kernel version whose kallsyms and mksysmap rules apply.
    #[arg(long, value_name = "VERSION", default_value = "6.12", value_parser = ["6.1", "6.12"])]
    pub kernel: String,

    /// Compare ldcheck's stable tables instead of the kernel tool's.
    #[arg(long)]
    pub stable: bool,

    /// With --stable: pad each table that depends on the symbol set to a multiple of BYTES.
    #[arg(long, value_name = "BYTES", requires = "stable", value_parser = clap::value_parser!(u32).range(1..))]
    pub reserve: Option<u32>,

    /// Word size of the kernel (default: from the ELF class, or the width of the map's addresses).
    #[arg(long, value_name = "BITS", value_parser = ["32", "64"])]
    pub bits: Option<String>,

    /// Report format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
}

fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("ldcheck kallsyms-diff: {message}");
    ExitCode::from(2)
}

pub fn run(args: Args) -> ExitCode {
    let version: Version = match args.kernel.parse() {
        Ok(version) => version,
        Err(message) => return bad_input(message),
    };
    let options = DiffOptions {
        kallsyms: Options {
            version,
            all_symbols: args.all_symbols,
            absolute_percpu: args.absolute_percpu,
            base_relative: args.base_relative,
            lto_clang: args.lto_clang,
            stable: args.stable.then(|| StableOptions {
                reserve: args.reserve.unwrap_or(0),
            }),
        },
        ptr: args.bits.as_deref().map(|bits| {
            if bits == "64" {
                PtrWidth::Bits64
            } else {
                PtrWidth::Bits32
            }
        }),
    };
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))
    };
    let (data_a, data_b) = match (read(&args.a), read(&args.b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(message), _) | (_, Err(message)) => return bad_input(message),
    };
    let pass = |data, path: &PathBuf| {
        PassInput::read(data, version).map_err(|error| format!("{}: {error}", path.display()))
    };
    let (a, b) = match (pass(&data_a, &args.a), pass(&data_b, &args.b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(message), _) | (_, Err(message)) => return bad_input(message),
    };
    let report = match kdiff::diff(&a, &b, &options) {
        Ok(report) => report,
        Err(error) => return crate::cli::report_error(miette::Report::new(error)),
    };
    let text = match args.format {
        Format::Human => report.human(),
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(text) => text + "\n",
            Err(error) => return bad_input(format!("cannot render JSON: {error}")),
        },
        Format::Gnu => {
            let status = if report.agree { "note" } else { "warning" };
            let mut out = format!(
                "{}:1:1: {status}: kallsyms .rodata {:#x} -> {:#x}; {} joined, {} left, {} retyped\n",
                args.b.display(),
                report.rodata.a,
                report.rodata.b,
                report.joined.len(),
                report.left.len(),
                report.retyped.len()
            );
            for m in report.joined.iter().chain(&report.left) {
                out += &format!("{}:1:1: note: {m:?}\n", args.b.display());
            }
            out
        }
    };
    // A closed pipe (`| head`) is the reader's choice, not a failure of the comparison.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    if report.agree {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
