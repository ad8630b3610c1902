//! `ldcheck parse FILE [--print | --json]`: check a linker script's syntax.
//!
//! Reads the file, calls the library parser and renders the result: nothing on success, the
//! canonical text with `--print`, the syntax tree with `--json`, a miette report and exit
//! status 2 on any error.

use std::path::PathBuf;
use std::process::ExitCode;

use ldcheck::script::{parse_script, print_script};

/// Arguments of `ldcheck parse`.
#[derive(clap::Args)]
#[command(
    after_help = "Exit status: 0 the script parses; 2 it does not (the error is shown with its line and column), it cannot be read, or usage error."
)]
pub struct Args {
    /// The linker script to read.
    pub file: PathBuf,
    /// Print the script in canonical layout.
    #[arg(long, conflicts_with = "json")]
    pub print: bool,
    /// Print the syntax tree as JSON (same as `--format json`).
    #[arg(long)]
    pub json: bool,
    /// How a syntax error is reported: human (miette), json (`{file, line, column, message}`), or
    /// gnu (`FILE:LINE:COL: error: …`); json on success prints the syntax tree.
    #[arg(long, value_enum, default_value = "human")]
    pub format: ldcheck::report::Format,
}

const FAILURE: u8 = 2;

pub fn run(args: Args) -> ExitCode {
    let shown = args.file.display().to_string();
    let bytes = match ldcheck::input::read_regular_file(&args.file) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("error: cannot read {shown}: {e}");
            return ExitCode::from(FAILURE);
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            eprintln!("error: {shown} is not valid UTF-8 (first bad byte at offset {at})");
            return ExitCode::from(FAILURE);
        }
    };
    let script = match parse_script(&text) {
        Ok(script) => script,
        Err(e) => {
            match args.format {
                ldcheck::report::Format::Human => {
                    eprintln!("{:?}", miette::Report::new(e.with_file_name(&shown)))
                }
                ldcheck::report::Format::Gnu => {
                    println!("{shown}:{}:{}: error: {}", e.line, e.column, e.message)
                }
                ldcheck::report::Format::Json => println!(
                    "{}",
                    serde_json::json!({
                        "file": shown,
                        "line": e.line,
                        "column": e.column,
                        "message": e.message,
                        "label": e.label,
                    })
                ),
            }
            return ExitCode::from(FAILURE);
        }
    };
    if args.print {
        print!("{}", print_script(&script));
    } else if args.json || args.format == ldcheck::report::Format::Json {
        match serde_json::to_string_pretty(&script) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("error: cannot encode the syntax tree of {shown}: {e}");
                return ExitCode::from(FAILURE);
            }
        }
    }
    ExitCode::SUCCESS
}
