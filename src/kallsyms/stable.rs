//! Stable mode: the ldcheck-only variant of the tables whose size cannot change when sections
//! merely move between link passes.
//!
//! Owns the three rules (membership by section, input-order-free ties, reserve padding) and
//! their documentation. The filter, order and size modules call in here; nothing in this
//! module formats output or reads input.

use super::TableSymbol;
use super::symbols::{SectionClass, Symbol};

/// The rules of `--stable`, shown by `ldcheck kallsyms --help` and the README.
pub const RULES: &str = "\
Stable mode (--stable) changes three things, and nothing else:

  1. Range membership comes from the section the symbol is defined in when the input says
     what it is (an ELF file read by ldcheck), never from address equality with _etext or
     _einittext, which flips when the sections around them move. An allocated section of
     nonzero size that overlaps [_stext, _etext) is a text section, one that overlaps
     [_sinittext, _einittext) an init-text section, one that overlaps [__per_cpu_start,
     __per_cpu_end) the per-cpu section. A symbol defined in a text or init-text section is in
     the range whatever its address; a symbol defined in any other section is not, even when
     its value equals _sinittext or _etext (say, an end marker of the section before). The
     per-cpu section decides --absolute-percpu the same way. The range markers themselves
     (_stext, _etext, _sinittext, _einittext, __per_cpu_start, __per_cpu_end), which ld may
     attach to a neighbouring section, keep the kernel's address rule: they are always in.
     Symbols read from a text map carry no section and keep the kernel's address rules.
  2. Symbols at the same address are ordered by the kernel's keys (weak last, linker-provided
     names last, fewer leading underscores first) and then by name and type letter instead of
     input order, so the tables do not depend on how nm happened to order equal addresses.
  3. --reserve BYTES pads every table whose size depends on the symbol set (names, markers,
     token table, offsets or addresses, seqs_of_names) with zero bytes up to a multiple of
     BYTES, so every label offset and the section size stay put until a table crosses a
     multiple of BYTES. The kernel reads these tables only up to kallsyms_num_syms, so the
     padding is never looked at.

The result is no longer byte-identical to scripts/kallsyms; without --stable it is.";

/// Settings of stable mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct StableOptions {
    /// Pad every table whose size depends on the symbol set to a multiple of this many bytes
    /// (0 = no padding).
    pub reserve: u32,
}

/// The symbols that delimit the ranges; ld attaches them to whichever section is near, so
/// their section says nothing and the address rule (which always keeps them) applies.
const MARKERS: [&[u8]; 6] = [
    b"_stext",
    b"_etext",
    b"_sinittext",
    b"_einittext",
    b"__per_cpu_start",
    b"__per_cpu_end",
];

/// The section class that decides for `sym`, if any (rule 1).
fn deciding_class(sym: &Symbol<'_>) -> Option<SectionClass> {
    if MARKERS.contains(&sym.name) {
        return None;
    }
    sym.section
}

/// Rule 1 for the text ranges: `Some(member)` when the section decides, `None` to fall back
/// to the address rule.
pub(super) fn text_member(sym: &Symbol<'_>) -> Option<bool> {
    deciding_class(sym).map(|class| matches!(class, SectionClass::Text | SectionClass::InitText))
}

/// Rule 1 for the per-cpu range.
pub(super) fn percpu_member(sym: &Symbol<'_>) -> Option<bool> {
    deciding_class(sym).map(|class| class == SectionClass::PerCpu)
}

/// Rule 2: the order of two symbols at equal address and equal kernel tie key.
pub(super) fn tie_order(a: &TableSymbol<'_>, b: &TableSymbol<'_>) -> std::cmp::Ordering {
    a.name.cmp(b.name).then(a.kind.cmp(&b.kind))
}

/// Rule 3: zero bytes appended to a table of `bytes` bytes.
pub(super) fn padding(reserve: u32, bytes: u64) -> u64 {
    if reserve == 0 {
        return 0;
    }
    let quantum = u64::from(reserve);
    bytes.div_ceil(quantum) * quantum - bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_rounds_up_to_the_quantum() {
        assert_eq!(padding(0, 13), 0);
        assert_eq!(padding(64, 0), 0);
        assert_eq!(padding(64, 1), 63);
        assert_eq!(padding(64, 64), 0);
        assert_eq!(padding(64, 65), 63);
    }
}
