//! The GNU ld linker-script language: syntax tree, parser, printer and diagnostics.
//!
//! Owns text ↔ tree only. Nothing here evaluates expressions or assigns addresses (see `layout`),
//! in the way LLD keeps `ScriptParser` apart from `LinkerScript`.

pub mod ast;
pub mod diag;
mod lex;
pub mod parse;
pub mod print;

pub use diag::ParseError;
pub use parse::parse_script;
pub use print::{print_expr, print_script};
