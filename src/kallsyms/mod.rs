//! The kernel's `scripts/kallsyms`, reimplemented: symbol map → compressed symbol tables.
//!
//! Owns the whole pipeline (read map → filter → sort → compress → tables → assembly text or
//! byte size) for Linux 6.1 and 6.12, plus the ldcheck-only "stable" mode. It does not read
//! ELF files (`crate::input` does, and feeds [`Symbol`]s with a [`SectionClass`]) and it does
//! not compare link passes.
//!
//! ```text
//! parse_symbol_map ─▶ SymbolMap ─▶ build_tables ─▶ Tables ─┬▶ write_asm   (the .S text)
//!                                   (filter, order,        └▶ rodata_size (no text at all)
//!                                    compress)
//! ```

mod compress;
mod emit;
mod filter;
mod order;
mod size;
mod stable;
mod symbols;

use crate::hash::{FastHasher, FastMap};
use crate::prefetch;
use crate::sync::locked;
use std::fmt;
use std::hash::Hasher;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

pub use compress::TokenTable;
pub use filter::{AddrRange, Ranges};
pub use size::{PtrWidth, RodataLayout, TableKind, TablePlacement};
pub use stable::{RULES as STABLE_RULES, StableOptions};
pub use symbols::{
    SectionClass, Symbol, SymbolMap, Warning, is_plain_line, parse_symbol_map, plain_entry,
};

/// Which kernel's `scripts/kallsyms` to behave like; input rules, options and output order differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Version {
    /// Linux 6.1: `fscanf` input, ignore lists inside the tool, optional base-relative tables.
    V6_1,
    /// Linux 6.12: line-based input filtered by `mksysmap`, always base-relative tables.
    #[default]
    V6_12,
}

impl Version {
    /// The spelling used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V6_1 => "6.1",
            Version::V6_12 => "6.12",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "6.1" => Ok(Version::V6_1),
            "6.12" => Ok(Version::V6_12),
            other => Err(format!(
                "unknown kallsyms format `{other}` (expected 6.1 or 6.12)"
            )),
        }
    }
}

/// The kernel tool's flags plus ldcheck's stable mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Options {
    /// Kernel version whose tool is reproduced.
    pub version: Version,
    /// `--all-symbols` (CONFIG_KALLSYMS_ALL): keep symbols outside the text ranges.
    pub all_symbols: bool,
    /// `--absolute-percpu` (CONFIG_KALLSYMS_ABSOLUTE_PERCPU): per-cpu symbols become absolute.
    pub absolute_percpu: bool,
    /// `--base-relative` (6.1 only, CONFIG_KALLSYMS_BASE_RELATIVE): 32-bit offsets table.
    pub base_relative: bool,
    /// `--lto-clang` (6.1 only, CONFIG_LTO_CLANG): name order ignores `.llvm.` suffixes.
    pub lto_clang: bool,
    /// ldcheck's stable mode; `None` reproduces the kernel tool byte for byte.
    pub stable: Option<StableOptions>,
}

impl Options {
    /// Options of the kernel tool of `version` with everything off.
    pub fn new(version: Version) -> Self {
        Options {
            version,
            ..Options::default()
        }
    }

    /// Rejects flags the chosen version's tool does not have (it would print its usage and exit 1).
    pub fn validate(&self) -> Result<(), KallsymsError> {
        if self.version == Version::V6_12 {
            for (set, flag) in [
                (self.base_relative, "--base-relative"),
                (self.lto_clang, "--lto-clang"),
            ] {
                if set {
                    return Err(KallsymsError::UnsupportedOption {
                        flag,
                        version: self.version,
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether the tables carry 32-bit offsets from a relative base (always in 6.12).
    pub fn relative(&self) -> bool {
        self.version == Version::V6_12 || self.base_relative
    }
}

/// Errors that make the kernel tool exit with status 1; each names the kernel's error class.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum KallsymsError {
    /// 6.12's `line format error`: the line is not `ADDRESS TYPE NAME`.
    #[error("line {line}: line format error")]
    #[diagnostic(
        code(kallsyms::line_format),
        help(
            "expected `nm -n` output: hexadecimal address, one space, a type letter, one space, the name"
        )
    )]
    LineFormat {
        /// 1-based line number in the input.
        line: usize,
    },
    /// 6.1's `No valid symbol.`: nothing survived filtering.
    #[error("No valid symbol.")]
    #[diagnostic(
        code(kallsyms::no_valid_symbol),
        help(
            "the 6.1 tool refuses an empty table; the map is empty or every symbol was filtered out"
        )
    )]
    NoValidSymbol,
    /// `symbol value … out of range in relative mode`: an offset does not fit in 32 bits.
    #[error(
        "kallsyms failure: {} symbol value {addr:#x} out of range in relative mode (line {line}: {name})",
        if *absolute { "absolute" } else { "relative" }
    )]
    #[diagnostic(code(kallsyms::out_of_range))]
    OutOfRange {
        /// Whether the symbol was a per-cpu absolute one.
        absolute: bool,
        /// The symbol's address.
        addr: u64,
        /// Its name (lossy UTF-8).
        name: String,
        /// 1-based line number in the input.
        line: usize,
    },
    /// The kernel tool's usage error: the flag does not exist in that version.
    #[error("option {flag} does not exist in the {version} kallsyms tool")]
    #[diagnostic(code(kallsyms::usage))]
    UnsupportedOption {
        /// The rejected flag.
        flag: &'static str,
        /// The version that lacks it.
        version: Version,
    },
}

