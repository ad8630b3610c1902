//! ld's merge of GNU program properties (`.note.gnu.property`), which runs before any section
//! is mapped: ld folds every input's properties into the first input that has a property note,
//! rewrites that note at the merged size (or drops it when no property survives) and drops
//! every other input's note. 6.1's NOTES keeps `.note.*`, so with arm64's PAC/BTI or x86's IBT
//! objects the merge decides the size of `.notes` and everything after it.
//!
//! The rules are those ld 2.40 applies, measured one by one: a feature-bit AND (arm64's
//! `FEATURE_1_AND`, x86's `FEATURE_1_AND`, the generic AND range) survives only when every
//! input has it and the AND is not zero; an OR (the generic OR range, x86's `NEEDED` range)
//! survives when its OR over the inputs that have it is not zero; x86's `USED` range needs every
//! input to have it. A note carrying anything else (another type, a malformed note) is left
//! alone: [`unmodelled`] names it, and a script that keeps it is refused.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::model::{InputFile, elf};

/// The section ld merges (`bfd_get_section_by_name`: one per object).
pub(super) const SECTION: &str = ".note.gnu.property";

const NT_GNU_PROPERTY_TYPE_0: u32 = 5;

/// How a property type combines across inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Kept when every input has it and the AND of the values is not zero.
    And,
    /// Kept when the OR of the values of the inputs that have it is not zero.
    Or,
    /// Kept when every input has it and the OR of the values is not zero.
    OrAnd,
}

/// The rule ld 2.40 merges `pr_type` with on `machine`; None for types it treats otherwise
/// (stack size, processor types it does not know), which are not modelled.
fn rule(machine: u16, pr_type: u32) -> Option<Rule> {
    const EM_386: u16 = object::elf::EM_386;
    const EM_X86_64: u16 = object::elf::EM_X86_64;
    const EM_AARCH64: u16 = object::elf::EM_AARCH64;
    match (machine, pr_type) {
        (_, 0xb000_0000..=0xb000_7fff) => Some(Rule::And),
        (_, 0xb000_8000..=0xb000_ffff) => Some(Rule::Or),
        (EM_AARCH64, 0xc000_0000) => Some(Rule::And),
        (EM_386 | EM_X86_64, 0xc000_0002..=0xc000_7fff) => Some(Rule::And),
        (EM_386 | EM_X86_64, 0xc000_8000..=0xc000_ffff) => Some(Rule::Or),
        (EM_386 | EM_X86_64, 0xc001_0000..=0xc001_7fff) => Some(Rule::OrAnd),
        _ => None,
    }
}

/// How the inputs' ELF format reads: the note layout depends on the class and byte order.
#[derive(Debug, Clone, Copy)]
pub(super) struct NoteFormat {
    pub machine: u16,
    pub is_64: bool,
    pub big_endian: bool,
}

impl NoteFormat {
    fn align(self) -> usize {
        if self.is_64 { 8 } else { 4 }
    }

    fn word(self, data: &[u8], at: usize) -> Option<u32> {
        let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    }
}

fn align_up(value: usize, align: usize) -> Option<usize> {
    value.checked_add(align - 1).map(|v| v & !(align - 1))
}

