//! `kallsyms-diff`: why two link passes give different kallsyms tables.
//!
//! Owns the comparison of two passes (text maps or linked images): which symbols joined or
//! left the kallsyms set and why, which pairs changed order, how every table's size moved,
//! and, for linked images, the layout facts behind each boundary coincidence with the source
//! line of every symbol named. The kallsyms rules themselves stay in [`crate::kallsyms`]
//! (membership is read off the tables it builds, only the explanation is made here); nothing
//! here prints: [`PassDiff::human`] and serde give the two renderings.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};

use serde::{Serialize, Serializer};
use thiserror::Error;

use super::image::{self, ImageError, ImageSection, LinkedImage};
use super::source::{self, Query, SourceLocation};
use crate::kallsyms::{
    self, KallsymsError, Options, PtrWidth, Ranges, SectionClass, Symbol, SymbolMap, Tables,
};

/// One of the two passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Side {
    A,
    B,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::A => "A",
            Side::B => "B",
        })
    }
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// Why a pass could not be compared.
#[derive(Debug, Error, miette::Diagnostic)]
pub enum DiffError {
    /// The file is an ELF image that could not be read.
    #[error("pass {side}: {source}")]
    Image { side: Side, source: ImageError },
    /// The kernel tool would fail on this pass's map.
    #[error("pass {side}: {source}")]
    Kallsyms { side: Side, source: KallsymsError },
}

/// A pass as given: a `.syms` text map, or a linked image read like link-vmlinux.sh reads it.
#[derive(Debug)]
pub enum PassInput<'a> {
    Map(&'a [u8]),
    Image(LinkedImage<'a>),
}

impl<'a> PassInput<'a> {
    /// An ELF file (by its magic) becomes an image, anything else a text map.
    pub fn read(data: &'a [u8], version: kallsyms::Version) -> Result<Self, ImageError> {
        if image::is_elf(data) {
            Ok(PassInput::Image(LinkedImage::parse(data, version)?))
        } else {
            Ok(PassInput::Map(data))
        }
    }

    fn symbol_map(&self, version: kallsyms::Version) -> Result<SymbolMap<'_>, KallsymsError> {
        match self {
            PassInput::Map(text) => kallsyms::parse_symbol_map(text, version),
            PassInput::Image(image) => image.symbol_map(),
        }
    }

    fn image(&self) -> Option<&LinkedImage<'a>> {
        match self {
            PassInput::Image(image) => Some(image),
            PassInput::Map(_) => None,
        }
    }

    /// The image's word size, or for a map the width nm gave its first address.
    fn ptr(&self) -> Option<PtrWidth> {
        match self {
            PassInput::Image(image) => Some(image.ptr),
            PassInput::Map(text) => {
                let first = text.split(|&b| b == b'\n').next()?;
                let digits = first.iter().take_while(|b| b.is_ascii_hexdigit()).count();
                match digits {
                    0 => None,
                    1..=8 => Some(PtrWidth::Bits32),
                    _ => Some(PtrWidth::Bits64),
                }
            }
        }
    }
}

/// An address, printed and serialised in hex (JSON numbers lose 64-bit precision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Addr(pub u64);

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl Serialize for Addr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The same quantity in pass A and pass B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pair<T> {
    pub a: T,
    pub b: T,
}

impl<T: Copy> Pair<T> {
    fn get(&self, side: Side) -> T {
        match side {
            Side::A => self.a,
            Side::B => self.b,
        }
    }
}

/// A kallsyms text range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RangeName {
    /// `_stext` … `_etext`.
    Text,
    /// `_sinittext` … `_einittext`.
    InitText,
}

impl RangeName {
    /// The start and end marker names.
    pub fn markers(self) -> (&'static str, &'static str) {
        match self {
            RangeName::Text => ("_stext", "_etext"),
            RangeName::InitText => ("_sinittext", "_einittext"),
        }
    }

    fn end_marker(self) -> &'static str {
        self.markers().1
    }
}

/// Where a symbol stands with respect to the kallsyms rules in one pass, and so why it is in
/// the tables or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "standing", rename_all = "kebab-case")]
pub enum Standing {
    /// Not in this pass's map at all (nm or mksysmap did not list it).
    Absent,
    /// Dropped by its type letter or name (absolute, `u`/`n`, the version's ignore lists).
    Ignored,
    /// Kept because `--all-symbols` keeps everything not ignored.
    AllSymbols,
    /// Kept because 6.12 keeps every `__start_`/`__stop_` name.
    StartStop,
    /// Stable mode: the class of its section decided (`text`, `inittext`, `percpu`, `other`).
    Section { class: String },
    /// Inside a range; `at_start` when it equals the start marker, `at_end` when it is the end
    /// marker itself.
    InRange {
        range: RangeName,
        at_start: bool,
        at_end: bool,
    },
    /// Equals `_etext`/`_einittext` without being it: the kernel drops it (end coincidence).
    EndCoincidence { marker: String },
    /// Outside both text ranges.
    OutsideRanges,
}

