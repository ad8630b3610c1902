//! BFD's view of section flags, which is what GNU ld's layout rules are written in.
//!
//! ELF `sh_type`/`sh_flags` are translated to these on input and back on output exactly as bfd
//! does, so that output section types, `nm` letters and orphan placement follow ld's logic.

use super::model::elf::*;

/// A set of BFD section flags (`SEC_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SecFlags(pub u32);

impl SecFlags {
    pub const ALLOC: SecFlags = SecFlags(1 << 0);
    pub const LOAD: SecFlags = SecFlags(1 << 1);
    pub const READONLY: SecFlags = SecFlags(1 << 2);
    pub const CODE: SecFlags = SecFlags(1 << 3);
    pub const DATA: SecFlags = SecFlags(1 << 4);
    pub const HAS_CONTENTS: SecFlags = SecFlags(1 << 5);
    pub const MERGE: SecFlags = SecFlags(1 << 6);
    pub const STRINGS: SecFlags = SecFlags(1 << 7);
    pub const THREAD_LOCAL: SecFlags = SecFlags(1 << 8);
    pub const NEVER_LOAD: SecFlags = SecFlags(1 << 9);
    pub const KEEP: SecFlags = SecFlags(1 << 10);
    pub const DEBUGGING: SecFlags = SecFlags(1 << 11);
    pub const EXCLUDE: SecFlags = SecFlags(1 << 12);
    pub const GROUP: SecFlags = SecFlags(1 << 13);
    pub const LINKER_CREATED: SecFlags = SecFlags(1 << 14);

    pub const NONE: SecFlags = SecFlags(0);

