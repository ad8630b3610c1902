//! Which symbols enter the tables: each version's ignore rules, the range boundaries, the
//! text/inittext membership rule with its end-coincidence corner case, `__start_`/`__stop_`,
//! and per-cpu symbols made absolute.
//!
//! Works on the parsed map in input order; it neither sorts nor compresses. Stable mode only
//! changes how membership is decided (by section, when the symbol carries one).

use super::stable;
use super::symbols::{Symbol, SymbolMap};
use super::{KallsymsError, Options, TableSymbol, Version};

/// An inclusive address range delimited by two marker symbols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrRange {
    /// Value of the start marker (last occurrence in the map).
    pub start: u64,
    /// Value of the end marker (last occurrence in the map).
    pub end: u64,
}

impl AddrRange {
    fn contains(&self, addr: u64) -> bool {
        addr >= self.start && addr <= self.end
    }
}

/// The boundaries the tool records while reading; absent markers keep the tool's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ranges {
    /// `_stext` … `_etext` (default 0 … 0).
    pub text: AddrRange,
    /// `_sinittext` … `_einittext` (default 0 … 0).
    pub inittext: AddrRange,
    /// `__per_cpu_start` … `__per_cpu_end` (default all-ones … 0, i.e. empty).
    pub percpu: AddrRange,
}

impl Default for Ranges {
    fn default() -> Self {
        Ranges {
            text: AddrRange { start: 0, end: 0 },
            inittext: AddrRange { start: 0, end: 0 },
            percpu: AddrRange {
                start: u64::MAX,
                end: 0,
            },
        }
    }
}

impl Ranges {
    /// `check_symbol_range`: a marker name updates its bound; the text pair is checked first.
    fn record(&mut self, name: &[u8], addr: u64) {
        match name {
            b"_stext" => self.text.start = addr,
            b"_etext" => self.text.end = addr,
            b"_sinittext" => self.inittext.start = addr,
            b"_einittext" => self.inittext.end = addr,
            _ => {}
        }
        match name {
            b"__per_cpu_start" => self.percpu.start = addr,
            b"__per_cpu_end" => self.percpu.end = addr,
            _ => {}
        }
    }

    /// Whether a symbol at `addr` named `name` is inside a text range and not on the
    /// end-coincidence corner (same value as `_etext`/`_einittext` without being it).
    pub fn text_member(&self, name: &[u8], addr: u64) -> bool {
        if !self.text.contains(addr) && !self.inittext.contains(addr) {
            return false;
        }
        !((addr == self.text.end && name != b"_etext")
            || (addr == self.inittext.end && name != b"_einittext"))
    }
}

/// The symbols the tables are made of, still in input order.
pub(super) struct Selection<'a> {
    pub symbols: Vec<TableSymbol<'a>>,
    pub text_addr: u64,
    pub ranges: Ranges,
}

/// Absolute symbols that both versions keep (ia64 and friends).
const KEPT_ABSOLUTE: [&[u8]; 4] = [
    b"__kernel_syscall_via_break",
    b"__kernel_syscall_via_epc",
    b"__kernel_sigtramp",
    b"__gp",
];

fn ignored_absolute(name: &[u8], kind: u8) -> bool {
    kind.eq_ignore_ascii_case(&b'A') && !KEPT_ABSOLUTE.contains(&name)
}

/// 6.12: `mksysmap` already removed most names; the tool drops `u`, `n` and absolute symbols.
fn ignored_6_12(name: &[u8], kind: u8) -> bool {
    kind == b'u' || kind == b'n' || ignored_absolute(name, kind)
}

/// 6.1: the tool carries its own lists of names that vary between passes or are stubs.
fn ignored_6_1(name: &[u8], kind: u8) -> bool {
    const EXACT: [&[u8]; 11] = [
        b"kallsyms_addresses",
        b"kallsyms_offsets",
        b"kallsyms_relative_base",
        b"kallsyms_num_syms",
        b"kallsyms_names",
        b"kallsyms_markers",
        b"kallsyms_token_table",
        b"kallsyms_token_index",
        b"kallsyms_seqs_of_names",
        b"_SDA_BASE_",
        b"_SDA2_BASE_",
    ];
    const PREFIXES: [&[u8]; 10] = [
        b"__efistub_",
        b"__kvm_nvhe_$",
        b"__kvm_nvhe_.L",
        b"__AArch64ADRPThunk_",
        b"__ARMV5PILongThunk_",
        b"__ARMV7PILongThunk_",
        b"__ThumbV7PILongThunk_",
        b"__LA25Thunk_",
        b"__microLA25Thunk_",
        b"__kcfi_typeid_",
    ];
    const SUFFIXES: [&[u8]; 3] = [b"_from_arm", b"_from_thumb", b"_veneer"];
    const CONTAINS: [&[u8]; 2] = [b".long_branch.", b".plt_branch."];

    EXACT.contains(&name)
        || PREFIXES.iter().any(|p| name.starts_with(p))
        || SUFFIXES.iter().any(|s| name.ends_with(s))
        || CONTAINS
            .iter()
            .any(|m| name.windows(m.len()).any(|w| w == *m))
        || matches!(kind, b'U' | b'u' | b'N' | b'n')
        || ignored_absolute(name, kind)
}