/// One pass's view of a symbol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SymbolState {
    pub addr: Addr,
    /// nm type letter in the map (the table may store `A` for per-cpu symbols).
    pub kind: char,
    pub kept: bool,
    #[serde(flatten)]
    pub standing: Standing,
    /// The section the symbol is defined in (linked images only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
}

/// The headline reason of a membership change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Reason {
    /// Moved into or out of a text range.
    RangeMembership,
    /// Equals `_etext`/`_einittext` in one pass only.
    EndCoincidence { marker: String, side: Side },
    /// The type letter changed and one of the letters is ignored.
    TypeChange { a: char, b: char },
    /// Listed in only one pass's map.
    NotInMap { side: Side },
    /// Stable mode: the class of its section changed.
    Section,
}

/// A symbol that joined (in B only) or left (in A only) the kallsyms set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MembershipChange {
    pub name: String,
    #[serde(flatten)]
    pub reason: Reason,
    pub a: Option<SymbolState>,
    pub b: Option<SymbolState>,
}

/// A symbol kept in both passes whose stored type letter differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retyped {
    pub name: String,
    pub kind: Pair<char>,
    pub addr: Pair<Addr>,
}

/// Two symbols next to each other in A's table that B's table orders the other way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderChange {
    /// Earlier in A.
    pub first: String,
    /// Later in A, earlier in B.
    pub second: String,
    pub first_addr: Pair<Addr>,
    pub second_addr: Pair<Addr>,
}

/// One table's size and label offset in both passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableDelta {
    pub table: String,
    pub size: Pair<u64>,
    pub offset: Pair<u64>,
}

impl TableDelta {
    /// Size in B minus size in A.
    pub fn delta(&self) -> i128 {
        i128::from(self.size.b) - i128::from(self.size.a)
    }
}

/// An allocated section whose address or size differs between the images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionMove {
    pub name: String,
    pub addr: Pair<Addr>,
    pub size: Pair<u64>,
    /// `sh_addralign` in A.
    pub align: u64,
}

/// A place inside a section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionPlace {
    pub section: String,
    pub section_addr: Addr,
    pub section_end: Addr,
    pub offset: u64,
}

/// The output section that begins at a marker's address and what precedes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Boundary {
    pub section: String,
    /// Its `sh_addralign`.
    pub align: u64,
    /// The allocated section that ends last before it.
    pub previous: Option<String>,
    pub previous_end: Option<Addr>,
    /// Bytes between the previous section's end and the boundary (alignment padding).
    pub gap: Option<u64>,
}

/// The layout facts of one pass behind a coincidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayoutFacts {
    pub symbol_addr: Addr,
    pub marker_addr: Addr,
    pub symbol_in: Option<SectionPlace>,
    pub marker_in: Option<SectionPlace>,
    pub boundary: Option<Boundary>,
    /// The largest power of two (up to 2^30) that divides the marker's address.
    pub marker_alignment: u64,
}

/// A symbol whose value equals a range marker in one pass only, explained in layout terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cause {
    pub symbol: String,
    pub marker: String,
    /// The pass in which the two are equal.
    pub equal_in: Side,
    pub facts: Pair<LayoutFacts>,
    /// The same, as a sentence.
    pub text: String,
}

/// Everything `ldcheck kallsyms-diff` reports.
#[derive(Debug, Clone, Serialize)]
pub struct PassDiff {
    pub version: String,
    pub ptr_bits: u32,
    /// Every table has the same size in both passes (what link-vmlinux.sh's size check needs).
    pub agree: bool,
    /// Symbols in each pass's tables.
    pub symbols: Pair<usize>,
    pub joined: Vec<MembershipChange>,
    pub left: Vec<MembershipChange>,
    pub retyped: Vec<Retyped>,
    pub reordered: Vec<OrderChange>,
    pub tables: Vec<TableDelta>,
    pub rodata: Pair<u64>,
    /// Allocated sections that moved or changed size (linked images only).
    pub moved_sections: Vec<SectionMove>,
    /// The first section (in A's address order) whose size changed, and whether it holds the
    /// kallsyms tables.
    pub first_resized: Option<String>,
    pub causes: Vec<Cause>,
    /// Source file and line of the symbols named above, from DWARF.
    pub sources: BTreeMap<String, SourceLocation>,
}

