//! One module per subcommand. Each owns its clap `Args` and a `run` that returns the exit code.

pub mod kallsyms;
pub mod parse;
