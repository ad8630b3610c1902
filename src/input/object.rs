//! One ELF relocatable object: its sections, COMDAT groups and symbols, borrowed from the
//! mapped bytes. Reads headers and tables only; never copies or interprets section contents.

use object::elf;
use object::read::elf::{FileHeader, SectionHeader, Sym};
use object::{Endianness, SectionIndex, SymbolIndex};

use super::{InputError, Origin};
use crate::prefetch;
use crate::target::{ElfClass, Endian, Target};

/// One input section, as the linker script's input section descriptions see it.
#[derive(Debug, Clone)]
pub struct InputSection<'a> {
    /// Index in the object's section header table.
    pub index: usize,
    pub name: &'a str,
    pub size: u64,
    /// `sh_addralign`, with 0 reported as 1 (ld treats both the same).
    pub align: u64,
    pub sh_type: u32,
    pub sh_flags: u64,
    pub sh_entsize: u64,
    pub sh_link: u32,
    pub sh_info: u32,
    /// Index into [`InputObject::groups`] of the group this section belongs to.
    pub group: Option<usize>,
    /// The section's bytes in the mapped file (empty for `SHT_NOBITS`).
    pub data: &'a [u8],
}

/// A `SHT_GROUP` section: sections kept or dropped together.
#[derive(Debug, Clone)]
pub struct Group<'a> {
    /// The group's own section index.
    pub section: usize,
    /// Signature symbol name; the first group with a given signature wins when `comdat`.
    pub signature: &'a str,
    pub comdat: bool,
    /// Section indices of the members.
    pub members: Vec<usize>,
}

/// Symbol binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Binding {
    Local,
    Global,
    Weak,
    /// `STB_GNU_UNIQUE`.
    Unique,
    Other(u8),
}

impl Binding {
    pub fn from_elf(bind: u8) -> Self {
        match bind {
            elf::STB_LOCAL => Binding::Local,
            elf::STB_GLOBAL => Binding::Global,
            elf::STB_WEAK => Binding::Weak,
            elf::STB_GNU_UNIQUE => Binding::Unique,
            other => Binding::Other(other),
        }
    }
}

/// Symbol visibility (`st_other & 3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Default,
    Internal,
    Hidden,
    Protected,
}

impl Visibility {
    pub fn from_elf(other: u8) -> Self {
        match other & 3 {
            elf::STV_INTERNAL => Visibility::Internal,
            elf::STV_HIDDEN => Visibility::Hidden,
            elf::STV_PROTECTED => Visibility::Protected,
            _ => Visibility::Default,
        }
    }
}

/// Symbol type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SymbolKind {
    NoType,
    Object,
    Func,
    Section,
    File,
    Common,
    Tls,
    /// `STT_GNU_IFUNC`.
    Ifunc,
    Other(u8),
}

impl SymbolKind {
    pub fn from_elf(kind: u8) -> Self {
        match kind {
            elf::STT_NOTYPE => SymbolKind::NoType,
            elf::STT_OBJECT => SymbolKind::Object,
            elf::STT_FUNC => SymbolKind::Func,
            elf::STT_SECTION => SymbolKind::Section,
            elf::STT_FILE => SymbolKind::File,
            elf::STT_COMMON => SymbolKind::Common,
            elf::STT_TLS => SymbolKind::Tls,
            elf::STT_GNU_IFUNC => SymbolKind::Ifunc,
            other => SymbolKind::Other(other),
        }
    }
}

/// Where a symbol is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolSection {
    Undefined,
    Absolute,
    /// A COMMON symbol: `value` is its alignment.
    Common,
    /// Defined in the section with this index.
    Section(usize),
    /// Another reserved `st_shndx` (processor- or OS-specific).
    Reserved(u16),
}

/// One entry of the object's symbol table.
#[derive(Debug, Clone)]
pub struct InputSymbol<'a> {
    /// Index in the symbol table (0 is the null symbol, which is included).
    pub index: usize,
    pub name: &'a str,
    pub binding: Binding,
    pub visibility: Visibility,
    pub kind: SymbolKind,
    pub section: SymbolSection,
    pub value: u64,
    pub size: u64,
}

impl InputSymbol<'_> {
    /// Alignment of a COMMON symbol (ELF keeps it in `st_value`).
    pub fn common_align(&self) -> Option<u64> {
        (self.section == SymbolSection::Common).then_some(self.value)
    }

    /// True for a global or weak definition (what an archive index lists).
    pub fn is_global_definition(&self) -> bool {
        self.binding != Binding::Local && !matches!(self.section, SymbolSection::Undefined)
    }
}

