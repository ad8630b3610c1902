//! `ldcheck layout -- LD-ARGS…` and `ldcheck verify --elf LINKED -- LD-ARGS…`

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ldcheck::simulate::{LinkSession, predicted_nm};
use ldcheck::verify;

/// Arguments of `ldcheck layout`.
#[derive(clap::Args)]
#[command(
    after_help = "Exit status: 0 the layout was printed; 2 usage or input error, or a link the simulator cannot lay out."
)]
pub struct LayoutArgs {
    /// Run as if started in DIR (relative paths on the ld command line are resolved there).
    #[arg(short = 'C', long = "directory", value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// Print the layout as JSON (schema: docs/layout-json.md).
    #[arg(long, conflicts_with = "nm")]
    pub json: bool,
    /// Print exactly what `nm -n` would print for the linked file.
    #[arg(long)]
    pub nm: bool,
    /// The linker's own command line, as Kbuild prints it with V=1 (a leading `ld` is skipped).
    #[arg(last = true, required = true, value_name = "LD-ARGS")]
    pub ld_args: Vec<String>,
}

/// Arguments of `ldcheck verify`.
#[derive(clap::Args)]
#[command(
    after_help = "Exit status: 0 every allocated section and symbol matches; 1 differences (listed); 2 usage or input error."
)]
pub struct VerifyArgs {
    /// The file the real linker produced from the same command line.
    #[arg(long, value_name = "LINKED")]
    pub elf: PathBuf,
    /// Output format (json: the list of differences; gnu: `LINKED:1:1: error: …` per difference).
    #[arg(long, value_enum, default_value = "human")]
    pub format: ldcheck::report::Format,
    /// Run as if started in DIR.
    #[arg(short = 'C', long = "directory", value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// The linker's command line (a leading `ld` is skipped).
    #[arg(last = true, required = true, value_name = "LD-ARGS")]
    pub ld_args: Vec<String>,
}

pub fn strip_program_name(args: &[String]) -> &[String] {
    match args.first() {
        Some(a)
            if a == "ld" || a.ends_with("-ld") || a.ends_with("/ld") || a.ends_with("ld.bfd") =>
        {
            &args[1..]
        }
        _ => args,
    }
}

/// Opens the link `ld_args` describes, relative to `directory`, reporting failures. The
/// session lives until the process exits and is never dropped: unmapping every thin-archive
/// member one by one (hundreds of `munmap` calls, each stopping the pool's other threads to
/// flush their TLBs) took 3 ms of a 45 ms tinyconfig check, and the exit tears the address
/// space down at once.
pub fn open_session(
    directory: &Option<PathBuf>,
    ld_args: &[String],
) -> Result<&'static mut LinkSession, ExitCode> {
    let base = directory.clone().unwrap_or_else(|| PathBuf::from("."));
    match LinkSession::open(strip_program_name(ld_args), &base) {
        Ok(session) => Ok(Box::leak(Box::new(session))),
        Err(e) => Err(super::report_error(e.into())),
    }
}

pub fn run_layout(args: LayoutArgs) -> ExitCode {
    let session = match open_session(&args.directory, &args.ld_args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let layout = match session.layout() {
        Ok(l) => l,
        Err(e) => return super::report_error(e.into()),
    };
    // Buffered: stdout alone writes each line with its own system call.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = if args.nm {
        out.write_all(&predicted_nm(&layout, session.target.e_machine))
    } else if args.json {
        serde_json::to_writer_pretty(&mut out, &layout)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out))
    } else {
        write_table(&mut out, &layout, session.target.address_width())
    }
    .and_then(|()| out.flush());
    // The process ends here: the kernel drops the input mappings at exit faster than hundreds
    // of munmap calls would.
    std::mem::forget((session, layout));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => super::report_error(miette::miette!("cannot write output: {e}")),
    }
}

fn write_table(
    out: &mut impl Write,
    layout: &ldcheck::layout::Layout,
    width: usize,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<28} {:>w$} {:>w$} {:>10} {:>8} {:>10} {:>5}",
        "Section",
        "VMA",
        "LMA",
        "Size",
        "Align",
        "Type",
        "Flags",
        w = width
    )?;
    for s in &layout.sections {
        let mut flags = String::new();
        if s.sh_flags & 2 != 0 {
            flags.push('A');
        }
        if s.sh_flags & 1 != 0 {
            flags.push('W');
        }
        if s.sh_flags & 4 != 0 {
            flags.push('X');
        }
        writeln!(
            out,
            "{:<28} {:0w$x} {:0w$x} {:>#10x} {:>#8x} {:>10} {:>5}",
            s.name,
            s.vma,
            s.lma,
            s.size,
            s.align,
            section_type_name(s.sh_type),
            flags,
            w = width
        )?;
    }
    for r in &layout.removed {
        writeln!(out, "removed: {} ({:?})", r.name, r.reason)?;
    }
    for (input, output) in &layout.orphans {
        writeln!(out, "orphan: {input} -> {output}")?;
    }
    writeln!(out, "\nScript symbols:")?;
    let mut script_syms: Vec<_> = layout.symbols.iter().filter(|s| s.from_script).collect();
    script_syms.sort_by(|a, b| a.value.cmp(&b.value).then_with(|| a.name.cmp(&b.name)));
    for s in script_syms {
        writeln!(out, "{:0w$x} {} {}", s.value, s.nm, s.name, w = width)?;
    }
    Ok(())
}

fn section_type_name(t: u32) -> String {
    match t {
        1 => "PROGBITS".into(),
        7 => "NOTE".into(),
        8 => "NOBITS".into(),
        14 => "INIT_ARRAY".into(),
        15 => "FINI_ARRAY".into(),
        0x7000_0001 => "ARM_EXIDX".into(),
        0x7000_0003 => "ARM_ATTRS".into(),
        t => format!("{t:#x}"),
    }
}

pub fn run_verify(args: VerifyArgs) -> ExitCode {
    let session = match open_session(&args.directory, &args.ld_args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let elf_path = match &args.directory {
        Some(d) if args.elf.is_relative() => d.join(&args.elf),
        _ => args.elf.clone(),
    };
    let data = match std::fs::read(&elf_path) {
        Ok(d) => d,
        Err(e) => {
            return super::report_error(miette::miette!("cannot read {}: {e}", elf_path.display()));
        }
    };
    let layout = match session.layout() {
        Ok(l) => l,
        Err(e) => return super::report_error(e.into()),
    };
    let diffs = match verify::compare(&layout, &data) {
        Ok(d) => d,
        Err(e) => return super::report_error(miette::miette!("{}: {e}", elf_path.display())),
    };
    let shown = elf_path.display();
    match args.format {
        ldcheck::report::Format::Json => match serde_json::to_string_pretty(&diffs) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                return super::report_error(miette::miette!("cannot encode the differences: {e}"));
            }
        },
        ldcheck::report::Format::Gnu => {
            for d in &diffs {
                println!("{shown}:1:1: error: {d}");
            }
        }
        ldcheck::report::Format::Human if diffs.is_empty() => println!(
            "{shown}: {} allocated sections and {} symbols match",
            layout
                .sections
                .iter()
                .filter(|s| s.sh_flags & 2 != 0)
                .count(),
            layout.symbols.len()
        ),
        ldcheck::report::Format::Human => {
            println!("{shown}: {} differences", diffs.len());
            for d in &diffs {
                println!("  {d}");
            }
        }
    }
    if diffs.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
