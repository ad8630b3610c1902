//! `ldcheck parse FILE`

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `ldcheck parse`.
#[derive(clap::Args)]
pub struct Args {
    /// The linker script to read.
    pub file: PathBuf,
}

pub fn run(args: Args) -> ExitCode {
    let _ = args.file;
    ExitCode::SUCCESS
}
