//! Merging of `SHF_MERGE` input sections, as GNU ld 2.40 (`bfd/merge.c`) does it.
//!
//! Owns: which merge sections form one merge unit, removal of duplicate entries, tail merging of
//! strings, each input section's size after merging, the bytes ld writes for it, and the mapping of
//! an input offset to its place after merging. Must not read ELF, pick output sections or assign
//! addresses: callers pass opaque section ids and an opaque group key (their output section).
//!
//! The model of ld 2.40 (the merge code before its 2023 rewrite), checked against the real linker:
//! - Sections are registered in *input order*: input files in link order, then each file's sections
//!   in section-header order. This is not the order the script places them in.
//! - A merge unit is every registered section with the same group key, `strings` flag, entity size
//!   and alignment. Units never share entries.
//! - Each distinct entry belongs to the input section that first contributed it. If a later copy
//!   needs a larger alignment (strings are aligned by their input offset, capped at the section
//!   alignment), the earlier copy is dropped and the later section owns the entry instead.
//! - Strings that are a suffix of another kept string are folded into it, using ld's own greedy rule
//!   (sort by reversed text, try only the nearest kept neighbour), so results match byte for byte.
//! - A section's merged size covers the entries it owns. A section that owns none is excluded by ld:
//!   it takes no space and adds no alignment padding.
//! - When every section of a unit has a size that is a multiple of the unit's alignment, ld pads
//!   one section to that alignment: the owner of the unit's last-inserted entry, even when that
//!   section ends up excluded (then the padding is lost).

use crate::hash::{FastMap, FastSet};
use std::cmp::Ordering;
use std::ops::Range;

/// One `SHF_MERGE` input section as ld sees it after garbage collection and `/DISCARD/`.
///
/// Callers must list only sections of a final (not `-r`) link that survived both, in input order.
#[derive(Debug, Clone, Copy)]
pub struct MergeInput<'a> {
    /// Caller's opaque id; [`Merged::map_offset`] answers with these ids.
    pub id: usize,
    /// Caller's opaque key for the output section: sections in different groups never merge.
    pub group: usize,
    /// Section contents as stored in the input file.
    pub data: &'a [u8],
    /// `sh_entsize`.
    pub entsize: u64,
    /// `sh_addralign` (0 and 1 both mean unaligned).
    pub align: u64,
    /// `SHF_STRINGS`: entries are NUL-terminated strings rather than fixed-size blobs.
    pub strings: bool,
    /// The section has relocations against it (`SEC_RELOC`); ld then leaves it alone.
    pub has_relocations: bool,
}

/// Why ld left a merge section exactly as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmerged {
    /// The section is empty.
    Empty,
    /// `sh_entsize` is 0.
    ZeroEntsize,
    /// The size is not a multiple of `sh_entsize`.
    PartialEntry,
    /// The section carries relocations.
    Relocations,
    /// The alignment is 2^32 or more.
    AlignmentTooLarge,
    /// Entity size and alignment disagree (ld's sanity check on character size versus alignment).
    EntsizeAlignMismatch,
}

/// What merging did to one input section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Left alone: original size and contents, offsets map to themselves.
    Unmerged(Unmerged),
    /// Holds the entries it contributed first; `size` replaces the input size.
    Kept { size: u64 },
    /// All its entries live in other sections; ld excludes it (no size, no alignment padding).
    /// Its global symbols follow their entries (see [`Merged::map_offset`]); ld writes an input
    /// file's local symbols only if some section of that file is copied to the output, so a file
    /// whose only surviving sections are excluded loses its local symbols.
    Excluded,
}

/// A place after merging: an offset inside the merged contents of input section `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Id of the input section whose merged contents hold the place (may differ from the query).
    pub id: usize,
    /// Offset from the start of that section's merged contents.
    pub offset: u64,
}

/// Bad caller input.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("merge input section id {0} was given more than once")]
    DuplicateId(usize),
}

