//! What GNU `nm -n` (binutils 2.40, `LC_COLLATE=C`) prints for an ELF file, and the rule that
//! gives a symbol its type letter, usable without a file so the layout can predict letters.
//!
//! Owns: which symbols nm lists, the letter rules (BFD's section flags from ELF headers, the
//! section-name table, weak/unique/ifunc/common cases), the `-n` order and the line format.
//! Must not: depend on the layout or on anything but the ELF file's own tables.

use object::elf;
use object::read::elf::{FileHeader, SectionHeader, Sym};
use object::{Endianness, SymbolIndex};
use rayon::slice::ParallelSliceMut;
use thiserror::Error;

use super::{Binding, SymbolKind};

/// Why a file cannot be listed.
#[derive(Debug, Error)]
pub enum NmError {
    #[error("not an ELF file")]
    NotElf,
    #[error("malformed ELF: {0}")]
    Malformed(#[from] object::Error),
}

/// The facts about a symbol's section that decide its nm letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NmSection<'a> {
    Undefined,
    Absolute,
    Common,
    Section {
        name: &'a [u8],
        sh_type: u32,
        sh_flags: u64,
    },
}

/// BFD's section flags as derived from an ELF section header (only those nm looks at).
struct BfdFlags {
    code: bool,
    data: bool,
    readonly: bool,
    has_contents: bool,
    debugging: bool,
}

fn bfd_flags(name: &[u8], sh_type: u32, sh_flags: u64) -> BfdFlags {
    let alloc = sh_flags & u64::from(elf::SHF_ALLOC) != 0;
    let has_contents = sh_type != elf::SHT_NOBITS;
    let load = alloc && has_contents;
    let code = sh_flags & u64::from(elf::SHF_EXECINSTR) != 0;
    // Debugging sections are recognised by name only, and only when not allocated.
    let debug_prefix = [
        &b".debug"[..],
        b".gnu.debuglto_.debug_",
        b".gnu.linkonce.wi.",
        b".zdebug",
        b".line",
        b".stab",
    ]
    .iter()
    .any(|p| name.starts_with(p));
    let debugging = !alloc && (debug_prefix || name == b".gdb_index");
    BfdFlags {
        code,
        data: !code && load,
        readonly: sh_flags & u64::from(elf::SHF_WRITE) == 0,
        has_contents,
        debugging,
    }
}

/// BFD's name table: these section-name prefixes force a letter when followed by nothing,
/// `.`, `$` or a digit.
const NAMED_SECTIONS: &[(&[u8], char)] = &[
    (b".drectve", 'i'),
    (b".edata", 'e'),
    (b".idata", 'i'),
    (b".pdata", 'p'),
];

fn letter_from_name(name: &[u8]) -> Option<char> {
    NAMED_SECTIONS.iter().find_map(|(prefix, c)| {
        let rest = name.strip_prefix(*prefix)?;
        match rest.first() {
            None => Some(*c),
            Some(b) if *b == b'.' || *b == b'$' || b.is_ascii_digit() => Some(*c),
            Some(_) => None,
        }
    })
}

fn letter_from_flags(f: &BfdFlags) -> char {
    if f.code {
        't'
    } else if f.data {
        if f.readonly { 'r' } else { 'd' }
    } else if !f.has_contents {
        'b'
    } else if f.debugging {
        'N'
    } else if f.readonly {
        'n'
    } else {
        '?'
    }
}

/// The letter `nm` prints for a symbol with this binding, type and section.
pub fn type_letter(binding: Binding, kind: SymbolKind, section: NmSection<'_>) -> char {
    let object_like = matches!(kind, SymbolKind::Object | SymbolKind::Common);
    match section {
        NmSection::Common => return 'C',
        NmSection::Undefined => {
            return match (binding, object_like) {
                (Binding::Weak, true) => 'v',
                (Binding::Weak, false) => 'w',
                _ => 'U',
            };
        }
        _ => {}
    }
    if kind == SymbolKind::Ifunc {
        return 'i';
    }
    match binding {
        Binding::Weak => return if object_like { 'V' } else { 'W' },
        Binding::Unique => return 'u',
        Binding::Other(_) => return '?',
        Binding::Local | Binding::Global => {}
    }
    let c = match section {
        NmSection::Section {
            name,
            sh_type,
            sh_flags,
        } => letter_from_name(name)
            .unwrap_or_else(|| letter_from_flags(&bfd_flags(name, sh_type, sh_flags))),
        _ => 'a',
    };
    if binding == Binding::Global {
        c.to_ascii_uppercase()
    } else {
        c
    }
}

