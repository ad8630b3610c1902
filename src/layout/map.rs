//! Mapping input sections to the script's input-section descriptions (ld's `map_input_to_output_sections`).
//!
//! Owns which description claims each input section — the first matching description in script
//! order wins — and the order of sections inside each description (input order, or the SORT
//! rules). Addresses are not computed here.

use super::flags::SecFlags;
use super::glob::{literal_prefix, name_matches};
use super::ir::{OsId, Program, WildId};
use super::model::{FileId, InputFile, elf};
use crate::hash::{FastMap, NameIndex};
use crate::prefetch;
use crate::script::ast::{Constraint, InputSectionDesc, SortKey};
use rayon::prelude::*;

/// An input section: the file in link order and the index in that file's section list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SectionRef {
    pub file: FileId,
    pub sec: usize,
}

/// What happened to an input section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Not yet claimed; after mapping this means orphan.
    Unplaced,
    /// Claimed by a description (which may belong to /DISCARD/).
    Placed(WildId),
    /// A later copy of a COMDAT group, or SHF_EXCLUDE, or a section type ld never places.
    Dropped,
    /// A debugging section removed by `--strip-debug`.
    Stripped,
}

/// ld's sort modes for one section pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortMode {
    None,
    ByName,
    ByAlignment,
    ByNameAlignment,
    ByAlignmentName,
    ByInitPriority,
    /// SORT_NONE: never sort, not even for `--sort-section`.
    Never,
}

impl SortMode {
    /// The mode a stack of SORT wrappers (outermost first) selects, and whether REVERSE was given.
    pub fn from_keys(keys: &[SortKey], default: SortMode) -> (SortMode, bool) {
        let reverse = keys.contains(&SortKey::Reverse);
        let keys: Vec<SortKey> = keys
            .iter()
            .copied()
            .filter(|k| *k != SortKey::Reverse)
            .collect();
        let mode = match keys.as_slice() {
            [] => default,
            [SortKey::None, ..] => SortMode::Never,
            [SortKey::InitPriority, ..] => SortMode::ByInitPriority,
            [SortKey::Name, SortKey::Alignment, ..] => SortMode::ByNameAlignment,
            [SortKey::Alignment, SortKey::Name, ..] => SortMode::ByAlignmentName,
            [SortKey::Name, ..] => SortMode::ByName,
            [SortKey::Alignment, ..] => SortMode::ByAlignment,
            [SortKey::Reverse, ..] => default,
        };
        (mode, reverse)
    }

    fn is_sorting(self) -> bool {
        !matches!(self, SortMode::None | SortMode::Never)
    }
}

/// The result of mapping: each input section's fate and each description's ordered sections.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub disposition: Vec<Vec<Disposition>>,
    pub wild_sections: Vec<Vec<SectionRef>>,
    /// Output statements whose ONLY_IF_RO / ONLY_IF_RW did not hold: ld ignores them.
    pub failed_constraints: Vec<OsId>,
    /// Input sections a KEEP description matches, wherever they are placed (ld marks them
    /// SEC_KEEP before mapping, in `lang_gc_sections_1`).
    pub kept: Vec<Vec<bool>>,
}

/// Options of the command line that change mapping.
#[derive(Debug, Clone, Copy)]
pub struct MapOptions {
    pub strip_debug: bool,
    pub sort_section: SortMode,
}

/// What the descriptions say about one section name, before file patterns are checked.
struct NameMatches {
    /// Descriptions (in script order) whose section patterns match the name.
    claims: Vec<WildId>,
    /// KEEP descriptions that match the name (or name no sections at all).
    keeps: Vec<WildId>,
}

/// Distinct section names one thread matches at least.
const NAMES_PER_TASK: usize = 1024;

