//! What the layout engine needs to know about its inputs, in link order.
//!
//! Owns the layout's view of input objects: the name file patterns match, the sections bfd
//! would create (with COMDAT losers already marked) and the symbols. Reading ELF files and
//! choosing archive members is `input`'s job; [`from_link_set`] bridges the two, and tests can
//! build these by hand.

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use crate::input::select::LinkSet;
pub use crate::input::{Binding, InputSymbol, SymbolKind, SymbolSection, Visibility};
use crate::target::{ElfClass, Endian};
use rayon::prelude::*;

/// Index of an input file in link order.
pub type FileId = usize;

/// Section positions of one [`InputFile`] by ELF index (see [`InputFile::section_positions`]).
pub struct SectionPositions<'f, 'a> {
    file: &'f InputFile<'a>,
    /// Position by index; `u32::MAX` where the file keeps no section of that index.
    by_index: Vec<u32>,
}

impl SectionPositions<'_, '_> {
    /// [`InputFile::section_position`] of section `shndx`.
    pub fn get(&self, shndx: usize) -> Option<usize> {
        match self.by_index.get(shndx) {
            Some(&pos) if pos != u32::MAX => Some(pos as usize),
            Some(_) => None,
            None => self.file.section_position(shndx),
        }
    }
}

/// One input object as the linker sees it, after archive member selection.
#[derive(Debug, Clone)]
pub struct InputFile<'a> {
    /// The name file patterns are matched against (`init/main.o`, `.tmp_vmlinux1.kallsyms.o`).
    pub name: String,
    /// The archive this object was a member of, if any (EXCLUDE_FILE and `archive:member` match it).
    pub archive: Option<String>,
    /// Shared by copies of the file: a layout with one input replaced copies the list of files.
    pub sections: Arc<Vec<InputSection<'a>>>,
    /// The whole symbol table, index 0 included; borrowed from the parsed object when there is one.
    pub symbols: InputSymbols<'a>,
    /// For each symbol (by position in `symbols`): named by a relocation of a kept section.
    /// With `--emit-relocs`, ld lists an undefined symbol in the output only then.
    pub reloc_referenced: Vec<bool>,
    /// bfd's id of the object, which names aarch64 erratum veneers: bfds count from 2 in the
    /// order ld opens them, archives included ([`from_link_set`] works them out); 0 for objects
    /// ld never opened (the pass simulator's kallsyms object).
    pub bfd_id: u32,
}

impl InputFile<'_> {
    /// The position in [`InputFile::sections`] of the section with ELF index `shndx`; sections
    /// are kept in increasing index order, except linker-made ones (indexed past the ELF table),
    /// which come last in the order ld added them.
    pub fn section_position(&self, shndx: usize) -> Option<usize> {
        self.sections
            .binary_search_by_key(&shndx, |s| s.index)
            .ok()
            .or_else(|| {
                // Linker-made sections (indices far past the ELF table) sit at the end in the
                // order ld added them, which need not be the order of their indices.
                (shndx > 4 * self.sections.len() + 16)
                    .then(|| self.sections.iter().rposition(|s| s.index == shndx))
                    .flatten()
            })
    }

    /// [`InputFile::section_position`] for many lookups: a table by ELF index, built once.
    pub fn section_positions(&self) -> SectionPositions<'_, '_> {
        let mut by_index = Vec::new();
        for (pos, s) in self.sections.iter().enumerate() {
            // Linker-made sections have indices far past the ELF table: binary search finds them.
            if s.index <= 4 * self.sections.len() + 16 {
                if by_index.len() <= s.index {
                    by_index.resize(s.index + 1, u32::MAX);
                }
                by_index[s.index] = pos as u32;
            }
        }
        SectionPositions {
            file: self,
            by_index,
        }
    }

    /// Whether `other` differs from this file at most in its name, section sizes and symbol
    /// values: the only differences ld's steps before sizing never look at (file patterns do
    /// see the name; [`crate::layout::map::file_names_equivalent`] tells whether they can
    /// tell two names apart).
    pub fn same_shape(&self, other: &InputFile<'_>) -> bool {
        let same_section = |a: &InputSection<'_>, b: &InputSection<'_>| {
            a.name == b.name
                && a.index == b.index
                && a.align == b.align
                && a.sh_type == b.sh_type
                && a.sh_flags == b.sh_flags
                && a.entsize == b.entsize
                && a.data == b.data
                && a.duplicate == b.duplicate
                && a.linker_created == b.linker_created
                && a.link == b.link
                && a.relocs.data == b.relocs.data
        };
        let same_symbol = |a: &InputSymbol<'_>, b: &InputSymbol<'_>| {
            a.index == b.index
                && a.name == b.name
                && a.binding == b.binding
                && a.visibility == b.visibility
                && a.kind == b.kind
                && a.section == b.section
                && a.size == b.size
                && (a.value == b.value || matches!(a.section, SymbolSection::Section(_)))
        };
        self.archive == other.archive
            && self.reloc_referenced == other.reloc_referenced
            && self.sections.len() == other.sections.len()
            && self
                .sections
                .iter()
                .zip(other.sections.iter())
                .all(|(a, b)| same_section(a, b))
            && self.symbols.len() == other.symbols.len()
            && self
                .symbols
                .iter()
                .zip(other.symbols.iter())
                .all(|(a, b)| same_symbol(a, b))
    }
}