/// Options of the comparison: the kallsyms flags and, to override what the inputs say, the
/// word size the tables are laid out for.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiffOptions {
    pub kallsyms: Options,
    pub ptr: Option<PtrWidth>,
}

/// Matching key of a symbol: its name and the how-many-th entry of that name it is.
type Key<'m> = (&'m [u8], usize);

/// One pass, read and run through the tables.
struct Side1<'m> {
    map: &'m SymbolMap<'m>,
    tables: Tables<'m>,
    /// Map index → table index, for kept symbols.
    table_index: HashMap<usize, usize>,
    keys: Vec<Key<'m>>,
    by_key: HashMap<Key<'m>, usize>,
}

impl<'m> Side1<'m> {
    fn new(map: &'m SymbolMap<'m>, options: &Options, side: Side) -> Result<Self, DiffError> {
        let tables = kallsyms::build_tables(map, options)
            .map_err(|source| DiffError::Kallsyms { side, source })?;
        // Names borrow distinct bytes of the map text, so where a name starts identifies its
        // entry (6.1's scanf reader can find two entries on one line).
        let by_name_start: HashMap<usize, usize> = map
            .symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_ptr() as usize, i))
            .collect();
        let table_index = tables
            .symbols()
            .iter()
            .enumerate()
            .filter_map(|(t, s)| {
                by_name_start
                    .get(&(s.name.as_ptr() as usize))
                    .map(|&i| (i, t))
            })
            .collect();
        let mut seen: HashMap<&[u8], usize> = HashMap::new();
        let keys: Vec<Key<'m>> = map
            .symbols
            .iter()
            .map(|s| {
                let n = seen.entry(s.name).or_default();
                *n += 1;
                (s.name, *n)
            })
            .collect();
        let by_key = keys.iter().enumerate().map(|(i, &k)| (k, i)).collect();
        Ok(Side1 {
            map,
            tables,
            table_index,
            keys,
            by_key,
        })
    }

    fn kept(&self, i: usize) -> bool {
        self.table_index.contains_key(&i)
    }
}

fn class_name(class: SectionClass) -> &'static str {
    match class {
        SectionClass::Text => "text",
        SectionClass::InitText => "inittext",
        SectionClass::PerCpu => "percpu",
        SectionClass::Other => "other",
    }
}

const MARKERS: [&str; 6] = [
    "_stext",
    "_etext",
    "_sinittext",
    "_einittext",
    "__per_cpu_start",
    "__per_cpu_end",
];

/// Why the kallsyms rules treat `sym` the way the tables show (`kept`).
fn standing(sym: &Symbol<'_>, kept: bool, ranges: &Ranges, options: &Options) -> Standing {
    let ignored_letter = matches!(sym.kind, b'a' | b'A' | b'u' | b'n' | b'U' | b'N');
    if !kept && (ignored_letter || options.all_symbols) {
        return Standing::Ignored;
    }
    if options.all_symbols {
        return Standing::AllSymbols;
    }
    if options.version == kallsyms::Version::V6_12
        && (sym.name.starts_with(b"__start_") || sym.name.starts_with(b"__stop_"))
    {
        return Standing::StartStop;
    }
    if options.stable.is_some()
        && let Some(class) = sym.section
        && !MARKERS.iter().any(|m| m.as_bytes() == sym.name)
    {
        return Standing::Section {
            class: class_name(class).to_string(),
        };
    }
    for (range, bounds) in [
        (RangeName::Text, ranges.text),
        (RangeName::InitText, ranges.inittext),
    ] {
        let end = range.end_marker();
        if sym.addr == bounds.end && sym.name != end.as_bytes() && bounds.start <= bounds.end {
            return Standing::EndCoincidence {
                marker: end.to_string(),
            };
        }
        if sym.addr >= bounds.start && sym.addr <= bounds.end {
            return Standing::InRange {
                range,
                at_start: sym.addr == bounds.start,
                at_end: sym.addr == bounds.end,
            };
        }
    }
    if kept {
        // Kept although outside the ranges: only the kernel's own rules can say why.
        Standing::AllSymbols
    } else if ignored_letter {
        Standing::Ignored
    } else {
        Standing::OutsideRanges
    }
}

