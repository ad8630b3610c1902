//! A linked image (`vmlinux`, `.tmp_vmlinuxN`) read the way link-vmlinux.sh reads it: `nm -n`
//! through mksysmap, giving the kallsyms input map, with the section class of every kept line
//! for stable mode, plus the section headers and symbol values that pass diagnostics talk about.
//!
//! Owns reading the ELF file (through [`crate::input::nm`]) and classifying its sections
//! against the kallsyms ranges. Must not build tables or compare passes.

use std::collections::HashMap;

use object::{Object, ObjectSection, SectionFlags};
use thiserror::Error;

use super::mksysmap;
use crate::input::nm::{self, NmError};
use crate::kallsyms::{KallsymsError, PtrWidth, SectionClass, SymbolMap, Version};

/// Why a file could not be read as a linked image.
#[derive(Debug, Error, miette::Diagnostic)]
pub enum ImageError {
    /// The symbol table could not be listed.
    #[error("cannot list symbols: {0}")]
    Nm(#[from] NmError),
    /// The section headers could not be read.
    #[error("malformed ELF: {0}")]
    Malformed(#[from] object::Error),
}

/// One section header, with what the kallsyms ranges make of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSection {
    /// ELF section header index.
    pub index: usize,
    pub name: String,
    pub addr: u64,
    pub size: u64,
    /// `sh_addralign` (at least 1).
    pub align: u64,
    /// `SHF_ALLOC`: only allocated sections take part in the layout.
    pub alloc: bool,
    /// Which kallsyms range the section overlaps.
    pub class: SectionClass,
}

impl ImageSection {
    /// First address after the section.
    pub fn end(&self) -> u64 {
        self.addr.saturating_add(self.size)
    }
}

/// One symbol as `nm -n` lists it, with the section it is defined in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSymbol<'a> {
    pub name: &'a [u8],
    pub value: u64,
    pub letter: char,
    /// ELF section header index (None for undefined, absolute and common symbols).
    pub section: Option<usize>,
}

/// The values of the range markers, as the kallsyms tool records them (last occurrence wins).
#[derive(Debug, Clone, Copy, Default)]
struct Markers {
    text: (Option<u64>, Option<u64>),
    inittext: (Option<u64>, Option<u64>),
    percpu: (Option<u64>, Option<u64>),
}

impl Markers {
    fn record(&mut self, name: &[u8], value: u64) {
        let slot = match name {
            b"_stext" => &mut self.text.0,
            b"_etext" => &mut self.text.1,
            b"_sinittext" => &mut self.inittext.0,
            b"_einittext" => &mut self.inittext.1,
            b"__per_cpu_start" => &mut self.percpu.0,
            b"__per_cpu_end" => &mut self.percpu.1,
            _ => return,
        };
        *slot = Some(value);
    }

    /// The class of an allocated section of nonzero size `[addr, end)`.
    fn classify(&self, addr: u64, end: u64) -> SectionClass {
        let overlaps = |range: (Option<u64>, Option<u64>)| match range {
            (Some(start), Some(stop)) => addr < stop && end > start,
            _ => false,
        };
        if overlaps(self.text) {
            SectionClass::Text
        } else if overlaps(self.inittext) {
            SectionClass::InitText
        } else if overlaps(self.percpu) {
            SectionClass::PerCpu
        } else {
            SectionClass::Other
        }
    }
}

/// A linked ELF image and the kallsyms input map link-vmlinux.sh would make of it.
#[derive(Debug)]
pub struct LinkedImage<'a> {
    /// The whole file (DWARF readers borrow from it).
    pub data: &'a [u8],
    /// `BITS_PER_LONG` of the image.
    pub ptr: PtrWidth,
    /// Section headers in index order.
    pub sections: Vec<ImageSection>,
    /// Every symbol `nm` lists, in `nm -n` order.
    pub symbols: Vec<ImageSymbol<'a>>,
    /// Name → index in `symbols` of its last occurrence.
    by_name: HashMap<&'a [u8], usize>,
    version: Version,
    /// `nm -n IMAGE | mksysmap` for `version`.
    map_text: Vec<u8>,
    /// Section class of each line of `map_text`.
    line_class: Vec<SectionClass>,
}

/// Whether `data` starts like an ELF file (anything else is taken for a text map).
pub fn is_elf(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
}

