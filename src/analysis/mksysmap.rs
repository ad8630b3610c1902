//! `scripts/mksysmap`: which `nm -n` lines become `System.map` and the kallsyms input.
//!
//! Owns the per-version filter rules (6.12's sed script, 6.1's `grep -v` list) applied to nm's
//! text exactly as the shell pipeline does. Knows nothing about links or tables.

use crate::kallsyms::Version;

/// The lines of `nm` (as `nm -n` prints them) that mksysmap keeps, in order.
pub fn filter(nm: &[u8], version: Version) -> Vec<u8> {
    let mut out = Vec::with_capacity(nm.len());
    for line in nm.split_inclusive(|&b| b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        if keep(text, version) {
            out.extend_from_slice(line);
        }
    }
    out
}

/// Whether one nm line (without its newline) survives the version's rules.
pub fn keep(line: &[u8], version: Version) -> bool {
    // "ADDRESS T NAME": the type letter is the field after the first space.
    let Some(sp) = line.iter().rposition(|&b| b == b' ') else {
        return true;
    };
    let name = &line[sp + 1..];
    let letter = sp.checked_sub(1).map(|i| line[i]);
    if letter.is_some_and(dropped_letter) && sp >= 2 && line[sp - 2] == b' ' {
        return false;
    }
    keep_name(name, line, version)
}

/// sed's ` [aNUw] `: absolute, debugging, undefined and weak undefined symbols.
fn dropped_letter(letter: u8) -> bool {
    matches!(letter, b'a' | b'N' | b'U' | b'w')
}

/// [`keep`] for the line nm prints for a symbol of type `letter` whose name has no white
/// space, without printing it: no rule can then match across the address and letter fields.
pub fn keep_symbol(letter: u8, name: &[u8], version: Version) -> bool {
    !dropped_letter(letter) && keep_name(name, name, version)
}

/// The rules on the name (the line's last field). `line` is the text sed searches for the
/// branch-stub patterns it matches anywhere; every other rule anchors in the name.
fn keep_name(name: &[u8], line: &[u8], version: Version) -> bool {
    // Every prefix rule starts with one of these bytes; most names start with none of them.
    let first = name.first().copied();
    if matches!(first, Some(b'$' | b'.' | b'_' | b'L')) && !keep_prefixed(name, version) {
        return false;
    }
    if version == Version::V6_1 {
        return true;
    }
    // sed anchors these at the end of the line, which is the end of the name.
    let ends = |s: &[u8]| name.ends_with(s);
    if ends(b"_from_arm") || ends(b"_from_thumb") || ends(b"_veneer") {
        return false;
    }
    // sed matches these anywhere in the line; most lines have no dot at all (a whole-line
    // scan without early exit vectorizes, and beats a memchr call on lines this short).
    let contains = |s: &[u8]| memchr::memmem::find(line, s).is_some();
    let has_dot = line.iter().fold(0u8, |seen, &c| seen | u8::from(c == b'.')) != 0;
    !(has_dot && (contains(b".long_branch.") || contains(b".plt_branch.")))
}

/// The rules on names starting with `$`, `.`, `_` or `L`: prefixes, `L0`, the Thunk pattern
/// and the small-data base symbols.
fn keep_prefixed(name: &[u8], version: Version) -> bool {
    let starts = |p: &[u8]| name.starts_with(p);
    if starts(b"$")
        || starts(b".L")
        || starts(b"__crc_")
        || starts(b"__kstrtab_")
        || starts(b"__kstrtabns_")
        || name == b"L0"
    {
        return false;
    }
    if version == Version::V6_1 {
        return true;
    }
    let prefixes: [&[u8]; 9] = [
        b"__efistub_",
        b"__pi_$",
        b"__pi_.L",
        b"__kvm_nvhe_$",
        b"__kvm_nvhe_.L",
        b"__kcfi_typeid_",
        b"__kvm_nvhe___kcfi_typeid_",
        b"__pi___kcfi_typeid_",
        b"__kstrtabns_",
    ];
    if prefixes.iter().any(|p| starts(p)) {
        return false;
    }
    if let Some(rest) = name.strip_prefix(b"__") {
        let alnum = rest
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        // `__[[:alnum:]]*Thunk_`: some alphanumeric prefix followed by `Thunk_`.
        let window = &rest[..(alnum + b"Thunk_".len()).min(rest.len())];
        if memchr::memmem::find(window, b"Thunk_").is_some() {
            return false;
        }
    }
    !(name == b"_SDA_BASE_" || name == b"_SDA2_BASE_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_per_version() {
        let nm = b"ffffffff81000000 T _text\n                 U undef\n0000000000000000 a abs\n\
ffffffff81000010 t .Ltmp\nffffffff81000020 t $x\nffffffff81000030 T __crc_foo\n\
ffffffff81000040 T __efistub_x\nffffffff81000050 T __AArch64ADRPThunk_y\nc0000000 t foo_veneer\n\
c0000004 t L0\nffffffff81000060 D __kstrtabns_z\nffffffff81000070 T kept\n";
        let v612 = filter(nm, Version::V6_12);
        assert_eq!(
            String::from_utf8_lossy(&v612),
            "ffffffff81000000 T _text\nffffffff81000070 T kept\n"
        );
        let v61 = filter(nm, Version::V6_1);
        assert_eq!(
            String::from_utf8_lossy(&v61),
            "ffffffff81000000 T _text\nffffffff81000040 T __efistub_x\n\
ffffffff81000050 T __AArch64ADRPThunk_y\nc0000000 t foo_veneer\nffffffff81000070 T kept\n"
        );
    }
}