    pub fn contains(self, other: SecFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn intersects(self, other: SecFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// bfd's `_bfd_elf_make_section_from_shdr` translation of an input section header.
    pub fn from_elf(name: &str, sh_type: u32, sh_flags: u64) -> SecFlags {
        let mut f = SecFlags::NONE;
        if sh_type != SHT_NOBITS {
            f |= SecFlags::HAS_CONTENTS;
        }
        if sh_type == SHT_GROUP {
            f |= SecFlags::GROUP;
        }
        if sh_flags & SHF_ALLOC != 0 {
            f |= SecFlags::ALLOC;
            if sh_type != SHT_NOBITS {
                f |= SecFlags::LOAD;
            }
        }
        if sh_flags & SHF_WRITE == 0 {
            f |= SecFlags::READONLY;
        }
        if sh_flags & SHF_EXECINSTR != 0 {
            f |= SecFlags::CODE;
        } else if f.contains(SecFlags::LOAD) {
            f |= SecFlags::DATA;
        }
        if sh_flags & SHF_EXCLUDE != 0 {
            f |= SecFlags::EXCLUDE;
        }
        if sh_flags & SHF_MERGE != 0 {
            f |= SecFlags::MERGE;
        }
        if sh_flags & SHF_STRINGS != 0 {
            f |= SecFlags::STRINGS;
        }
        if sh_flags & SHF_TLS != 0 {
            f |= SecFlags::THREAD_LOCAL;
        }
        if !f.contains(SecFlags::ALLOC) && is_debug_name(name) {
            f |= SecFlags::DEBUGGING;
        }
        f
    }

    /// ELF `sh_flags` of an output section with these flags (bfd's `elf_fake_sections`).
    pub fn elf_flags(self) -> u64 {
        let mut out = 0;
        if self.contains(SecFlags::ALLOC) {
            out |= SHF_ALLOC;
        }
        if !self.contains(SecFlags::READONLY) {
            out |= SHF_WRITE;
        }
        if self.contains(SecFlags::CODE) {
            out |= SHF_EXECINSTR;
        }
        if self.contains(SecFlags::MERGE) {
            out |= SHF_MERGE;
            if self.contains(SecFlags::STRINGS) {
                out |= SHF_STRINGS;
            }
        }
        if self.contains(SecFlags::THREAD_LOCAL) {
            out |= SHF_TLS;
        }
        out
    }

    /// ELF `sh_type` of an output section (bfd's `elf_fake_sections`): the preset type (from
    /// the special-section table or the first input) unless a NOBITS preset must become
    /// PROGBITS because the section has contents; otherwise what the flags imply.
    pub fn elf_type(self, preset: Option<u32>) -> u32 {
        let derived = if self.intersects(SecFlags::ALLOC)
            && !self.intersects(SecFlags::LOAD | SecFlags::HAS_CONTENTS)
        {
            SHT_NOBITS
        } else {
            SHT_PROGBITS
        };
        match preset {
            None => derived,
            Some(SHT_NOBITS) if derived == SHT_PROGBITS && self.contains(SecFlags::ALLOC) => {
                SHT_PROGBITS
            }
            Some(t) => t,
        }
    }
}

impl std::ops::BitOr for SecFlags {
    type Output = SecFlags;
    fn bitor(self, rhs: SecFlags) -> SecFlags {
        SecFlags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for SecFlags {
    fn bitor_assign(&mut self, rhs: SecFlags) {
        self.0 |= rhs.0;
    }
}

impl std::ops::BitAnd for SecFlags {
    type Output = SecFlags;
    fn bitand(self, rhs: SecFlags) -> SecFlags {
        SecFlags(self.0 & rhs.0)
    }
}

impl std::ops::Not for SecFlags {
    type Output = SecFlags;
    fn not(self) -> SecFlags {
        SecFlags(!self.0)
    }
}

/// Section names bfd treats as debugging information.
fn is_debug_name(name: &str) -> bool {
    name.starts_with(".debug")
        || name.starts_with(".zdebug")
        || name.starts_with(".gnu.linkonce.wi.")
        || name.starts_with(".line")
        || name.starts_with(".stab")
        || name.starts_with(".gdb_index")
}

/// bfd's ELF special sections (`special_sections` in elf.c): the type and flags a section of
/// this name gets when the linker creates it with no flags of its own. A `.`-suffix matches a
/// name followed by nothing or by `.`; an exact entry matches only the whole name.
pub fn special_section(name: &str) -> Option<(u32, u64)> {
    const NOTE: u32 = 7;
    const INIT_ARRAY: u32 = 14;
    const FINI_ARRAY: u32 = 15;
    const PREINIT_ARRAY: u32 = 16;
    let aw = SHF_ALLOC | SHF_WRITE;
    // (name, prefix-with-dot?, type, flags)
    let table: &[(&str, bool, u32, u64)] = &[
        (".bss", true, SHT_NOBITS, aw),
        (".comment", false, SHT_PROGBITS, 0),
        (".data", true, SHT_PROGBITS, aw),
        (".data1", false, SHT_PROGBITS, aw),
        (".debug", true, SHT_PROGBITS, 0),
        (".fini", false, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR),
        (".fini_array", true, FINI_ARRAY, aw),
        (".init", false, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR),
        (".init_array", true, INIT_ARRAY, aw),
        (".line", false, SHT_PROGBITS, 0),
        (".note", true, NOTE, 0),
        (".preinit_array", true, PREINIT_ARRAY, aw),
        (".rodata", true, SHT_PROGBITS, SHF_ALLOC),
        (".rodata1", false, SHT_PROGBITS, SHF_ALLOC),
        (".sbss", true, SHT_NOBITS, aw),
        (".sdata", true, SHT_PROGBITS, aw),
        (".stab", true, SHT_PROGBITS, 0),
        (".tbss", true, SHT_NOBITS, aw | SHF_TLS),
        (".tdata", true, SHT_PROGBITS, aw | SHF_TLS),
        (".text", true, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR),
    ];
    table.iter().find_map(|&(n, prefix, t, f)| {
        let rest = name.strip_prefix(n)?;
        (rest.is_empty() || (prefix && rest.starts_with('.'))).then_some((t, f))
    })
}