impl<'a> LinkedImage<'a> {
    /// Reads the image's symbols and sections; the map follows `version`'s mksysmap rules.
    pub fn parse(data: &'a [u8], version: Version) -> Result<Self, ImageError> {
        let (listed, width) = nm::symbols_with_sections(data)?;
        let file = object::File::parse(data)?;
        let ptr = if file.is_64() {
            PtrWidth::Bits64
        } else {
            PtrWidth::Bits32
        };
        let mut markers = Markers::default();
        for (sym, _) in &listed {
            markers.record(sym.name, sym.value);
        }
        let sections = file
            .sections()
            .map(|s| {
                let flags = match s.flags() {
                    SectionFlags::Elf { sh_flags } => sh_flags,
                    _ => 0,
                };
                let alloc = flags & u64::from(object::elf::SHF_ALLOC) != 0;
                let (addr, size) = (s.address(), s.size());
                let class = if alloc && size > 0 {
                    markers.classify(addr, addr.saturating_add(size))
                } else {
                    SectionClass::Other
                };
                Ok(ImageSection {
                    index: s.index().0,
                    name: String::from_utf8_lossy(s.name_bytes()?).into_owned(),
                    addr,
                    size,
                    align: s.align().max(1),
                    alloc,
                    class,
                })
            })
            .collect::<Result<Vec<_>, object::Error>>()?;

        let mut image = LinkedImage {
            data,
            ptr,
            sections,
            symbols: Vec::with_capacity(listed.len()),
            by_name: HashMap::with_capacity(listed.len()),
            version,
            map_text: Vec::with_capacity(listed.len() * 40),
            line_class: Vec::with_capacity(listed.len()),
        };
        for (sym, section) in &listed {
            let class = section
                .and_then(|i| image.section(i))
                .map_or(SectionClass::Other, |s| s.class);
            let start = image.map_text.len();
            image
                .map_text
                .extend(nm::format(std::slice::from_ref(sym), width));
            let line = &image.map_text[start..image.map_text.len() - 1];
            if mksysmap::keep(line, version) {
                let lines = image.map_text[start..].iter().filter(|&&b| b == b'\n');
                image.line_class.extend(lines.map(|_| class));
            } else {
                image.map_text.truncate(start);
            }
            image.by_name.insert(sym.name, image.symbols.len());
            image.symbols.push(ImageSymbol {
                name: sym.name,
                value: sym.value,
                letter: sym.letter,
                section: *section,
            });
        }
        Ok(image)
    }

    /// Exactly what `nm -n IMAGE | sed -f scripts/mksysmap` prints (the `.syms` file).
    pub fn map_text(&self) -> &[u8] {
        &self.map_text
    }

    /// The kallsyms input map, each symbol carrying the class of the section it is defined in.
    pub fn symbol_map(&self) -> Result<SymbolMap<'_>, KallsymsError> {
        let mut map = crate::kallsyms::parse_symbol_map(&self.map_text, self.version)?;
        for sym in &mut map.symbols {
            sym.section = self.line_class.get(sym.line.wrapping_sub(1)).copied();
        }
        Ok(map)
    }

    /// The section with ELF index `index`.
    pub fn section(&self, index: usize) -> Option<&ImageSection> {
        self.sections.iter().find(|s| s.index == index)
    }

    /// The last symbol named `name` (the one the kallsyms tool's range markers would use).
    pub fn symbol(&self, name: &[u8]) -> Option<&ImageSymbol<'a>> {
        self.by_name.get(name).map(|&i| &self.symbols[i])
    }

    /// The section a symbol is defined in.
    pub fn section_of(&self, sym: &ImageSymbol<'_>) -> Option<&ImageSection> {
        sym.section.and_then(|i| self.section(i))
    }

    /// Allocated sections of nonzero size that start at `addr`.
    pub fn sections_starting_at(&self, addr: u64) -> impl Iterator<Item = &ImageSection> {
        self.sections
            .iter()
            .filter(move |s| s.alloc && s.size > 0 && s.addr == addr)
    }

    /// The allocated section of nonzero size that ends last at or before `addr`, if any.
    pub fn section_ending_before(&self, addr: u64) -> Option<&ImageSection> {
        self.sections
            .iter()
            .filter(|s| s.alloc && s.size > 0 && s.end() <= addr && s.addr < addr)
            .max_by_key(|s| (s.end(), s.addr))
    }
}
