//! Comparing a simulated layout with the image the real linker wrote.
//!
//! Owns reading the linked ELF's allocated sections (with load addresses from its program
//! headers) and the list of differences: per section name, VMA, LMA, size, type and flags, and
//! the full `nm -n` text. It does not simulate anything itself.

use object::Endianness;
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use serde::Serialize;
use thiserror::Error;

use crate::input::nm::{NmError, nm_numeric};
use crate::layout::Layout;
use crate::simulate::predicted_nm;

/// Why a linked file cannot be compared.
#[derive(Debug, Error)]
pub enum VerifyError {
    #[error("not an ELF file")]
    NotElf,
    #[error("malformed ELF: {0}")]
    Malformed(#[from] object::Error),
    #[error(transparent)]
    Nm(#[from] NmError),
}

/// An allocated section as the linked file records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RealSection {
    pub name: String,
    pub vma: u64,
    /// From the PT_LOAD segment holding the section; unknown outside every segment.
    pub lma: Option<u64>,
    pub size: u64,
    pub sh_type: u32,
    pub sh_flags: u64,
}

/// One disagreement between simulation and reality.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Difference {
    MissingSection {
        name: String,
    },
    ExtraSection {
        name: String,
    },
    SectionOrder {
        expected: Vec<String>,
        actual: Vec<String>,
    },
    SectionField {
        name: String,
        field: &'static str,
        expected: u64,
        actual: u64,
    },
    /// `nm -n` lines only the real file has (`-`) or only the simulation has (`+`).
    NmLine {
        line: String,
        only_in_real: bool,
    },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::MissingSection { name } => {
                write!(f, "section {name}: in the linked file, not predicted")
            }
            Difference::ExtraSection { name } => {
                write!(f, "section {name}: predicted, not in the linked file")
            }
            Difference::SectionOrder { expected, actual } => {
                write!(
                    f,
                    "section order: predicted {} / linked {}",
                    expected.join(" "),
                    actual.join(" ")
                )
            }
            Difference::SectionField {
                name,
                field,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "section {name}: {field} predicted {expected:#x}, linked {actual:#x}"
                )
            }
            Difference::NmLine { line, only_in_real } => {
                write!(f, "nm {} {line}", if *only_in_real { "-" } else { "+" })
            }
        }
    }
}

/// The allocated sections of a linked ELF file and its machine.
pub fn real_sections(data: &[u8]) -> Result<(Vec<RealSection>, u16), VerifyError> {
    if data.len() < 16 || &data[..4] != b"\x7fELF" {
        return Err(VerifyError::NotElf);
    }
    match data[4] {
        elf::ELFCLASS32 => read_sections::<elf::FileHeader32<Endianness>>(data),
        elf::ELFCLASS64 => read_sections::<elf::FileHeader64<Endianness>>(data),
        _ => Err(VerifyError::NotElf),
    }
}

fn read_sections<H: FileHeader<Endian = Endianness>>(
    data: &[u8],
) -> Result<(Vec<RealSection>, u16), VerifyError> {
    let header = H::parse(data)?;
    let endian = header.endian()?;
    let segments: Vec<(u64, u64, u64, u64, u64)> = header
        .program_headers(endian, data)?
        .iter()
        .filter(|p| p.p_type(endian) == elf::PT_LOAD)
        .map(|p| {
            (
                p.p_vaddr(endian).into(),
                p.p_paddr(endian).into(),
                p.p_memsz(endian).into(),
                p.p_offset(endian).into(),
                p.p_filesz(endian).into(),
            )
        })
        .collect();
    let sections = header.sections(endian, data)?;
    let mut out = Vec::new();
    for sh in sections.iter() {
        let flags: u64 = sh.sh_flags(endian).into();
        if flags & u64::from(elf::SHF_ALLOC) == 0 {
            continue;
        }
        let name = String::from_utf8_lossy(sections.section_name(endian, sh)?).into_owned();
        let vma: u64 = sh.sh_addr(endian).into();
        let size: u64 = sh.sh_size(endian).into();
        let offset: u64 = sh.sh_offset(endian).into();
        // Sections with file contents are found by file offset (overlays share addresses);
        // NOBITS ones by address.
        let by_offset = sh.sh_type(endian) != elf::SHT_NOBITS && size != 0;
        let lma = segments
            .iter()
            .find(|(v, _, m, o, f)| {
                if by_offset {
                    offset >= *o && offset + size <= o + f
                } else {
                    vma >= *v && vma + size <= v + m && (size != 0 || vma < v + m)
                }
            })
            .map(|(v, p, _, o, _)| {
                if by_offset {
                    p + (offset - o)
                } else {
                    p + (vma - v)
                }
            });
        out.push(RealSection {
            name,
            vma,
            lma,
            size,
            sh_type: sh.sh_type(endian),
            sh_flags: flags,
        });
    }
    Ok((out, header.e_machine(endian)))
}