fn reason(a: Option<&SymbolState>, b: Option<&SymbolState>) -> Reason {
    let (Some(a), Some(b)) = (a, b) else {
        return Reason::NotInMap {
            side: if a.is_none() { Side::A } else { Side::B },
        };
    };
    for (state, side) in [(a, Side::A), (b, Side::B)] {
        if let Standing::EndCoincidence { marker } = &state.standing {
            return Reason::EndCoincidence {
                marker: marker.clone(),
                side,
            };
        }
    }
    if a.kind != b.kind && (a.standing == Standing::Ignored || b.standing == Standing::Ignored) {
        return Reason::TypeChange {
            a: a.kind,
            b: b.kind,
        };
    }
    if matches!(a.standing, Standing::Section { .. })
        || matches!(b.standing, Standing::Section { .. })
    {
        return Reason::Section;
    }
    Reason::RangeMembership
}

/// Compares two passes under `options`.
pub fn diff(
    a: &PassInput<'_>,
    b: &PassInput<'_>,
    options: &DiffOptions,
) -> Result<PassDiff, DiffError> {
    let kopts = options.kallsyms;
    kopts.validate().map_err(|source| DiffError::Kallsyms {
        side: Side::A,
        source,
    })?;
    let map_a = a
        .symbol_map(kopts.version)
        .map_err(|source| DiffError::Kallsyms {
            side: Side::A,
            source,
        })?;
    let map_b = b
        .symbol_map(kopts.version)
        .map_err(|source| DiffError::Kallsyms {
            side: Side::B,
            source,
        })?;
    let sa = Side1::new(&map_a, &kopts, Side::A)?;
    let sb = Side1::new(&map_b, &kopts, Side::B)?;
    let ptr = options
        .ptr
        .or_else(|| a.ptr())
        .or_else(|| b.ptr())
        .unwrap_or(PtrWidth::Bits64);
    let images = Pair {
        a: a.image(),
        b: b.image(),
    };

    let state = |side: &Side1<'_>, image: Option<&LinkedImage<'_>>, i: usize| {
        let sym = &side.map.symbols[i];
        let kept = side.kept(i);
        let section = image.and_then(|img| {
            let found = img.symbol(sym.name)?;
            Some(img.section_of(found)?.name.clone())
        });
        SymbolState {
            addr: Addr(sym.addr),
            kind: char::from(sym.kind),
            kept,
            standing: standing(sym, kept, side.tables.ranges(), &kopts),
            section,
        }
    };

    let mut joined = Vec::new();
    let mut left = Vec::new();
    let mut retyped = Vec::new();
    for (i, key) in sa.keys.iter().enumerate() {
        let j = sb.by_key.get(key).copied();
        let in_a = sa.kept(i);
        let in_b = j.is_some_and(|j| sb.kept(j));
        if in_a && in_b {
            let j = j.unwrap_or_default();
            let (ta, tb) = (
                &sa.tables.symbols()[sa.table_index[&i]],
                &sb.tables.symbols()[sb.table_index[&j]],
            );
            if ta.kind != tb.kind {
                retyped.push(Retyped {
                    name: String::from_utf8_lossy(key.0).into_owned(),
                    kind: Pair {
                        a: char::from(ta.kind),
                        b: char::from(tb.kind),
                    },
                    addr: Pair {
                        a: Addr(ta.addr),
                        b: Addr(tb.addr),
                    },
                });
            }
        } else if in_a || in_b {
            let st_a = Some(state(&sa, images.a, i));
            let st_b = j.map(|j| state(&sb, images.b, j));
            let change = MembershipChange {
                name: String::from_utf8_lossy(key.0).into_owned(),
                reason: reason(st_a.as_ref(), st_b.as_ref()),
                a: st_a,
                b: st_b,
            };
            if in_a {
                left.push(change);
            } else {
                joined.push(change);
            }
        }
    }
    for (j, key) in sb.keys.iter().enumerate() {
        if sb.kept(j) && !sa.by_key.contains_key(key) {
            let st_b = Some(state(&sb, images.b, j));
            joined.push(MembershipChange {
                name: String::from_utf8_lossy(key.0).into_owned(),
                reason: reason(None, st_b.as_ref()),
                a: None,
                b: st_b,
            });
        }
    }

    let reordered = order_changes(&sa, &sb);
    let la = sa.tables.rodata_layout(ptr);
    let lb = sb.tables.rodata_layout(ptr);
    let tables: Vec<TableDelta> = la
        .tables
        .iter()
        .zip(&lb.tables)
        .map(|(ta, tb)| TableDelta {
            table: ta.kind.label().to_string(),
            size: Pair {
                a: ta.size,
                b: tb.size,
            },
            offset: Pair {
                a: ta.offset,
                b: tb.offset,
            },
        })
        .collect();
    let agree = la.size == lb.size && tables.iter().all(|t| t.size.a == t.size.b);

    let mut report = PassDiff {
        version: kopts.version.to_string(),
        ptr_bits: if ptr == PtrWidth::Bits64 { 64 } else { 32 },
        agree,
        symbols: Pair {
            a: sa.tables.symbols().len(),
            b: sb.tables.symbols().len(),
        },
        joined,
        left,
        retyped,
        reordered,
        tables,
        rodata: Pair {
            a: la.size,
            b: lb.size,
        },
        moved_sections: Vec::new(),
        first_resized: None,
        causes: Vec::new(),
        sources: BTreeMap::new(),
    };
    if let (Some(ia), Some(ib)) = (images.a, images.b) {
        let images = Pair { a: ia, b: ib };
        report.moved_sections = moved_sections(ia, ib);
        report.first_resized = first_resized(ia, &report.moved_sections);
        report.causes = causes(&report, images);
    }
    attribute_sources(&mut report, images);
    Ok(report)
}