/// The properties of one `.note.gnu.property` section (type → merge rule and value), or why
/// it is not modelled.
fn parse(data: &[u8], format: NoteFormat) -> Result<BTreeMap<u32, (Rule, u32)>, String> {
    let align = format.align();
    let truncated = || "the note is truncated".to_string();
    let mut properties = BTreeMap::new();
    let mut note = 0;
    while note < data.len() {
        let (Some(namesz), Some(descsz), Some(note_type)) = (
            format.word(data, note),
            format.word(data, note + 4),
            format.word(data, note + 8),
        ) else {
            return Err(truncated());
        };
        let name_end = note + 12 + namesz as usize;
        if data.get(note + 12..name_end) != Some(b"GNU\0".as_slice())
            || note_type != NT_GNU_PROPERTY_TYPE_0
        {
            return Err(format!(
                "a note of type {note_type:#x} other than GNU's properties"
            ));
        }
        let desc = align_up(name_end, 4).ok_or_else(truncated)?;
        let desc_end = desc.checked_add(descsz as usize).ok_or_else(truncated)?;
        let body = data.get(desc..desc_end).ok_or_else(truncated)?;
        let mut at = 0;
        while at < body.len() {
            let (Some(pr_type), Some(datasz)) = (format.word(body, at), format.word(body, at + 4))
            else {
                return Err(truncated());
            };
            let Some(kind) = rule(format.machine, pr_type) else {
                return Err(format!("GNU property type {pr_type:#x}"));
            };
            if datasz != 4 {
                return Err(format!(
                    "GNU property type {pr_type:#x} of {datasz} bytes (ld expects 4)"
                ));
            }
            let value = format.word(body, at + 8).ok_or_else(truncated)?;
            if properties.insert(pr_type, (kind, value)).is_some() {
                return Err(format!("GNU property type {pr_type:#x} given twice"));
            }
            // A 4-byte value padded to the class's alignment.
            at += 8 + align;
        }
        note = align_up(desc_end, align).ok_or_else(truncated)?;
    }
    if properties.is_empty() {
        return Err("a note without properties".to_string());
    }
    Ok(properties)
}

