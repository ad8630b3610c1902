//! GNU ld's ARM backend passes (bfd's elf32-arm.c driven by ld's armelf emulation): the unwind
//! index editing of `elf32_arm_fix_exidx_coverage`, and the branch stubs and Cortex-A8 erratum
//! veneers of `elf32_arm_size_stubs`, both run from `gldarmelf_after_allocation`; plus the
//! local symbols bfd writes for the stubs.
//!
//! Owns which stubs exist, how input sections are grouped around stub sections, the stub
//! sections' sizes, the new sizes of `.ARM.exidx` inputs and the stub symbols. It must not know
//! the generic passes: it works through [`TargetHooks`] and the engine's backend methods only.
//!
//! Not modelled: the interworking glue sections (`.glue_7`, `.glue_7t`, `.v4_bx`,
//! `.vfp11_veneer`), which only pre-ARMv5 code (R_ARM_PC24, BX interworking) fills and which ld
//! otherwise excludes empty; PLT and TLS-call stubs (dynamic links); M-profile secure gateway
//! veneers. Stubs sharing one stub section are laid out in creation order, where bfd uses its
//! stub hash table's order: sizes are exact, the symbol of each such stub may not be.

use rayon::prelude::*;
use std::sync::{Arc, Mutex, OnceLock};

use super::LayoutError;
use super::flags::SecFlags;
use super::map::SectionRef;
use super::model::{InputFile, Reloc, SymbolKind, SymbolSection as Place, elf};
use super::place::{Engine, TargetHooks};
use super::symbols::{InputSymbolIds, LinkedSymbol, SymBase, SymState, SymbolSection};
use crate::hash::FastMap;
use crate::input::Binding;
use crate::sync::locked;

/// ARM options of the command line that change layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArmOptions {
    /// `--pic-veneer`: position-independent long-branch stubs.
    pub pic_veneer: bool,
    /// `--merge-exidx-entries` (the default) / `--no-merge-exidx-entries`.
    pub merge_exidx_entries: bool,
    /// `--fix-cortex-a8` / `--no-fix-cortex-a8`; None lets ld decide from the architecture.
    pub fix_cortex_a8: Option<bool>,
}

impl Default for ArmOptions {
    fn default() -> Self {
        ArmOptions {
            pic_veneer: false,
            merge_exidx_entries: true,
            fix_cortex_a8: None,
        }
    }
}

const SHT_ARM_EXIDX: u32 = 0x7000_0001;
const SHT_ARM_ATTRIBUTES: u32 = 0x7000_0003;

const R_ARM_THM_CALL: u32 = 10;
const R_ARM_PLT32: u32 = 27;
const R_ARM_CALL: u32 = 28;
const R_ARM_JUMP24: u32 = 29;
const R_ARM_THM_JUMP24: u32 = 30;
const R_ARM_THM_XPC22: u32 = 16;
const R_ARM_THM_JUMP19: u32 = 51;

const TAG_CPU_ARCH: u64 = 6;
const TAG_CPU_ARCH_PROFILE: u64 = 7;
const TAG_THUMB_ISA_USE: u64 = 9;

const ARCH_V6KZ: u64 = 7;
const ARCH_V6T2: u64 = 8;
const ARCH_V6K: u64 = 9;
const ARCH_V7: u64 = 10;
const ARCH_V6_M: u64 = 11;
const ARCH_V6S_M: u64 = 12;
const ARCH_V7E_M: u64 = 13;
const ARCH_V8A: u64 = 14;
const ARCH_V8R: u64 = 15;
const ARCH_V8M_BASE: u64 = 16;
const ARCH_V8M_MAIN: u64 = 17;
const ARCH_V8_1M_MAIN: u64 = 21;

const THM_MAX_FWD: i64 = (1 << 22) - 2 + 4;
const THM_MAX_BWD: i64 = -(1 << 22) + 4;
const THM2_MAX_FWD: i64 = (1 << 24) - 2 + 4;
const THM2_MAX_BWD: i64 = -(1 << 24) + 4;
const THM2_MAX_FWD_COND: i64 = (1 << 20) - 2 + 4;
const THM2_MAX_BWD_COND: i64 = -(1 << 20) + 4;
const ARM_MAX_FWD: i64 = (((1 << 23) - 1) << 2) + 8;
const ARM_MAX_BWD: i64 = -((1 << 23) << 2) + 8;

/// bfd's default stub group size (`stub_group_size == 1`): Thumb range less room for stubs.
const STUB_GROUP_SIZE: u64 = 4_170_000;

/// The merged `.ARM.attributes` of the output, as far as stub selection reads them.
#[derive(Debug, Clone, Copy, Default)]
struct Attributes {
    arch: u64,
    profile: u64,
    thumb_isa: u64,
}

impl Attributes {
    /// `using_thumb_only`.
    fn thumb_only(&self) -> bool {
        if self.profile != 0 {
            return self.profile == u64::from(b'M');
        }
        matches!(
            self.arch,
            ARCH_V6_M | ARCH_V6S_M | ARCH_V7E_M | ARCH_V8M_BASE | ARCH_V8M_MAIN | ARCH_V8_1M_MAIN
        )
    }

    /// `using_thumb2`.
    fn thumb2(&self) -> bool {
        if self.thumb_isa < 3 {
            return self.thumb_isa == 2;
        }
        matches!(
            self.arch,
            ARCH_V6T2
                | ARCH_V7
                | ARCH_V7E_M
                | ARCH_V8A
                | ARCH_V8R
                | ARCH_V8M_MAIN
                | ARCH_V8_1M_MAIN
        )
    }

    /// `using_thumb2_bl`.
    fn thumb2_bl(&self) -> bool {
        self.arch == ARCH_V6T2 || self.arch >= ARCH_V7
    }

    /// `check_use_blx` with the default `--fix-arm1176`.
    fn use_blx(&self) -> bool {
        self.arch == ARCH_V6T2 || self.arch > ARCH_V6K
    }
}

/// `tag_cpu_arch_combine` for the architectures a Linux link mixes: later architectures add
/// features, except the v6T2/v6K/v6KZ corners that only v7 covers.
fn combine_arch(a: u64, b: u64) -> u64 {
    let (lo, hi) = (a.min(b), a.max(b));
    match (lo, hi) {
        (ARCH_V6KZ, ARCH_V6T2) | (ARCH_V6T2, ARCH_V6K) => ARCH_V7,
        _ => hi,
    }
}

/// Reads one unsigned LEB128 number.
fn uleb(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let byte = *data.get(*pos)?;
        *pos += 1;
        if shift < 64 {
            value |= u64::from(byte & 0x7f) << shift;
        }
        shift += 7;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
}

fn skip_string(data: &[u8], pos: &mut usize) -> Option<()> {
    let len = data.get(*pos..)?.iter().position(|&b| b == 0)?;
    *pos += len + 1;
    Some(())
}