/// Adjacent pairs of A's table (among symbols kept in both) that B orders the other way.
fn order_changes(sa: &Side1<'_>, sb: &Side1<'_>) -> Vec<OrderChange> {
    let mut map_index_a = vec![0usize; sa.tables.symbols().len()];
    for (&i, &t) in &sa.table_index {
        map_index_a[t] = i;
    }
    let common: Vec<(usize, usize)> = map_index_a
        .iter()
        .filter_map(|&i| {
            let j = *sb.by_key.get(&sa.keys[i])?;
            sb.table_index.get(&j).map(|&tb| (i, tb))
        })
        .collect();
    let addr_b = |tb: usize| sb.tables.symbols()[tb].addr;
    common
        .windows(2)
        .filter(|w| w[1].1 < w[0].1)
        .map(|w| {
            let (i0, tb0) = w[0];
            let (i1, tb1) = w[1];
            OrderChange {
                first: String::from_utf8_lossy(sa.keys[i0].0).into_owned(),
                second: String::from_utf8_lossy(sa.keys[i1].0).into_owned(),
                first_addr: Pair {
                    a: Addr(sa.map.symbols[i0].addr),
                    b: Addr(addr_b(tb0)),
                },
                second_addr: Pair {
                    a: Addr(sa.map.symbols[i1].addr),
                    b: Addr(addr_b(tb1)),
                },
            }
        })
        .collect()
}

/// Allocated sections matched by name (and occurrence) whose address or size changed.
fn moved_sections(a: &LinkedImage<'_>, b: &LinkedImage<'_>) -> Vec<SectionMove> {
    let keyed = |img: &LinkedImage<'_>| {
        let mut seen: HashMap<String, usize> = HashMap::new();
        img.sections
            .iter()
            .filter(|s| s.alloc)
            .map(|s| {
                let n = seen.entry(s.name.clone()).or_default();
                *n += 1;
                ((s.name.clone(), *n), s.clone())
            })
            .collect::<Vec<_>>()
    };
    let in_b: HashMap<(String, usize), ImageSection> = keyed(b).into_iter().collect();
    let mut moves: Vec<SectionMove> = keyed(a)
        .into_iter()
        .filter_map(|(key, sa)| {
            let sb = in_b.get(&key)?;
            (sa.addr != sb.addr || sa.size != sb.size).then(|| SectionMove {
                name: sa.name.clone(),
                addr: Pair {
                    a: Addr(sa.addr),
                    b: Addr(sb.addr),
                },
                size: Pair {
                    a: sa.size,
                    b: sb.size,
                },
                align: sa.align,
            })
        })
        .collect();
    moves.sort_by_key(|m| m.addr.a);
    moves
}

fn first_resized(a: &LinkedImage<'_>, moves: &[SectionMove]) -> Option<String> {
    let first = moves.iter().find(|m| m.size.a != m.size.b)?;
    let delta = i128::from(first.size.b) - i128::from(first.size.a);
    let holds_tables = a
        .symbol(b"kallsyms_num_syms")
        .and_then(|s| a.section_of(s))
        .is_some_and(|s| s.name == first.name);
    let later = moves.iter().filter(|m| m.addr.a > first.addr.a).count();
    Some(format!(
        "{} changed size first ({:#x} → {:#x}, {}{:#x} bytes){}; {} later section{} moved with it",
        first.name,
        first.size.a,
        first.size.b,
        if delta < 0 { "-" } else { "+" },
        delta.unsigned_abs(),
        if holds_tables {
            ", and it holds the kallsyms tables"
        } else {
            ""
        },
        later,
        if later == 1 { "" } else { "s" },
    ))
}