/// One ELF relocatable object.
#[derive(Debug, Clone)]
pub struct InputObject<'a> {
    pub origin: Origin<'a>,
    pub class: ElfClass,
    pub endian: Endian,
    pub e_machine: u16,
    /// `e_flags` (ARM keeps its EABI version here).
    pub e_flags: u32,
    /// Every section header, index 0 included, in order.
    pub sections: Vec<InputSection<'a>>,
    pub groups: Vec<Group<'a>>,
    /// The whole `.symtab`, index 0 included, in order.
    pub symbols: Vec<InputSymbol<'a>>,
}

impl<'a> InputObject<'a> {
    /// Parses `data` as an ELF relocatable object; with a target, checks class, byte order
    /// and machine against it.
    pub fn parse(
        data: &'a [u8],
        origin: Origin<'a>,
        target: Option<&Target>,
    ) -> Result<Self, InputError> {
        if data.len() < 16 || &data[..4] != b"\x7fELF" {
            return Err(InputError::Foreign {
                file: origin.to_string(),
                detail: if data.is_empty() {
                    "empty file"
                } else {
                    "no ELF magic"
                },
            });
        }
        let obj = match data[4] {
            elf::ELFCLASS32 => parse_elf::<elf::FileHeader32<Endianness>>(data, origin)?,
            elf::ELFCLASS64 => parse_elf::<elf::FileHeader64<Endianness>>(data, origin)?,
            _ => {
                return Err(InputError::Foreign {
                    file: origin.to_string(),
                    detail: "unknown ELF class",
                });
            }
        };
        if let Some(t) = target {
            obj.check_target(t)?;
        }
        Ok(obj)
    }

    /// Errors unless this object can be linked for `target`.
    pub fn check_target(&self, target: &Target) -> Result<(), InputError> {
        let file = || self.origin.to_string();
        if self.class != target.class {
            return Err(InputError::WrongClass {
                file: file(),
                expected: target.class,
                found: self.class,
            });
        }
        if self.endian != target.endian {
            return Err(InputError::WrongEndian {
                file: file(),
                expected: target.endian,
                found: self.endian,
            });
        }
        if self.e_machine != target.e_machine {
            return Err(InputError::WrongMachine {
                file: file(),
                target: target.name.clone(),
                expected: target.e_machine,
                found: self.e_machine,
            });
        }
        Ok(())
    }

    /// The section a symbol is defined in, if it is defined in one.
    pub fn symbol_section(&self, sym: &InputSymbol<'a>) -> Option<&InputSection<'a>> {
        match sym.section {
            SymbolSection::Section(i) => self.sections.get(i),
            _ => None,
        }
    }
}

fn malformed(origin: Origin<'_>, e: object::Error) -> InputError {
    InputError::Malformed {
        file: origin.to_string(),
        detail: e.to_string(),
    }
}

/// Sections one object may have. An allyesconfig `vmlinux.o` built with
/// `-ffunction-sections -fdata-sections` has a few hundred thousand; a header claiming more
/// than this is corrupt or hostile, and refusing it up front keeps memory bounded.
const MAX_SECTIONS: usize = 1 << 22;

/// Longest section or symbol name accepted. Kernel names stop at KSYM_NAME_LEN (512) and the
/// longest mangled Rust or C++ names are a few KiB; a longer one is corrupt or hostile.
const MAX_NAME: usize = 1 << 16;

/// `bytes` as a name: valid UTF-8 and at most [`MAX_NAME`] bytes.
fn utf8<'a>(
    origin: Origin<'_>,
    bytes: &'a [u8],
    what: impl FnOnce() -> String,
) -> Result<&'a str, InputError> {
    if bytes.len() > MAX_NAME {
        return Err(InputError::Malformed {
            file: origin.to_string(),
            detail: format!(
                "{} is {} bytes long; names are limited to {MAX_NAME} bytes",
                what(),
                bytes.len()
            ),
        });
    }
    std::str::from_utf8(bytes).map_err(|_| InputError::NonUtf8 {
        file: origin.to_string(),
        what: what(),
    })
}

/// A string table read as text: checked as UTF-8 once as a whole, so that a name costs a
/// NUL search and a boundary check instead of its own validation. Anything unusual (an offset
/// out of range, no NUL, invalid UTF-8 anywhere in the table, an overlong name) returns
/// `None`, and the caller takes the checked path that reports it.
struct StrTab<'a> {
    bytes: &'a [u8],
    text: Option<&'a str>,
}

