//! The `ldcheck` command line: parses flags, calls the library, renders reports, sets exit codes.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Make Linux kernel links predictable.
#[derive(Parser)]
#[command(name = "ldcheck", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a linker script's syntax; optionally print it canonically or dump its AST.
    Parse(cli::parse::Args),
    /// Simulate a GNU ld link and print its layout (sections, script symbols, or nm -n).
    Layout(cli::layout::LayoutArgs),
    /// Simulate a link and compare it with the file the real linker produced.
    Verify(cli::layout::VerifyArgs),
    /// Find objects a CONFIG_TRIM_UNUSED_KSYMS build failed to rebuild (stale exports, stamp races).
    Ksyms(cli::ksyms::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Parse(args) => cli::parse::run(args),
        Command::Layout(args) => cli::layout::run_layout(args),
        Command::Verify(args) => cli::layout::run_verify(args),
        Command::Ksyms(args) => cli::ksyms::run(args),
    }
}