/// The largest power of two up to 2^30 that divides `value`.
fn alignment_of(value: u64) -> u64 {
    if value == 0 {
        1 << 30
    } else {
        (1u64 << value.trailing_zeros()).min(1 << 30)
    }
}

fn place(img: &LinkedImage<'_>, name: &str, addr: u64) -> Option<SectionPlace> {
    let sym = img.symbol(name.as_bytes())?;
    let sec = img.section_of(sym)?;
    Some(SectionPlace {
        section: sec.name.clone(),
        section_addr: Addr(sec.addr),
        section_end: Addr(sec.end()),
        offset: addr.wrapping_sub(sec.addr),
    })
}

fn facts(img: &LinkedImage<'_>, symbol: &str, sym_addr: u64, marker: &str) -> LayoutFacts {
    let marker_addr = img.symbol(marker.as_bytes()).map_or(0, |s| s.value);
    let boundary = img.sections_starting_at(marker_addr).next().map(|sec| {
        let previous = img.section_ending_before(marker_addr);
        Boundary {
            section: sec.name.clone(),
            align: sec.align,
            previous: previous.map(|p| p.name.clone()),
            previous_end: previous.map(|p| Addr(p.end())),
            gap: previous.map(|p| marker_addr - p.end()),
        }
    });
    LayoutFacts {
        symbol_addr: Addr(sym_addr),
        marker_addr: Addr(marker_addr),
        symbol_in: place(img, symbol, sym_addr),
        marker_in: place(img, marker, marker_addr),
        boundary,
        marker_alignment: alignment_of(marker_addr),
    }
}

fn describe_place(p: &Option<SectionPlace>) -> String {
    match p {
        Some(p) if p.section_addr.0 + p.offset == p.section_end.0 => {
            format!("{}+{:#x}, the end of {}", p.section, p.offset, p.section)
        }
        Some(p) => format!("{}+{:#x}", p.section, p.offset),
        None => "no section".to_string(),
    }
}

fn describe_side(side: Side, symbol: &str, marker: &str, f: &LayoutFacts) -> String {
    let mut text = if f.symbol_addr == f.marker_addr {
        format!(
            "In {side}, `{symbol}` = `{marker}` = {} ({}; a multiple of {:#x})",
            f.marker_addr,
            describe_place(&f.symbol_in),
            f.marker_alignment
        )
    } else {
        let d = i128::from(f.marker_addr.0) - i128::from(f.symbol_addr.0);
        format!(
            "In {side}, `{symbol}` = {} ({}) and `{marker}` = {} (a multiple of {:#x}), `{}` is {:#x} bytes {}",
            f.symbol_addr,
            describe_place(&f.symbol_in),
            f.marker_addr,
            f.marker_alignment,
            marker,
            d.unsigned_abs(),
            if d > 0 { "above it" } else { "below it" }
        )
    };
    if let Some(b) = &f.boundary {
        let _ = write!(
            text,
            "; `{marker}` starts {} (sh_addralign {:#x})",
            b.section, b.align
        );
        if let (Some(prev), Some(end), Some(gap)) = (&b.previous, b.previous_end, b.gap) {
            let padded_to_align =
                b.align > 1 && end.0.div_ceil(b.align) * b.align == f.marker_addr.0;
            if gap == 0 {
                let _ = write!(
                    text,
                    ", right at the end of {prev} ({end}, a multiple of {:#x})",
                    alignment_of(end.0)
                );
            } else if padded_to_align {
                let _ = write!(
                    text,
                    ", {gap:#x} bytes after the end of {prev} ({end}): padding up to its sh_addralign"
                );
            } else {
                let _ = write!(
                    text,
                    ", {gap:#x} bytes after the end of {prev} ({end}): more than its sh_addralign \
                     asks for, so an address expression of the script (such as ALIGN) puts it there"
                );
            }
        }
    }
    text.push('.');
    text
}

