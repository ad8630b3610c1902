//! Source attribution: which file and line define a symbol of a linked image, from its DWARF.
//!
//! Owns reading `.debug_info` / `.debug_line` with gimli (sections loaded through `object`).
//! Functions and variables are found by their DIE (name, and address to tell apart statics of
//! the same name); other function symbols (assembly) fall back to the line table. An image without DWARF,
//! or with DWARF this reader cannot use (compressed sections, say), yields no attribution and
//! no error: attribution is a courtesy of the reports, never a reason to fail them.

use std::collections::HashMap;
use std::fmt;

use gimli::{AttributeValue, EndianSlice, RunTimeEndian};
use object::{Object, ObjectSection, ObjectSymbol};
use serde::Serialize;

/// Where a symbol is defined in the sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceLocation {
    /// The file as the compiler recorded it (joined with its directory when relative).
    pub file: String,
    pub line: u64,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A symbol to attribute: its name and its address in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query<'q> {
    pub name: &'q [u8],
    pub addr: u64,
}

type Reader<'d> = EndianSlice<'d, RunTimeEndian>;

/// Attributes each query to a source location, in query order; `None` where the image says
/// nothing (no DWARF, a linker-script symbol, an unreadable unit).
pub fn locate(data: &[u8], queries: &[Query<'_>]) -> Vec<Option<SourceLocation>> {
    let mut found = vec![None; queries.len()];
    if queries.is_empty() {
        return found;
    }
    let Ok(file) = object::File::parse(data) else {
        return found;
    };
    if file.section_by_name(".debug_info").is_none() {
        return found;
    }
    let endian = if file.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    let load = |id: gimli::SectionId| -> Result<Reader<'_>, gimli::Error> {
        let bytes = file
            .section_by_name(id.name())
            .and_then(|s| s.data().ok())
            .unwrap_or(&[]);
        Ok(EndianSlice::new(bytes, endian))
    };
    let Ok(dwarf) = gimli::Dwarf::load(load) else {
        return found;
    };
    let mut by_name: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (i, q) in queries.iter().enumerate() {
        by_name.entry(q.name).or_default().push(i);
    }
    // Only function symbols may take a line-table row: a linker-script symbol that happens
    // to equal a function's address is not defined by that function's source line.
    let mut functions = vec![false; queries.len()];
    for sym in file.symbols() {
        if sym.kind() != object::SymbolKind::Text {
            continue;
        }
        let Some(indices) = sym.name_bytes().ok().and_then(|n| by_name.get(n)) else {
            continue;
        };
        for &i in indices {
            functions[i] |= queries[i].addr == sym.address();
        }
    }
    let mut units = dwarf.units();
    while let Ok(Some(header)) = units.next() {
        let Ok(unit) = dwarf.unit(header) else {
            continue;
        };
        // A unit that fails half way keeps what it attributed so far.
        let _ = attribute_dies(&dwarf, &unit, &by_name, queries, &mut found);
        if found.iter().any(Option::is_none) {
            let _ = attribute_lines(&dwarf, &unit, queries, &functions, &mut found);
        }
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    found
}

/// The file name of entry `index` of the unit's line program, with its directory.
fn file_name(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
    index: u64,
) -> Option<String> {
    let header = unit.line_program.as_ref()?.header();
    let entry = header.file(index)?;
    let text = |value| {
        dwarf
            .attr_string(unit, value)
            .ok()
            .map(|r: Reader<'_>| String::from_utf8_lossy(r.slice()).into_owned())
    };
    let name = text(entry.path_name())?;
    if name.starts_with('/') {
        return Some(name);
    }
    match entry.directory(header).and_then(text) {
        Some(dir) if !dir.is_empty() => Some(format!("{dir}/{name}")),
        _ => Some(name),
    }
}

/// What a function or variable DIE says about itself.
struct Definition<'d> {
    name: Option<&'d [u8]>,
    addr: Option<u64>,
    file: Option<u64>,
    line: Option<u64>,
}

fn udata(value: Option<AttributeValue<Reader<'_>>>) -> Option<u64> {
    match value? {
        AttributeValue::FileIndex(n) | AttributeValue::Udata(n) => Some(n),
        AttributeValue::Data1(n) => Some(u64::from(n)),
        AttributeValue::Data2(n) => Some(u64::from(n)),
        AttributeValue::Data4(n) => Some(u64::from(n)),
        AttributeValue::Data8(n) => Some(n),
        AttributeValue::Sdata(n) => u64::try_from(n).ok(),
        _ => None,
    }
}

fn definition<'d>(
    dwarf: &gimli::Dwarf<Reader<'d>>,
    unit: &gimli::Unit<Reader<'d>>,
    entry: &gimli::DebuggingInformationEntry<Reader<'d>>,
) -> Definition<'d> {
    let name = [gimli::DW_AT_linkage_name, gimli::DW_AT_name]
        .into_iter()
        .find_map(|at| dwarf.attr_string(unit, entry.attr_value(at)?).ok())
        .map(|r| r.slice());
    let addr = if entry.tag() == gimli::DW_TAG_subprogram {
        entry
            .attr_value(gimli::DW_AT_low_pc)
            .and_then(|v| dwarf.attr_address(unit, v).ok().flatten())
    } else {
        match entry.attr_value(gimli::DW_AT_location) {
            Some(AttributeValue::Exprloc(expr)) => {
                let mut ops = expr.operations(unit.encoding());
                match ops.next() {
                    Ok(Some(gimli::Operation::Address { address })) => Some(address),
                    _ => None,
                }
            }
            _ => None,
        }
    };
    Definition {
        name,
        addr,
        file: udata(entry.attr_value(gimli::DW_AT_decl_file)),
        line: udata(entry.attr_value(gimli::DW_AT_decl_line)),
    }
}