/// One line of `nm -n` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NmSymbol<'a> {
    /// The value nm prints and sorts by (a COMMON symbol's size, as BFD reports it).
    pub value: u64,
    pub letter: char,
    pub name: &'a [u8],
}

impl NmSymbol<'_> {
    /// Undefined symbols print no value and sort first.
    pub fn is_undefined(&self) -> bool {
        matches!(self.letter, 'U' | 'w' | 'v')
    }
}

/// Sorts like `nm -n`: undefined symbols first by name, then by value, ties by name (byte
/// order, as under `LC_COLLATE=C`), remaining ties in symbol-table order.
pub fn sort_numeric(symbols: &mut [NmSymbol<'_>]) {
    sort_numeric_by(symbols, |s| s);
}

/// [`sort_numeric`] of `symbols` into a new list, starting from `order`: the positions in
/// `symbols` of an earlier sort of a list like this one, replaced with this sort's. Layouts of
/// one link with tables of other sizes move few symbols relative to each other, so the sort
/// mostly confirms runs already in order. The result does not depend on `order`; one that is
/// not a permutation of the positions is ignored.
pub fn sort_numeric_from<'n>(symbols: &[NmSymbol<'n>], order: &mut Vec<u32>) -> Vec<NmSymbol<'n>> {
    let n = symbols.len();
    let Ok(count) = u32::try_from(n) else {
        let mut sorted = symbols.to_vec();
        sort_numeric(&mut sorted);
        return sorted;
    };
    if !is_permutation(order, n) {
        *order = (0..count).collect();
    }
    let mut keys: Vec<(bool, u64, u32)> = order
        .iter()
        .map(|&i| {
            let (defined, value) = sort_class(&symbols[i as usize]);
            (defined, value, i)
        })
        .collect();
    // Stable and run-adaptive (each thread's part too); the position in the key makes the
    // order total, so splitting the sort across threads cannot change it.
    keys.par_sort_by(|a, b| key_order(a, b, |i| symbols[i as usize].name));
    order.clear();
    order.extend(keys.iter().map(|k| k.2));
    keys.iter().map(|k| symbols[k.2 as usize]).collect()
}

/// The first two parts of nm's `-n` key: undefined symbols first, then by value (an
/// undefined symbol's value does not count).
fn sort_class(s: &NmSymbol<'_>) -> (bool, u64) {
    let undefined = s.is_undefined();
    (!undefined, if undefined { 0 } else { s.value })
}

/// nm's `-n` order of two (class, value, position) keys: class, value, then the names
/// (`name` of a position; read only on equal values), then the position.
fn key_order<'n, P: Ord + Copy>(
    a: &(bool, u64, P),
    b: &(bool, u64, P),
    name: impl Fn(P) -> &'n [u8],
) -> std::cmp::Ordering {
    (a.0, a.1)
        .cmp(&(b.0, b.1))
        .then_with(|| name(a.2).cmp(name(b.2)))
        .then(a.2.cmp(&b.2))
}

/// Whether `order` holds each of `0..n` exactly once.
fn is_permutation(order: &[u32], n: usize) -> bool {
    if order.len() != n {
        return false;
    }
    let mut seen = vec![false; n];
    order.iter().all(|&i| match seen.get_mut(i as usize) {
        Some(seen) if !*seen => {
            *seen = true;
            true
        }
        _ => false,
    })
}

/// [`sort_numeric`] for items that carry a symbol. Sorting (class, value, position) keys moves
/// 24 bytes per step instead of a whole item, compares names only on equal values, and the
/// position makes the unstable sort stable.
fn sort_numeric_by<'n, T: Clone>(items: &mut [T], symbol: impl Fn(&T) -> &NmSymbol<'n>) {
    let mut keys: Vec<(bool, u64, usize)> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let (defined, value) = sort_class(symbol(item));
            (defined, value, i)
        })
        .collect();
    keys.sort_unstable_by(|a, b| key_order(a, b, |i| symbol(&items[i]).name));
    let sorted: Vec<T> = keys.iter().map(|k| items[k.2].clone()).collect();
    items.clone_from_slice(&sorted);
}