/// For every changed symbol that equals a range marker in one pass only, the layout facts.
fn causes(report: &PassDiff, images: Pair<&LinkedImage<'_>>) -> Vec<Cause> {
    let mut named: Vec<(&str, Pair<u64>)> = Vec::new();
    for change in report.joined.iter().chain(&report.left) {
        if let (Some(a), Some(b)) = (&change.a, &change.b) {
            named.push((
                &change.name,
                Pair {
                    a: a.addr.0,
                    b: b.addr.0,
                },
            ));
        }
    }
    for r in &report.retyped {
        named.push((
            &r.name,
            Pair {
                a: r.addr.a.0,
                b: r.addr.b.0,
            },
        ));
    }
    let mut out = Vec::new();
    for (symbol, addr) in named {
        for marker in MARKERS {
            if symbol == marker {
                continue;
            }
            let value = |side: Side| images.get(side).symbol(marker.as_bytes()).map(|s| s.value);
            let equal = |side: Side| value(side) == Some(addr.get(side));
            let equal_in = match (equal(Side::A), equal(Side::B)) {
                (true, false) => Side::A,
                (false, true) => Side::B,
                _ => continue,
            };
            let facts = Pair {
                a: facts(images.a, symbol, addr.a, marker),
                b: facts(images.b, symbol, addr.b, marker),
            };
            let other = equal_in.other();
            let text = format!(
                "`{symbol}` equals `{marker}` in {equal_in} but not in {other}. {} {}",
                describe_side(Side::A, symbol, marker, &facts.a),
                describe_side(Side::B, symbol, marker, &facts.b),
            );
            out.push(Cause {
                symbol: symbol.to_string(),
                marker: marker.to_string(),
                equal_in,
                facts,
                text,
            });
        }
    }
    out
}

/// Looks up the source line of every symbol the report names, in A's image and then in B's.
fn attribute_sources(report: &mut PassDiff, images: Pair<Option<&LinkedImage<'_>>>) {
    let mut names: Vec<&str> = Vec::new();
    names.extend(report.joined.iter().map(|c| c.name.as_str()));
    names.extend(report.left.iter().map(|c| c.name.as_str()));
    names.extend(report.retyped.iter().map(|r| r.name.as_str()));
    for o in &report.reordered {
        names.extend([o.first.as_str(), o.second.as_str()]);
    }
    for c in &report.causes {
        names.extend([c.symbol.as_str(), c.marker.as_str()]);
    }
    names.sort_unstable();
    names.dedup();
    let mut sources = BTreeMap::new();
    for img in [images.a, images.b].into_iter().flatten() {
        let pending: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !sources.contains_key(*n))
            .collect();
        let queries: Vec<Query<'_>> = pending
            .iter()
            .filter_map(|n| {
                img.symbol(n.as_bytes()).map(|s| Query {
                    name: s.name,
                    addr: s.value,
                })
            })
            .collect();
        for (q, loc) in queries.iter().zip(source::locate(img.data, &queries)) {
            if let Some(loc) = loc {
                sources.insert(String::from_utf8_lossy(q.name).into_owned(), loc);
            }
        }
    }
    report.sources = sources;
}

impl Standing {
    /// A phrase for the human report.
    fn describe(&self) -> String {
        match self {
            Standing::Absent => "not in the map".to_string(),
            Standing::Ignored => "dropped by its type letter or name".to_string(),
            Standing::AllSymbols => "kept (all symbols)".to_string(),
            Standing::StartStop => "kept (__start_/__stop_ name)".to_string(),
            Standing::Section { class } => format!("defined in a section of class {class}"),
            Standing::InRange {
                range,
                at_start,
                at_end,
            } => {
                let (start, end) = range.markers();
                if *at_start {
                    format!("equals `{start}`, the start of {start}..{end} (inclusive)")
                } else if *at_end {
                    format!("is `{end}`, the end of {start}..{end}")
                } else {
                    format!("inside {start}..{end}")
                }
            }
            Standing::EndCoincidence { marker } => {
                format!("equals `{marker}` without being it (the kernel drops it)")
            }
            Standing::OutsideRanges => "outside the text ranges".to_string(),
        }
    }
}

impl Reason {
    fn describe(&self) -> String {
        match self {
            Reason::RangeMembership => "range membership".to_string(),
            Reason::EndCoincidence { marker, side } => {
                format!("end coincidence with `{marker}` in {side}")
            }
            Reason::TypeChange { a, b } => format!("type change {a} → {b}"),
            Reason::NotInMap { side } => format!("not in {side}'s map"),
            Reason::Section => "section class".to_string(),
        }
    }
}

fn signed(delta: i128) -> String {
    match delta {
        0 => String::new(),
        d if d > 0 => format!("  (+{d})"),
        d => format!("  ({d})"),
    }
}

impl PassDiff {
    fn named(&self, name: &str) -> String {
        match self.sources.get(name) {
            Some(loc) => format!("`{name}` ({loc})"),
            None => format!("`{name}`"),
        }
    }