/// An input file's symbol table: borrowed from the parsed object (cloning copies nothing), or
/// owned for an object the caller synthesised.
#[derive(Debug, Clone)]
pub enum InputSymbols<'a> {
    Borrowed(&'a [InputSymbol<'a>]),
    Owned(Vec<InputSymbol<'a>>),
}

impl<'a> Deref for InputSymbols<'a> {
    type Target = [InputSymbol<'a>];

    fn deref(&self) -> &Self::Target {
        match self {
            InputSymbols::Borrowed(s) => s,
            InputSymbols::Owned(v) => v,
        }
    }
}

impl Default for InputSymbols<'_> {
    fn default() -> Self {
        InputSymbols::Owned(Vec::new())
    }
}

impl<'a> From<Vec<InputSymbol<'a>>> for InputSymbols<'a> {
    fn from(symbols: Vec<InputSymbol<'a>>) -> Self {
        InputSymbols::Owned(symbols)
    }
}

/// One section of an input object that bfd turns into an input section.
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
    /// A later copy of a COMDAT group or `.gnu.linkonce` section, which ld drops.
    pub duplicate: bool,
    /// Made by the linker itself (the build-id note), which keeps its output section alive.
    pub linker_created: bool,
    /// `sh_link` (the section an ARM unwind index describes), 0 when none.
    pub link: usize,
    /// The relocations that apply to it (target backends size stubs from them).
    pub relocs: Relocs<'a>,
}

/// The raw REL or RELA entries of one input section, borrowed from the mapped object.
#[derive(Debug, Clone, Copy, Default)]
pub struct Relocs<'a> {
    pub data: &'a [u8],
    /// RELA (explicit addends) rather than REL.
    pub rela: bool,
    pub class64: bool,
    pub big_endian: bool,
}

/// One relocation as bfd's linker reads it (`_bfd_elf_link_read_relocs`): REL entries have
/// addend 0, their in-place addend stays in the section contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloc {
    pub offset: u64,
    pub sym: usize,
    pub r_type: u32,
    pub addend: i64,
}

impl<'a> Relocs<'a> {
    /// The entries in table order.
    pub fn iter(&self) -> impl Iterator<Item = Reloc> + 'a {
        let Relocs {
            data,
            rela,
            class64,
            big_endian,
        } = *self;
        let w = if class64 { 8 } else { 4 };
        let entry = if rela { 3 * w } else { 2 * w };
        let word = move |b: &[u8]| -> u64 {
            let mut v = 0u64;
            for i in 0..w {
                let byte = if big_endian { b[i] } else { b[w - 1 - i] };
                v = (v << 8) | u64::from(byte);
            }
            v
        };
        data.chunks_exact(entry).map(move |e| {
            let info = word(&e[w..2 * w]);
            let (sym, r_type) = if class64 {
                ((info >> 32) as usize, (info & 0xffff_ffff) as u32)
            } else {
                ((info >> 8) as usize, (info & 0xff) as u32)
            };
            let addend = if rela {
                let a = word(&e[2 * w..3 * w]);
                if class64 {
                    a as i64
                } else {
                    i64::from(a as u32 as i32)
                }
            } else {
                0
            };
            Reloc {
                offset: word(&e[..w]),
                sym,
                r_type,
                addend,
            }
        })
    }
}