fn is_ignored(version: Version, name: &[u8], kind: u8) -> bool {
    match version {
        Version::V6_12 => ignored_6_12(name, kind),
        Version::V6_1 => ignored_6_1(name, kind),
    }
}

/// `symbol_valid`: whether a read symbol stays in the table.
fn valid(sym: &Symbol<'_>, ranges: &Ranges, options: &Options) -> bool {
    if options.all_symbols {
        return true;
    }
    let member = match options.stable.and_then(|_| stable::text_member(sym)) {
        Some(member) => member,
        None => ranges.text_member(sym.name, sym.addr),
    };
    // The tool keeps `__start_`/`__stop_` symbols before asking for membership; asking for
    // membership first gives the same answer and reads a member's name only at a range end.
    member
        || (options.version == Version::V6_12
            && (sym.name.starts_with(b"__start_") || sym.name.starts_with(b"__stop_")))
}

/// Whether `--absolute-percpu` turns the symbol into an absolute `A` one.
fn percpu(sym: &Symbol<'_>, ranges: &Ranges, options: &Options) -> bool {
    if options.stable.is_some()
        && let Some(member) = stable::percpu_member(sym)
    {
        return member;
    }
    ranges.percpu.contains(sym.addr)
}

/// Reads `_text` and the range markers, drops ignored and invalid symbols, marks per-cpu ones.
pub(super) fn select<'a>(
    map: &SymbolMap<'a>,
    options: &Options,
) -> Result<Selection<'a>, KallsymsError> {
    let mut text_addr = 0;
    let mut ranges = Ranges::default();
    let mut read: Vec<&Symbol<'a>> = Vec::with_capacity(map.symbols.len());
    for sym in &map.symbols {
        if sym.name == b"_text" {
            text_addr = sym.addr;
        }
        if is_ignored(options.version, sym.name, sym.kind) {
            continue;
        }
        ranges.record(sym.name, sym.addr);
        read.push(sym);
    }
    // Sized for all that were read: a filtered collect would regrow the list many times.
    let mut symbols: Vec<TableSymbol<'a>> = Vec::with_capacity(read.len());
    symbols.extend(
        read.into_iter()
            .filter(|sym| valid(sym, &ranges, options))
            .map(|sym| {
                let absolute = options.absolute_percpu && percpu(sym, &ranges, options);
                TableSymbol {
                    addr: sym.addr,
                    kind: if absolute { b'A' } else { sym.kind },
                    name: sym.name,
                    absolute,
                    line: sym.line,
                }
            }),
    );
    if symbols.is_empty() && options.version == Version::V6_1 {
        return Err(KallsymsError::NoValidSymbol);
    }
    Ok(Selection {
        symbols,
        text_addr,
        ranges,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kallsyms::parse_symbol_map;

    fn names(input: &[u8], options: &Options) -> Vec<String> {
        let map = parse_symbol_map(input, options.version).unwrap();
        let sel = select(&map, options).unwrap();
        sel.symbols
            .iter()
            .map(|s| format!("{}{}", s.kind as char, String::from_utf8_lossy(s.name)))
            .collect()
    }

    const MAP: &[u8] = b"100 T _stext\n100 T a\n1ff t b\n200 T _etext\n200 r after_text\n\
        300 T _sinittext\n380 t init\n400 T _einittext\n400 d __stop_x\n500 D __per_cpu_start\n\
        508 d pc\n510 D __per_cpu_end\n";

    #[test]
    fn text_ranges_and_corner_case() {
        let got = names(MAP, &Options::default());
        assert_eq!(
            got,
            [
                "T_stext",
                "Ta",
                "tb",
                "T_etext",
                "T_sinittext",
                "tinit",
                "T_einittext",
                "d__stop_x"
            ]
        );
        let v61 = names(MAP, &Options::new(Version::V6_1));
        assert!(!v61.contains(&"d__stop_x".to_string()));
    }

    #[test]
    fn absolute_percpu_marks_the_range() {
        let options = Options {
            all_symbols: true,
            absolute_percpu: true,
            ..Options::default()
        };
        let got = names(MAP, &options);
        assert!(got.contains(&"A__per_cpu_start".to_string()));
        assert!(got.contains(&"Apc".to_string()));
        assert!(got.contains(&"A__per_cpu_end".to_string()));
        assert!(got.contains(&"d__stop_x".to_string()));
    }

    #[test]
    fn empty_table_is_an_error_only_in_6_1() {
        let map = parse_symbol_map(b"", Version::V6_1).unwrap();
        assert!(matches!(
            select(&map, &Options::new(Version::V6_1)),
            Err(KallsymsError::NoValidSymbol)
        ));
        let map = parse_symbol_map(b"", Version::V6_12).unwrap();
        assert!(
            select(&map, &Options::default())
                .unwrap()
                .symbols
                .is_empty()
        );
    }
}