    fn write_changes(&self, out: &mut String, title: &str, changes: &[MembershipChange]) {
        if changes.is_empty() {
            return;
        }
        let _ = writeln!(out, "\n{title}:");
        for c in changes {
            let _ = writeln!(out, "  {}: {}", self.named(&c.name), c.reason.describe());
            for (side, state) in [(Side::A, &c.a), (Side::B, &c.b)] {
                match state {
                    Some(s) => {
                        let section = s
                            .section
                            .as_ref()
                            .map(|n| format!(" [in {n}]"))
                            .unwrap_or_default();
                        let _ = writeln!(
                            out,
                            "    {side}: {} {} {}{section}",
                            s.addr,
                            s.kind,
                            s.standing.describe()
                        );
                    }
                    None => {
                        let _ = writeln!(out, "    {side}: {}", Standing::Absent.describe());
                    }
                }
            }
        }
    }

    /// The report as text for people.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "kallsyms-diff ({} tables, {}-bit): the passes {}: kallsyms .rodata {} → {} bytes{}",
            self.version,
            self.ptr_bits,
            if self.agree { "agree" } else { "DISAGREE" },
            self.rodata.a,
            self.rodata.b,
            signed(i128::from(self.rodata.b) - i128::from(self.rodata.a)),
        );
        let _ = writeln!(
            out,
            "symbols in the tables: {} (A) → {} (B)",
            self.symbols.a, self.symbols.b
        );
        self.write_changes(&mut out, "joined (in B's tables, not in A's)", &self.joined);
        self.write_changes(&mut out, "left (in A's tables, not in B's)", &self.left);
        if !self.retyped.is_empty() {
            let _ = writeln!(out, "\ntype changed in the tables:");
            for r in &self.retyped {
                let _ = writeln!(
                    out,
                    "  {}: {} {} → {} {}",
                    self.named(&r.name),
                    r.addr.a,
                    r.kind.a,
                    r.addr.b,
                    r.kind.b
                );
            }
        }
        if !self.reordered.is_empty() {
            let _ = writeln!(out, "\norder changed (adjacent in A, the other way in B):");
            for o in &self.reordered {
                let _ = writeln!(
                    out,
                    "  {} {} before {} {} in A; in B {} {} comes before {} {}",
                    self.named(&o.first),
                    o.first_addr.a,
                    self.named(&o.second),
                    o.second_addr.a,
                    self.named(&o.second),
                    o.second_addr.b,
                    self.named(&o.first),
                    o.first_addr.b,
                );
            }
        }
        let _ = writeln!(out, "\ntables (size A → B, offset in .rodata):");
        for t in &self.tables {
            let _ = writeln!(
                out,
                "  {:<24} {:>9} → {:>9}   @{:#x} → @{:#x}{}",
                t.table,
                t.size.a,
                t.size.b,
                t.offset.a,
                t.offset.b,
                signed(t.delta())
            );
        }
        if self.first_resized.is_some() || !self.moved_sections.is_empty() {
            let _ = writeln!(out, "\nlayout:");
            if let Some(first) = &self.first_resized {
                let _ = writeln!(out, "  {first}");
            }
            for m in &self.moved_sections {
                let _ = writeln!(
                    out,
                    "  {:<24} {} → {}  size {:#x} → {:#x}  (align {:#x})",
                    m.name, m.addr.a, m.addr.b, m.size.a, m.size.b, m.align
                );
            }
        }
        if !self.causes.is_empty() {
            let _ = writeln!(out, "\nroot cause:");
            for c in &self.causes {
                let _ = writeln!(out, "  {}", c.text);
            }
        }
        if !self.sources.is_empty() {
            let _ = writeln!(out, "\nsources:");
            for (name, loc) in &self.sources {
                let _ = writeln!(out, "  {name}: {loc}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_is_the_largest_power_of_two_dividing() {
        assert_eq!(alignment_of(0x400050), 0x10);
        assert_eq!(alignment_of(0xffff_ffff_8172_e000), 0x2000);
        assert_eq!(alignment_of(1), 1);
        assert_eq!(alignment_of(0), 1 << 30);
    }

    #[test]
    fn map_word_size_follows_the_address_width() {
        let ptr = |text: &'static str| PassInput::Map(text.as_bytes()).ptr();
        assert_eq!(ptr("c0008000 T _stext\n"), Some(PtrWidth::Bits32));
        assert_eq!(ptr("ffffffff81000000 T _text\n"), Some(PtrWidth::Bits64));
        assert_eq!(ptr(""), None);
    }
}