/// Everything `scripts/kallsyms` would emit, computed but not yet formatted.
///
/// Holds borrowed names from the [`SymbolMap`]; [`Tables::write_asm`] prints the assembly and
/// [`Tables::rodata_size`] / [`Tables::rodata_layout`] give its assembled size without printing.
#[derive(Debug)]
pub struct Tables<'a> {
    options: Options,
    /// Kept symbols in table (address) order.
    syms: Vec<TableSymbol<'a>>,
    /// Compressed names, one after another; `name_ends[i]` is where symbol `i`'s ends.
    compressed: Vec<u8>,
    name_ends: Vec<u32>,
    tokens: TokenTable,
    /// `kallsyms_seqs_of_names`: table indices in name order.
    name_order: Vec<u32>,
    /// 32-bit `kallsyms_offsets` values (relative modes only), already range-checked.
    offsets: Vec<u32>,
    text_addr: u64,
    relative_base: u64,
    ranges: Ranges,
    /// Byte size of `kallsyms_names` before any stable-mode padding.
    names_bytes: u64,
}

/// One symbol as it appears in the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSymbol<'a> {
    /// Address from the map.
    pub addr: u64,
    /// Type letter as stored (per-cpu symbols become `A` with `--absolute-percpu`).
    pub kind: u8,
    /// Name without the type letter.
    pub name: &'a [u8],
    /// Whether the symbol is absolute (per-cpu with `--absolute-percpu`).
    pub absolute: bool,
    /// 1-based input line.
    pub line: usize,
}

impl<'a> Tables<'a> {
    /// Options the tables were built with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Kept symbols in table order (`kallsyms_offsets` order).
    pub fn symbols(&self) -> &[TableSymbol<'a>] {
        &self.syms
    }

    /// The compressed bytes of symbol `i`'s entry in `kallsyms_names` (without the length).
    pub fn compressed_name(&self, i: usize) -> &[u8] {
        let start = if i == 0 {
            0
        } else {
            self.name_ends[i - 1] as usize
        };
        &self.compressed[start..self.name_ends[i] as usize]
    }

    /// The token table chosen by the compressor.
    pub fn tokens(&self) -> &TokenTable {
        &self.tokens
    }

    /// `kallsyms_seqs_of_names`: table indices sorted by name.
    pub fn name_order(&self) -> &[u32] {
        &self.name_order
    }

    /// Value of `_text` seen in the map (0 when absent), the anchor of relocatable entries.
    pub fn text_addr(&self) -> u64 {
        self.text_addr
    }

    /// `kallsyms_relative_base` as an address.
    pub fn relative_base(&self) -> u64 {
        self.relative_base
    }

    /// Range boundaries found in the map (`_stext`/`_etext`, `_sinittext`/`_einittext`, per-cpu).
    pub fn ranges(&self) -> &Ranges {
        &self.ranges
    }
}

/// Runs the kernel tool's pipeline on a parsed map: filter, sort, compress, compute tables.
///
/// Fails exactly where the kernel tool exits with status 1 (6.1's empty table, offsets that
/// do not fit in relative mode, flags the version lacks).
pub fn build_tables<'a>(
    map: &SymbolMap<'a>,
    options: &Options,
) -> Result<Tables<'a>, KallsymsError> {
    let ordered = order_symbols(map, options)?;
    let lto_clang = options.version == Version::V6_1 && options.lto_clang;
    let (compressed, name_order) = compress_and_order(&ordered.syms, lto_clang);
    let names_bytes = size::names_bytes(&compressed.name_ends);
    Ok(Tables {
        options: *options,
        syms: ordered.syms,
        compressed: compressed.data,
        name_ends: compressed.name_ends,
        tokens: compressed.tokens,
        name_order,
        offsets: ordered.offsets,
        text_addr: ordered.text_addr,
        relative_base: ordered.relative_base,
        ranges: ordered.ranges,
        names_bytes,
    })
}