/// Every difference between `layout` and the linked file `data`.
pub fn compare(layout: &Layout, data: &[u8]) -> Result<Vec<Difference>, VerifyError> {
    let (real, machine) = real_sections(data)?;
    let predicted: Vec<_> = layout
        .sections
        .iter()
        .filter(|s| s.sh_flags & u64::from(elf::SHF_ALLOC) != 0)
        .collect();
    let mut diffs = Vec::new();
    for p in &predicted {
        let Some(r) = real.iter().find(|r| r.name == p.name) else {
            diffs.push(Difference::ExtraSection {
                name: p.name.clone(),
            });
            continue;
        };
        let mut field = |field: &'static str, expected: u64, actual: u64| {
            if expected != actual {
                diffs.push(Difference::SectionField {
                    name: p.name.clone(),
                    field,
                    expected,
                    actual,
                });
            }
        };
        field("VMA", p.vma, r.vma);
        field("size", p.size, r.size);
        field("type", u64::from(p.sh_type), u64::from(r.sh_type));
        field("flags", p.sh_flags, r.sh_flags);
        if let Some(lma) = r.lma.filter(|_| r.size != 0) {
            field("LMA", p.lma, lma);
        }
    }
    for r in &real {
        if !predicted.iter().any(|p| p.name == r.name) {
            diffs.push(Difference::MissingSection {
                name: r.name.clone(),
            });
        }
    }
    let expected: Vec<String> = predicted.iter().map(|p| p.name.clone()).collect();
    let actual: Vec<String> = real.iter().map(|r| r.name.clone()).collect();
    if diffs.is_empty() && expected != actual {
        diffs.push(Difference::SectionOrder { expected, actual });
    }
    let predicted_nm = predicted_nm(layout, machine);
    let real_nm = nm_numeric(data)?;
    diff_lines(&predicted_nm, &real_nm, &mut diffs);
    Ok(diffs)
}

/// Lines present on one side only, as a multiset difference in order of appearance.
fn diff_lines(predicted: &[u8], real: &[u8], out: &mut Vec<Difference>) {
    use std::collections::HashMap;
    let mut counts: HashMap<&[u8], i64> = HashMap::new();
    for l in real.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        *counts.entry(l).or_default() += 1;
    }
    for l in predicted.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        *counts.entry(l).or_default() -= 1;
    }
    for l in real.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if let Some(c) = counts.get_mut(l)
            && *c > 0
        {
            *c -= 1;
            out.push(Difference::NmLine {
                line: String::from_utf8_lossy(l).into_owned(),
                only_in_real: true,
            });
        }
    }
    for l in predicted.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if let Some(c) = counts.get_mut(l)
            && *c < 0
        {
            *c += 1;
            out.push(Difference::NmLine {
                line: String::from_utf8_lossy(l).into_owned(),
                only_in_real: false,
            });
        }
    }
    if out.iter().all(|d| !matches!(d, Difference::NmLine { .. })) && predicted != real {
        out.push(Difference::NmLine {
            line: "(same lines, different order)".into(),
            only_in_real: true,
        });
    }
}