/// ELF constants the layout rules use.
pub mod elf {
    pub const SHT_NULL: u32 = 0;
    pub const SHT_PROGBITS: u32 = 1;
    pub const SHT_SYMTAB: u32 = 2;
    pub const SHT_STRTAB: u32 = 3;
    pub const SHT_RELA: u32 = 4;
    pub const SHT_NOTE: u32 = 7;
    pub const SHT_NOBITS: u32 = 8;
    pub const SHT_REL: u32 = 9;
    pub const SHT_GROUP: u32 = 17;
    pub const SHT_SYMTAB_SHNDX: u32 = 18;

    pub const SHF_WRITE: u64 = 0x1;
    pub const SHF_ALLOC: u64 = 0x2;
    pub const SHF_EXECINSTR: u64 = 0x4;
    pub const SHF_MERGE: u64 = 0x10;
    pub const SHF_STRINGS: u64 = 0x20;
    pub const SHF_TLS: u64 = 0x400;
    pub const SHF_EXCLUDE: u64 = 0x8000_0000;
}

impl InputSection<'_> {
    /// A relocation section applies to it (ld then never merges it).
    pub fn has_relocs(&self) -> bool {
        !self.relocs.data.is_empty()
    }
}

/// bfd's id of each linked object, in load order: ids count every bfd in the order ld opens it,
/// from 2 (the output and ld's stub file come first); an archive named on the command line
/// takes one when ld reaches it, whether or not a member is linked, and each linked member one
/// when it is loaded (measured with ld 2.40).
fn bfd_ids(set: &LinkSet<'_>) -> Vec<u32> {
    let mut next_id = 2u32;
    let mut reached = 0usize;
    let mut ids = Vec::with_capacity(set.order.len());
    for r in set.objects().map(|(r, _)| r) {
        while reached <= r.file {
            if matches!(
                set.files.get(reached),
                Some(crate::input::InputFile::Archive(_))
            ) {
                next_id += 1;
            }
            reached += 1;
        }
        ids.push(next_id);
        next_id += 1;
    }
    ids
}