/// The compression of `syms` and their order by name, side by side: neither reads the other.
fn compress_and_order(
    syms: &[TableSymbol<'_>],
    lto_clang: bool,
) -> (compress::Compressed, Vec<u32>) {
    rayon::join(
        || compress::compress(syms),
        || order::name_order(syms, lto_clang),
    )
}

/// What the last few compressions [`rodata_layout_cached`] ran added to the tables' sizes,
/// each keyed by its whole input ("type + name" of every kept symbol, in table order) and
/// found again for the same names in another order (by an order-blind fingerprint).
/// Successive link passes mostly move addresses, not names, and a margin search alternates
/// between a handful of symbol sets; the compressor is the expensive step.
#[derive(Default)]
pub struct CompressCache {
    /// Most recently used first.
    entries: Mutex<Vec<Arc<CacheEntry>>>,
}

struct CacheEntry {
    key: Vec<u8>,
    /// [`fingerprint`] of the symbols the key was made from.
    fingerprint: u64,
    /// `kallsyms_names` bytes and token table bytes.
    sizes: (u64, u64),
    /// The compression's record, when it ran from the start and was asked to keep one.
    rounds: Option<compress::Rounds>,
}

/// Symbol sets kept; a margin search needs two (before and after a flip), passes up to three.
const CACHE_ENTRIES: usize = 4;

/// A hash of one key entry (type and name).
fn entry_hash(kind: u8, name: &[u8]) -> u64 {
    let mut h = FastHasher::default();
    h.write_u8(kind);
    h.write(name);
    h.finish()
}

/// A hash of the set of (type, name) entries of `syms`, whatever their order: the sum of the
/// entries' hashes. Equal sets have equal fingerprints; the converse is checked by
/// [`same_entries`].
fn fingerprint(syms: &[TableSymbol<'_>]) -> u64 {
    syms.iter()
        .fold(0u64, |sum, s| sum.wrapping_add(entry_hash(s.kind, s.name)))
}

/// Whether `key` was made from the same (type, name) entries as `syms`, in any order. Two
/// links' lists differ only where names at equal addresses swapped places, so the lists are
/// walked side by side and only the entries that differ position by position are counted
/// (one up for the key's, one down for the list's): the same entries leave every count at 0.
fn same_entries(key: &[u8], syms: &[TableSymbol<'_>]) -> bool {
    let mut unmatched: FastMap<(u8, &[u8]), i64> = FastMap::default();
    let mut rest = key;
    for s in syms {
        let Some((kind, name, after)) = key_entry(rest) else {
            return false;
        };
        rest = after;
        if (kind, name) != (s.kind, s.name) {
            *unmatched.entry((kind, name)).or_default() += 1;
            *unmatched.entry((s.kind, s.name)).or_default() -= 1;
        }
    }
    rest.is_empty() && unmatched.values().all(|&count| count == 0)
}

/// The cache key of `syms`: each name's length, type and bytes.
fn cache_key(syms: &[TableSymbol<'_>]) -> Vec<u8> {
    let mut key = Vec::with_capacity(syms.iter().map(|s| s.name.len() + 9).sum());
    for s in syms {
        key.extend_from_slice(&(s.name.len() as u64).to_le_bytes());
        key.push(s.kind);
        key.extend_from_slice(s.name);
    }
    key
}

/// Whether `key` is [`cache_key`] of `syms`, without building it.
fn key_matches(key: &[u8], syms: &[TableSymbol<'_>]) -> bool {
    let (matched, rest) = matching_head(key, syms);
    matched == syms.len() && rest.is_empty()
}

/// How many of `syms`, from the first, `key` starts with, and the rest of the key.
fn matching_head<'k>(key: &'k [u8], syms: &[TableSymbol<'_>]) -> (usize, &'k [u8]) {
    let mut rest = key;
    for (i, s) in prefetch::ahead(syms.iter(), |s| s.name).enumerate() {
        match key_entry(rest) {
            Some((kind, name, after)) if kind == s.kind && name == s.name => rest = after,
            _ => return (i, rest),
        }
    }
    (syms.len(), rest)
}

/// `kallsyms_names` bytes and token table bytes of a compression.
fn sizes_of(compressed: &compress::Compressed) -> (u64, u64) {
    (
        size::names_bytes(&compressed.name_ends),
        compressed.tokens.table_bytes(),
    )
}

/// How a symbol list differs from the list a cache key was made from, by exactly one entry.
#[derive(Clone, Copy)]
enum OneApart<'k> {
    /// The list has its symbol `at` more.
    Added(usize),
    /// The list lacks the key's entry `at` (type, name).
    Removed(usize, u8, &'k [u8]),
}

/// The one entry by which `syms` and the list `key` was made from differ (in the same
/// order otherwise), if that is all that differs.
fn one_apart<'k>(key: &'k [u8], syms: &[TableSymbol<'_>]) -> Option<OneApart<'k>> {
    let (at, rest) = matching_head(key, syms);
    if at < syms.len() && key_matches(rest, &syms[at + 1..]) {
        return Some(OneApart::Added(at));
    }
    let (kind, name, after) = key_entry(rest)?;
    key_matches(after, &syms[at..]).then_some(OneApart::Removed(at, kind, name))
}

/// The first entry of a key: type, name, and the rest of the key.
fn key_entry(key: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (len, after) = key.split_first_chunk::<8>()?;
    let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
    let (&kind, after) = after.split_first()?;
    (after.len() >= len).then(|| (kind, &after[..len], &after[len..]))
}

impl CompressCache {
    /// The entries as they stand, so that a lookup or a compression holds no lock: margin
    /// probes build their tables side by side.
    fn entries(&self) -> Vec<Arc<CacheEntry>> {
        locked(&self.entries).clone()
    }

    /// Puts `entry` first, once, dropping the least recently used past [`CACHE_ENTRIES`].
    fn keep(&self, entry: Arc<CacheEntry>) {
        let mut entries = locked(&self.entries);
        entries.retain(|e| !Arc::ptr_eq(e, &entry));
        entries.insert(0, entry);
        entries.truncate(CACHE_ENTRIES);
    }

    /// What the compression of `syms` contributes to the tables' sizes: `kallsyms_names`
    /// bytes and token table bytes. Keeps only those, and orders no names. With
    /// `longest_name`, a compression run here is recorded for resuming with any one name of
    /// up to `longest_name()` bytes more or less.
    fn compressed_sizes(
        &self,
        syms: &[TableSymbol<'_>],
        longest_name: Option<impl FnOnce() -> usize>,
    ) -> (u64, u64) {
        // Cheapest first: the same list, the same names in another order (names at equal
        // addresses that another link lists in another order), then a resumed or a whole
        // compression.
        let entries = self.entries();
        let entry = if let Some(same) = entries.iter().find(|e| key_matches(&e.key, syms)) {
            Arc::clone(same)
        } else {
            let fingerprint = fingerprint(syms);
            let reordered = entries
                .iter()
                .find(|e| e.fingerprint == fingerprint && same_entries(&e.key, syms));
            match reordered {
                Some(same) => Arc::clone(same),
                None => Arc::new(
                    Self::resume(&entries, syms, fingerprint).unwrap_or_else(|| {
                        let record = longest_name.map(|longest| longest());
                        let (sizes, rounds) = compress::compressed_sizes(syms, record);
                        CacheEntry {
                            key: cache_key(syms),
                            fingerprint,
                            sizes,
                            rounds,
                        }
                    }),
                ),
            }
        };
        let sizes = entry.sizes;
        self.keep(entry);
        sizes
    }

    /// The sizes for `syms` from a recorded compression of the same symbols but one (a
    /// margin probe that moves one symbol across a range boundary): unchanged rounds cost
    /// nothing, and a changed one reruns the rest from the last checkpoint before it.
    /// `fingerprint` is that of `syms`.
    fn resume(
        entries: &[Arc<CacheEntry>],
        syms: &[TableSymbol<'_>],
        fingerprint: u64,
    ) -> Option<CacheEntry> {
        entries.iter().find_map(|entry| {
            let rounds = entry.rounds.as_ref()?;
            let (names, tokens) = entry.sizes;
            let text;
            let change = match one_apart(&entry.key, syms)? {
                OneApart::Added(at) => {
                    text = [&[syms[at].kind][..], syms[at].name].concat();
                    compress::Change::Added { at, text: &text }
                }
                OneApart::Removed(at, kind, name) => {
                    text = [&[kind][..], name].concat();
                    compress::Change::Removed { at, text: &text }
                }
            };
            let sizes = match rounds.resume(change)? {
                compress::Resumed::Unchanged { len } => match change {
                    compress::Change::Added { .. } => (names + size::entry_bytes(len), tokens),
                    compress::Change::Removed { .. } => {
                        (names.checked_sub(size::entry_bytes(len))?, tokens)
                    }
                },
                compress::Resumed::Rerun(compressed) => sizes_of(&compressed),
            };
            Some(CacheEntry {
                key: cache_key(syms),
                fingerprint,
                sizes,
                rounds: None,
            })
        })
    }
}

/// `build_tables(map, options)?.rodata_layout(ptr)`, for a caller that needs only where the
/// tables go (the pass simulator's links): the same checks and errors, without the name order,
/// and the compression taken from `cache` when the names to compress are unchanged.
pub fn rodata_layout_cached(
    map: &SymbolMap<'_>,
    options: &Options,
    ptr: PtrWidth,
    cache: &CompressCache,
) -> Result<RodataLayout, KallsymsError> {
    let ordered = order_symbols(map, options)?;
    // A map of the same link one kept symbol apart (a later pass, a margin probe) differs by
    // a name this one lists. That is how the symbol sets of one link differ where the text
    // ranges decide which symbols are kept; with every symbol kept, a symbol's address does
    // not decide whether it is, and the recording (a fifth to a quarter of a compression's
    // time) would go unused: a set one apart is then compressed whole.
    let longest_name = || map.symbols.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let record = (!options.all_symbols).then_some(longest_name);
    let (names_bytes, token_table_bytes) = cache.compressed_sizes(&ordered.syms, record);
    let sizes = size::TableSizes {
        options: *options,
        symbols: ordered.syms.len() as u64,
        names_bytes,
        token_table_bytes,
    };
    Ok(sizes.rodata_layout(ptr))
}

/// The kept symbols in table order and what the tool derives from their addresses.
struct Ordered<'a> {
    syms: Vec<TableSymbol<'a>>,
    offsets: Vec<u32>,
    relative_base: u64,
    text_addr: u64,
    ranges: Ranges,
}

/// The tool's steps before compression: filter, sort, relative offsets (with their checks).
fn order_symbols<'a>(map: &SymbolMap<'a>, options: &Options) -> Result<Ordered<'a>, KallsymsError> {
    options.validate()?;
    let selection = filter::select(map, options)?;
    let mut syms = selection.symbols;
    order::sort_by_address(&mut syms, options.stable.is_some());
    let relative_base = if options.relative() {
        order::relative_base(&syms)
    } else {
        0
    };
    let offsets = if options.relative() {
        order::relative_offsets(&syms, relative_base, options.absolute_percpu)?
    } else {
        Vec::new()
    };
    Ok(Ordered {
        syms,
        offsets,
        relative_base,
        text_addr: selection.text_addr,
        ranges: selection.ranges,
    })
}

/// Exact byte size of the `.rodata` the kernel tool's output assembles to, for `input` as a
/// `nm -n` map. Formats no text; the cost is parsing plus compression.
pub fn tables_size(input: &[u8], options: &Options, ptr: PtrWidth) -> Result<u64, KallsymsError> {
    let map = parse_symbol_map(input, options.version)?;
    Ok(build_tables(&map, options)?.rodata_size(ptr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syms<'a>(entries: &[(u8, &'a [u8])]) -> Vec<TableSymbol<'a>> {
        entries
            .iter()
            .map(|&(kind, name)| TableSymbol {
                addr: 0,
                kind,
                name,
                absolute: false,
                line: 0,
            })
            .collect()
    }

    #[test]
    fn same_entries_is_order_blind_and_exact() {
        let key = cache_key(&syms(&[(b't', b"a"), (b't', b"a"), (b'T', b"b")]));
        let reordered = syms(&[(b'T', b"b"), (b't', b"a"), (b't', b"a")]);
        assert!(same_entries(&key, &reordered));
        assert_eq!(
            fingerprint(&reordered),
            fingerprint(&syms(&[(b't', b"a"), (b't', b"a"), (b'T', b"b")]))
        );
        // The same names with other counts, another type, or one entry more or less.
        for other in [
            syms(&[(b't', b"a"), (b'T', b"b"), (b'T', b"b")]),
            syms(&[(b't', b"a"), (b't', b"a"), (b't', b"b")]),
            syms(&[(b't', b"a"), (b'T', b"b")]),
            syms(&[(b't', b"a"), (b't', b"a"), (b'T', b"b"), (b'T', b"b")]),
        ] {
            assert!(!same_entries(&key, &other));
        }
    }
}