/// What became of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Emitted in its owner's contents.
    Live,
    /// Replaced by a later, more aligned copy of the same bytes.
    Superseded,
    /// Folded into the tail of the given entry.
    Suffix(usize),
}

#[derive(Debug)]
struct Entry<'a> {
    /// Bytes without the string terminator (fixed-size entries: the whole entry).
    body: &'a [u8],
    /// Bytes emitted: body plus terminator for strings.
    len: u64,
    alignment: u64,
    /// Index (into the input list) of the section whose contents hold this entry.
    owner: usize,
    /// Offset inside the owner's merged contents.
    offset: u64,
    state: State,
}

#[derive(Debug)]
struct Unit<'a> {
    entsize: usize,
    strings: bool,
    align_power: u32,
    /// Input indices in registration order.
    members: Vec<usize>,
    /// Every entry in order of insertion; a section's own entries are contiguous.
    entries: Vec<Entry<'a>>,
    /// Entry body → the entry that currently represents those bytes.
    lookup: FastMap<&'a [u8], usize>,
}

#[derive(Debug)]
struct Section<'a> {
    id: usize,
    data: &'a [u8],
    outcome: Outcome,
    /// Unit and the range of entries this section inserted, for merged sections.
    unit: Option<(usize, Range<usize>)>,
}

/// The result of merging: per input section, its outcome, contents and offset mapping.
#[derive(Debug)]
pub struct Merged<'a> {
    sections: Vec<Section<'a>>,
    units: Vec<Unit<'a>>,
    by_id: FastMap<usize, usize>,
}

/// Merges `inputs` (all `SHF_MERGE` sections of the link, in input order) as ld 2.40 does.
pub fn merge<'a>(inputs: &[MergeInput<'a>]) -> Result<Merged<'a>, MergeError> {
    let mut by_id = FastMap::with_capacity_and_hasher(inputs.len(), Default::default());
    let mut sections = Vec::with_capacity(inputs.len());
    let mut units: Vec<Unit<'a>> = Vec::new();
    let mut unit_of_key: FastMap<(usize, bool, usize, u32), usize> = FastMap::default();

    for (index, input) in inputs.iter().enumerate() {
        if by_id.insert(input.id, index).is_some() {
            return Err(MergeError::DuplicateId(input.id));
        }
        let mut section = Section {
            id: input.id,
            data: input.data,
            outcome: Outcome::Excluded,
            unit: None,
        };
        match screen(input) {
            Err(reason) => section.outcome = Outcome::Unmerged(reason),
            Ok((entsize, align_power)) => {
                let key = (input.group, input.strings, entsize, align_power);
                let unit_index = *unit_of_key.entry(key).or_insert_with(|| {
                    units.push(Unit {
                        entsize,
                        strings: input.strings,
                        align_power,
                        members: Vec::new(),
                        entries: Vec::new(),
                        lookup: FastMap::default(),
                    });
                    units.len() - 1
                });
                let unit = &mut units[unit_index];
                unit.members.push(index);
                let start = unit.entries.len();
                unit.record(index, input.data);
                section.unit = Some((unit_index, start..unit.entries.len()));
            }
        }
        sections.push(section);
    }

    for unit in &mut units {
        unit.finish(&mut sections);
    }
    Ok(Merged {
        sections,
        units,
        by_id,
    })
}

/// ld's reasons to leave a section alone, in the order ld checks them; on success the entity size
/// and alignment power that key the merge unit.
fn screen(input: &MergeInput<'_>) -> Result<(usize, u32), Unmerged> {
    // bfd keeps the entity size in an `unsigned int`, so larger values wrap as they do there.
    let entsize = input.entsize as u32 as usize;
    if input.data.is_empty() {
        return Err(Unmerged::Empty);
    }
    if entsize == 0 {
        return Err(Unmerged::ZeroEntsize);
    }
    if !input.data.len().is_multiple_of(entsize) {
        return Err(Unmerged::PartialEntry);
    }
    if input.has_relocations {
        return Err(Unmerged::Relocations);
    }
    let align_power = ceil_log2(input.align);
    if align_power >= 32 {
        return Err(Unmerged::AlignmentTooLarge);
    }
    let align = 1usize << align_power;
    let mismatch = (entsize < align && (!entsize.is_power_of_two() || !input.strings))
        || (entsize > align && !entsize.is_multiple_of(align));
    if mismatch {
        return Err(Unmerged::EntsizeAlignMismatch);
    }
    Ok((entsize, align_power))
}