impl<'a> StrTab<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        StrTab {
            bytes,
            text: std::str::from_utf8(bytes).ok(),
        }
    }

    fn prefetch(&self, offset: u32) {
        if let Some(rest) = self.bytes.get(offset as usize..) {
            prefetch::prefetch(rest);
        }
    }

    fn name(&self, offset: u32) -> Option<&'a str> {
        let start = offset as usize;
        let len = memchr::memchr(0, self.bytes.get(start..)?)?;
        if len > MAX_NAME {
            return None;
        }
        self.text?.get(start..start + len)
    }
}

fn parse_elf<'a, Elf: FileHeader<Endian = Endianness>>(
    data: &'a [u8],
    origin: Origin<'a>,
) -> Result<InputObject<'a>, InputError> {
    let bad = |e| malformed(origin, e);
    let header = Elf::parse(data).map_err(bad)?;
    let endian = header.endian().map_err(bad)?;
    let e_type = header.e_type(endian);
    if e_type != elf::ET_REL {
        return Err(InputError::NotRelocatable {
            file: origin.to_string(),
            e_type,
        });
    }
    let claimed = header.shnum(endian, data).map_err(bad)?;
    if claimed > MAX_SECTIONS {
        return Err(InputError::Malformed {
            file: origin.to_string(),
            detail: format!(
                "claims {claimed} sections; no kernel object has more than {MAX_SECTIONS}"
            ),
        });
    }
    let table = header.sections(endian, data).map_err(bad)?;
    let symtab = table.symbols(endian, data, elf::SHT_SYMTAB).map_err(bad)?;
    let table_text = |index: usize| {
        let bytes = table
            .section(SectionIndex(index))
            .and_then(|sh| sh.data(endian, data))
            .unwrap_or_default();
        StrTab::new(bytes)
    };
    // Without a usable index the checked path below reports what is wrong.
    let section_names = table_text(header.shstrndx(endian, data).map_or(0, |i| i as usize));
    let symbol_names = table_text(symtab.string_section().0);

    let mut sections = Vec::with_capacity(table.len());
    let mut groups = Vec::new();
    for (index, sh) in table.iter().enumerate() {
        let name = match section_names.name(sh.sh_name(endian)) {
            Some(name) => name,
            None => {
                let raw_name = table.section_name(endian, sh).map_err(bad)?;
                utf8(origin, raw_name, || format!("name of section {index}"))?
            }
        };
        let sh_type = sh.sh_type(endian);
        let section_data = if sh_type == elf::SHT_NOBITS || index == 0 {
            &[][..]
        } else {
            sh.data(endian, data).map_err(bad)?
        };
        if let Some((flag, members)) = sh.group(endian, data).map_err(bad)? {
            let sym_index = sh.sh_info(endian) as usize;
            let sym = symtab.symbol(SymbolIndex(sym_index)).map_err(bad)?;
            let sig = symtab.symbol_name(endian, sym).map_err(bad)?;
            let signature = utf8(origin, sig, || {
                format!("signature of group section {index}")
            })?;
            groups.push(Group {
                section: index,
                signature,
                comdat: flag & elf::GRP_COMDAT != 0,
                members: members.iter().map(|m| m.get(endian) as usize).collect(),
            });
        }
        let align: u64 = sh.sh_addralign(endian).into();
        sections.push(InputSection {
            index,
            name,
            size: sh.sh_size(endian).into(),
            align: align.max(1),
            sh_type,
            sh_flags: sh.sh_flags(endian).into(),
            sh_entsize: sh.sh_entsize(endian).into(),
            sh_link: sh.sh_link(endian),
            sh_info: sh.sh_info(endian),
            group: None,
            data: section_data,
        });
    }
    for (g, group) in groups.iter().enumerate() {
        for &m in &group.members {
            let member = sections.get_mut(m).ok_or_else(|| InputError::Malformed {
                file: origin.to_string(),
                detail: format!(
                    "group section {} names section {m}, which does not exist",
                    group.section
                ),
            })?;
            member.group = Some(g);
        }
    }

    let mut symbols = Vec::with_capacity(symtab.len());
    let all_symbols = symtab.symbols();
    for (index, sym) in symtab.iter().enumerate() {
        // Assemblers write names in symbol order, other writers (merging common suffixes)
        // in any: start loading a name some symbols ahead.
        if let Some(ahead) = all_symbols.get(index + prefetch::DISTANCE) {
            symbol_names.prefetch(ahead.st_name(endian));
        }
        let name = match symbol_names.name(sym.st_name(endian)) {
            Some(name) => name,
            None => {
                let raw_name = symtab.symbol_name(endian, sym).map_err(bad)?;
                utf8(origin, raw_name, || format!("name of symbol {index}"))?
            }
        };
        let section = match sym.st_shndx(endian) {
            elf::SHN_UNDEF => SymbolSection::Undefined,
            elf::SHN_ABS => SymbolSection::Absolute,
            elf::SHN_COMMON => SymbolSection::Common,
            elf::SHN_XINDEX => match symtab
                .symbol_section(endian, sym, SymbolIndex(index))
                .map_err(bad)?
            {
                Some(SectionIndex(i)) => SymbolSection::Section(i),
                None => SymbolSection::Undefined,
            },
            shndx if shndx < elf::SHN_LORESERVE => SymbolSection::Section(shndx.into()),
            shndx => SymbolSection::Reserved(shndx),
        };
        if let SymbolSection::Section(i) = section
            && i >= sections.len()
        {
            return Err(InputError::Malformed {
                file: origin.to_string(),
                detail: format!("symbol {index} `{name}` is in section {i}, which does not exist"),
            });
        }
        symbols.push(InputSymbol {
            index,
            name,
            binding: Binding::from_elf(sym.st_bind()),
            visibility: Visibility::from_elf(sym.st_other()),
            kind: SymbolKind::from_elf(sym.st_type()),
            section,
            value: sym.st_value(endian).into(),
            size: sym.st_size(endian).into(),
        });
    }

    Ok(InputObject {
        origin,
        class: if header.is_class_64() {
            ElfClass::Elf64
        } else {
            ElfClass::Elf32
        },
        endian: if header.is_little_endian() {
            Endian::Little
        } else {
            Endian::Big
        },
        e_machine: header.e_machine(endian),
        e_flags: header.e_flags(endian),
        sections,
        groups,
        symbols,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::write::{Object, Symbol, SymbolSection as WriteSection};
    use std::path::Path;

    #[test]
    fn string_tables_read_names_or_defer_to_the_checked_path() {
        let table = StrTab::new(b"\0abc\0caf\xc3\xa9\0");
        assert_eq!(table.name(0), Some(""));
        assert_eq!(table.name(1), Some("abc"));
        assert_eq!(table.name(2), Some("bc"));
        assert_eq!(table.name(5), Some("caf\u{e9}"));
        // Inside a multi-byte character, past the end, or with no NUL: not decided here.
        assert_eq!(table.name(9), None);
        assert_eq!(table.name(11), None);
        assert_eq!(StrTab::new(b"\0abc").name(1), None);
        // One invalid name anywhere sends every name of the table down the checked path.
        assert_eq!(StrTab::new(b"\0ok\0\xff\0").name(1), None);
    }

    fn object_with_symbols(names: &[&[u8]]) -> Vec<u8> {
        let mut obj = Object::new(
            object::BinaryFormat::Elf,
            object::Architecture::X86_64,
            object::Endianness::Little,
        );
        for name in names {
            obj.add_symbol(Symbol {
                name: name.to_vec(),
                value: 0,
                size: 0,
                kind: object::SymbolKind::Data,
                scope: object::SymbolScope::Linkage,
                weak: false,
                section: WriteSection::Undefined,
                flags: object::SymbolFlags::None,
            });
        }
        obj.write().expect("writing a test object")
    }

    #[test]
    fn names_parse_alike_on_both_paths() {
        let origin = Origin {
            file: Path::new("t.o"),
            member: None,
        };
        let data = object_with_symbols(&[b"plain", "caf\u{e9}".as_bytes()]);
        let parsed = InputObject::parse(&data, origin, None).expect("valid object");
        let names: Vec<&str> = parsed.symbols.iter().map(|s| s.name).collect();
        assert!(names.contains(&"plain") && names.contains(&"caf\u{e9}"));

        let data = object_with_symbols(&[b"plain", b"bad\xff"]);
        match InputObject::parse(&data, origin, None) {
            Err(InputError::NonUtf8 { file, what }) => {
                assert_eq!(file, "t.o");
                assert!(what.starts_with("name of symbol"), "{what}");
            }
            other => panic!("expected a non-UTF-8 error, got {other:?}"),
        }
    }
}
