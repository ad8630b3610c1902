//! The GNU ld linker-script language: syntax tree, parser, printer and diagnostics.
//!
//! Owns text ↔ tree only. Nothing here evaluates expressions or assigns addresses (see `layout`),
//! in the way LLD keeps `ScriptParser` apart from `LinkerScript`.

pub mod ast;