/// The alignment power bfd derives from `sh_addralign` (rounding up, 0 and 1 giving 0).
fn ceil_log2(align: u64) -> u32 {
    if align <= 1 {
        0
    } else {
        u64::BITS - (align - 1).leading_zeros()
    }
}

/// The last (up to) eight bytes of `body`, last byte first, zero-padded: comparing these keys
/// agrees with comparing reversed bodies whenever the keys differ.
fn reversed_tail_key(body: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    for (slot, &byte) in buf.iter_mut().zip(body.iter().rev()) {
        *slot = byte;
    }
    u64::from_be_bytes(buf)
}

fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

fn align_up(value: u64, alignment: u64) -> u64 {
    value.next_multiple_of(alignment.max(1))
}

/// Body of the string starting at `start`: up to the first all-zero character, or to the end of
/// the section when the last string lacks its terminator (ld then supplies one).
fn string_at(data: &[u8], start: usize, entsize: usize) -> &[u8] {
    let rest = &data[start..];
    let end = if entsize == 1 {
        rest.iter().position(|&b| b == 0)
    } else {
        rest.chunks_exact(entsize)
            .position(is_zero)
            .map(|n| n * entsize)
    };
    &rest[..end.unwrap_or(rest.len())]
}

/// Start of the string containing `offset`: just after the nearest terminator before the
/// character at `offset`, or the section start.
fn string_start(data: &[u8], offset: usize, entsize: usize) -> usize {
    let mut start = offset / entsize * entsize;
    while start > 0 && !is_zero(&data[start - entsize..start]) {
        start -= entsize;
    }
    start
}

/// Alignment ld demands for an entry found at input offset `offset`: the offset's lowest set bit,
/// capped at the section alignment (offset 0 gets the section alignment).
fn entry_alignment(offset: usize, section_align: u64) -> u64 {
    let lowest = (offset as u64) & (offset as u64).wrapping_neg();
    if lowest == 0 || lowest > section_align {
        section_align
    } else {
        lowest
    }
}

impl<'a> Unit<'a> {
    fn section_align(&self) -> u64 {
        1u64 << self.align_power
    }

    /// Makes `body` present with at least `alignment`, owned by `owner` when newly inserted.
    fn add(&mut self, body: &'a [u8], alignment: u64, owner: usize) {
        if let Some(&existing) = self.lookup.get(body) {
            let entry = &mut self.entries[existing];
            if entry.alignment >= alignment {
                return;
            }
            entry.state = State::Superseded;
        }
        let len = body.len() as u64 + if self.strings { self.entsize as u64 } else { 0 };
        self.lookup.insert(body, self.entries.len());
        self.entries.push(Entry {
            body,
            len,
            alignment,
            owner,
            offset: 0,
            state: State::Live,
        });
    }

    /// Inserts every entry of input section `owner`, as ld's `record_section` walks it.
    fn record(&mut self, owner: usize, data: &'a [u8]) {
        let n = self.entsize;
        if !self.strings {
            for chunk in data.chunks_exact(n) {
                self.add(chunk, 1, owner);
            }
            return;
        }
        let section_align = self.section_align();
        let mut padding_recorded = false;
        let mut p = 0;
        while p < data.len() {
            let body = string_at(data, p, n);
            self.add(body, entry_alignment(p, section_align), owner);
            p += body.len() + n;
            // Runs of NULs after a string are padding; ld records one empty string per section,
            // at the first padding character that sits on a section-aligned offset.
            while p < data.len() && is_zero(&data[p..p + n]) {
                if !padding_recorded && (p as u64).is_multiple_of(section_align) {
                    padding_recorded = true;
                    self.add(&data[p..p], section_align, owner);
                }
                p += n;
            }
        }
    }

