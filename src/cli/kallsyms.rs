//! `ldcheck kallsyms [options] IN`: a drop-in for the kernel's `scripts/kallsyms`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ldcheck::analysis::image::{self, LinkedImage};
use ldcheck::kallsyms::{self, KallsymsError, Options, PtrWidth, StableOptions, Version};

const INPUT_RULES: &str = "\
Input, output and errors:

IN is the output of `nm -n vmlinux | sed -f scripts/mksysmap` (6.12) or of `nm -n` filtered by
mksysmap (6.1): one `ADDRESS TYPE NAME` per line. IN may also be the linked ELF file itself
(vmlinux or .tmp_vmlinuxN): ldcheck then lists its symbols as `nm -n` does and applies the
chosen version's mksysmap rules, so no nm/sed pipeline is needed, and each symbol carries the
section it is defined in (which --stable uses). The assembly goes to stdout exactly as the
chosen kernel version's scripts/kallsyms prints it; assemble it as link-vmlinux.sh does (it
includes <asm/bitsperlong.h> for BITS_PER_LONG).

Each version accepts only its own options: 6.12 has --all-symbols and --absolute-percpu; 6.1
also has --base-relative and --lto-clang. Input is read the way each version reads it: 6.12
rejects a malformed line (`line format error`, exit 1); 6.1 skips what its fscanf cannot
match. A name of 512 bytes or more is reported and dropped, as the kernel does (exit 0 unless
--strict). An empty table is fine for 6.12 and an error for 6.1 (`No valid symbol.`, exit 1).
Offsets that do not fit in 32 bits fail as in the kernel (exit 1). Messages about an entry
give its input line.";

fn after_help() -> String {
    format!("{INPUT_RULES}\n\n{}", kallsyms::STABLE_RULES)
}

/// Arguments of `ldcheck kallsyms`.
#[derive(clap::Args)]
#[command(after_long_help = after_help())]
pub struct Args {
    /// The symbol map (`nm -n` output filtered by mksysmap), or a linked ELF file.
    #[arg(value_name = "IN")]
    pub input: PathBuf,

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

    /// Kernel version whose tool to reproduce.
    #[arg(long, value_name = "VERSION", default_value = "6.12", value_parser = ["6.1", "6.12"])]
    pub format: String,

    /// Tables whose size does not change when sections merely move (not byte-identical; see below).
    #[arg(long)]
    pub stable: bool,

    /// With --stable: pad each table that depends on the symbol set to a multiple of BYTES.
    #[arg(long, value_name = "BYTES", requires = "stable", value_parser = clap::value_parser!(u32).range(1..))]
    pub reserve: Option<u32>,

    /// Exit 1 also on input the kernel tool only warns about (over-long names, skipped lines).
    #[arg(long)]
    pub strict: bool,

    /// Print the layout of the assembled .rodata for a BITS-bit kernel instead of the assembly.
    #[arg(long, value_name = "BITS", value_parser = ["32", "64"])]
    pub rodata_size: Option<String>,
}

impl Args {
    fn options(&self) -> Result<Options, String> {
        let version: Version = self.format.parse()?;
        Ok(Options {
            version,
            all_symbols: self.all_symbols,
            absolute_percpu: self.absolute_percpu,
            base_relative: self.base_relative,
            lto_clang: self.lto_clang,
            stable: self.stable.then(|| StableOptions {
                reserve: self.reserve.unwrap_or(0),
            }),
        })
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("ldcheck kallsyms: {message}");
    ExitCode::FAILURE
}

fn report(error: KallsymsError) -> ExitCode {
    eprintln!("{:?}", miette::Report::new(error));
    ExitCode::FAILURE
}

pub fn run(args: Args) -> ExitCode {
    let options = match args.options() {
        Ok(options) => options,
        Err(message) => return fail(message),
    };
    if let Err(error) = options.validate() {
        return report(error);
    }
    let input = match std::fs::read(&args.input) {
        Ok(bytes) => bytes,
        Err(error) => return fail(format!("{}: {error}", args.input.display())),
    };
    let elf = if image::is_elf(&input) {
        match LinkedImage::parse(&input, options.version) {
            Ok(image) => Some(image),
            Err(error) => return fail(format!("{}: {error}", args.input.display())),
        }
    } else {
        None
    };
    let parsed = match &elf {
        Some(image) => image.symbol_map(),
        None => kallsyms::parse_symbol_map(&input, options.version),
    };
    let map = match parsed {
        Ok(map) => map,
        Err(error) => return report(error),
    };
    for warning in &map.warnings {
        eprintln!("ldcheck kallsyms: {}: {warning}", args.input.display());
    }
    if args.strict && !map.warnings.is_empty() {
        return fail("warnings are errors with --strict");
    }
    let tables = match kallsyms::build_tables(&map, &options) {
        Ok(tables) => tables,
        Err(error) => return report(error),
    };
    let stdout = std::io::stdout().lock();
    let written = match args.rodata_size.as_deref() {
        Some(bits) => {
            let ptr = if bits == "64" {
                PtrWidth::Bits64
            } else {
                PtrWidth::Bits32
            };
            print_layout(stdout, &tables.rodata_layout(ptr))
        }
        None => tables.write_asm(stdout),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(format!("writing output: {error}")),
    }
}

fn print_layout(mut out: impl Write, layout: &kallsyms::RodataLayout) -> std::io::Result<()> {
    for t in &layout.tables {
        writeln!(
            out,
            "{:#010x} {:>10} {}{}",
            t.offset,
            t.size,
            t.kind.label(),
            if t.padding > 0 {
                format!(" (padding {})", t.padding)
            } else {
                String::new()
            }
        )?;
    }
    writeln!(out, "size {} align {}", layout.size, layout.align)
}
