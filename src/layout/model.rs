//! What the layout engine needs to know about its inputs, independent of the ELF reader.
//!
//! Owns plain descriptions of input files, sections and symbols in link order. Reading ELF files
//! and choosing archive members is `input`'s job; tests can build these by hand.

/// Index of an input file in link order.
pub type FileId = usize;

/// One input object as the linker sees it, after archive member selection.
#[derive(Debug, Clone)]
pub struct InputFile<'a> {
    /// The name file patterns are matched against (`init/main.o`, `.tmp_vmlinux1.kallsyms.o`).
    pub name: String,
    /// The archive this object was a member of, if any (EXCLUDE_FILE and `archive:member` match it).
    pub archive: Option<String>,
    pub sections: Vec<InputSection<'a>>,
    pub symbols: Vec<InputSymbol<'a>>,
}

/// One section of an input object.
#[derive(Debug, Clone)]
pub struct InputSection<'a> {
    pub name: &'a str,
    /// The ELF section index (`st_shndx` of symbols defined in it).
    pub index: usize,
    pub size: u64,
    pub align: u64,
    pub sh_type: u32,
    pub sh_flags: u64,
    pub entsize: u64,
    /// Section contents; empty for SHT_NOBITS. Needed only for merge sections.
    pub data: &'a [u8],
    /// COMDAT group signature when the section belongs to a `GRP_COMDAT` group.
    pub comdat: Option<&'a str>,
    /// Made by the linker itself (the build-id note), which keeps its output section alive.
    pub linker_created: bool,
}

/// Binding of an input symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    Local,
    Global,
    Weak,
}

/// ELF symbol type, as far as layout and nm letters care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolType {
    NoType,
    Object,
    Func,
    Section,
    File,
    Tls,
    Common,
    Other(u8),
}

/// Where an input symbol is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolPlace {
    Undefined,
    Absolute,
    /// A COMMON symbol with its alignment.
    Common {
        align: u64,
    },
    /// Defined in the section with this ELF index of the same file.
    Section(usize),
}

/// One symbol of an input object.
#[derive(Debug, Clone)]
pub struct InputSymbol<'a> {
    pub name: &'a str,
    pub binding: Binding,
    pub kind: SymbolType,
    /// `st_other & 3`: STV_DEFAULT, STV_INTERNAL, STV_HIDDEN, STV_PROTECTED.
    pub visibility: u8,
    pub place: SymbolPlace,
    pub value: u64,
    pub size: u64,
}

/// ELF constants the layout rules use.
pub mod elf {
    pub const SHT_PROGBITS: u32 = 1;
    pub const SHT_SYMTAB: u32 = 2;
    pub const SHT_STRTAB: u32 = 3;
    pub const SHT_RELA: u32 = 4;
    pub const SHT_NOTE: u32 = 7;
    pub const SHT_NOBITS: u32 = 8;
    pub const SHT_REL: u32 = 9;
    pub const SHT_GROUP: u32 = 17;
    pub const SHT_ARM_EXIDX: u32 = 0x7000_0001;

    pub const SHF_WRITE: u64 = 0x1;
    pub const SHF_ALLOC: u64 = 0x2;
    pub const SHF_EXECINSTR: u64 = 0x4;
    pub const SHF_MERGE: u64 = 0x10;
    pub const SHF_STRINGS: u64 = 0x20;
    pub const SHF_INFO_LINK: u64 = 0x40;
    pub const SHF_LINK_ORDER: u64 = 0x80;
    pub const SHF_GROUP: u64 = 0x200;
    pub const SHF_TLS: u64 = 0x400;
    pub const SHF_EXCLUDE: u64 = 0x8000_0000;

    pub const STV_HIDDEN: u8 = 2;
    pub const STV_INTERNAL: u8 = 1;
}
