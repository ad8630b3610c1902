//! Table order and the values that depend on it: the address sort with the kernel's
//! tie-breaks, the relative base, the 32-bit offsets, and the name order behind
//! `kallsyms_seqs_of_names`.
//!
//! Knows nothing about compression or text output.

use std::cmp::Ordering;

use super::{KallsymsError, TableSymbol, stable};

/// `may_be_linker_script_provide_symbol`: names like `__start_x`, `__stop_x`, `__end_x`,
/// `__x_start`, `__x_end` (at least 8 bytes, starting with `__`).
fn linker_provided(name: &[u8]) -> bool {
    if name.len() < 8 || !name.starts_with(b"__") {
        return false;
    }
    let rest = &name[2..];
    rest.starts_with(b"start_")
        || rest.starts_with(b"stop_")
        || rest.starts_with(b"end_")
        || name.ends_with(b"_start")
        || name.ends_with(b"_end")
}

/// The kernel's tie-break key at equal addresses: weak last, then linker-provided names last,
/// then fewer leading underscores first.
fn tie_key(sym: &TableSymbol<'_>) -> u32 {
    let weak = u32::from(matches!(sym.kind, b'w' | b'W'));
    let provided = u32::from(linker_provided(sym.name));
    let underscores = sym.name.iter().take_while(|&&c| c == b'_').count() as u32;
    weak << 31 | provided << 30 | underscores
}

/// `sort_symbols`: by address, the tie-break key, then input order. In stable mode input
/// order is replaced by name and type, so the result does not depend on how the map was
/// ordered (exact duplicates are interchangeable).
pub(super) fn sort_by_address(syms: &mut Vec<TableSymbol<'_>>, stable: bool) {
    if syms.windows(2).all(|w| w[0].addr <= w[1].addr) {
        sort_address_runs(syms, stable);
    } else {
        sort_any(syms, stable);
    }
}

