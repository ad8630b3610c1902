//! A simulated link's `System.map` and the kallsyms tool's reading of it, straight from the
//! layout's symbols.
//!
//! Owns the shortcut every link of the pass simulation and the margin search takes: printing
//! `nm -n` for ~200k symbols, filtering the text with mksysmap and parsing it back was most of
//! a margin probe's cost. The result is the same as that round trip by construction (the same
//! order, mksysmap's rules on the same fields, the reader's own entry rule); a symbol whose
//! printed line the text tools could read differently (white space or a control byte in its
//! name, a letter that is not printable ASCII, an undefined symbol mksysmap keeps) makes the
//! whole map take the text path.

use crate::input::nm::{NmSymbol, format, push_line};
use crate::kallsyms::{SymbolMap, Version, is_plain_line, plain_entry};

use super::mksysmap;
use crate::prefetch;

/// The System.map text of `symbols` (sorted as `nm -n` lists them, `width` hex digits per
/// address): the lines the kernel `version`'s mksysmap keeps.
pub fn print(symbols: &[NmSymbol<'_>], width: usize, version: Version) -> Vec<u8> {
    let mut text = Vec::with_capacity(symbols.len() * (width + 32));
    for kept in kept_lines(symbols, version) {
        match kept {
            Some((s, _)) => push_line(&mut text, s, width),
            None => return mksysmap::filter(&format(symbols, width), version),
        }
    }
    text
}

/// What the kallsyms tool reads from the System.map of `symbols`, without printing the map;
/// None when only reading the text can tell (then parse what [`print()`] gives).
pub fn read_directly<'l>(symbols: &[NmSymbol<'l>], version: Version) -> Option<SymbolMap<'l>> {
    let mut map = SymbolMap {
        symbols: Vec::with_capacity(symbols.len()),
        warnings: Vec::new(),
    };
    for (line, kept) in (1..).zip(kept_lines(symbols, version)) {
        let (s, letter) = kept?;
        match plain_entry(version, s.value, letter, s.name, line)? {
            Ok(entry) => map.symbols.push(entry),
            Err(warning) => map.warnings.push(warning),
        }
    }
    Some(map)
}

/// The symbols whose lines mksysmap keeps, each with its type letter, in order; a None at the
/// first line the text tools could split differently (white space or a control byte in the
/// name, a letter that is not printable ASCII) or that prints no address (an undefined
/// symbol mksysmap keeps): only the printed text tells what happens from there.
fn kept_lines<'s, 'l>(
    symbols: &'s [NmSymbol<'l>],
    version: Version,
) -> impl Iterator<Item = Option<(&'s NmSymbol<'l>, u8)>> {
    prefetch::ahead(symbols.iter(), |s| s.name).filter_map(move |s| {
        let Some(letter) = u8::try_from(s.letter)
            .ok()
            .filter(|&l| is_plain_line(l, s.name))
        else {
            return Some(None);
        };
        if !mksysmap::keep_symbol(letter, s.name, version) {
            return None;
        }
        Some((!s.is_undefined()).then_some((s, letter)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kallsyms::parse_symbol_map;

    fn sym(value: u64, letter: char, name: &str) -> NmSymbol<'_> {
        NmSymbol {
            value,
            letter,
            name: name.as_bytes(),
        }
    }

    /// The shortcut against the text round trip; returns whether it read directly.
    fn same_as_text(symbols: &[NmSymbol<'_>], width: usize) -> bool {
        let mut direct = true;
        for version in [Version::V6_1, Version::V6_12] {
            let text = mksysmap::filter(&format(symbols, width), version);
            assert_eq!(
                String::from_utf8_lossy(&print(symbols, width, version)),
                String::from_utf8_lossy(&text)
            );
            let expected = parse_symbol_map(&text, version);
            let direct_read = read_directly(symbols, version);
            match (&direct_read, &expected) {
                (Some(a), Ok(b)) => assert_eq!(a, b),
                (Some(a), Err(b)) => panic!("{version:?}: {a:?} against {b:?}"),
                (None, _) => {}
            }
            direct &= direct_read.is_some();
        }
        direct
    }

    #[test]
    fn ordinary_maps_read_directly() {
        let long = "x".repeat(600);
        let syms = [
            sym(0, 'U', "undefined"),
            sym(0, 'w', "weak_undefined"),
            sym(0x1000, 'a', "absolute"),
            sym(0xffffffff81000000, 'T', "_text"),
            sym(0xffffffff81000000, 'T', "_stext"),
            sym(0xffffffff81000010, 't', ".Ltmp"),
            sym(0xffffffff81000020, 't', "$x"),
            sym(0xffffffff81000030, 'T', "__crc_foo"),
            sym(0xffffffff81000040, 'T', "__efistub_x"),
            sym(0xffffffff81000050, 'T', "__AArch64ADRPThunk_y"),
            sym(0xffffffff81000060, 't', "foo_veneer"),
            sym(0xffffffff81000070, 't', "x.long_branch.y"),
            sym(0xffffffff81000080, 'T', &long),
            sym(0xffffffff81000090, 'D', "kept"),
            sym(0x1_0000_0000, 'd', "wider_than_eight_digits"),
        ];
        assert!(same_as_text(&syms, 16));
        assert!(same_as_text(&syms, 8));
    }

    #[test]
    fn names_the_text_reads_differently_take_the_text_path() {
        let split = "y".repeat(2100);
        let cases: [&[NmSymbol<'_>]; 5] = [
            &[sym(0x10, 'T', "two words"), sym(0x20, 'T', "after")],
            &[sym(0x10, 'T', "tab\tname")],
            // mksysmap sees the last word only: "y" is kept, the whole name would not be.
            &[sym(0x10, 'T', "__crc_x y"), sym(0x20, 'T', "after")],
            &[sym(0, 'v', "weak_object"), sym(0x20, 'T', "next")],
            &[sym(0x10, 'T', &split)],
        ];
        for syms in cases {
            assert!(!same_as_text(syms, 16), "{syms:?}");
        }
        assert!(!same_as_text(&[sym(0x10, 'é', "accent")], 16));
        // An empty name reads as one entry in 6.12; 6.1's fscanf reads on into the next line.
        let unnamed = [sym(0x10, 't', ""), sym(0x20, 'T', "next")];
        assert!(!same_as_text(&unnamed, 16));
        assert!(read_directly(&unnamed, Version::V6_12).is_some());
    }
}