/// Renders sorted symbols exactly as `nm` prints them; `width` is 8 or 16 hex digits.
pub fn format(symbols: &[NmSymbol<'_>], width: usize) -> Vec<u8> {
    // Exactly sized (values wider than `width` aside): a map of 200k lines is ~9 MB.
    let size: usize = symbols
        .iter()
        .map(|s| width + 3 + s.letter.len_utf8() + s.name.len())
        .sum();
    let mut out = Vec::with_capacity(size);
    for s in symbols {
        push_line(&mut out, s, width);
    }
    out
}

/// Appends the line `nm` prints for `s` (with its newline) to `out`.
pub fn push_line(out: &mut Vec<u8>, s: &NmSymbol<'_>, width: usize) {
    if s.is_undefined() {
        out.extend(std::iter::repeat_n(b' ', width));
    } else {
        push_hex(out, s.value, width);
    }
    out.push(b' ');
    let mut buf = [0; 4];
    out.extend_from_slice(s.letter.encode_utf8(&mut buf).as_bytes());
    out.push(b' ');
    out.extend_from_slice(s.name);
    out.push(b'\n');
}

/// Appends `value` in lower-case hex, zero-padded to `width` digits (more if it needs them),
/// like `{:0width$x}` without formatting machinery.
fn push_hex(out: &mut Vec<u8>, value: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let needed = (64 - value.leading_zeros() as usize).div_ceil(4).max(1);
    let digits = width.max(needed);
    // All 16 digits at once, then the low `digits` of them (zero padding beyond 16).
    let mut all = [0u8; 16];
    for (i, d) in all.iter_mut().rev().enumerate() {
        *d = DIGITS[((value >> (4 * i)) & 0xf) as usize];
    }
    out.extend(std::iter::repeat_n(b'0', digits.saturating_sub(16)));
    out.extend_from_slice(&all[16 - digits.min(16)..]);
}

/// The symbols `nm` lists for an ELF file (section and file symbols excluded), in `-n` order,
/// and the address width.
pub fn symbols(data: &[u8]) -> Result<(Vec<NmSymbol<'_>>, usize), NmError> {
    let (listed, width) = symbols_with_sections(data)?;
    Ok((listed.into_iter().map(|(sym, _)| sym).collect(), width))
}

/// One listed symbol and the ELF section header index it is defined in.
pub type Listed<'a> = (NmSymbol<'a>, Option<usize>);

/// Like [`symbols`], with the ELF section header index each symbol is defined in (`None` for
/// undefined, absolute and common symbols): for readers that need more than the letter, such
/// as classifying kallsyms range membership by section.
pub fn symbols_with_sections(data: &[u8]) -> Result<(Vec<Listed<'_>>, usize), NmError> {
    if data.len() < 16 || &data[..4] != b"\x7fELF" {
        return Err(NmError::NotElf);
    }
    match data[4] {
        elf::ELFCLASS32 => Ok((read::<elf::FileHeader32<Endianness>>(data)?, 8)),
        elf::ELFCLASS64 => Ok((read::<elf::FileHeader64<Endianness>>(data)?, 16)),
        _ => Err(NmError::NotElf),
    }
}

/// Exactly the bytes `nm -n FILE` writes to stdout for one ELF file.
pub fn nm_numeric(data: &[u8]) -> Result<Vec<u8>, NmError> {
    let (syms, width) = symbols(data)?;
    Ok(format(&syms, width))
}

/// ARM and AArch64 mapping and tag symbols (`$a`, `$t`, `$d`, `$x`, …, optionally followed by
/// `.suffix`), which nm hides unless given `--special-syms`.
pub fn is_target_special(machine: u16, name: &[u8]) -> bool {
    let [b'$', kind, rest @ ..] = name else {
        return false;
    };
    let kind_ok = match machine {
        elf::EM_ARM => kind.is_ascii_lowercase(),
        elf::EM_AARCH64 => matches!(kind, b'x' | b'd' | b'm' | b'f' | b'p'),
        _ => false,
    };
    kind_ok && (rest.is_empty() || rest[0] == b'.')
}