/// The integer file-scope `aeabi` attributes of one `.ARM.attributes` section.
fn parse_attributes(data: &[u8], big_endian: bool) -> Option<FastMap<u64, u64>> {
    let mut out = FastMap::default();
    if data.first() != Some(&b'A') {
        return None;
    }
    let word = |b: &[u8]| -> Option<usize> {
        let w: [u8; 4] = b.get(..4)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        } as usize)
    };
    let mut pos = 1;
    while pos + 4 <= data.len() {
        let len = word(&data[pos..])?;
        let end = pos.checked_add(len)?.min(data.len());
        let mut p = pos + 4;
        let vendor_end = data.get(p..end)?.iter().position(|&b| b == 0)? + p;
        let vendor = &data[p..vendor_end];
        p = vendor_end + 1;
        if vendor == b"aeabi" {
            while p < end {
                let tag = uleb(data, &mut p)?;
                let sub_start = p;
                let sub_len = word(data.get(p..)?)?;
                let sub_end = sub_start.checked_add(sub_len)?.min(end);
                p += 4;
                if tag == 1 {
                    while p < sub_end {
                        let t = uleb(data, &mut p)?;
                        match t {
                            4 | 5 | 67 => skip_string(data, &mut p)?,
                            32 => {
                                uleb(data, &mut p)?;
                                skip_string(data, &mut p)?;
                            }
                            t if t > 32 && t % 2 == 1 => skip_string(data, &mut p)?,
                            _ => {
                                let v = uleb(data, &mut p)?;
                                out.insert(t, v);
                            }
                        }
                    }
                }
                p = sub_end.max(p);
            }
        }
        if end <= pos {
            break;
        }
        pos = end;
    }
    Some(out)
}

/// Which mode a branch's target runs in (bfd's `arm_st_branch_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Branch {
    ToArm,
    ToThumb,
    /// Section symbols: bfd never makes a stub for them.
    Long,
    Unknown,
}

/// bfd's stub types that a static link can need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum StubType {
    LongBranchAnyAny,
    LongBranchV4tArmThumb,
    LongBranchThumbOnly,
    LongBranchV4tThumbThumb,
    LongBranchV4tThumbArm,
    ShortBranchV4tThumbArm,
    LongBranchAnyArmPic,
    LongBranchAnyThumbPic,
    LongBranchV4tThumbThumbPic,
    LongBranchV4tArmThumbPic,
    LongBranchV4tThumbArmPic,
    LongBranchThumbOnlyPic,
    LongBranchThumb2Only,
    A8VeneerBCond,
    A8VeneerB,
    A8VeneerBl,
    A8VeneerBlx,
}

impl StubType {
    /// bfd's `enum elf32_arm_stub_type` value (it is part of the stub's hash name).
    fn number(self) -> u32 {
        use StubType::*;
        match self {
            LongBranchAnyAny => 1,
            LongBranchV4tArmThumb => 2,
            LongBranchThumbOnly => 3,
            LongBranchV4tThumbThumb => 4,
            LongBranchV4tThumbArm => 5,
            ShortBranchV4tThumbArm => 6,
            LongBranchAnyArmPic => 7,
            LongBranchAnyThumbPic => 8,
            LongBranchV4tThumbThumbPic => 9,
            LongBranchV4tArmThumbPic => 10,
            LongBranchV4tThumbArmPic => 11,
            LongBranchThumbOnlyPic => 12,
            A8VeneerBCond => 16,
            A8VeneerB => 17,
            A8VeneerBl => 18,
            A8VeneerBlx => 19,
            LongBranchThumb2Only => 20,
        }
    }

    fn is_a8(self) -> bool {
        matches!(
            self,
            StubType::A8VeneerBCond
                | StubType::A8VeneerB
                | StubType::A8VeneerBl
                | StubType::A8VeneerBlx
        )
    }

    /// Bytes of the stub's instruction template, and whether it starts in Thumb state.
    fn template(self) -> (u64, bool) {
        use StubType::*;
        match self {
            LongBranchAnyAny => (8, false),
            LongBranchV4tArmThumb => (12, false),
            LongBranchThumbOnly => (16, true),
            LongBranchV4tThumbThumb => (16, true),
            LongBranchV4tThumbArm => (12, true),
            ShortBranchV4tThumbArm => (8, true),
            LongBranchAnyArmPic => (12, false),
            LongBranchAnyThumbPic => (16, false),
            LongBranchV4tThumbThumbPic => (20, true),
            LongBranchV4tArmThumbPic => (16, false),
            LongBranchV4tThumbArmPic => (16, true),
            LongBranchThumbOnlyPic => (16, true),
            LongBranchThumb2Only => (8, true),
            A8VeneerBCond => (10, true),
            A8VeneerB | A8VeneerBl => (4, true),
            A8VeneerBlx => (4, false),
        }
    }
}

/// What a branch relocation resolves to. Nameless: a scan resolves every branch of every
/// layout, and only a branch that needs a stub looks its target's name up.
#[derive(Debug, Clone)]
struct Target {
    destination: u64,
    branch: Branch,
    /// The symbol is absolute (a Thumb-only target then assumes Thumb).
    absolute: bool,
    /// Identifies the target in the stub's key: a global symbol or (file, symbol index).
    key: TargetKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TargetKey {
    /// A global symbol, by its id in the symbol table (one per name).
    Global(usize),
    /// (file, symbol index, the symbol's section).
    Local(usize, usize, Option<SectionRef>),
}

/// bfd's stub hash key: stub group, target, addend and type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct StubKey {
    group: SectionRef,
    target: TargetKey,
    addend: i64,
    kind: StubType,
}

#[derive(Debug, Clone)]
struct Stub {
    /// bfd's stub hash table name: it decides the order stubs are built in.
    hash_name: String,
    kind: StubType,
    /// Index into `ArmBackend::stub_sections`.
    section: usize,
    /// The local symbol bfd gives it (`__f_veneer`, `__f_from_thumb`, `__f_from_arm`).
    name: String,
}

/// A branch relocation that needs a stub, and the stub's type and branch.
#[derive(Debug, Clone, Copy)]
struct StubRequest {
    r_type: u32,
    addend: i64,
    kind: StubType,
    branch: Branch,
}

/// What one file's branches need at a layout (see [`ArmBackend::scan_file`]): each stub with
/// the calling section, the target's key and name, and the request.
#[derive(Default)]
struct FileScan {
    stubs: Vec<(SectionRef, TargetKey, String, StubRequest)>,
    fixes: Vec<A8Fix>,
}

/// A Cortex-A8 erratum fix: a 32-bit Thumb-2 branch whose first half ends a 4 KiB page.
#[derive(Debug, Clone, PartialEq, Eq)]
struct A8Fix {
    section: SectionRef,
    offset: u64,
    kind: StubType,
}

/// A relocation at a possible erratum site (`struct a8_erratum_reloc`).
#[derive(Debug, Clone)]
struct A8Reloc {
    from: u64,
    destination: u64,
    r_type: u32,
    branch: Branch,
    has_stub: bool,
}

#[derive(Debug, Clone)]
struct StubSection {
    /// Index into the engine's linker sections.
    linker: usize,
}