/// [`sort_by_address`] of symbols already in address order (a map `nm -n` printed): only the
/// runs at one address need the tie-breaks, and a stable sort of each run keeps input order
/// for what is still tied. Most symbols have an address of their own, and their names (the
/// tie-break key reads them) are never looked at.
fn sort_address_runs(syms: &mut [TableSymbol<'_>], stable: bool) {
    for run in syms.chunk_by_mut(|a, b| a.addr == b.addr) {
        if run.len() < 2 {
            continue;
        }
        if stable {
            run.sort_by(|a, b| {
                tie_key(a)
                    .cmp(&tie_key(b))
                    .then_with(|| stable::tie_order(a, b))
            });
        } else {
            run.sort_by_key(tie_key);
        }
    }
}

/// [`sort_by_address`] of symbols in any order: (address, tie-break key) keys sorted with
/// the position as the last key.
fn sort_any(syms: &mut Vec<TableSymbol<'_>>, stable: bool) {
    let keys: Vec<(u64, u32)> = syms.iter().map(|s| (s.addr, tie_key(s))).collect();
    let mut idx: Vec<u32> = (0..syms.len() as u32).collect();
    if stable {
        idx.sort_unstable_by(|&a, &b| {
            let (sa, sb) = (&syms[a as usize], &syms[b as usize]);
            keys[a as usize]
                .cmp(&keys[b as usize])
                .then_with(|| stable::tie_order(sa, sb))
                .then(a.cmp(&b))
        });
    } else {
        idx.sort_unstable_by_key(|&i| (keys[i as usize], i));
    }
    let sorted: Vec<TableSymbol<'_>> = idx.iter().map(|&i| syms[i as usize]).collect();
    *syms = sorted;
}

/// `record_relative_base`: the first non-absolute symbol's address (0 if there is none).
pub(super) fn relative_base(syms: &[TableSymbol<'_>]) -> u64 {
    syms.iter().find(|s| !s.absolute).map_or(0, |s| s.addr)
}

/// The `kallsyms_offsets` values, with the tool's overflow checks.
///
/// Without `--absolute-percpu` an entry is `addr - base` (0 … 2³²-1); with it, absolute
/// symbols store their address (0 … 2³¹-1) and the others `base - addr - 1` (negative).
pub(super) fn relative_offsets(
    syms: &[TableSymbol<'_>],
    base: u64,
    absolute_percpu: bool,
) -> Result<Vec<u32>, KallsymsError> {
    syms.iter()
        .map(|s| {
            let (offset, overflow) = if !absolute_percpu {
                let o = s.addr.wrapping_sub(base) as i64;
                (o, o < 0 || o > i64::from(u32::MAX))
            } else if s.absolute {
                let o = s.addr as i64;
                (o, o < 0 || o > i64::from(i32::MAX))
            } else {
                let o = base.wrapping_sub(s.addr).wrapping_sub(1) as i64;
                (o, o < i64::from(i32::MIN) || o >= 0)
            };
            if overflow {
                return Err(KallsymsError::OutOfRange {
                    absolute: s.absolute,
                    addr: s.addr,
                    name: String::from_utf8_lossy(s.name).into_owned(),
                    line: s.line,
                });
            }
            Ok(offset as u32)
        })
        .collect()
}

/// 6.1 with `--lto-clang` compares names cut at the first `.llvm.`.
fn lto_stem(name: &[u8]) -> &[u8] {
    const MARK: &[u8] = b".llvm.";
    match name.windows(MARK.len()).position(|w| w == MARK) {
        Some(n) => &name[..n],
        None => name,
    }
}

/// `sort_symbols_by_name`: table indices by name, then address, then table index.
pub(super) fn name_order(syms: &[TableSymbol<'_>], lto_clang: bool) -> Vec<u32> {
    let names: Vec<&[u8]> = syms
        .iter()
        .map(|s| if lto_clang { lto_stem(s.name) } else { s.name })
        .collect();
    let mut idx: Vec<u32> = (0..syms.len() as u32).collect();
    idx.sort_unstable_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        match names[a].cmp(names[b]) {
            Ordering::Equal => (syms[a].addr, a).cmp(&(syms[b].addr, b)),
            other => other,
        }
    });
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(addr: u64, kind: u8, name: &'static str) -> TableSymbol<'static> {
        TableSymbol {
            addr,
            kind,
            name: name.as_bytes(),
            absolute: false,
            line: 0,
        }
    }

    #[test]
    fn ties_follow_the_kernel() {
        let mut syms = vec![
            sym(0x10, b'W', "weak"),
            sym(0x10, b'T', "__start_sec"),
            sym(0x10, b'T', "__x"),
            sym(0x10, b'T', "_y"),
            sym(0x08, b't', "first"),
            sym(0x10, b'T', "b"),
            sym(0x10, b'T', "a"),
        ];
        sort_by_address(&mut syms, false);
        let names: Vec<_> = syms.iter().map(|s| s.name).collect();
        let expect: [&[u8]; 7] = [b"first", b"b", b"a", b"_y", b"__x", b"__start_sec", b"weak"];
        assert_eq!(names, expect);
        sort_by_address(&mut syms, true);
        assert_eq!(syms[1].name, b"a");
    }

    #[test]
    fn offsets_check_ranges() {
        let syms = [sym(0x1000, b'T', "a"), sym(0x1_0000_1000, b'T', "b")];
        assert!(relative_offsets(&syms, 0x1000, false).is_err());
        assert_eq!(relative_offsets(&syms[..1], 0x1000, false).unwrap(), [0]);
        assert_eq!(
            relative_offsets(&syms[..1], 0x1000, true).unwrap(),
            [0xffff_ffff]
        );
    }

    #[test]
    fn lto_names_sort_by_stem() {
        let syms = [sym(2, b't', "foo.llvm.123"), sym(1, b't', "foo.a")];
        assert_eq!(name_order(&syms, false), [1, 0]);
        assert_eq!(name_order(&syms, true), [0, 1]);
    }

    #[test]
    fn sorted_input_takes_the_run_path_with_the_same_result() {
        let names = [
            "__start_x",
            "_y",
            "z",
            "__z",
            "weak",
            "a_end",
            "b",
            "__stop_q",
        ];
        let kinds = [b'T', b't', b'W', b'w', b'D'];
        let mut syms: Vec<TableSymbol<'static>> = (0..400usize)
            .map(|i| TableSymbol {
                addr: (i as u64 * 2) / 7,
                kind: kinds[(i * 3) % kinds.len()],
                name: names[(i * 5 + i / 7) % names.len()].as_bytes(),
                absolute: false,
                line: i + 1,
            })
            .collect();
        syms.sort_by_key(|s| s.addr);
        for stable in [false, true] {
            let mut runs = syms.clone();
            sort_address_runs(&mut runs, stable);
            let mut any = syms.clone();
            sort_any(&mut any, stable);
            assert_eq!(runs, any, "stable {stable}");
        }
    }
}