/// The layout view of a resolved link: objects in load order, sections as bfd creates them
/// (no symbol, string-table, relocation or group-table sections), COMDAT losers marked.
/// `base` is the directory the command line's relative paths were resolved against; names
/// are reported relative to it, as ld sees them. Objects are converted on every thread:
/// each one's relocations are read to mark the symbols they reference.
pub fn from_link_set<'a>(set: &'a LinkSet<'a>, base: &Path) -> Vec<InputFile<'a>> {
    let dropped = set.discarded_duplicates();
    let objects: Vec<_> = set.objects().zip(bfd_ids(set)).collect();
    objects
        .into_par_iter()
        .map(|((r, obj), bfd_id)| {
            let (name, archive) = match obj.origin.member {
                None => (display_path(obj.origin.file, base), None),
                Some(member) => (
                    member_file_name(obj.origin.file, member, base),
                    Some(display_path(obj.origin.file, base)),
                ),
            };
            let symtab_strtabs: Vec<u32> = obj
                .sections
                .iter()
                .filter(|s| s.sh_type == elf::SHT_SYMTAB)
                .map(|s| s.sh_link)
                .collect();
            // The relocation section applying to each section index (the first, as ld reads).
            let mut relocated: Vec<Option<Relocs<'a>>> = vec![None; obj.sections.len()];
            for s in &obj.sections {
                if matches!(s.sh_type, elf::SHT_REL | elf::SHT_RELA)
                    && let Some(slot @ None) = relocated.get_mut(s.sh_info as usize)
                {
                    *slot = Some(Relocs {
                        data: s.data,
                        rela: s.sh_type == elf::SHT_RELA,
                        class64: obj.class == ElfClass::Elf64,
                        big_endian: obj.endian == Endian::Big,
                    });
                }
            }
            // Sized up front: a filtered collect would regrow (and copy) the list a dozen
            // times for an object of 50k sections.
            let mut sections = Vec::with_capacity(obj.sections.len());
            sections.extend(
                obj.sections
                    .iter()
                    .filter(|s| {
                        !matches!(
                            s.sh_type,
                            elf::SHT_NULL
                                | elf::SHT_SYMTAB
                                | elf::SHT_REL
                                | elf::SHT_RELA
                                | elf::SHT_SYMTAB_SHNDX
                        ) && !(s.sh_type == elf::SHT_STRTAB
                            && (symtab_strtabs.contains(&(s.index as u32))
                                || s.name == ".shstrtab"))
                    })
                    .map(|s| InputSection {
                        name: s.name,
                        index: s.index,
                        size: s.size,
                        align: s.align.max(1),
                        sh_type: s.sh_type,
                        sh_flags: s.sh_flags,
                        entsize: s.sh_entsize,
                        data: s.data,
                        duplicate: dropped.contains(&(r, s.index)),
                        linker_created: false,
                        link: s.sh_link as usize,
                        relocs: relocated[s.index].unwrap_or_default(),
                    }),
            );
            let mut reloc_referenced = vec![false; obj.symbols.len()];
            for (target, relocs) in relocated.iter().enumerate() {
                let Some(relocs) = relocs else {
                    continue;
                };
                if dropped.contains(&(r, target)) {
                    continue;
                }
                for rel in relocs.iter() {
                    if let Some(slot) = reloc_referenced.get_mut(rel.sym) {
                        *slot = true;
                    }
                }
            }
            InputFile {
                name,
                archive,
                sections: sections.into(),
                symbols: InputSymbols::Borrowed(&obj.symbols),
                reloc_referenced,
                bfd_id,
            }
        })
        .collect()
}

fn display_path(p: &Path, base: &Path) -> String {
    let rel = p.strip_prefix(base).unwrap_or(p);
    let s = rel.to_string_lossy();
    s.strip_prefix("./").unwrap_or(&s).to_string()
}

/// bfd names a regular archive member by its member name and a thin archive member by its
/// path, which the archive stores relative to its own directory.
fn member_file_name(archive: &Path, member: &str, base: &Path) -> String {
    match archive.parent() {
        Some(dir)
            if !dir.as_os_str().is_empty()
                && !Path::new(member).is_absolute()
                && member.contains('/') =>
        {
            display_path(&dir.join(member), base)
        }
        _ => member.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(index: usize) -> InputSection<'static> {
        InputSection {
            name: ".text",
            index,
            size: 0,
            align: 1,
            sh_type: elf::SHT_PROGBITS,
            sh_flags: 0,
            entsize: 0,
            data: &[],
            duplicate: false,
            linker_created: false,
            link: 0,
            relocs: Relocs::default(),
        }
    }

    #[test]
    fn section_positions_agree_with_the_binary_search() {
        // Sparse ELF indices (relocation sections dropped) and a linker-made section far past
        // the table.
        let file = InputFile {
            name: "a.o".into(),
            archive: None,
            sections: Arc::new(
                [1, 3, 5, 6, 9, usize::MAX - 1]
                    .into_iter()
                    .map(section)
                    .collect(),
            ),
            symbols: Vec::new().into(),
            bfd_id: 2,
            reloc_referenced: Vec::new(),
        };
        let positions = file.section_positions();
        for shndx in (0..12).chain([usize::MAX - 1, usize::MAX]) {
            assert_eq!(
                positions.get(shndx),
                file.section_position(shndx),
                "index {shndx}"
            );
        }
        assert_eq!(positions.get(usize::MAX - 1), Some(5));
    }
}
