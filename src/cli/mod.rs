//! One module per subcommand. Each owns its clap `Args` and a `run` that returns the exit code.

pub mod check;
pub mod completions;
pub mod fix;
pub mod kallsyms;
pub mod kallsyms_diff;
pub mod kbuild;
pub mod kernel;
pub mod ksyms;
pub mod layout;
pub mod parse;
pub mod passes;

use std::process::ExitCode;

/// Renders an input or usage error on stderr (miette: spans and colour on a terminal) and
/// returns ldcheck's exit status for it, 2.
pub fn report_error(report: miette::Report) -> ExitCode {
    eprintln!("{report:?}");
    ExitCode::from(2)
}