    /// Folds strings into longer strings that end with them, by ld's greedy rule.
    fn tail_merge(&mut self) {
        let entries = &self.entries;
        let mut live: Vec<(u64, usize)> = (0..entries.len())
            .filter(|&i| entries[i].state == State::Live)
            .map(|i| (reversed_tail_key(entries[i].body), i))
            .collect();
        // ld orders by reversed text, first by length modulo the alignment when every string
        // shares one alignment larger than a character.
        let first_alignment = live.first().map(|&(_, i)| entries[i].alignment);
        let common =
            first_alignment.filter(|&a| live.iter().all(|&(_, i)| entries[i].alignment == a));
        let tail_align = common.filter(|&a| a > self.entsize as u64);
        live.sort_unstable_by(|&(key_a, a), &(key_b, b)| {
            let (a, b) = (entries[a].body, entries[b].body);
            let by_tail = tail_align.map_or(Ordering::Equal, |align| {
                let mask = align as usize - 1;
                (a.len() & mask).cmp(&(b.len() & mask))
            });
            by_tail
                .then(key_a.cmp(&key_b))
                .then_with(|| a.iter().rev().cmp(b.iter().rev()))
        });
        let live: Vec<usize> = live.into_iter().map(|(_, i)| i).collect();

        let Some((&last, rest)) = live.split_last() else {
            return;
        };
        let mut host = last;
        for &candidate in rest.iter().rev() {
            let (h, c) = (&self.entries[host], &self.entries[candidate]);
            let folds = h.len > c.len
                && h.alignment >= c.alignment
                && (h.len - c.len).is_multiple_of(c.alignment)
                && h.body.ends_with(c.body);
            if folds {
                self.entries[candidate].state = State::Suffix(host);
            } else {
                host = candidate;
            }
        }
    }

    /// Tail-merges, assigns offsets and sizes, and records each member's outcome.
    fn finish(&mut self, sections: &mut [Section<'_>]) {
        if self.strings {
            self.tail_merge();
        }

        // Sizes follow ld's walk over all entries: a section's size is written when the walk moves
        // on to another owner, and only the owner of the very last entry gets the final padding.
        let mut sizes: FastMap<usize, u64> =
            FastMap::with_capacity_and_hasher(self.members.len(), Default::default());
        let mut owners: FastSet<usize> =
            FastSet::with_capacity_and_hasher(self.members.len(), Default::default());
        let Some(first_owner) = self.entries.first().map(|e| e.owner) else {
            return;
        };
        let mut current = first_owner;
        let mut size = 0u64;
        for entry in &mut self.entries {
            if entry.owner != current {
                sizes.insert(current, size);
                current = entry.owner;
            }
            if entry.state == State::Live {
                if owners.insert(entry.owner) {
                    size = 0;
                }
                size = align_up(size, entry.alignment);
                entry.offset = size;
                size += entry.len;
            }
        }
        let section_align = self.section_align();
        let padded = self
            .members
            .iter()
            .all(|&m| (sections[m].data.len() as u64).is_multiple_of(section_align));
        sizes.insert(
            current,
            if padded {
                align_up(size, section_align)
            } else {
                size
            },
        );

        for i in 0..self.entries.len() {
            if let State::Suffix(host) = self.entries[i].state {
                let (owner, offset, len) = {
                    let h = &self.entries[host];
                    (h.owner, h.offset, h.len)
                };
                let entry = &mut self.entries[i];
                entry.owner = owner;
                entry.offset = offset + (len - entry.len);
            }
        }

        for &member in &self.members {
            sections[member].outcome = if owners.contains(&member) {
                Outcome::Kept {
                    size: sizes.get(&member).copied().unwrap_or(0),
                }
            } else {
                Outcome::Excluded
            };
        }
    }
}

impl<'a> Merged<'a> {
    fn section(&self, id: usize) -> Option<&Section<'a>> {
        self.by_id.get(&id).map(|&i| &self.sections[i])
    }