/// The ARM backend's state across ld's passes.
#[derive(Clone)]
pub(crate) struct ArmBackend {
    opts: ArmOptions,
    attrs: Attributes,
    fix_a8: bool,
    /// Each code input section's stub group (`stub_group[id].link_sec`).
    group: FastMap<SectionRef, SectionRef>,
    stub_sections: Vec<StubSection>,
    by_link: FastMap<SectionRef, usize>,
    stubs: Vec<Stub>,
    stub_index: FastMap<StubKey, usize>,
    a8_fixes: Vec<A8Fix>,
    /// Where the erratum scan looks, found once per prepared link (see [`ThumbSections`]).
    thumb_sections: Arc<ThumbSections>,
    /// What the layouts read of each input, by position (see [`FileRead`]).
    file_read: Arc<Vec<FileRead>>,
    /// What the stub scan reads, found once per prepared link (see [`BranchSites`]).
    branch_sites: Arc<BranchSites>,
    /// The last unwind index edits of the prepared link's layouts (see [`ExidxMemo`]).
    exidx_memo: Arc<Mutex<ExidxMemo>>,
}

/// The unwind index edits a layout made, and what they were worked out from: the code
/// sections in address order, each with its index section and whether it is empty. Layouts
/// of one prepared link put the code in the same order, and walking every index entry is the
/// costly part, so a layout whose code matches takes the edits as they are.
#[derive(Default)]
struct ExidxMemo {
    code: Vec<(SectionRef, Option<SectionRef>, bool)>,
    resized: Vec<(SectionRef, u64)>,
}

/// By file, each code section's branch relocations (the types a stub can serve) with their
/// targets, and the section's position: every layout of a prepared link scans the same
/// relocations, most of a section's relocations are not branches, and what a target is (a
/// local symbol's section and value, a global's id) does not change between layouts.
type BranchSites = Vec<Vec<(usize, Vec<BranchSite>)>>;

/// One branch relocation and its target.
struct BranchSite {
    reloc: Reloc,
    target: SiteTarget,
}

/// A branch's target symbol, as far as it is known before addresses are.
enum SiteTarget {
    /// A local symbol: its value (without the Thumb bit), its branch type, and its section
    /// (None when absolute).
    Local {
        sym: usize,
        value: u64,
        branch: Branch,
        section: Option<SectionRef>,
    },
    /// A global symbol, by id.
    Global(usize),
    /// A global the prepared symbol table names no id for: looked up by name.
    ByName(usize),
}