fn read<Elf: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<Vec<Listed<'_>>, NmError> {
    let header = Elf::parse(data)?;
    let endian = header.endian()?;
    let machine = header.e_machine(endian);
    let arm = machine == elf::EM_ARM;
    let sections = header.sections(endian, data)?;
    let symtab = sections.symbols(endian, data, elf::SHT_SYMTAB)?;
    let mut out = Vec::with_capacity(symtab.len());
    for (index, sym) in symtab.iter().enumerate().skip(1) {
        let kind = SymbolKind::from_elf(sym.st_type());
        if matches!(kind, SymbolKind::Section | SymbolKind::File) {
            continue;
        }
        let binding = Binding::from_elf(sym.st_bind());
        let name = symtab.symbol_name(endian, sym)?;
        if is_target_special(machine, name) {
            continue;
        }
        let shndx = sym.st_shndx(endian);
        let mut value: u64 = sym.st_value(endian).into();
        let mut defined_in = None;
        let section = match shndx {
            elf::SHN_UNDEF => NmSection::Undefined,
            elf::SHN_COMMON => {
                value = sym.st_size(endian).into();
                NmSection::Common
            }
            elf::SHN_ABS => NmSection::Absolute,
            _ if shndx >= elf::SHN_LORESERVE && shndx != elf::SHN_XINDEX => NmSection::Absolute,
            _ => match symtab.symbol_section(endian, sym, SymbolIndex(index))? {
                None => NmSection::Undefined,
                Some(si) => {
                    defined_in = Some(si.0);
                    let sh = sections.section(si)?;
                    NmSection::Section {
                        name: sections.section_name(endian, sh)?,
                        sh_type: sh.sh_type(endian),
                        sh_flags: sh.sh_flags(endian).into(),
                    }
                }
            },
        };
        // The ARM backend strips the Thumb bit from function addresses when reading symbols.
        if arm && matches!(kind, SymbolKind::Func | SymbolKind::Ifunc) {
            value &= !1;
        }
        let letter = type_letter(binding, kind, section);
        if letter == 'U' || letter == 'w' || letter == 'v' {
            value = 0;
        }
        out.push((
            NmSymbol {
                value,
                letter,
                name,
            },
            defined_in,
        ));
    }
    sort_numeric_by(&mut out, |(symbol, _)| symbol);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_zero_padded_to_the_width_and_widens_for_large_values() {
        let hex = |value: u64, width: usize| {
            let mut out = Vec::new();
            push_hex(&mut out, value, width);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(hex(0, 8), "00000000");
        assert_eq!(hex(0xc000_1234, 8), "c0001234");
        assert_eq!(hex(0x1_0000_0000, 8), "100000000");
        assert_eq!(hex(0xffff_ffff_8100_0000, 16), "ffffffff81000000");
        assert_eq!(hex(0xab, 20), "000000000000000000ab");
        assert_eq!(hex(u64::MAX, 1), "ffffffffffffffff");
    }

    #[test]
    fn sorting_from_any_order_gives_the_same_list() {
        let names = ["b", "a", "c", "a", "z", "m"];
        let symbols: Vec<NmSymbol<'_>> = (0..60u64)
            .map(|i| NmSymbol {
                value: (i * 7919) % 13,
                letter: if i % 11 == 0 { 'U' } else { 't' },
                name: names[(i % 6) as usize].as_bytes(),
            })
            .collect();
        let mut expected = symbols.clone();
        sort_numeric(&mut expected);
        let reversed: Vec<u32> = (0..60).rev().collect();
        let mut not_a_permutation = reversed.clone();
        not_a_permutation[3] = not_a_permutation[4];
        for start in [Vec::new(), reversed, not_a_permutation, vec![0, 1, 2]] {
            let mut order = start;
            assert_eq!(sort_numeric_from(&symbols, &mut order), expected);
            // The order it leaves sorts the same list again.
            let again = sort_numeric_from(&symbols, &mut order);
            assert_eq!(again, expected);
            let listed: Vec<NmSymbol<'_>> = order.iter().map(|&i| symbols[i as usize]).collect();
            assert_eq!(listed, expected);
        }
    }
}