    /// Every input section's id and outcome, in input order.
    pub fn outcomes(&self) -> impl Iterator<Item = (usize, Outcome)> + '_ {
        self.sections.iter().map(|s| (s.id, s.outcome))
    }

    /// What merging did to section `id`; `None` for an id that was not an input.
    pub fn outcome(&self, id: usize) -> Option<Outcome> {
        self.section(id).map(|s| s.outcome)
    }

    /// Size of section `id` after merging (its input size when left alone, 0 when excluded).
    pub fn size(&self, id: usize) -> Option<u64> {
        self.section(id).map(|s| match s.outcome {
            Outcome::Unmerged(_) => s.data.len() as u64,
            Outcome::Kept { size } => size,
            Outcome::Excluded => 0,
        })
    }

    /// Where input offset `offset` of section `id` ends up, as ld's `_bfd_merged_section_offset`
    /// answers it for symbols defined in merge sections: the entry containing the offset (found by
    /// its bytes, so it may live in another section), plus the distance into that entry. ld applies
    /// this to every non-section symbol defined in a merged section, local or global. Offsets at
    /// or past the input end map to the end of the section itself (0 when it was excluded).
    pub fn map_offset(&self, id: usize, offset: u64) -> Option<Target> {
        let section = self.section(id)?;
        let Some((unit_index, _)) = &section.unit else {
            return Some(Target { id, offset });
        };
        let unit = &self.units[*unit_index];
        let data = section.data;
        let entries = &unit.entries;
        let target = |entry: &Entry<'_>, offset: u64| Target {
            id: self.sections[entry.owner].id,
            offset,
        };
        if offset >= data.len() as u64 {
            let end = match section.outcome {
                Outcome::Kept { size } => size,
                _ => 0,
            };
            return Some(Target { id, offset: end });
        }
        let at = offset as usize;
        let n = unit.entsize;
        let (start, body) = if unit.strings {
            let start = string_start(data, at, n);
            (start, string_at(data, start, n))
        } else {
            let start = at / n * n;
            (start, &data[start..start + n])
        };
        if let Some(&e) = unit.lookup.get(body) {
            let entry = &entries[e];
            return Some(target(entry, entry.offset + (at - start) as u64));
        }
        // Only padding NULs miss the table when no section recorded an aligned empty string;
        // ld then points at the terminator of the first kept string of the unit.
        let first = entries.iter().find(|e| e.state == State::Live);
        Some(first.map_or(Target { id, offset }, |f| {
            target(f, f.offset + f.len - n as u64 + (at % n) as u64)
        }))
    }

    /// The bytes ld writes for section `id` (empty when excluded).
    pub fn contents(&self, id: usize) -> Option<Vec<u8>> {
        let section = self.section(id)?;
        let (size, (unit_index, range)) = match (section.outcome, &section.unit) {
            (Outcome::Unmerged(_), _) => return Some(section.data.to_vec()),
            (Outcome::Kept { size }, Some(unit)) => (size, unit),
            _ => return Some(Vec::new()),
        };
        let unit = &self.units[*unit_index];
        let mut out = Vec::with_capacity(size as usize);
        for entry in &unit.entries[range.clone()] {
            if entry.state != State::Live {
                continue;
            }
            out.resize(align_up(out.len() as u64, entry.alignment) as usize, 0);
            out.extend_from_slice(entry.body);
            if unit.strings {
                out.resize(out.len() + unit.entsize, 0);
            }
        }
        out.resize(size as usize, 0);
        Some(out)
    }
}