fn branch_sites(files: &[InputFile<'_>], input_ids: &InputSymbolIds) -> BranchSites {
    files
        .par_iter()
        .enumerate()
        .map(|(f, file)| {
            let target = |sym: usize| -> Option<SiteTarget> {
                let s = file.symbols.get(sym)?;
                if s.binding != Binding::Local {
                    return Some(match input_ids.get(f, sym) {
                        Some(id) => SiteTarget::Global(id),
                        None => SiteTarget::ByName(sym),
                    });
                }
                let value = match s.kind {
                    SymbolKind::Section => 0,
                    SymbolKind::Func => s.value & !1,
                    _ => s.value,
                };
                let section = match s.section {
                    Place::Absolute => None,
                    Place::Section(shndx) => Some(SectionRef {
                        file: f,
                        sec: file.section_position(shndx)?,
                    }),
                    _ => return None,
                };
                Some(SiteTarget::Local {
                    sym,
                    value,
                    branch: branch_of(s.kind, s.value),
                    section,
                })
            };
            file.sections
                .iter()
                .enumerate()
                .filter(|(_, sec)| sec.sh_flags & elf::SHF_EXECINSTR != 0)
                .filter_map(|(pos, sec)| {
                    let branches: Vec<BranchSite> = sec
                        .relocs
                        .iter()
                        .filter(|rel| {
                            matches!(
                                rel.r_type,
                                R_ARM_CALL
                                    | R_ARM_THM_CALL
                                    | R_ARM_JUMP24
                                    | R_ARM_THM_JUMP19
                                    | R_ARM_THM_XPC22
                                    | R_ARM_THM_JUMP24
                                    | R_ARM_PLT32
                            )
                        })
                        .filter_map(|reloc| {
                            let target = target(reloc.sym)?;
                            Some(BranchSite { reloc, target })
                        })
                        .collect();
                    (!branches.is_empty()).then_some((pos, branches))
                })
                .collect()
        })
        .collect()
}

/// By file, in section order, each section that holds Thumb code (a `$t` mapping symbol).
/// The Cortex-A8 erratum scan reads only Thumb stretches, which the mapping symbols bound;
/// symbol names and sections do not change between layouts of a prepared link.
type ThumbSections = Vec<Vec<ThumbSection>>;

/// A section holding Thumb code, as the prepared link's own file has it. Those files live as
/// long as the prepared link, so its code is still at the address recorded here; a file
/// swapped in for a layout that differs (other code, size or mapping symbols) has its
/// stretches listed again.
#[derive(Debug)]
struct ThumbSection {
    /// Position in the file's sections.
    pos: usize,
    /// Indices of its mapping symbols (`$a`, `$t`, `$d`), in symbol-table order.
    symbols: Vec<usize>,
    code: (usize, usize),
    size: u64,
    map: Vec<(u64, u8)>,
    stretches: Vec<ThumbStretch>,
}

impl ThumbSection {
    /// Whether the stretches were listed from `sec`'s code with the mapping symbols `map`.
    fn lists(&self, sec: &super::model::InputSection<'_>, map: &[(u64, u8)]) -> bool {
        self.code == (sec.data.as_ptr() as usize, sec.data.len())
            && self.size == sec.size
            && self.map == map
    }
}

/// `file`'s sections holding Thumb code, in section order (see [`ThumbSections`]).
fn thumb_sections(file: &InputFile<'_>) -> Vec<ThumbSection> {
    let mut by_section: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut slot: FastMap<usize, usize> = FastMap::default();
    for (k, s) in file.symbols.iter().enumerate() {
        let b = s.name.as_bytes();
        if s.binding == Binding::Local
            && b.len() >= 2
            && b[0] == b'$'
            && matches!(b[1], b'a' | b't' | b'd')
            && (b.len() == 2 || b[2] == b'.')
            && let Place::Section(shndx) = s.section
            && let Some(pos) = file.section_position(shndx)
        {
            let at = *slot.entry(pos).or_insert_with(|| {
                by_section.push((pos, Vec::new()));
                by_section.len() - 1
            });
            by_section[at].1.push(k);
        }
    }
    by_section.retain(|(_, symbols)| {
        symbols
            .iter()
            .any(|&k| file.symbols[k].name.as_bytes()[1] == b't')
    });
    // The scan goes through a file's sections in order.
    by_section.sort_unstable_by_key(|&(pos, _)| pos);
    by_section
        .into_iter()
        .filter_map(|(pos, symbols)| {
            let sec = file.sections.get(pos)?;
            let map = mapping(file, &symbols);
            Some(ThumbSection {
                pos,
                symbols,
                code: (sec.data.as_ptr() as usize, sec.data.len()),
                size: sec.size,
                stretches: thumb_stretches(sec.size, &map),
                map,
            })
        })
        .collect()
}

/// A 32-bit Thumb-2 branch right after a 32-bit non-branch instruction: the Cortex-A8
/// erratum strikes there when the branch's first half-word ends a 4 KiB page.
#[derive(Debug, Clone, Copy)]
struct A8Site {
    /// Offset in the section.
    at: u64,
    insn: u32,
    /// Whether it is a B, BL, BLX or conditional B.
    branch: (bool, bool, bool, bool),
}

/// A Thumb stretch `[start, end)` of a section (from a `$t` to the next mapping symbol or
/// the section's end) and its erratum sites, decoded the first time a layout puts the
/// stretch across a page boundary (most stretches never cross one).
#[derive(Debug)]
struct ThumbStretch {
    start: u64,
    end: u64,
    sites: OnceLock<Vec<A8Site>>,
}

/// A section's mapping symbols as (offset, kind letter), in symbol-table order.
fn mapping(file: &InputFile<'_>, symbols: &[usize]) -> Vec<(u64, u8)> {
    symbols
        .iter()
        .map(|&k| (file.symbols[k].value, file.symbols[k].name.as_bytes()[1]))
        .collect()
}

/// The Thumb stretches of a section of `size` bytes, by its mapping symbols.
fn thumb_stretches(size: u64, map: &[(u64, u8)]) -> Vec<ThumbStretch> {
    map.iter()
        .enumerate()
        .filter(|(_, (_, kind))| *kind == b't')
        .map(|(k, &(start, _))| ThumbStretch {
            start,
            end: map.get(k + 1).map_or(size, |m| m.0),
            sites: OnceLock::new(),
        })
        .collect()
}

/// Walks the Thumb code of `data` from `start` to `end`, instruction by instruction, and
/// lists its erratum sites.
fn a8_sites(data: &[u8], start: u64, end: u64) -> Vec<A8Site> {
    let half = |at: u64| -> Option<u32> {
        let at = usize::try_from(at).ok()?;
        let b = data.get(at..at + 2)?;
        Some(u32::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let mut sites = Vec::new();
    let (mut last_32, mut last_branch) = (false, false);
    let mut at = start;
    while at < end {
        let Some(first) = half(at) else { break };
        let is_32 = first & 0xe000 == 0xe000 && first & 0x1800 != 0;
        let mut branch = (false, false, false, false);
        let mut insn = first;
        if is_32 {
            let Some(second) = half(at + 2) else { break };
            insn = (first << 16) | second;
            branch = (
                insn & 0xf800_d000 == 0xf000_9000,
                insn & 0xf800_d000 == 0xf000_d000,
                insn & 0xf800_d000 == 0xf000_c000,
                insn & 0xf800_d000 == 0xf000_8000 && insn & 0x07f0_0000 != 0x0380_0000,
            );
        }
        let is_branch = branch.0 || branch.1 || branch.2 || branch.3;
        if is_32 && is_branch && last_32 && !last_branch {
            sites.push(A8Site { at, insn, branch });
        }
        at += if is_32 { 4 } else { 2 };
        last_32 = is_32;
        last_branch = is_branch;
    }
    sites
}

/// What every layout reads of one input and no layout changes, read once per prepared link
/// from its own files.
struct FileRead {
    /// The file's section list, by address: a file swapped in for a layout has another.
    /// The prepared link keeps its files alive, so no other list can have this address.
    sections: usize,
    /// The tags its `.ARM.attributes` brings to the merge (None: it has none, or they cannot
    /// be read).
    tags: Option<Attributes>,
    /// Its code sections (see [`code_sections`]).
    code: Vec<(usize, Option<usize>)>,
}

impl FileRead {
    fn of(file: &InputFile<'_>) -> FileRead {
        FileRead {
            sections: Arc::as_ptr(&file.sections) as usize,
            tags: attribute_tags(file),
            code: code_sections(file),
        }
    }
}

/// The positions of `file`'s code sections (`SHT_PROGBITS`, executable), in order, each with
/// the position of the `.ARM.exidx` section that covers it, if any.
fn code_sections(file: &InputFile<'_>) -> Vec<(usize, Option<usize>)> {
    let mut code: Vec<(usize, Option<usize>)> = file
        .sections
        .iter()
        .enumerate()
        .filter(|(_, sec)| {
            sec.sh_type == elf::SHT_PROGBITS && sec.sh_flags & elf::SHF_EXECINSTR != 0
        })
        .map(|(pos, _)| (pos, None))
        .collect();
    for (pos, sec) in file.sections.iter().enumerate() {
        if sec.sh_type == SHT_ARM_EXIDX
            && sec.link != 0
            && let Some(text) = file.section_position(sec.link)
            && let Ok(k) = code.binary_search_by_key(&text, |&(p, _)| p)
        {
            code[k].1 = Some(pos);
        }
    }
    code
}

/// The merge's tags in `file`'s `.ARM.attributes`.
fn attribute_tags(file: &InputFile<'_>) -> Option<Attributes> {
    let sec = file
        .sections
        .iter()
        .find(|s| s.sh_type == SHT_ARM_ATTRIBUTES)?;
    let attrs = parse_attributes(sec.data, sec.relocs.big_endian)?;
    let get = |t| attrs.get(&t).copied().unwrap_or(0);
    Some(Attributes {
        arch: get(TAG_CPU_ARCH),
        profile: get(TAG_CPU_ARCH_PROFILE),
        thumb_isa: get(TAG_THUMB_ISA_USE),
    })
}

type Eng<'e, 's, 'a, 'f> = &'e mut Engine<'s, 'a, 'f>;

impl ArmBackend {
    pub(crate) fn new(
        opts: ArmOptions,
        files: &[InputFile<'_>],
        input_ids: &InputSymbolIds,
    ) -> Self {
        let ((file_read, thumb_sections), branch_sites): ((Vec<_>, Vec<_>), _) = rayon::join(
            || {
                files
                    .par_iter()
                    .map(|file| (FileRead::of(file), thumb_sections(file)))
                    .unzip()
            },
            || branch_sites(files, input_ids),
        );
        ArmBackend {
            thumb_sections: Arc::new(thumb_sections),
            file_read: Arc::new(file_read),
            branch_sites: Arc::new(branch_sites),
            exidx_memo: Arc::default(),
            opts,
            attrs: Attributes::default(),
            fix_a8: false,
            group: FastMap::default(),
            stub_sections: Vec::new(),
            by_link: FastMap::default(),
            stubs: Vec::new(),
            stub_index: FastMap::default(),
            a8_fixes: Vec::new(),
        }
    }

    /// What was read of input `f` for the prepared link, if `file` (this layout's input `f`)
    /// is the prepared link's own file.
    fn read_of(&self, f: usize, file: &InputFile<'_>) -> Option<&FileRead> {
        self.file_read
            .get(f)
            .filter(|read| read.sections == Arc::as_ptr(&file.sections) as usize)
    }

    /// Merges the inputs' attributes as bfd does while loading them.
    fn merge_attributes(&mut self, e: &Engine<'_, '_, '_>) {
        let mut merged: Option<Attributes> = None;
        for (f, file) in e.files.iter().enumerate() {
            let tags = self
                .read_of(f, file)
                .map_or_else(|| attribute_tags(file), |read| read.tags);
            let Some(tags) = tags else { continue };
            let Some(attrs) = merged.as_mut() else {
                merged = Some(tags);
                continue;
            };
            attrs.arch = combine_arch(attrs.arch, tags.arch);
            if attrs.profile == 0 {
                attrs.profile = tags.profile;
            }
            attrs.thumb_isa = attrs.thumb_isa.max(tags.thumb_isa);
        }
        self.attrs = merged.unwrap_or_default();
        self.fix_a8 = self
            .opts
            .fix_cortex_a8
            .unwrap_or(self.attrs.arch == ARCH_V7 && matches!(self.attrs.profile, 0 | 0x41));
    }

    // ----- .ARM.exidx ---------------------------------------------------------------------------

    /// `elf32_arm_fix_exidx_coverage` over the executable inputs sorted by address.
    fn fix_exidx_coverage(&self, e: Eng<'_, '_, '_, '_>) {
        let mut text = Vec::new();
        // The memo holds for index sections of the prepared link's own files only.
        let mut memo_holds = true;
        for (f, file) in e.files.iter().enumerate() {
            let listed;
            let code = match self.read_of(f, file) {
                Some(read) => &read.code,
                None => {
                    listed = code_sections(file);
                    memo_holds &= listed.iter().all(|(_, exidx)| exidx.is_none());
                    &listed
                }
            };
            for &(sec, exidx) in code {
                let r = SectionRef { file: f, sec };
                if let Some(addr) = e.input_address(r) {
                    text.push((addr, r, exidx.map(|x| SectionRef { file: f, sec: x })));
                }
            }
        }
        text.sort_by_key(|&(addr, _, _)| addr);
        let code: Vec<_> = text
            .iter()
            .map(|&(_, r, exidx)| (r, exidx, e.input_size(r) == 0))
            .collect();
        // The lock is not held over the walk below: probes laid out side by side would wait.
        if memo_holds {
            let memo = locked(&self.exidx_memo);
            if memo.code == code {
                for &(r, size) in &memo.resized {
                    e.set_input_size(r, size);
                }
                return;
            }
        }

        let mut delta: FastMap<SectionRef, i64> = FastMap::default();
        let mut last_exidx: Option<SectionRef> = None;
        let mut last_type: i32 = -1;
        let mut last_second = 0u32;
        let word = |data: &[u8], at: usize| -> u32 {
            data.get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_le_bytes)
        };
        for &(_, exidx, empty) in &code {
            let Some(exidx) = exidx else {
                let Some(last) = last_exidx else { continue };
                if last_type == 0 || empty {
                    continue;
                }
                *delta.entry(last).or_default() += 8;
                last_type = 0;
                continue;
            };
            if e.input_output[exidx.file][exidx.sec] == Some(None) {
                continue;
            }
            let data = e.files[exidx.file].sections[exidx.sec].data;
            if last_type > 0
                && word(data, 0) != 0
                && let Some(last) = last_exidx
            {
                *delta.entry(last).or_default() += 8;
                last_type = 0;
            }
            let mut deleted = 0i64;
            for entry in data.chunks_exact(8) {
                let second = word(entry, 4);
                let (kind, elide) = if second == 1 {
                    (0, last_type == 0)
                } else if second & 0x8000_0000 != 0 {
                    let elide =
                        self.opts.merge_exidx_entries && last_second == second && last_type == 1;
                    last_second = second;
                    (1, elide)
                } else {
                    (2, false)
                };
                if elide {
                    deleted += 8;
                }
                last_type = kind;
            }
            *delta.entry(exidx).or_default() -= deleted;
            last_exidx = Some(exidx);
        }
        if let Some(last) = last_exidx
            && last_type != 0
        {
            *delta.entry(last).or_default() += 8;
        }
        let resized: Vec<(SectionRef, u64)> = delta
            .into_iter()
            .filter(|&(_, d)| d != 0)
            .map(|(r, d)| {
                (
                    r,
                    e.files[r.file].sections[r.sec]
                        .size
                        .saturating_add_signed(d),
                )
            })
            .collect();
        for &(r, size) in &resized {
            e.set_input_size(r, size);
        }
        if memo_holds {
            *locked(&self.exidx_memo) = ExidxMemo { code, resized };
        }
    }

    // ----- stub groups --------------------------------------------------------------------------

    /// `elf32_arm_setup_section_lists`, `build_section_lists` and `group_sections`.
    fn group_sections(&mut self, e: &Engine<'_, '_, '_>) {
        let always_after = self.fix_a8;
        for &id in &e.bfd_order {
            if !e.os[id].flags.contains(SecFlags::CODE) {
                continue;
            }
            let list: Vec<SectionRef> = e
                .inputs_in_order(id)
                .into_iter()
                .filter(|r| e.files[r.file].sections[r.sec].sh_flags & elf::SHF_EXECINSTR != 0)
                .collect();
            let offset = |r: SectionRef| e.input_offset[r.file][r.sec];
            let end = |r: SectionRef| offset(r) + e.input_size(r);
            let mut head = 0;
            while head < list.len() {
                let start = offset(list[head]);
                let mut curr = head;
                while curr + 1 < list.len()
                    && end(list[curr + 1]).wrapping_sub(start) < STUB_GROUP_SIZE
                {
                    curr += 1;
                }
                for &r in &list[head..=curr] {
                    self.group.insert(r, list[curr]);
                }
                let mut next = curr + 1;
                if !always_after {
                    let start = end(list[curr]);
                    while next < list.len() && end(list[next]).wrapping_sub(start) < STUB_GROUP_SIZE
                    {
                        self.group.insert(list[next], list[curr]);
                        next += 1;
                    }
                }
                head = next;
            }
        }
    }

    /// `elf32_arm_create_or_find_stub_sec`: the stub section of `section`'s group.
    fn stub_section(&mut self, e: Eng<'_, '_, '_, '_>, section: SectionRef) -> Option<usize> {
        let link = *self.group.get(&section)?;
        if let Some(&k) = self.by_link.get(&link) {
            return Some(k);
        }
        let os = e.input_output[link.file][link.sec]??;
        let linker = e.add_linker_section(os, link, 8);
        let k = self.stub_sections.len();
        self.stub_sections.push(StubSection { linker });
        self.by_link.insert(link, k);
        Some(k)
    }

    // ----- stub selection -----------------------------------------------------------------------

    /// Where the branch `site` of file `f` goes at this layout's addresses, None when ld skips
    /// it (an undefined target).
    fn resolve(e: &Engine<'_, '_, '_>, f: usize, site: &BranchSite) -> Option<Target> {
        let addend = site.reloc.addend;
        let id = match site.target {
            SiteTarget::Local {
                sym,
                value,
                branch,
                section,
            } => {
                let base = section.map_or(0, |r| e.input_address(r).unwrap_or(0));
                return Some(Target {
                    destination: base.wrapping_add(value).wrapping_add_signed(addend),
                    branch,
                    absolute: section.is_none(),
                    key: TargetKey::Local(f, sym, section),
                });
            }
            SiteTarget::Global(id) => id,
            SiteTarget::ByName(sym) => e.syms.lookup(e.files[f].symbols.get(sym)?.name)?,
        };
        let g = e.syms.get(id);
        let SymState::Defined { base, value } = g.state.clone() else {
            return None;
        };
        let (branch, value) = match base {
            SymBase::Input(_) => (
                branch_of(g.kind, value),
                if g.kind == SymbolKind::Func {
                    value & !1
                } else {
                    value
                },
            ),
            SymBase::Abs | SymBase::Out(_) => (Branch::ToArm, value),
        };
        let (b, off) = e.resolve_sym_base(base, value)?;
        let addr = match b {
            super::eval::Base::Sec(os) => off.wrapping_add(e.os[os].vma),
            _ => off,
        };
        Some(Target {
            destination: addr.wrapping_add_signed(addend),
            branch,
            absolute: base == SymBase::Abs,
            key: TargetKey::Global(id),
        })
    }

    /// The name of a branch target, for its stub's names.
    fn target_name(e: &Engine<'_, '_, '_>, key: TargetKey) -> String {
        match key {
            TargetKey::Global(id) => e.syms.get(id).name.to_string(),
            TargetKey::Local(f, sym, _) => e.files[f].symbols[sym].name.to_string(),
        }
    }

    /// `arm_type_of_stub` for a static link; also returns the branch type the stub records.
    fn type_of_stub(
        &self,
        r_type: u32,
        mut branch: Branch,
        location: u64,
        t: &Target,
    ) -> Option<(StubType, Branch)> {
        use StubType::*;
        let a = &self.attrs;
        let (thumb_only, thumb2, thumb2_bl, use_blx) =
            (a.thumb_only(), a.thumb2(), a.thumb2_bl(), a.use_blx());
        let pic = self.opts.pic_veneer;
        if branch == Branch::Long || (branch == Branch::Unknown && thumb_only) {
            return None;
        }
        let thumb_reloc = matches!(r_type, R_ARM_THM_CALL | R_ARM_THM_JUMP24 | R_ARM_THM_JUMP19);
        if thumb_only && thumb_reloc && branch == Branch::ToArm {
            if t.absolute {
                branch = Branch::ToThumb;
            } else {
                return None;
            }
        }
        let off = t.destination.wrapping_sub(location) as i64;
        let out = |lo: i64, hi: i64| off > hi || off < lo;
        let kind = if thumb_reloc {
            let needed = (!thumb2_bl && out(THM_MAX_BWD, THM_MAX_FWD))
                || (thumb2_bl && out(THM2_MAX_BWD, THM2_MAX_FWD))
                || (thumb2
                    && r_type == R_ARM_THM_JUMP19
                    && out(THM2_MAX_BWD_COND, THM2_MAX_FWD_COND))
                || (branch == Branch::ToArm && (r_type != R_ARM_THM_CALL || !use_blx));
            if !needed {
                return None;
            }
            let blx_call = use_blx && r_type == R_ARM_THM_CALL;
            if branch == Branch::ToThumb {
                match (thumb_only, pic) {
                    (false, true) if blx_call => LongBranchAnyThumbPic,
                    (false, true) => LongBranchV4tThumbThumbPic,
                    (false, false) if blx_call => LongBranchAnyAny,
                    (false, false) => LongBranchV4tThumbThumb,
                    (true, true) => LongBranchThumbOnlyPic,
                    (true, false) if thumb2 => LongBranchThumb2Only,
                    (true, false) => LongBranchThumbOnly,
                }
            } else {
                match pic {
                    true if blx_call => LongBranchAnyArmPic,
                    true => LongBranchV4tThumbArmPic,
                    false if blx_call => LongBranchAnyAny,
                    false if !out(THM_MAX_BWD, THM_MAX_FWD) => ShortBranchV4tThumbArm,
                    false => LongBranchV4tThumbArm,
                }
            }
        } else if matches!(r_type, R_ARM_CALL | R_ARM_JUMP24 | R_ARM_PLT32) {
            if branch == Branch::ToThumb {
                let needed = out(ARM_MAX_BWD, ARM_MAX_FWD + 2) || r_type != R_ARM_CALL || !use_blx;
                if !needed {
                    return None;
                }
                match (pic, use_blx) {
                    (true, true) => LongBranchAnyThumbPic,
                    (true, false) => LongBranchV4tArmThumbPic,
                    (false, true) => LongBranchAnyAny,
                    (false, false) => LongBranchV4tArmThumb,
                }
            } else {
                if !out(ARM_MAX_BWD, ARM_MAX_FWD) {
                    return None;
                }
                if pic {
                    LongBranchAnyArmPic
                } else {
                    LongBranchAnyAny
                }
            }
        } else {
            return None;
        };
        Some((kind, branch))
    }

    /// One scan of every branch relocation (`elf32_arm_size_stubs`' loop body); returns whether
    /// a stub or erratum fix appeared.
    fn scan(&mut self, e: Eng<'_, '_, '_, '_>) -> bool {
        let prev_fixes = std::mem::take(&mut self.a8_fixes);
        let sites = Arc::clone(&self.branch_sites);
        // What a file's branches need depends on this layout's addresses alone, so the files
        // are read side by side; the stubs are then created in file order, as ld creates them.
        let found: Vec<FileScan> = {
            let (backend, engine) = (&*self, &*e);
            sites
                .par_iter()
                .enumerate()
                .map(|(f, sections)| backend.scan_file(engine, f, sections))
                .collect()
        };
        let mut changed = false;
        let mut fixes = Vec::new();
        for found in found {
            for (section, target, name, stub) in found.stubs {
                if self.add_stub(e, section, target, &name, stub) {
                    changed = true;
                }
            }
            fixes.extend(found.fixes);
        }
        if fixes.len() != prev_fixes.len()
            || fixes
                .iter()
                .zip(&prev_fixes)
                .any(|(a, b)| a.section != b.section || a.offset != b.offset)
        {
            changed = true;
        }
        self.a8_fixes = fixes;
        changed
    }

    /// The stubs file `f`'s branches (`sections`) need at this layout, in the order ld meets
    /// them, and the Cortex-A8 fixes its Thumb code needs.
    fn scan_file(
        &self,
        e: &Engine<'_, '_, '_>,
        f: usize,
        sections: &[(usize, Vec<BranchSite>)],
    ) -> FileScan {
        let mut found = FileScan::default();
        if e.files[f].symbols.is_empty() {
            return found;
        }
        let mut a8_relocs = Vec::new();
        for (i, branches) in sections {
            let r = SectionRef { file: f, sec: *i };
            let Some(base) = e.input_address(r) else {
                continue;
            };
            for site in branches {
                let rel = &site.reloc;
                let Some(target) = Self::resolve(e, f, site) else {
                    continue;
                };
                let location = base.wrapping_add(rel.offset);
                let destination = target.destination;
                let mut branch = target.branch;
                let mut has_stub = false;
                if let Some((kind, b)) = self.type_of_stub(rel.r_type, branch, location, &target) {
                    branch = b;
                    has_stub = true;
                    let stub = StubRequest {
                        r_type: rel.r_type,
                        addend: rel.addend,
                        kind,
                        branch,
                    };
                    found
                        .stubs
                        .push((r, target.key, Self::target_name(e, target.key), stub));
                }
                if self.fix_a8
                    && matches!(
                        rel.r_type,
                        R_ARM_THM_JUMP24 | R_ARM_THM_JUMP19 | R_ARM_THM_CALL | R_ARM_THM_XPC22
                    )
                    && location & 0xfff == 0xffe
                {
                    a8_relocs.push(A8Reloc {
                        from: location,
                        destination,
                        r_type: rel.r_type,
                        branch,
                        has_stub,
                    });
                }
            }
        }
        if self.fix_a8 {
            a8_relocs.sort_by_key(|r| r.from);
            self.a8_scan(e, f, &a8_relocs, &mut found.fixes);
        }
        found
    }

    /// `elf32_arm_create_stub`; returns whether the stub is new.
    #[allow(clippy::too_many_arguments)]
    fn add_stub(
        &mut self,
        e: Eng<'_, '_, '_, '_>,
        section: SectionRef,
        target: TargetKey,
        target_name: &str,
        stub: StubRequest,
    ) -> bool {
        let StubRequest {
            r_type,
            addend,
            kind,
            branch,
        } = stub;
        let Some(&group) = self.group.get(&section) else {
            return false;
        };
        let key = StubKey {
            group,
            target,
            addend,
            kind,
        };
        if self.stub_index.contains_key(&key) {
            return false;
        }
        let Some(sec) = self.stub_section(e, section) else {
            return false;
        };
        let thumb_reloc = matches!(r_type, R_ARM_THM_CALL | R_ARM_THM_JUMP24 | R_ARM_THM_JUMP19);
        let name = if thumb_reloc && branch == Branch::ToArm {
            format!("__{target_name}_from_thumb")
        } else if matches!(r_type, R_ARM_CALL | R_ARM_JUMP24) && branch == Branch::ToThumb {
            format!("__{target_name}_from_arm")
        } else {
            format!("__{target_name}_veneer")
        };
        let hash_name = match key.target {
            TargetKey::Global(_) => format!(
                "{:08x}_{target_name}+{:x}_{}",
                e_section_id(e, group),
                addend as i32,
                kind.number()
            ),
            TargetKey::Local(_, index, sym_sec) => format!(
                "{:08x}_{:x}:{:x}+{:x}_{}",
                e_section_id(e, group),
                sym_sec.map_or(0, |r| e_section_id(e, r)),
                index,
                addend as i32,
                kind.number()
            ),
        };
        self.stub_index.insert(key, self.stubs.len());
        self.stubs.push(Stub {
            hash_name,
            kind,
            section: sec,
            name,
        });
        true
    }

    /// `cortex_a8_erratum_scan` over file `f`'s Thumb code. Where the instructions start
    /// does not depend on addresses, so each stretch's branches that can hit the erratum are
    /// decoded once per prepared link ([`ThumbStretch`]); a layout only checks their pages.
    fn a8_scan(
        &self,
        e: &Engine<'_, '_, '_>,
        f: usize,
        relocs: &[A8Reloc],
        fixes: &mut Vec<A8Fix>,
    ) {
        let file = &e.files[f];
        let Some(sections) = self.thumb_sections.get(f) else {
            return;
        };
        let own = self.read_of(f, file).is_some();
        for thumb in sections {
            let (i, sec) = (thumb.pos, &file.sections[thumb.pos]);
            if sec.sh_type != elf::SHT_PROGBITS || sec.sh_flags & elf::SHF_EXECINSTR == 0 {
                continue;
            }
            let r = SectionRef { file: f, sec: i };
            let Some(base) = e.input_address(r) else {
                continue;
            };
            // A prepared file's stretches are those listed; a file swapped in is checked.
            let fresh;
            let stretches = if own {
                &thumb.stretches
            } else {
                let map = mapping(file, &thumb.symbols);
                if thumb.lists(sec, &map) {
                    &thumb.stretches
                } else {
                    fresh = thumb_stretches(sec.size, &map);
                    &fresh
                }
            };
            for stretch in stretches {
                if (base + stretch.start) & !0xfff == (base + stretch.end) & !0xfff {
                    continue;
                }
                let sites = stretch
                    .sites
                    .get_or_init(|| a8_sites(sec.data, stretch.start, stretch.end));
                for site in sites {
                    let pc_here = base + site.at;
                    if pc_here & 0xfff == 0xffe
                        && let Some(kind) = a8_fix_kind(
                            site.insn,
                            pc_here,
                            relocs,
                            self.attrs.use_blx(),
                            site.branch,
                        )
                    {
                        fixes.push(A8Fix {
                            section: r,
                            offset: site.at,
                            kind,
                        });
                    }
                }
            }
        }
    }

    /// Recomputes every stub section's size from the stubs and fixes found so far.
    fn size_stub_sections(&mut self, e: Eng<'_, '_, '_, '_>) {
        let mut sizes = vec![0u64; self.stub_sections.len()];
        for stub in &self.stubs {
            sizes[stub.section] += (stub.kind.template().0 + 7) & !7;
        }
        for k in 0..self.a8_fixes.len() {
            let fix = self.a8_fixes[k].clone();
            if let Some(sec) = self.stub_section(e, fix.section) {
                if sizes.len() <= sec {
                    sizes.resize(sec + 1, 0);
                }
                sizes[sec] += fix.kind.template().0;
            }
        }
        for (k, size) in sizes.into_iter().enumerate() {
            let linker = self.stub_sections[k].linker;
            e.linker_sections[linker].size = size;
        }
    }
}

/// bfd's branch type of a symbol (`elf32_arm_swap_symbol_in`).
fn branch_of(kind: SymbolKind, value: u64) -> Branch {
    match kind {
        SymbolKind::Func if value & 1 != 0 => Branch::ToThumb,
        SymbolKind::Func => Branch::ToArm,
        SymbolKind::Section => Branch::Long,
        _ => Branch::Unknown,
    }
}

/// The veneer an erratum site at `pc_here` needs, if its target is in the same page.
fn a8_fix_kind(
    insn: u32,
    pc_here: u64,
    relocs: &[A8Reloc],
    use_blx: bool,
    (is_b, is_bl, mut is_blx, is_bcc): (bool, bool, bool, bool),
) -> Option<StubType> {
    let found = relocs
        .binary_search_by_key(&pc_here, |r| r.from)
        .ok()
        .map(|k| &relocs[k]);
    let (mut force_arm, mut force_thumb) = (false, false);
    if let Some(rel) = found {
        if rel.has_stub {
            return None;
        }
        if rel.r_type == R_ARM_THM_CALL {
            if rel.branch == Branch::ToArm {
                force_arm = true;
            } else {
                force_thumb = true;
            }
        }
    }
    let (mut offset, mut kind) = if is_bcc {
        let mut o = i64::from((insn & 0x7ff) << 1);
        o |= i64::from((insn & 0x3f_0000) >> 4);
        if insn & 0x2000 != 0 {
            o |= 0x4_0000;
        }
        if insn & 0x800 != 0 {
            o |= 0x8_0000;
        }
        if insn & 0x400_0000 != 0 {
            o |= 0x10_0000;
        }
        if o & 0x10_0000 != 0 {
            o |= !0xf_ffff;
        }
        (o, StubType::A8VeneerBCond)
    } else if is_b || is_bl || is_blx {
        let s = i64::from(insn & 0x400_0000 != 0);
        let j1 = i64::from(insn & 0x2000 != 0);
        let j2 = i64::from(insn & 0x800 != 0);
        let i1 = 1 - (j1 ^ s);
        let i2 = 1 - (j2 ^ s);
        let mut o = i64::from((insn & 0x7ff) << 1);
        o |= i64::from((insn & 0x3ff_0000) >> 4);
        o |= i2 << 22;
        o |= i1 << 23;
        o |= s << 24;
        if o & 0x100_0000 != 0 {
            o |= !0xff_ffff;
        }
        if is_blx {
            o &= !3;
        }
        let kind = if is_blx {
            StubType::A8VeneerBlx
        } else if is_bl {
            StubType::A8VeneerBl
        } else {
            StubType::A8VeneerB
        };
        (o, kind)
    } else {
        return None;
    };
    let mut pc = pc_here + 4;
    if use_blx && force_arm && kind == StubType::A8VeneerBl {
        kind = StubType::A8VeneerBlx;
        is_blx = true;
    } else if force_thumb && kind == StubType::A8VeneerBlx {
        kind = StubType::A8VeneerBl;
        is_blx = false;
    }
    if is_blx {
        pc &= !3;
    }
    if let Some(rel) = found {
        offset = rel.destination.wrapping_sub(pc) as i64;
    }
    let target = pc.wrapping_add_signed(offset);
    (pc_here & !0xfff == target & !0xfff).then_some(kind)
}

impl TargetHooks for ArmBackend {
    fn after_allocation(&mut self, e: &mut Engine<'_, '_, '_>) -> Result<(), LayoutError> {
        self.merge_attributes(e);
        self.fix_exidx_coverage(e);
        self.group_sections(e);
        let mut laid_out = false;
        if self.fix_a8 {
            e.relayout()?;
            laid_out = true;
        }
        while self.scan(e) {
            self.size_stub_sections(e);
            e.relayout()?;
            laid_out = true;
        }
        if !laid_out {
            e.relayout()?;
        }
        Ok(())
    }

    fn boxed_clone(&self) -> Box<dyn TargetHooks> {
        Box::new(self.clone())
    }

    fn local_symbols(&self, e: &Engine<'_, '_, '_>) -> Vec<LinkedSymbol> {
        let mut out = Vec::new();
        let mut next = vec![0u64; self.stub_sections.len()];
        let a8 = self.a8_fixes.iter().filter_map(|fix| {
            let link = self.group.get(&fix.section)?;
            let name = format!("{:x}:{:x}", e_section_id(e, fix.section), fix.offset);
            Some((*self.by_link.get(link)?, String::new(), fix.kind, name))
        });
        let mut all: Vec<(usize, String, StubType, String)> = self
            .stubs
            .iter()
            .map(|s| (s.section, s.name.clone(), s.kind, s.hash_name.clone()))
            .chain(a8)
            .collect();
        // arm_build_one_stub runs over the hash table twice: other stubs, then A8 veneers; each
        // takes the next free offset of its stub section. Later insertions come first within a
        // bucket.
        let mut all: Vec<(usize, (usize, String, StubType, String))> =
            all.drain(..).enumerate().collect();
        all.sort_by_key(|(k, s)| {
            (
                s.2.is_a8(),
                super::bfd_hash_bucket(&s.3),
                std::cmp::Reverse(*k),
            )
        });
        for (_, (sec, name, kind, _)) in all {
            let ls = &e.linker_sections[self.stub_sections[sec].linker];
            let (size, thumb) = kind.template();
            let addr = e.os[ls.os].vma + ls.offset + next[sec];
            next[sec] += size;
            out.push(LinkedSymbol {
                name: name.into(),
                value: addr | u64::from(thumb),
                section: SymbolSection::Section(e.prog.sections[ls.os].name.into()),
                nm: e.letter(Some(ls.os), Binding::Local, SymbolKind::Func),
                global: false,
                from_script: false,
                is_function: true,
            });
        }
        out
    }
}

/// bfd's section id of input section `r`: ids count every section bfd creates, from 0x10, and
/// ld's ARM emulation first makes the four interworking glue sections of its stub file; input
/// files follow in load order with one section per [`super::model::InputSection`].
fn e_section_id(e: &Engine<'_, '_, '_>, r: SectionRef) -> u32 {
    let before: usize = e.files[..r.file].iter().map(|f| f.sections.len()).sum();
    0x14 + (before + r.sec) as u32
}

#[cfg(test)]
mod tests {
    use super::{A8Site, ThumbSection, a8_sites, thumb_stretches};
    use crate::layout::model::{InputSection, elf};

    /// `ldr.w r0, [r0]`, then `b.w` (both 32-bit), then a 16-bit `nop`, little-endian.
    static CODE: [u8; 10] = [0xd0, 0xf8, 0x00, 0x00, 0x00, 0xf0, 0x00, 0x90, 0x00, 0xbf];

    #[test]
    fn erratum_sites_are_32_bit_branches_after_32_bit_non_branches_in_thumb_code() {
        let sites = a8_sites(&CODE, 0, 10);
        assert_eq!(sites.len(), 1);
        assert_eq!((sites[0].at, sites[0].insn), (4, 0xf000_9000));
        assert_eq!(sites[0].branch, (true, false, false, false));
        // Data from offset 4 on: the Thumb stretch ends there, before the branch.
        let stretches = thumb_stretches(10, &[(0, b't'), (4, b'd')]);
        assert_eq!(stretches.len(), 1);
        assert_eq!((stretches[0].start, stretches[0].end), (0, 4));
        assert!(a8_sites(&CODE, 0, 4).is_empty());
        // After a 16-bit instruction the branch is not a site.
        let mut code = CODE;
        code[..4].copy_from_slice(&[0x00, 0xbf, 0x00, 0xbf]);
        let sites: Vec<A8Site> = a8_sites(&code, 0, 10);
        assert!(sites.is_empty());
    }

    #[test]
    fn a_decode_is_reused_only_for_the_code_it_was_made_from() {
        let section = |data: &'static [u8]| InputSection {
            name: ".text",
            index: 1,
            size: data.len() as u64,
            align: 4,
            sh_type: elf::SHT_PROGBITS,
            sh_flags: elf::SHF_ALLOC | elf::SHF_EXECINSTR,
            entsize: 0,
            data,
            duplicate: false,
            linker_created: false,
            link: 0,
            relocs: Default::default(),
        };
        let map = vec![(0, b't')];
        let original = section(&CODE);
        let decode = ThumbSection {
            pos: 1,
            symbols: Vec::new(),
            code: (CODE.as_ptr() as usize, CODE.len()),
            size: 10,
            stretches: thumb_stretches(10, &map),
            map: map.clone(),
        };
        assert!(decode.lists(&original, &map));
        let copy: &'static [u8] = Vec::leak(CODE.to_vec());
        assert!(!decode.lists(&section(copy), &map));
        assert!(!decode.lists(&original, &[(0, b't'), (4, b'd')]));
    }
}