/// Fills queries from function and variable DIEs that have an address. A DIE completing an
/// earlier declaration (`DW_AT_specification`) takes the declaration's name, file and line.
fn attribute_dies(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
    by_name: &HashMap<&[u8], Vec<usize>>,
    queries: &[Query<'_>],
    found: &mut [Option<SourceLocation>],
) -> gimli::Result<()> {
    let mut entries = unit.entries();
    while let Some(entry) = entries.next_dfs()? {
        if !matches!(
            entry.tag(),
            gimli::DW_TAG_subprogram | gimli::DW_TAG_variable
        ) {
            continue;
        }
        let mut def = definition(dwarf, unit, entry);
        let Some(addr) = def.addr else {
            continue;
        };
        if let Some(AttributeValue::UnitRef(offset)) = entry
            .attr_value(gimli::DW_AT_specification)
            .or_else(|| entry.attr_value(gimli::DW_AT_abstract_origin))
        {
            let decl = definition(dwarf, unit, &unit.entry(offset)?);
            def.name = def.name.or(decl.name);
            def.file = def.file.or(decl.file);
            def.line = def.line.or(decl.line);
        }
        let (Some(name), Some(file), Some(line)) = (def.name, def.file, def.line) else {
            continue;
        };
        let Some(indices) = by_name.get(name) else {
            continue;
        };
        for &i in indices {
            if found[i].is_none() && queries[i].addr == addr {
                found[i] = file_name(dwarf, unit, file).map(|file| SourceLocation { file, line });
            }
        }
    }
    Ok(())
}

/// Fills the remaining queries whose address a row of the unit's line table covers.
fn attribute_lines(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
    queries: &[Query<'_>],
    functions: &[bool],
    found: &mut [Option<SourceLocation>],
) -> gimli::Result<()> {
    let Some(program) = unit.line_program.clone() else {
        return Ok(());
    };
    let mut rows = program.rows();
    let mut previous: Option<(u64, u64, u64)> = None;
    while let Some((_, row)) = rows.next_row()? {
        if let Some((start, file, line)) = previous {
            let end = row.address();
            for (i, q) in queries.iter().enumerate() {
                if found[i].is_none() && functions[i] && q.addr >= start && q.addr < end && line > 0
                {
                    found[i] =
                        file_name(dwarf, unit, file).map(|file| SourceLocation { file, line });
                }
            }
        }
        previous = if row.end_sequence() {
            None
        } else {
            let line = row.line().map_or(0, |l| l.get());
            Some((row.address(), row.file_index(), line))
        };
    }
    Ok(())
}