/// Decides every input section's description, in ld's order.
pub fn map_inputs(program: &Program<'_, '_>, files: &[InputFile<'_>], opts: MapOptions) -> Mapping {
    let mut disposition: Vec<Vec<Disposition>> = files
        .iter()
        .map(|f| vec![Disposition::Unplaced; f.sections.len()])
        .collect();
    drop_unplaceable(files, &mut disposition, opts);
    let failed_constraints = failed_constraints(program, files, &disposition);
    let mut kept: Vec<Vec<bool>> = files
        .iter()
        .map(|f| vec![false; f.sections.len()])
        .collect();

    // Patterns are matched once per distinct section name, on every thread (kernel objects
    // built with -ffunction-sections have tens of thousands); file patterns per section.
    let mut by_name = NameIndex::default();
    let mut names: Vec<&str> = Vec::new();
    // Each section's name, by position in `names`, in file and section order.
    // Section names are hashed in file order, which is not the order a string table need
    // keep them in: start loading some ahead.
    let all_sections = files.iter().flat_map(|f| f.sections.iter());
    let name_ids: Vec<usize> = prefetch::ahead(all_sections, |sec| sec.name.as_bytes())
        .map(|sec| {
            let hash = NameIndex::hash(sec.name);
            if let Some(id) = by_name.find(hash, sec.name, |id| names[id as usize]) {
                return id as usize;
            }
            names.push(sec.name);
            let id = names.len() - 1;
            by_name.insert_new(hash, id as u32, |id| names[id as usize]);
            id
        })
        .collect();
    let patterns = PatternIndex::new(program);
    let name_matches: Vec<NameMatches> = names
        .par_iter()
        .with_min_len(NAMES_PER_TASK)
        .map(|name| patterns.matches(name))
        .collect();
    let mut wild_sections: Vec<Vec<SectionRef>> = vec![Vec::new(); program.wilds.len()];
    let mut name_id = name_ids.into_iter();
    for (file_id, file) in files.iter().enumerate() {
        for (sec_idx, sec) in file.sections.iter().enumerate() {
            let Some(id) = name_id.next() else {
                continue;
            };
            let matches = &name_matches[id];
            kept[file_id][sec_idx] = matches
                .keeps
                .iter()
                .any(|&w| file_matches(program.wilds[w].desc.file.pattern.text, file));
            if disposition[file_id][sec_idx] != Disposition::Unplaced {
                continue;
            }
            let chosen = matches.claims.iter().copied().find(|&w| {
                !failed_constraints.contains(&program.wilds[w].os)
                    && desc_claims(program.wilds[w].desc, file, sec.name)
            });
            if let Some(w) = chosen {
                disposition[file_id][sec_idx] = Disposition::Placed(w);
                wild_sections[w].push(SectionRef {
                    file: file_id,
                    sec: sec_idx,
                });
            }
        }
    }
    for (w, list) in wild_sections.iter_mut().enumerate() {
        sort_wild(program.wilds[w].desc, files, list, opts.sort_section);
    }
    Mapping {
        disposition,
        wild_sections,
        failed_constraints,
        kept,
    }
}

/// ld's check of ONLY_IF_RO / ONLY_IF_RW: every input section an output statement's patterns
/// match must be read-only (RO), or at least one must be writable (RW); otherwise the
/// statement is dropped before any section is placed.
fn failed_constraints(
    program: &Program<'_, '_>,
    files: &[InputFile<'_>],
    disposition: &[Vec<Disposition>],
) -> Vec<OsId> {
    let mut failed = Vec::new();
    for (id, os) in program.sections.iter().enumerate() {
        let Some(constraint) = os.constraint else {
            continue;
        };
        let want_ro = match constraint {
            Constraint::OnlyIfRo => true,
            Constraint::OnlyIfRw => false,
            Constraint::Special => continue,
        };
        let mut all_readonly = true;
        for w in program.wilds.iter().filter(|w| w.os == id) {
            for (f, file) in files.iter().enumerate() {
                for (i, sec) in file.sections.iter().enumerate() {
                    if disposition[f][i] == Disposition::Unplaced
                        && desc_claims(w.desc, file, sec.name)
                        && sec.sh_flags & elf::SHF_WRITE != 0
                    {
                        all_readonly = false;
                    }
                }
            }
        }
        if all_readonly != want_ro {
            failed.push(id);
        }
    }
    failed
}

/// Marks sections ld never places: group sections, SHF_EXCLUDE, later COMDAT copies, and
/// debugging sections under `--strip-debug`.
fn drop_unplaceable(
    files: &[InputFile<'_>],
    disposition: &mut [Vec<Disposition>],
    opts: MapOptions,
) {
    for (file_id, file) in files.iter().enumerate() {
        for (sec_idx, sec) in file.sections.iter().enumerate() {
            let flags = SecFlags::from_elf(sec.name, sec.sh_type, sec.sh_flags);
            if sec.duplicate || sec.sh_type == elf::SHT_GROUP || flags.contains(SecFlags::EXCLUDE) {
                disposition[file_id][sec_idx] = Disposition::Dropped;
            } else if opts.strip_debug && flags.contains(SecFlags::DEBUGGING) {
                disposition[file_id][sec_idx] = Disposition::Stripped;
            }
        }
    }
}

/// The section patterns of a script's descriptions, filed by the first bytes every name they
/// match starts with: a name is tried only against the patterns it could match (a kernel
/// script has hundreds, and a `-ffunction-sections` build tens of thousands of names).
struct PatternIndex<'p> {
    /// Patterns whose literal prefix has two bytes or more, by those two.
    by_two: FastMap<[u8; 2], Vec<(WildId, &'p str)>>,
    /// Patterns with a one-byte literal prefix, by that byte.
    by_one: FastMap<u8, Vec<(WildId, &'p str)>>,
    /// Patterns that start with a wildcard.
    any: Vec<(WildId, &'p str)>,
    /// Whether each description is a KEEP one.
    keep: Vec<bool>,
    /// KEEP descriptions that name no sections: they keep every name.
    keep_all: Vec<WildId>,
}

impl<'p> PatternIndex<'p> {
    fn new(program: &Program<'_, 'p>) -> Self {
        let mut index = PatternIndex {
            by_two: FastMap::default(),
            by_one: FastMap::default(),
            any: Vec::new(),
            keep: program.wilds.iter().map(|w| w.desc.keep).collect(),
            keep_all: Vec::new(),
        };
        for (i, w) in program.wilds.iter().enumerate() {
            if w.desc.keep && w.desc.sections.is_empty() {
                index.keep_all.push(i);
            }
            for spec in &w.desc.sections {
                let pattern = spec.pattern.text;
                match literal_prefix(pattern).as_bytes() {
                    [a, b, ..] => index.by_two.entry([*a, *b]).or_default().push((i, pattern)),
                    [a] => index.by_one.entry(*a).or_default().push((i, pattern)),
                    [] => index.any.push((i, pattern)),
                }
            }
        }
        index
    }

    fn matches(&self, name: &str) -> NameMatches {
        let bytes = name.as_bytes();
        let candidates = [
            bytes
                .first_chunk::<2>()
                .and_then(|two| self.by_two.get(two)),
            bytes.first().and_then(|one| self.by_one.get(one)),
            Some(&self.any),
        ];
        let mut claims: Vec<WildId> = candidates
            .into_iter()
            .flatten()
            .flatten()
            .filter(|(_, pattern)| name_matches(pattern, name))
            .map(|&(w, _)| w)
            .collect();
        claims.sort_unstable();
        claims.dedup();
        let mut keeps: Vec<WildId> = claims
            .iter()
            .copied()
            .filter(|&w| self.keep[w])
            .chain(self.keep_all.iter().copied())
            .collect();
        keeps.sort_unstable();
        keeps.dedup();
        NameMatches { claims, keeps }
    }
}

/// Whether a description claims section `name` of `file` (file pattern, both EXCLUDE_FILE
/// positions, and the section pattern that names it).
fn desc_claims(desc: &InputSectionDesc<'_>, file: &InputFile<'_>, name: &str) -> bool {
    if !file_matches(desc.file.pattern.text, file) {
        return false;
    }
    if desc.file.exclude.iter().any(|e| excluded(e.text, file)) {
        return false;
    }
    desc.sections.is_empty()
        || desc.sections.iter().any(|spec| {
            name_matches(spec.pattern.text, name)
                && !spec.exclude.iter().any(|e| excluded(e.text, file))
        })
}

pub(crate) fn file_matches(pattern: &str, file: &InputFile<'_>) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some((archive, member)) = split_archive_pattern(pattern) {
        let archive_ok = match &file.archive {
            Some(a) => archive.is_empty() || name_matches(archive, a),
            None => false,
        };
        return archive_ok && (member.is_empty() || name_matches(member, &file.name));
    }
    name_matches(pattern, &file.name)
}

/// Whether a plain object file (not an archive member) named `a` is mapped exactly as one
/// named `b` would be: every file pattern and EXCLUDE_FILE of the script treats both names
/// alike, and no description that takes the file's sections orders them by file name.
pub fn file_names_equivalent(program: &Program<'_, '_>, a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let file = |name: &str| InputFile {
        name: name.to_string(),
        archive: None,
        sections: Default::default(),
        symbols: Default::default(),
        reloc_referenced: Vec::new(),
        bfd_id: 0,
    };
    let (fa, fb) = (file(a), file(b));
    program.wilds.iter().all(|w| {
        let desc = w.desc;
        let matched = file_matches(desc.file.pattern.text, &fa);
        let excludes = desc
            .file
            .exclude
            .iter()
            .chain(desc.sections.iter().flat_map(|s| s.exclude.iter()));
        let sorts_by_file = matched && !desc.file.sort.is_empty();
        matched == file_matches(desc.file.pattern.text, &fb)
            && !sorts_by_file
            && excludes
                .into_iter()
                .all(|e| excluded(e.text, &fa) == excluded(e.text, &fb))
    })
}

/// `archive:member` patterns (a `:` that is not part of a drive letter).
fn split_archive_pattern(pattern: &str) -> Option<(&str, &str)> {
    let idx = pattern.find(':')?;
    Some((&pattern[..idx], &pattern[idx + 1..]))
}

fn excluded(pattern: &str, file: &InputFile<'_>) -> bool {
    name_matches(pattern, &file.name)
        || file
            .archive
            .as_deref()
            .is_some_and(|a| name_matches(pattern, a))
}

/// Orders a description's sections as ld's `wild_sort` insertion does: a stable sort on the
/// mode of the pattern that matched each section, with SORT(file) taking precedence.
fn sort_wild(
    desc: &InputSectionDesc<'_>,
    files: &[InputFile<'_>],
    list: &mut [SectionRef],
    sort_section: SortMode,
) {
    let files_sorted = !desc.file.sort.is_empty();
    let modes: Vec<(SortMode, bool)> = desc
        .sections
        .iter()
        .map(|s| SortMode::from_keys(&s.sort, sort_section))
        .collect();
    if !files_sorted && !modes.iter().any(|(m, _)| m.is_sorting()) {
        return;
    }
    let mode_of = |r: &SectionRef| -> (SortMode, bool) {
        let name = files[r.file].sections[r.sec].name;
        desc.sections
            .iter()
            .zip(&modes)
            .find(|(s, _)| name_matches(s.pattern.text, name))
            .map_or((SortMode::None, false), |(_, m)| *m)
    };
    let all_same = modes.windows(2).all(|w| w[0] == w[1]);
    if all_same {
        let (mode, reverse) = modes[0];
        list.sort_by(|a, b| {
            let mut ord = std::cmp::Ordering::Equal;
            if files_sorted {
                ord = file_sort_key(files, a).cmp(&file_sort_key(files, b));
            }
            if ord.is_eq() && mode.is_sorting() {
                ord = compare_sections(mode, files, a, b);
                if reverse {
                    ord = ord.reverse();
                }
            }
            ord
        });
        return;
    }
    // Mixed modes: replay ld's insertion exactly.
    let mut out: Vec<SectionRef> = Vec::with_capacity(list.len());
    for r in list.iter().copied() {
        let (mode, reverse) = mode_of(&r);
        let mut pos = out.len();
        if files_sorted || mode.is_sorting() {
            for (i, existing) in out.iter().enumerate() {
                if files_sorted {
                    let ord = file_sort_key(files, &r).cmp(&file_sort_key(files, existing));
                    if ord.is_gt() {
                        continue;
                    }
                    if ord.is_lt() {
                        pos = i;
                        break;
                    }
                }
                if mode.is_sorting() {
                    let mut ord = compare_sections(mode, files, &r, existing);
                    if reverse {
                        ord = ord.reverse();
                    }
                    if ord.is_lt() {
                        pos = i;
                        break;
                    }
                }
            }
        }
        out.insert(pos, r);
    }
    list.copy_from_slice(&out);
}

fn file_sort_key<'f>(files: &'f [InputFile<'_>], r: &SectionRef) -> (&'f str, &'f str) {
    let f = &files[r.file];
    (f.archive.as_deref().unwrap_or(""), f.name.as_str())
}

fn compare_sections(
    mode: SortMode,
    files: &[InputFile<'_>],
    a: &SectionRef,
    b: &SectionRef,
) -> std::cmp::Ordering {
    let sa = &files[a.file].sections[a.sec];
    let sb = &files[b.file].sections[b.sec];
    let by_name = || sa.name.cmp(sb.name);
    // Larger alignment first.
    let by_align = || sb.align.cmp(&sa.align);
    match mode {
        SortMode::ByName => by_name(),
        SortMode::ByAlignment => by_align(),
        SortMode::ByNameAlignment => by_name().then_with(by_align),
        SortMode::ByAlignmentName => by_align().then_with(by_name),
        SortMode::ByInitPriority => init_priority(sa.name).cmp(&init_priority(sb.name)),
        SortMode::None | SortMode::Never => std::cmp::Ordering::Equal,
    }
}

/// The priority in `.init_array.NNNNN` / `.ctors.NNNNN` names (ctors count down), 0 when none.
fn init_priority(name: &str) -> u64 {
    let Some(dot) = name.rfind('.') else {
        return 0;
    };
    let digits = &name[dot + 1..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let Ok(value) = digits.parse::<u64>() else {
        return 0;
    };
    if name.starts_with(".ctors") || name.starts_with(".dtors") {
        65535u64.saturating_sub(value)
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;

    /// Every description's patterns tried in turn, as ld does.
    fn brute_force(program: &Program<'_, '_>, name: &str) -> (Vec<WildId>, Vec<WildId>) {
        let mut claims = Vec::new();
        let mut keeps = Vec::new();
        for (i, w) in program.wilds.iter().enumerate() {
            let named = w
                .desc
                .sections
                .iter()
                .any(|s| name_matches(s.pattern.text, name));
            if named {
                claims.push(i);
            }
            if w.desc.keep && (named || w.desc.sections.is_empty()) {
                keeps.push(i);
            }
        }
        (claims, keeps)
    }

    #[test]
    fn pattern_index_matches_trying_every_pattern() {
        let script = parse_script(
            "SECTIONS {
               .text : { *(.text .text.*) KEEP(*(.text.keep*)) *(.t?xt) *(*.cold) }
               .data : { *(.data) *(.data.[a-c]*) KEEP(*(.init_array)) *(\\.esc*) KEEP(*.o) }
               .other : { *(*) *(x) *(.d) }
             }",
        )
        .expect("script parses");
        let program = Program::build(&script);
        let index = PatternIndex::new(&program);
        let names = [
            ".text",
            ".text.hot",
            ".text.keep1",
            ".txt",
            ".t",
            "",
            "x",
            ".d",
            ".data",
            ".data.b1",
            ".data.d",
            ".init_array",
            ".esc",
            "\\.esc",
            "f.cold",
            ".tbss",
        ];
        for name in names {
            let found = index.matches(name);
            assert_eq!(
                (found.claims, found.keeps),
                brute_force(&program, name),
                "{name:?}"
            );
        }
    }
}