/// The input sections ld merges: (file, position) of each file's property note, in link order.
fn notes<'f>(files: &'f [InputFile<'_>]) -> impl Iterator<Item = (usize, usize)> + 'f {
    files.iter().enumerate().flat_map(|(f, file)| {
        file.sections
            .iter()
            .position(|s| s.name == SECTION && !s.linker_created)
            .map(|s| (f, s))
    })
}

/// A property note the merge cannot model: the file and the problem.
#[derive(Debug)]
pub(super) struct Unmodelled {
    pub file: String,
    pub problem: String,
}

/// The result of ld's merge: the note that stays and its new size (None: dropped too), and
/// every other note, which ld drops.
struct Merge {
    keeper: (usize, usize),
    size: Option<u64>,
    dropped: Vec<(usize, usize)>,
}

/// ld's merge over `files` in link order; None when no input has a property note.
fn merge(files: &[InputFile<'_>], format: NoteFormat) -> Result<Option<Merge>, Unmodelled> {
    let mut found = Vec::new();
    for (f, s) in notes(files) {
        let section = &files[f].sections[s];
        let parsed = if section.sh_type == elf::SHT_NOTE {
            parse(section.data, format)
        } else {
            Err(format!(
                "a section of type {:#x}, not a note",
                section.sh_type
            ))
        };
        let properties = parsed.map_err(|problem| Unmodelled {
            file: files[f].name.clone(),
            problem,
        })?;
        found.push(((f, s), properties));
    }
    let Some(&(keeper, _)) = found.first() else {
        return Ok(None);
    };
    // (rule, combined value, inputs that have it)
    let mut combined: BTreeMap<u32, (Rule, u32, usize)> = BTreeMap::new();
    for (_, properties) in &found {
        for (&pr_type, &(kind, value)) in properties {
            combined
                .entry(pr_type)
                .and_modify(|(_, acc, count)| {
                    *acc = if kind == Rule::And {
                        *acc & value
                    } else {
                        *acc | value
                    };
                    *count += 1;
                })
                .or_insert((kind, value, 1));
        }
    }
    // A lone input is never merged with anything, so its properties stay as they are.
    let merged = files.len() > 1;
    let survivors = combined
        .values()
        .filter(|&&(kind, value, count)| {
            let everywhere = count == files.len();
            let nonzero = value != 0 || !merged;
            nonzero && (kind == Rule::Or || everywhere)
        })
        .count();
    // Note header and "GNU\0", then per property its type, size and padded 4-byte value.
    let per_property = 8 + format.align();
    let size = (survivors > 0).then(|| (16 + survivors * per_property) as u64);
    Ok(Some(Merge {
        keeper,
        size,
        dropped: found.iter().skip(1).map(|(at, _)| *at).collect(),
    }))
}

/// Applies ld's property merge to `files` (in link order): the first note takes the merged
/// size, the others are excluded. Leaves every note as it is when one is not modelled
/// ([`unmodelled`] tells whether the script keeps it).
pub(super) fn apply(files: &mut [InputFile<'_>], format: NoteFormat) {
    let Ok(Some(merge)) = merge(files, format) else {
        return;
    };
    let (f, s) = merge.keeper;
    let keeper = &mut Arc::make_mut(&mut files[f].sections)[s];
    match merge.size {
        Some(size) => keeper.size = size,
        None => keeper.sh_flags |= elf::SHF_EXCLUDE,
    }
    for (f, s) in merge.dropped {
        Arc::make_mut(&mut files[f].sections)[s].sh_flags |= elf::SHF_EXCLUDE;
    }
}

/// Why ld's property merge of `files` is not modelled, if it is not.
pub(super) fn unmodelled(files: &[InputFile<'_>], format: NoteFormat) -> Option<Unmodelled> {
    merge(files, format).err()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARM64: NoteFormat = NoteFormat {
        machine: object::elf::EM_AARCH64,
        is_64: true,
        big_endian: false,
    };

    fn note(properties: &[(u32, u32)]) -> Vec<u8> {
        let mut desc = Vec::new();
        for &(pr_type, value) in properties {
            for word in [pr_type, 4, value, 0] {
                desc.extend(word.to_le_bytes());
            }
        }
        let mut out = Vec::new();
        for word in [4u32, desc.len() as u32, NT_GNU_PROPERTY_TYPE_0] {
            out.extend(word.to_le_bytes());
        }
        out.extend(b"GNU\0");
        out.extend(desc);
        out
    }

    #[test]
    fn parses_properties_and_names_what_it_does_not_model() {
        let parsed = parse(&note(&[(0xc000_0000, 3)]), ARM64);
        assert_eq!(parsed, Ok(BTreeMap::from([(0xc000_0000, (Rule::And, 3))])));
        assert_eq!(
            parse(&note(&[(0xc000_0005, 1)]), ARM64),
            Err("GNU property type 0xc0000005".to_string())
        );
        let full = note(&[(0xc000_0000, 3)]);
        assert_eq!(
            parse(&full[..full.len() - 4], ARM64),
            Err("the note is truncated".to_string())
        );
        assert_eq!(
            parse(&note(&[]), ARM64),
            Err("a note without properties".to_string())
        );
        let x86 = NoteFormat {
            machine: object::elf::EM_X86_64,
            ..ARM64
        };
        assert!(parse(&note(&[(0xc000_0000, 3)]), x86).is_err());
        assert!(parse(&note(&[(0xc000_0002, 1), (0xc001_0002, 5)]), x86).is_ok());
    }

    /// Every prefix of a valid note, and bytes of a fixed pseudo-random sequence, parse to a
    /// result or an error: no panic, no endless loop (a note comes from an unvetted object).
    #[test]
    fn hostile_notes_give_errors() {
        let valid = note(&[(0xc000_0000, 3), (0xb000_8000, 1)]);
        for end in 0..valid.len() {
            assert!(
                parse(&valid[..end], ARM64).is_err(),
                "prefix of {end} bytes"
            );
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..2000 {
            let mut bytes = valid.clone();
            for _ in 0..1 + round % 4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state % bytes.len() as u64) as usize;
                bytes[at] = (state >> 32) as u8;
            }
            let _ = parse(&bytes, ARM64);
            let _ = parse(
                &bytes[..(state % 40) as usize],
                NoteFormat {
                    is_64: false,
                    ..ARM64
                },
            );
        }
    }

    #[test]
    fn rules_follow_the_property_ranges() {
        assert_eq!(rule(object::elf::EM_AARCH64, 0xc000_0000), Some(Rule::And));
        assert_eq!(rule(object::elf::EM_X86_64, 0xc000_0000), None);
        assert_eq!(rule(object::elf::EM_386, 0xc000_8002), Some(Rule::Or));
        assert_eq!(rule(object::elf::EM_X86_64, 0xc001_0001), Some(Rule::OrAnd));
        assert_eq!(rule(object::elf::EM_ARM, 0xb000_8000), Some(Rule::Or));
        assert_eq!(rule(object::elf::EM_ARM, 1), None);
    }
}
