//! ld's passes over the statement lists: create output sections, place orphans, mark, allocate,
//! assign, and fix up symbols.
//!
//! Owns the location counter and every address: `lang_size_sections_1` (mark and allocation
//! phases), `strip_excluded_output_sections`, `lang_do_assignments_1` (final phase),
//! `section_for_dot`, `ldexp_finalize_syms` and `_bfd_fix_excluded_sec_syms`, in that order.

use rayon::prelude::*;
use std::sync::Arc;

use crate::hash::{FastMap, FastSet};

use super::eval::{AssignSrc, Base, Fold, Value};
use super::flags::SecFlags;
use super::ir::{AddrSpec, LmaSpec, OsId, OsStmt, Program, SecStmt, SectionType, TopStmt};
use super::map::{Disposition, Mapping, SectionRef};
use super::merge::{MergeInput, Merged, Outcome, merge};
use super::model::{Binding, InputFile, SymbolKind, elf};
use super::symbols::{
    InputSymbolIds, LinkedSymbol, SymBase, SymState, SymbolName, SymbolNames, SymbolSection,
    SymbolTable,
};
use super::{
    Layout, LayoutError, LayoutOptions, OutState, OutputSection, RemovedReason, RemovedSection,
};
use crate::input::nm::{NmSection, type_letter};
use crate::script::ast::*;

const SHF_LINK_ORDER: u64 = 0x80;

/// ld's `expld.phase`, in the order the passes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Mark,
    Allocating,
    /// `lang_do_assignments (lang_assigning_phase_enum)`: a target backend's re-layout.
    Assigning,
    Final,
}

/// A target backend's part in ld's passes: what bfd's target code and ld's emulation do between
/// the allocation pass and the final assignments (`ldemul_after_allocation`), and the local
/// symbols it writes itself (`output_arch_local_syms`). The generic passes call it and know
/// nothing else about the target. Shared between threads: a backend is built beside the
/// link's preparation, and an engine holding one is read from several threads.
pub(crate) trait TargetHooks: Send + Sync {
    /// Runs after the first allocation pass. It may resize input sections
    /// ([`Engine::set_input_size`]), add linker-made input sections ([`Engine::add_linker_section`])
    /// and lay out again ([`Engine::relayout`]).
    fn after_allocation(&mut self, engine: &mut Engine<'_, '_, '_>) -> Result<(), LayoutError>;

    /// Extra local symbols of the output's symbol table, addresses final.
    fn local_symbols(&self, engine: &Engine<'_, '_, '_>) -> Vec<LinkedSymbol>;

    /// A copy in the same state (a prepared link is laid out many times from one state).
    fn boxed_clone(&self) -> Box<dyn TargetHooks>;
}

impl Clone for Box<dyn TargetHooks> {
    fn clone(&self) -> Self {
        self.boxed_clone()
    }
}

/// An input section the linker makes itself (an ARM stub section), placed right after an input
/// section of the statement tree as ld's emulations hook them in.
#[derive(Debug, Clone)]
pub(crate) struct LinkerSection {
    pub os: OsId,
    pub size: u64,
    pub align: u64,
    /// Offset in the output section, set by the sizing passes.
    pub offset: u64,
}

/// The section an expression is folded against (ld's `expld.section`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ctx {
    /// Top level: the absolute section.
    Abs,
    Sec(OsId),
    /// Inside an output section ld never created.
    Und,
}

/// A MEMORY region, or ld's `*default*` region (index 0).
#[derive(Debug, Clone)]
pub(crate) struct Region {
    pub name: String,
    pub origin: u64,
    pub length: u64,
    pub current: u64,
    pub last_os: Option<OsId>,
}

/// Where an input section ended up: not placed, discarded, or in an output section.
pub(crate) type InputOutput = Option<Option<OsId>>;

#[derive(Clone)]
pub(crate) struct Engine<'s, 'a, 'f> {
    pub prog: Program<'s, 'a>,
    pub files: &'f [InputFile<'a>],
    pub mapping: Mapping,
    pub opts: &'f LayoutOptions,
    pub os: Vec<OutState>,
    /// Output sections in the output file's order (bfd's section list, including removed ones).
    pub bfd_order: Vec<OsId>,
    pub input_output: Vec<Vec<InputOutput>>,
    pub input_offset: Vec<Vec<u64>>,
    pub input_align: Vec<Vec<u64>>,
    pub syms: SymbolTable<'f>,
    pub phase: Phase,
    pub iteration: u32,
    pub regions: Vec<Region>,
    /// Padding the allocation pass inserted after `. = …` statements inside sections.
    pads: FastMap<(OsId, usize), u64>,
    /// PROVIDE statements that have defined their symbol (ld's `etree_provided`).
    provided: FastSet<usize>,
    by_name: FastMap<String, OsId>,
    /// Orphan input sections attached to an output section after its script statements.
    orphan_inputs: FastMap<OsId, Vec<SectionRef>>,
    orphans: Vec<(String, String)>,
    current_section: Option<OsId>,
    prefer_next: bool,
    found_end: bool,
    current_assign: usize,
    failed_asserts: Vec<String>,
    /// First flat merge id of each file (`file_base[f] + section index`).
    file_base: Vec<usize>,
    /// Shared: merging is done once per prepared link and only read afterwards.
    merged: Option<Arc<Merged<'a>>>,
    /// What merging made of each input section's size, by flat id ([`Engine::file_base`]);
    /// empty when nothing was merged. Read for every input section in every sizing pass.
    merge_sizes: Arc<Vec<MergedSize>>,
    /// The target backend, if the machine has one.
    pub hooks: Option<Box<dyn TargetHooks>>,
    /// Sizes a target backend changed (ARM unwind index editing).
    resized: FastMap<SectionRef, u64>,
    pub linker_sections: Vec<LinkerSection>,
    /// Linker sections by the input section they follow.
    after_input: FastMap<SectionRef, Vec<usize>>,
    /// Output names of the symbols known when [`Engine::prepare`] ended, shared by every layout
    /// of a prepared link.
    shared_names: Arc<SharedNames>,
    /// Where merging put each kept local defined in a merge input, worked out once per
    /// prepared link (finding a string's entry costs a hash of its bytes), in locals order.
    merged_locals: Arc<Vec<MergedLocal>>,
    /// Each prepared input section's size and alignment, by flat id: the sizing passes read
    /// them for every input section, and the section records are too wide to stay in cache.
    geometry: Arc<Vec<InputGeometry>>,
    /// The input a layout took from a file of the same shape
    /// ([`super::PreparedLink::layout_with`]): its symbols' values may differ from those the
    /// prepared link saw.
    pub replaced_file: Option<usize>,
}

/// What the sizing passes read of an input section: its size after merging, its own
/// alignment (at least 1), and whether merging excluded it.
#[derive(Debug, Clone, Copy)]
struct InputGeometry {
    size: u64,
    align: u64,
    excluded: bool,
}

/// A kept local defined in a merge input: its position in [`SymbolTable::locals`] and the
/// place merging gave its value.
#[derive(Debug, Clone, Copy)]
struct MergedLocal {
    local: u32,
    place: (SectionRef, u64),
}

/// Symbol names as the output's symbol table lists them, gathered once per prepared link.
#[derive(Debug, Default)]
pub(crate) struct SharedNames {
    /// By symbol table id.
    globals: SymbolNames,
    /// By position in [`SymbolTable::locals`].
    locals: SymbolNames,
}

impl<'s, 'a, 'f> Engine<'s, 'a, 'f> {
    /// `syms` holds the names of `files` ([`SymbolTable::with_input_names`]).
    pub fn new(
        prog: Program<'s, 'a>,
        files: &'f [InputFile<'a>],
        mapping: Mapping,
        syms: SymbolTable<'f>,
        opts: &'f LayoutOptions,
    ) -> Self {
        let n = prog.sections.len();
        let mut regions = vec![Region {
            name: "*default*".to_string(),
            origin: 0,
            length: u64::MAX,
            current: 0,
            last_os: None,
        }];
        for r in &prog.regions {
            regions.push(Region {
                name: r.name.text.to_string(),
                origin: 0,
                length: 0,
                current: 0,
                last_os: None,
            });
        }
        let by_name = super::section_index(&prog);
        let mut os = vec![OutState::default(); n];
        for &id in &mapping.failed_constraints {
            os[id].constraint_failed = true;
        }
        Engine {
            files,
            opts,
            os,
            bfd_order: Vec::new(),
            input_output: files.iter().map(|f| vec![None; f.sections.len()]).collect(),
            input_offset: files.iter().map(|f| vec![0; f.sections.len()]).collect(),
            input_align: files
                .iter()
                .map(|f| f.sections.iter().map(|s| s.align.max(1)).collect())
                .collect(),
            syms,
            phase: Phase::Mark,
            iteration: 0,
            regions,
            pads: FastMap::default(),
            provided: FastSet::default(),
            by_name,
            orphan_inputs: FastMap::default(),
            orphans: Vec::new(),
            current_section: None,
            prefer_next: false,
            found_end: false,
            current_assign: 0,
            failed_asserts: Vec::new(),
            file_base: files
                .iter()
                .scan(0usize, |acc, f| {
                    let base = *acc;
                    *acc += f.sections.len();
                    Some(base)
                })
                .collect(),
            merged: None,
            merge_sizes: Arc::default(),
            hooks: None,
            resized: FastMap::default(),
            linker_sections: Vec::new(),
            after_input: FastMap::default(),
            shared_names: Arc::default(),
            merged_locals: Arc::default(),
            geometry: Arc::default(),
            replaced_file: None,
            mapping,
            prog,
        }
    }

    /// ld's steps before the first sizing pass: symbol resolution, section creation, orphan
    /// placement and merging. None of them reads an input section's size or a symbol's value,
    /// so their result can be reused for inputs that differ only in those. `input_ids` says
    /// where each input symbol's name is in the table ([`SymbolTable::with_input_names`]).
    pub fn prepare(&mut self, input_ids: &InputSymbolIds) -> Result<(), LayoutError> {
        self.syms.add_inputs(
            self.files,
            input_ids,
            &self.mapping.disposition,
            self.opts.discard,
            self.opts.emit_relocs,
            self.opts.aarch64.shared,
        );
        self.init_regions()?;
        for (name, value) in &self.opts.defsyms {
            let id = self.syms.intern(name);
            let s = self.syms.get_mut(id);
            s.state = SymState::Defined {
                base: SymBase::Abs,
                value: *value,
            };
            s.script_def = true;
        }
        self.create_sections();
        self.place_orphans();
        self.syms.share_names();
        // Merging reads the sections and the names read the symbols: side by side.
        let (files, syms) = (self.files, &self.syms);
        let (input_output, file_base) = (&self.input_output, &self.file_base);
        let (merged, shared) = rayon::join(
            || merged_sections(files, input_output, file_base),
            || {
                // Two tasks: a core that finishes the merge first takes the other.
                let (globals, locals) = rayon::join(
                    || SymbolNames::new(syms.all().iter().map(|s| s.name)).unwrap_or_default(),
                    || {
                        let names = syms.locals.iter();
                        SymbolNames::new(names.map(|l| files[l.file].symbols[l.index].name))
                            .unwrap_or_default()
                    },
                );
                SharedNames { globals, locals }
            },
        );
        if let Some(merged) = merged {
            let total = self.file_base.last().copied().unwrap_or(0)
                + self.files.last().map_or(0, |f| f.sections.len());
            let mut sizes = vec![MergedSize::AsRead; total];
            for (id, outcome) in merged.outcomes() {
                if let Some(size) = sizes.get_mut(id) {
                    *size = match outcome {
                        Outcome::Excluded => MergedSize::Excluded,
                        _ => MergedSize::Merged(merged.size(id).unwrap_or(0)),
                    };
                }
            }
            self.merge_sizes = Arc::new(sizes);
            self.merged = Some(Arc::new(merged));
        }
        self.shared_names = Arc::new(shared);
        self.merged_locals = Arc::new(self.merged_locals());
        self.geometry = Arc::new(self.input_geometry());
        Ok(())
    }

    /// The sizing passes, the final assignments and the symbol fix-ups, after [`Engine::prepare`].
    pub fn finish(&mut self) -> Result<Layout, LayoutError> {
        self.phase = Phase::Mark;
        self.size_pass()?;
        self.strip_excluded();
        self.reset_memory_regions();
        self.phase = Phase::Allocating;
        self.size_pass()?;
        if let Some(mut hooks) = self.hooks.take() {
            let done = hooks.after_allocation(self);
            self.hooks = Some(hooks);
            done?;
        }
        self.phase = Phase::Final;
        self.assign_pass()?;
        self.fix_up_syms();
        Ok(self.build_layout())
    }

    fn init_regions(&mut self) -> Result<(), LayoutError> {
        let regions: Vec<&MemoryRegion<'_>> = self.prog.regions.clone();
        for (i, r) in regions.iter().enumerate() {
            let mut fold = Fold::default();
            let origin = self
                .fold(&mut fold, &r.origin, Ctx::Abs, 0)?
                .map_or(0, |v| v.value);
            let length = self
                .fold(&mut fold, &r.length, Ctx::Abs, 0)?
                .map_or(0, |v| v.value);
            let reg = &mut self.regions[i + 1];
            reg.origin = origin;
            reg.length = length;
            reg.current = origin;
        }
        Ok(())
    }

    pub(crate) fn region_by_name(&self, name: &str) -> Option<usize> {
        self.regions.iter().position(|r| r.name == name)
    }

    pub(crate) fn find_output_section(&self, name: &str) -> Option<OsId> {
        self.by_name
            .get(name)
            .copied()
            .filter(|&id| !self.os[id].constraint_failed)
    }

    /// Where byte `offset` of input section `r` ends up: merge sections move entries to the
    /// section that owns them (ld's `_bfd_merged_section_offset`).
    pub(crate) fn merged_location(&self, r: SectionRef, offset: u64) -> (SectionRef, u64) {
        // Most sections were no input of the merge: the size array settles them without a
        // lookup in the merge's map (every kept local of every layout comes here).
        if self.merged_size(r) != MergedSize::AsRead
            && let Some(m) = &self.merged
            && let Some(t) = m.map_offset(self.file_base[r.file] + r.sec, offset)
        {
            return (self.unflat(t.id), t.offset);
        }
        (r, offset)
    }

    fn unflat(&self, id: usize) -> SectionRef {
        let file = self.file_base.partition_point(|&b| b <= id) - 1;
        SectionRef {
            file,
            sec: id - self.file_base[file],
        }
    }

    pub(crate) fn is_defined_for_script(&self, name: &str) -> bool {
        let Some(id) = self.syms.lookup(name) else {
            return false;
        };
        let s = self.syms.get(id);
        matches!(s.state, SymState::Defined { .. } | SymState::Common { .. })
            && (!s.script_def || s.by_object || s.def_iteration == Some(self.iteration))
    }

    pub(crate) fn is_abs_script_symbol_this_iteration(&self, id: usize) -> bool {
        let s = self.syms.get(id);
        s.script_def
            && s.def_iteration == Some(self.iteration)
            && matches!(
                s.state,
                SymState::Defined {
                    base: SymBase::Abs,
                    ..
                }
            )
    }

    fn is_script_abs_zero(&self, name: &str) -> bool {
        self.syms.lookup(name).is_some_and(|id| {
            self.is_abs_script_symbol_this_iteration(id)
                && matches!(self.syms.get(id).state, SymState::Defined { value: 0, .. })
        })
    }

    // ----- map phase: creating output sections -------------------------------------------------

    /// `init_os`. A section created before any input (by an assignment, data statement or
    /// ADDR) gets bfd's ELF "special section" type and flags for its name.
    fn init_os(&mut self, id: OsId, from_input: bool) {
        if self.os[id].created || self.prog.sections[id].is_discard() {
            return;
        }
        if !from_input {
            self.os[id].special = super::flags::special_section(self.prog.sections[id].name);
        }
        let align = match self.prog.sections[id].align {
            Some(e) => {
                let mut fold = Fold::default();
                self.fold(&mut fold, e, Ctx::Abs, 0)
                    .ok()
                    .flatten()
                    .map_or(1, |v| v.value.max(1))
            }
            None => 1,
        };
        let st = &mut self.os[id];
        st.created = true;
        st.align = align;
        self.bfd_order.push(id);
    }

    /// `lang_add_section`: attaches an input section and merges its flags into the output's.
    fn add_input(&mut self, id: OsId, r: SectionRef) {
        let sec = &self.files[r.file].sections[r.sec];
        if self.prog.sections[id].is_discard() {
            self.input_output[r.file][r.sec] = Some(None);
            return;
        }
        let mut flags = SecFlags::from_elf(sec.name, sec.sh_type, sec.sh_flags);
        flags = flags & !(SecFlags::NEVER_LOAD | SecFlags::EXCLUDE | SecFlags::GROUP);
        if sec.linker_created {
            flags |= SecFlags::LINKER_CREATED;
        }
        if self.mapping.kept[r.file][r.sec] {
            flags |= SecFlags::KEEP;
        }
        match self.prog.sections[id].sectype {
            SectionType::NoAlloc => flags = flags & !(SecFlags::ALLOC | SecFlags::LOAD),
            SectionType::NoLoad => {
                flags = flags & !SecFlags::LOAD;
                flags |= SecFlags::NEVER_LOAD;
                if flags.contains(SecFlags::ALLOC) {
                    flags = flags & !SecFlags::HAS_CONTENTS;
                }
            }
            SectionType::ReadOnly => flags |= SecFlags::READONLY,
            _ => {}
        }
        if !self.os[id].created {
            self.init_os(id, true);
        }
        let st = &mut self.os[id];
        if !flags.contains(SecFlags::READONLY) {
            st.flags = st.flags & !SecFlags::READONLY;
        }
        if st.has_input {
            flags = flags & !SecFlags::READONLY;
            let merge_bits = SecFlags::MERGE | SecFlags::STRINGS;
            if (st.flags & merge_bits) != (flags & merge_bits)
                || (flags.contains(SecFlags::MERGE) && st.entsize != sec.entsize)
            {
                st.flags = st.flags & !merge_bits;
                flags = flags & !merge_bits;
            }
        }
        st.flags |= flags;
        if !st.has_input {
            st.has_input = true;
            let input_flags = SecFlags::from_elf(sec.name, sec.sh_type, sec.sh_flags);
            let ignore =
                SecFlags::KEEP | SecFlags::EXCLUDE | SecFlags::GROUP | SecFlags::LINKER_CREATED;
            if (st.flags & !ignore) == (input_flags & !ignore) {
                st.first_input_type = Some(sec.sh_type);
            }
            if flags.contains(SecFlags::MERGE) {
                st.entsize = sec.entsize;
            }
        }
        st.align = st.align.max(sec.align.max(1));
        st.link_order |= sec.sh_flags & SHF_LINK_ORDER != 0;
        self.input_output[r.file][r.sec] = Some(Some(id));
    }

    /// `map_input_to_output_sections`: walks the statements in order, creating output sections
    /// as ld does (on the first input section, assignment or data statement, or ADDR/LOADADDR
    /// reference).
    fn create_sections(&mut self) {
        let top = self.prog.top.clone();
        for stmt in &top {
            match stmt {
                TopStmt::Assign(a) => self.init_referenced(&a.value),
                TopStmt::Assert(a) => self.init_referenced(&a.condition),
                TopStmt::Section(id) => {
                    let id = *id;
                    let children = self.prog.sections[id].children.clone();
                    for child in &children {
                        match child {
                            SecStmt::Wild(w) => {
                                for k in 0..self.mapping.wild_sections[*w].len() {
                                    self.add_input(id, self.mapping.wild_sections[*w][k]);
                                }
                            }
                            SecStmt::Assign(a) => {
                                self.init_os(id, false);
                                self.init_referenced(&a.value);
                            }
                            SecStmt::Assert(a) => self.init_referenced(&a.condition),
                            SecStmt::Data(_, e) => {
                                // A section its data statement creates starts read-only (as
                                // if an input had been read-only), one an earlier statement
                                // created keeps its flags.
                                self.init_referenced(e);
                                let fresh = !self.os[id].created;
                                self.init_os(id, false);
                                if self.os[id].created {
                                    let mut f = SecFlags::HAS_CONTENTS;
                                    if fresh {
                                        f |= SecFlags::READONLY;
                                    }
                                    match self.prog.sections[id].sectype {
                                        SectionType::NoAlloc => {}
                                        SectionType::ReadOnly => {
                                            f |= SecFlags::READONLY
                                                | SecFlags::ALLOC
                                                | SecFlags::LOAD
                                        }
                                        _ => f |= SecFlags::ALLOC | SecFlags::LOAD,
                                    }
                                    self.os[id].flags |= f;
                                }
                            }
                            SecStmt::Fill(_)
                            | SecStmt::CreateObjectSymbols
                            | SecStmt::Constructors => {}
                        }
                    }
                }
            }
        }
    }

    /// ld's `exp_init_os`: sections named by ADDR or LOADADDR exist from then on.
    fn init_referenced(&mut self, e: &Expr<'a>) {
        match &e.kind {
            ExprKind::SectionQuery(SectionQuery::Addr | SectionQuery::LoadAddr, name) => {
                if let Some(id) = self.by_name.get(name.text).copied() {
                    self.init_os(id, false);
                }
            }
            ExprKind::Unary(_, a) => self.init_referenced(a),
            ExprKind::Binary(_, a, b) => {
                self.init_referenced(a);
                self.init_referenced(b);
            }
            ExprKind::Conditional(a, b, c) => {
                self.init_referenced(a);
                self.init_referenced(b);
                self.init_referenced(c);
            }
            ExprKind::Call(_, args) => args.iter().for_each(|a| self.init_referenced(a)),
            ExprKind::SegmentStart(_, a) => self.init_referenced(a),
            _ => {}
        }
    }

    // ----- orphans ------------------------------------------------------------------------------

    /// `lang_place_orphans` with ELF's `ldelf_place_orphan` rules.
    fn place_orphans(&mut self) {
        for file_id in 0..self.files.len() {
            for sec_idx in 0..self.files[file_id].sections.len() {
                if self.mapping.disposition[file_id][sec_idx] != Disposition::Unplaced {
                    continue;
                }
                let r = SectionRef {
                    file: file_id,
                    sec: sec_idx,
                };
                let target = self.orphan_target(r);
                self.orphan_inputs.entry(target).or_default().push(r);
                self.add_input(target, r);
                let name = self.files[file_id].sections[sec_idx].name.to_string();
                self.orphans
                    .push((name, self.prog.sections[target].name.to_string()));
            }
        }
    }

    fn orphan_target(&mut self, r: SectionRef) -> OsId {
        let sec = &self.files[r.file].sections[r.sec];
        let flags = SecFlags::from_elf(sec.name, sec.sh_type, sec.sh_flags);
        let same_name: Vec<OsId> = (0..self.prog.sections.len())
            .filter(|&i| self.prog.sections[i].name == sec.name && !self.os[i].constraint_failed)
            .collect();
        let mut unused = None;
        for &i in &same_name {
            let st = &self.os[i];
            if st.created
                && (st.flags == SecFlags::NONE
                    || ((flags.0 ^ st.flags.0) & (SecFlags::LOAD | SecFlags::ALLOC).0) == 0)
            {
                return i;
            }
            if !st.created && unused.is_none() {
                unused = Some(i);
            }
        }
        if let Some(i) = unused {
            return i;
        }
        let hold = if !flags.intersects(SecFlags::ALLOC | SecFlags::DEBUGGING) {
            Some(".comment")
        } else if !flags.contains(SecFlags::ALLOC) {
            None
        } else if flags.contains(SecFlags::LOAD) && sec.sh_type == elf::SHT_NOTE {
            Some(".interp")
        } else if !flags
            .intersects(SecFlags::LOAD | SecFlags::HAS_CONTENTS | SecFlags::THREAD_LOCAL)
        {
            Some(".bss")
        } else if flags.contains(SecFlags::THREAD_LOCAL) {
            Some(".tdata")
        } else if !flags.contains(SecFlags::READONLY) {
            Some(".data")
        } else if flags.contains(SecFlags::LOAD)
            && matches!(sec.sh_type, elf::SHT_RELA | elf::SHT_REL)
        {
            Some(".rela.dyn")
        } else if !flags.contains(SecFlags::CODE) {
            Some(".rodata")
        } else {
            Some(".text")
        };
        let after = hold
            .and_then(|h| self.by_name.get(h).copied())
            .or_else(|| self.find_by_flags(flags, sec.sh_type));
        self.insert_orphan(r, after)
    }

    /// `lang_output_section_find_by_flags`: the last statement whose section looks alike.
    fn find_by_flags(&self, flags: SecFlags, sh_type: u32) -> Option<OsId> {
        let f = |st: &OutState| if st.created { st.flags } else { SecFlags::NONE };
        let type_ok =
            |st: &OutState| !st.created || st.first_input_type.is_none_or(|t| t == sh_type);
        let last = |mask: SecFlags| {
            (0..self.prog.sections.len())
                .rev()
                .find(|&i| type_ok(&self.os[i]) && ((f(&self.os[i]).0 ^ flags.0) & mask.0) == 0)
        };
        let exact = SecFlags::HAS_CONTENTS
            | SecFlags::ALLOC
            | SecFlags::LOAD
            | SecFlags::READONLY
            | SecFlags::CODE
            | SecFlags::THREAD_LOCAL;
        if let Some(i) = last(exact) {
            return Some(i);
        }
        if flags.contains(SecFlags::CODE | SecFlags::ALLOC) {
            last(
                SecFlags::HAS_CONTENTS
                    | SecFlags::ALLOC
                    | SecFlags::LOAD
                    | SecFlags::CODE
                    | SecFlags::THREAD_LOCAL,
            )
        } else if flags.contains(SecFlags::READONLY | SecFlags::ALLOC) {
            last(SecFlags::HAS_CONTENTS | SecFlags::ALLOC | SecFlags::LOAD | SecFlags::READONLY)
        } else if flags.contains(SecFlags::HAS_CONTENTS | SecFlags::ALLOC) {
            last(SecFlags::HAS_CONTENTS | SecFlags::ALLOC | SecFlags::LOAD | SecFlags::THREAD_LOCAL)
        } else if flags.contains(SecFlags::ALLOC) {
            last(SecFlags::ALLOC)
        } else {
            self.prog.sections.len().checked_sub(1)
        }
    }

    /// `lang_insert_orphan`: a new output statement after `after` (and after earlier orphans put
    /// there), before a following `. = …` that sets up the next section.
    fn insert_orphan(&mut self, r: SectionRef, after: Option<OsId>) -> OsId {
        let sec = &self.files[r.file].sections[r.sec];
        let flags = SecFlags::from_elf(sec.name, sec.sh_type, sec.sh_flags);
        let id = self.prog.sections.len();
        let name: &'a str = sec.name;
        self.prog.sections.push(OsStmt {
            name,
            ast_name: Name {
                text: name,
                quoted: false,
                span: Span::default(),
            },
            span: Span::default(),
            addr: AddrSpec::None,
            lma: LmaSpec::None,
            align: None,
            subalign: None,
            align_with_input: false,
            constraint: None,
            sectype: SectionType::Normal,
            region: None,
            lma_region: None,
            fill: None,
            children: Vec::new(),
            overlay_end: None,
            orphan: true,
        });
        self.os.push(OutState::default());
        self.by_name.entry(name.to_string()).or_insert(id);
        let non_alloc = !flags.contains(SecFlags::ALLOC);
        if non_alloc {
            self.os[id].vma = 0;
        }
        // Statement list position.
        let pos = match after.and_then(|a| {
            self.prog
                .top
                .iter()
                .position(|t| matches!(t, TopStmt::Section(s) if *s == a))
        }) {
            Some(mut p) => {
                p += 1;
                let mut assign_at = None;
                let mut ignore_first = false;
                while p < self.prog.top.len() {
                    match &self.prog.top[p] {
                        TopStmt::Assign(a) => {
                            if assign_at.is_none() && a.target == AssignTarget::Dot {
                                if !ignore_first {
                                    assign_at = Some(p);
                                }
                                ignore_first = false;
                            }
                            p += 1;
                        }
                        TopStmt::Assert(_) => p += 1,
                        TopStmt::Section(s) => {
                            let st = &self.os[*s];
                            if self.prog.sections[*s].orphan {
                                p += 1;
                                continue;
                            }
                            if let Some(ap) = assign_at
                                && (!st.created
                                    || !st.has_input
                                    || st.flags.contains(SecFlags::ALLOC))
                            {
                                p = ap;
                            }
                            break;
                        }
                    }
                }
                p
            }
            None => self.prog.top.len(),
        };
        self.prog.top.insert(pos, TopStmt::Section(id));
        // bfd section list position: after the closest created section before it in the list.
        self.os[id].created = true;
        self.os[id].align = 1;
        let prev_created = self.prog.top[..pos].iter().rev().find_map(|t| match t {
            TopStmt::Section(s) if self.os[*s].created && *s != id => Some(*s),
            _ => None,
        });
        let at = prev_created
            .and_then(|p| self.bfd_order.iter().position(|&x| x == p))
            .map_or(self.bfd_order.len(), |i| i + 1);
        self.bfd_order.insert(at, id);
        id
    }

    // ----- sizing ------------------------------------------------------------------------------

    fn reset_memory_regions(&mut self) {
        for r in &mut self.regions {
            r.current = r.origin;
            r.last_os = None;
        }
        for st in &mut self.os {
            st.processed_vma = false;
            st.processed_lma = false;
            st.rawsize = st.size;
            st.size = 0;
        }
    }

    fn size_pass(&mut self) -> Result<(), LayoutError> {
        self.iteration += 1;
        let mut dot = 0u64;
        for r in &mut self.regions {
            r.current = r.origin;
            r.last_os = None;
        }
        let top = self.prog.top.clone();
        for stmt in &top {
            match stmt {
                TopStmt::Assign(a) => {
                    let mut newdot = dot;
                    self.assign(a, Ctx::Abs, &mut newdot)?;
                    self.regions[0].current = newdot;
                    dot = newdot;
                }
                TopStmt::Assert(a) => {
                    let mut fold = Fold::default();
                    self.fold(&mut fold, &a.condition, Ctx::Abs, dot)?;
                }
                TopStmt::Section(id) => dot = self.size_section(*id, dot)?,
            }
        }
        Ok(())
    }

    fn region_of(&self, id: OsId) -> usize {
        self.prog.sections[id]
            .region
            .and_then(|r| self.region_by_name(r))
            .unwrap_or(0)
    }

    fn fold_abs_address(&mut self, e: &Expr<'a>, dot: u64) -> Result<Option<u64>, LayoutError> {
        let mut fold = Fold::default();
        Ok(self
            .fold(&mut fold, e, Ctx::Abs, dot)?
            .map(|v| self.address_of(v, Ctx::Abs)))
    }

    fn size_section(&mut self, id: OsId, mut dot: u64) -> Result<u64, LayoutError> {
        if self.os[id].constraint_failed {
            return Ok(dot);
        }
        let addr = self.prog.sections[id].addr.clone();
        let has_addr = !matches!(addr, AddrSpec::None);
        match addr {
            AddrSpec::None => {}
            AddrSpec::Expr(e) => match self.fold_abs_address(e, dot)? {
                Some(v) => dot = v,
                None if self.phase != Phase::Mark => {
                    return Err(LayoutError::NonConstantAddress {
                        name: self.prog.sections[id].name.to_string(),
                        span: e.span,
                    });
                }
                None => {}
            },
            AddrSpec::SameAs(first) => {
                if self.os[first].processed_vma {
                    dot = self.os[first].vma;
                }
            }
        }
        if !self.os[id].created {
            return Ok(dot);
        }
        let region = self.region_of(id);
        let mut newdot = dot;
        let section_alignment = if has_addr {
            self.align_attr(id)?
        } else {
            newdot = self.regions[region].current;
            self.os[id].align
        };
        let mut dotdelta = 0;
        if section_alignment > 1 {
            let saved = newdot;
            newdot = align_up(newdot, section_alignment);
            dotdelta = newdot - saved;
        }
        self.os[id].vma = newdot;
        self.os[id].lma = newdot;
        self.size_children(id, newdot)?;
        self.os[id].processed_vma = true;
        if !self.os[id].ignored {
            dot = self.os[id].vma;
        }
        self.set_lma(id, region, dot, dotdelta, section_alignment)?;
        if self.os[id].ignored {
            return Ok(dot);
        }
        let st = &self.os[id];
        let tbss = st.flags.contains(SecFlags::THREAD_LOCAL) && !st.flags.contains(SecFlags::LOAD);
        if !tbss {
            dot += st.size;
        }
        if let Some((first, members)) = self.prog.sections[id].overlay_end.clone() {
            let max = members
                .iter()
                .map(|&m| {
                    if self.os[m].created {
                        self.os[m].size
                    } else {
                        0
                    }
                })
                .max()
                .unwrap_or(0);
            dot = self.os[first].vma + max;
        }
        if self.os[id]
            .flags
            .intersects(SecFlags::ALLOC | SecFlags::LOAD)
        {
            self.regions[region].current = dot;
        }
        Ok(dot)
    }

    fn align_attr(&mut self, id: OsId) -> Result<u64, LayoutError> {
        match self.prog.sections[id].align {
            None => Ok(1),
            Some(e) => {
                let mut fold = Fold::default();
                let v = self.fold(&mut fold, e, Ctx::Abs, 0)?.map_or(1, |v| v.value);
                if v != 0 && !v.is_power_of_two() {
                    return Err(LayoutError::BadAlignment {
                        what: "section alignment",
                        value: v,
                        span: e.span,
                    });
                }
                Ok(v.max(1))
            }
        }
    }

    fn set_lma(
        &mut self,
        id: OsId,
        region: usize,
        dot: u64,
        dotdelta: u64,
        section_alignment: u64,
    ) -> Result<(), LayoutError> {
        let lma_spec = self.prog.sections[id].lma.clone();
        let lma_region = self.prog.sections[id]
            .lma_region
            .and_then(|r| self.region_by_name(r));
        match lma_spec {
            LmaSpec::Expr(e) => {
                let mut fold = Fold::default();
                if let Some(v) = self.fold(&mut fold, e, Ctx::Abs, 0)? {
                    self.os[id].lma = self.address_of(v, Ctx::Abs);
                }
            }
            LmaSpec::After(prev) => {
                // Like any section without a load address, a member with nothing allocated in
                // it (an empty one, removed) keeps its LMA at its VMA: no-MMU ARM's empty
                // `.vectors.bhb.*` members give LOADADDR = 0xffff0000 (checked against ld).
                let st = &self.os[prev];
                if st.processed_lma && self.os[id].flags.contains(SecFlags::ALLOC) {
                    self.os[id].lma = st.lma + if st.created { st.size } else { 0 };
                }
            }
            LmaSpec::None => {
                if let Some(lr) = lma_region {
                    let mut lma = self.regions[lr].current;
                    if self.prog.sections[id].align_with_input {
                        lma += dotdelta;
                    } else {
                        let a = if lr != region {
                            self.align_attr(id)?
                        } else {
                            section_alignment
                        };
                        lma = align_up(lma, a);
                    }
                    self.os[id].lma = lma;
                } else if let Some(last) = self.regions[region].last_os
                    && self.os[id].flags.contains(SecFlags::ALLOC)
                {
                    let (lvma, llma, lsize) =
                        (self.os[last].vma, self.os[last].lma, self.os[last].size);
                    let size = self.os[id].size;
                    if !(dot < lvma && size != 0 && dot + size <= lvma) {
                        let mut lma = if self.prog.sections[id].sectype == SectionType::Overlay {
                            llma + lsize
                        } else {
                            self.os[id].vma.wrapping_add(llma).wrapping_sub(lvma)
                        };
                        lma = align_up(lma, section_alignment);
                        self.os[id].lma = lma;
                    }
                }
            }
        }
        self.os[id].processed_lma = true;
        let st = &self.os[id];
        let ignore_section = !st.flags.contains(SecFlags::ALLOC)
            || (st.flags.contains(SecFlags::THREAD_LOCAL) && !st.flags.contains(SecFlags::LOAD));
        let last_vma = self.regions[region].last_os.map(|l| self.os[l].vma);
        let track = ((!ignore_section
            && (st.size != 0
                || (last_vma.is_none() && st.vma != st.lma)
                || last_vma.is_some_and(|lv| dot >= lv)))
            || self.prog.sections[id].sectype == SectionType::FirstOverlay)
            && lma_region.is_none();
        if track {
            self.regions[region].last_os = Some(id);
        }
        if let Some(lr) = lma_region
            && lr != region
            && self.os[id]
                .flags
                .intersects(SecFlags::ALLOC | SecFlags::LOAD)
            && (self.os[id].flags.contains(SecFlags::LOAD)
                || self.prog.sections[id].align_with_input)
        {
            self.regions[lr].current = self.os[id].lma + self.os[id].size;
        }
        Ok(())
    }

    fn size_children(&mut self, id: OsId, mut dot: u64) -> Result<(), LayoutError> {
        let children = self.prog.sections[id].children.clone();
        let vma = self.os[id].vma;
        let subalign = match self.prog.sections[id].subalign {
            Some(e) => {
                let mut fold = Fold::default();
                self.fold(&mut fold, e, Ctx::Abs, 0)?
                    .map(|v| v.value.max(1))
            }
            None => None,
        };
        for (k, child) in children.iter().enumerate() {
            match child {
                SecStmt::Assign(a) => {
                    let mut newdot = dot;
                    let is_symbol = self.assign(a, Ctx::Sec(id), &mut newdot)?;
                    if is_symbol {
                        self.os[id].update_dot = true;
                    }
                    if !self.os[id].ignored {
                        if newdot != dot {
                            if self.phase == Phase::Allocating {
                                self.pads.insert((id, k), newdot.wrapping_sub(dot));
                            }
                            self.os[id].size = newdot.wrapping_sub(vma);
                            if self.prog.sections[id].sectype != SectionType::NoAlloc {
                                self.os[id].flags |= SecFlags::ALLOC;
                            }
                        } else if self.phase == Phase::Allocating {
                            self.pads.remove(&(id, k));
                        }
                        dot = newdot;
                    }
                }
                SecStmt::Assert(a) => {
                    let mut fold = Fold::default();
                    self.fold(&mut fold, &a.condition, Ctx::Sec(id), dot)?;
                }
                SecStmt::Wild(w) => {
                    // Sizing never reads the mapping; lend the list out instead of copying it.
                    let list = std::mem::take(&mut self.mapping.wild_sections[*w]);
                    dot = self.size_inputs(id, &list, dot, subalign);
                    self.mapping.wild_sections[*w] = list;
                }
                SecStmt::Data(size, e) => {
                    let mut fold = Fold::default();
                    self.fold(&mut fold, e, Ctx::Abs, dot)?;
                    dot += size.bytes();
                    self.os[id].size = dot - vma;
                }
                SecStmt::CreateObjectSymbols => self.os[id].flags |= SecFlags::KEEP,
                SecStmt::Fill(_) | SecStmt::Constructors => {}
            }
        }
        if let Some(list) = self.orphan_inputs.remove(&id) {
            self.size_inputs(id, &list, dot, subalign);
            self.orphan_inputs.insert(id, list);
        }
        Ok(())
    }

    fn size_inputs(
        &mut self,
        id: OsId,
        list: &[SectionRef],
        mut dot: u64,
        subalign: Option<u64>,
    ) -> u64 {
        let vma = self.os[id].vma;
        for &r in list {
            if self.input_output[r.file][r.sec] != Some(Some(id)) {
                continue;
            }
            let (excluded, own_align) = match self.prepared_geometry(r) {
                Some(g) => (g.excluded, g.align),
                None => (
                    self.merged_size(r) == MergedSize::Excluded,
                    self.files[r.file].sections[r.sec].align.max(1),
                ),
            };
            if excluded {
                continue;
            }
            let align = subalign.unwrap_or(own_align);
            self.input_align[r.file][r.sec] = align;
            if self.os[id].align < align {
                self.os[id].align = align;
            }
            dot = align_up(dot, align);
            self.input_offset[r.file][r.sec] = dot - vma;
            dot += self.input_size(r);
            self.os[id].size = dot - vma;
            let stubs = self.after_input.get(&r).map_or(0, Vec::len);
            for j in 0..stubs {
                let k = self.after_input[&r][j];
                let ls = &mut self.linker_sections[k];
                dot = align_up(dot, ls.align);
                ls.offset = dot - vma;
                dot += ls.size;
                let align = ls.align;
                let st = &mut self.os[id];
                st.align = st.align.max(align);
                st.size = dot - vma;
            }
        }
        dot
    }

    /// ld's `lang_relax_sections (true)`: assignments in the assigning phase, then memory
    /// regions reset and one more allocation pass.
    pub(crate) fn relayout(&mut self) -> Result<(), LayoutError> {
        self.phase = Phase::Assigning;
        self.assign_pass()?;
        self.reset_memory_regions();
        self.phase = Phase::Allocating;
        self.size_pass()
    }

    /// Gives input section `r` a new size (bfd's `bfd_set_section_size` from a backend).
    pub(crate) fn set_input_size(&mut self, r: SectionRef, size: u64) {
        self.resized.insert(r, size);
    }

    /// Adds an empty linker-made input section to output section `os` right after input `after`;
    /// returns its index in [`Engine::linker_sections`].
    pub(crate) fn add_linker_section(&mut self, os: OsId, after: SectionRef, align: u64) -> usize {
        let k = self.linker_sections.len();
        self.linker_sections.push(LinkerSection {
            os,
            size: 0,
            align,
            offset: 0,
        });
        self.after_input.entry(after).or_default().push(k);
        self.os[os].align = self.os[os].align.max(align);
        k
    }

    /// The input sections placed in output section `id`, in statement order (what ld's
    /// `lang_for_each_statement` visits), orphans last.
    pub(crate) fn inputs_in_order(&self, id: OsId) -> Vec<SectionRef> {
        let mut out = Vec::new();
        for child in &self.prog.sections[id].children {
            if let SecStmt::Wild(w) = child {
                out.extend(self.mapping.wild_sections[*w].iter().copied());
            }
        }
        if let Some(list) = self.orphan_inputs.get(&id) {
            out.extend(list.iter().copied());
        }
        out.retain(|r| {
            self.input_output[r.file][r.sec] == Some(Some(id))
                && self.merged_size(*r) != MergedSize::Excluded
        });
        out
    }

    /// The address input section `r` has in the current layout, if it is placed.
    pub(crate) fn input_address(&self, r: SectionRef) -> Option<u64> {
        let os = self.input_output[r.file][r.sec]??;
        Some(self.os[os].vma + self.input_offset[r.file][r.sec])
    }

    pub(crate) fn input_size(&self, r: SectionRef) -> u64 {
        if let Some(&size) = self.resized.get(&r) {
            return size;
        }
        match self.prepared_geometry(r) {
            Some(g) => g.size,
            None => self.size_after_merging(r),
        }
    }

    /// Input section `r`'s size as merging left it.
    fn size_after_merging(&self, r: SectionRef) -> u64 {
        match self.merged_size(r) {
            MergedSize::AsRead => self.files[r.file].sections[r.sec].size,
            MergedSize::Merged(size) => size,
            MergedSize::Excluded => 0,
        }
    }

    /// [`Engine::geometry`] of input section `r`, unless `r` is not a prepared input (before
    /// preparing ends, or in the file a layout swapped in).
    fn prepared_geometry(&self, r: SectionRef) -> Option<&InputGeometry> {
        if self.replaced_file == Some(r.file) {
            return None;
        }
        self.geometry.get(self.file_base[r.file] + r.sec)
    }

    /// [`Engine::geometry`] for the prepared inputs.
    fn input_geometry(&self) -> Vec<InputGeometry> {
        let mut geometry = Vec::with_capacity(self.files.iter().map(|f| f.sections.len()).sum());
        for (file, f) in self.files.iter().enumerate() {
            for (sec, section) in f.sections.iter().enumerate() {
                let r = SectionRef { file, sec };
                geometry.push(InputGeometry {
                    size: self.size_after_merging(r),
                    align: section.align.max(1),
                    excluded: self.merged_size(r) == MergedSize::Excluded,
                });
            }
        }
        geometry
    }

    /// What merging made of input section `r`'s size.
    fn merged_size(&self, r: SectionRef) -> MergedSize {
        self.merge_sizes
            .get(self.file_base[r.file] + r.sec)
            .copied()
            .unwrap_or(MergedSize::AsRead)
    }

    /// One assignment statement in any phase; returns whether it assigned a symbol (not `.`).
    fn assign(&mut self, a: &Assignment<'a>, ctx: Ctx, dot: &mut u64) -> Result<bool, LayoutError> {
        match a.target {
            AssignTarget::Dot => {
                if a.visibility != AssignVisibility::Plain {
                    return Err(LayoutError::ProvideDot { span: a.span });
                }
                let mut fold = Fold {
                    assigning_to_dot: true,
                    ..Fold::default()
                };
                let value = self.fold_assign_value(&mut fold, a, ctx, *dot)?;
                if self.phase == Phase::Mark
                    && let Ctx::Sec(id) = ctx
                    && !(value.is_some_and(|v| v.value == 0)
                        && self.is_noop_dot_assignment(&a.value))
                {
                    self.os[id].flags |= SecFlags::KEEP;
                }
                match value {
                    None => {
                        if self.phase != Phase::Mark {
                            return Err(LayoutError::InvalidDotAssignment { span: a.span });
                        }
                    }
                    Some(_) if ctx == Ctx::Und => {
                        if self.phase != Phase::Mark {
                            return Err(LayoutError::InvalidDotAssignment { span: a.span });
                        }
                    }
                    Some(v) => {
                        if self.phase <= Phase::Allocating || ctx == Ctx::Abs {
                            let next = self.address_of(v, ctx);
                            if next < *dot && ctx != Ctx::Abs {
                                return Err(LayoutError::DotBackwards {
                                    from: *dot,
                                    to: next,
                                    span: a.span,
                                });
                            }
                            *dot = next;
                        }
                    }
                }
                Ok(false)
            }
            AssignTarget::Symbol(name) => {
                let provide = matches!(
                    a.visibility,
                    AssignVisibility::Provide | AssignVisibility::ProvideHidden
                );
                let key = a.span.start();
                if provide && !self.provided.contains(&key) {
                    let eligible = self.syms.lookup(name.text).is_some_and(|id| {
                        matches!(
                            self.syms.get(id).state,
                            SymState::New | SymState::Undefined { .. }
                        )
                    });
                    if !eligible {
                        return Ok(false);
                    }
                }
                let mut fold = Fold {
                    assign_name: Some(name.text),
                    ..Fold::default()
                };
                let value = self.fold_assign_value(&mut fold, a, ctx, *dot)?;
                if self.phase != Phase::Final && fold.assign_name.is_none() {
                    return Ok(!provide || self.provided.contains(&key));
                }
                if provide {
                    self.provided.insert(key);
                }
                let id = self.syms.intern(name.text);
                let value = match value {
                    Some(v) => v,
                    None if self.syms.get(id).state == SymState::New => Value {
                        value: 0,
                        base: Base::Number,
                    },
                    None => return Ok(true),
                };
                let base = match value.base {
                    Base::Number => match ctx {
                        Ctx::Sec(s) => SymBase::Out(s),
                        Ctx::Abs | Ctx::Und => SymBase::Abs,
                    },
                    Base::Abs => SymBase::Abs,
                    Base::Sec(s) => SymBase::Out(s),
                };
                let final_sec =
                    if self.phase == Phase::Final && fold.rel_from_abs && base == SymBase::Abs {
                        self.section_for_dot()
                            .and_then(|sec| u32::try_from(sec).ok())
                    } else {
                        None
                    };
                let copied_kind = match &fold.assign_src {
                    AssignSrc::One(src) => self.syms.lookup(src).map(|s| self.syms.get(s).kind),
                    _ => None,
                };
                let iteration = self.iteration;
                let s = self.syms.get_mut(id);
                if !s.script_def
                    && matches!(s.state, SymState::Defined { .. } | SymState::Common { .. })
                {
                    s.by_object = true;
                }
                s.state = SymState::Defined {
                    base,
                    value: value.value,
                };
                s.script_def = true;
                s.weak_def = false;
                s.def_iteration = Some(iteration);
                s.final_sec = final_sec;
                if matches!(
                    a.visibility,
                    AssignVisibility::Hidden | AssignVisibility::ProvideHidden
                ) {
                    s.forced_local = true;
                }
                if let Some(kind) = copied_kind {
                    s.kind = kind;
                }
                Ok(true)
            }
        }
    }

    fn fold_assign_value(
        &mut self,
        fold: &mut Fold<'a>,
        a: &Assignment<'a>,
        ctx: Ctx,
        dot: u64,
    ) -> Result<Option<Value>, LayoutError> {
        let Some(op) = a.op.binary() else {
            return self.fold(fold, &a.value, ctx, dot);
        };
        let lhs = Expr {
            kind: match a.target {
                AssignTarget::Dot => ExprKind::Dot,
                AssignTarget::Symbol(n) => ExprKind::Symbol(n),
            },
            span: a.span,
        };
        let combined = Expr {
            kind: ExprKind::Binary(op, Box::new(lhs), Box::new(a.value.clone())),
            span: a.span,
        };
        self.fold(fold, &combined, ctx, dot)
    }

    /// `. = 0`, `. = sym` (absolute 0 from the script), `. = . + 0`, `. = . + sym`,
    /// `. = ALIGN(. != 0 ? x : 1)`: forms that do not keep an empty section.
    fn is_noop_dot_assignment(&self, e: &Expr<'a>) -> bool {
        let is_zero = |e: &Expr<'a>| matches!(e.kind, ExprKind::Number { value: 0, .. });
        let is_sym_zero = |e: &Expr<'a>| matches!(&e.kind, ExprKind::Symbol(n) if self.is_script_abs_zero(n.text));
        match &e.kind {
            ExprKind::Number { value: 0, .. } => true,
            ExprKind::Symbol(n) => self.is_script_abs_zero(n.text),
            ExprKind::Binary(BinaryOp::Add, l, r) => {
                matches!(l.kind, ExprKind::Dot) && (is_zero(r) || is_sym_zero(r))
            }
            ExprKind::Call(Builtin::Align, args) if args.len() == 1 => match &args[0].kind {
                ExprKind::Conditional(c, _, f) => {
                    matches!(&c.kind, ExprKind::Binary(BinaryOp::Ne, l, r) if matches!(l.kind, ExprKind::Dot) && is_zero(r))
                        && matches!(f.kind, ExprKind::Number { value: 1, .. })
                }
                _ => false,
            },
            _ => false,
        }
    }

    // ----- strip_excluded_output_sections -------------------------------------------------------

    fn strip_excluded(&mut self) {
        let linker_created = self.outputs_with_linker_created_input();
        for &id in &self.bfd_order {
            let st = &self.os[id];
            let linker_inputs = linker_created[id] || (self.opts.emit_relocs && st.has_input);
            let exclude = st.created
                && !st.constraint_failed
                && st.size == 0
                && !st.flags.contains(SecFlags::KEEP)
                && !linker_inputs;
            if exclude {
                let st = &mut self.os[id];
                st.excluded = true;
                st.flags |= SecFlags::EXCLUDE;
                if !st.update_dot {
                    st.ignored = true;
                }
            }
        }
    }

    /// For each output section, whether a linker-made input section (the build-id note) is in it.
    fn outputs_with_linker_created_input(&self) -> Vec<bool> {
        let mut out = vec![false; self.os.len()];
        for (f, file) in self.files.iter().enumerate() {
            for (s, sec) in file.sections.iter().enumerate() {
                if sec.linker_created
                    && let Some(Some(id)) = self.input_output[f][s]
                {
                    out[id] = true;
                }
            }
        }
        out
    }

    // ----- final assignments --------------------------------------------------------------------

    fn assign_pass(&mut self) -> Result<(), LayoutError> {
        self.iteration += 1;
        self.current_section = None;
        self.prefer_next = false;
        self.found_end = false;
        let mut dot = 0u64;
        let top = self.prog.top.clone();
        for (i, stmt) in top.iter().enumerate() {
            match stmt {
                TopStmt::Section(id) => {
                    let id = *id;
                    self.os[id].after_end = self.found_end;
                    let mut newdot = dot;
                    if self.os[id].created {
                        if !self.os[id].ignored && self.os[id].flags.contains(SecFlags::ALLOC) {
                            self.current_section = Some(id);
                            self.prefer_next = false;
                        }
                        newdot = self.os[id].vma;
                    }
                    newdot = self.assign_children(id, newdot)?;
                    if !self.os[id].ignored {
                        if self.os[id].created {
                            newdot = self.os[id].vma + self.os[id].size;
                            if let Some((first, members)) =
                                self.prog.sections[id].overlay_end.clone()
                            {
                                let max = members
                                    .iter()
                                    .map(|&m| {
                                        if self.os[m].created {
                                            self.os[m].size
                                        } else {
                                            0
                                        }
                                    })
                                    .max()
                                    .unwrap_or(0);
                                newdot = self.os[first].vma + max;
                            }
                        }
                        dot = newdot;
                    }
                }
                TopStmt::Assign(a) => {
                    self.current_assign = i;
                    self.note_assignment(a);
                    if a.target == AssignTarget::Dot {
                        self.prefer_next = true;
                    }
                    self.assign(a, Ctx::Abs, &mut dot)?;
                }
                TopStmt::Assert(a) => {
                    self.current_assign = i;
                    self.check_assert(a, Ctx::Abs, dot)?;
                }
            }
        }
        Ok(())
    }

    fn note_assignment(&mut self, a: &Assignment<'a>) {
        if let AssignTarget::Symbol(n) = a.target
            && n.text.trim_start_matches('_') == "end"
        {
            self.found_end = true;
        }
    }

    fn check_assert(&mut self, a: &Assert<'a>, ctx: Ctx, dot: u64) -> Result<(), LayoutError> {
        let mut fold = Fold::default();
        if let Some(v) = self.fold(&mut fold, &a.condition, ctx, dot)?
            && v.value == 0
            && self.phase == Phase::Final
        {
            self.failed_asserts.push(a.message.text.to_string());
        }
        Ok(())
    }

    fn assign_children(&mut self, id: OsId, mut dot: u64) -> Result<u64, LayoutError> {
        let children = self.prog.sections[id].children.clone();
        let ctx = if self.os[id].created {
            Ctx::Sec(id)
        } else {
            Ctx::Und
        };
        for (k, child) in children.iter().enumerate() {
            match child {
                SecStmt::Assign(a) => {
                    self.note_assignment(a);
                    self.assign(a, ctx, &mut dot)?;
                    if let Some(pad) = self.pads.get(&(id, k)) {
                        dot = dot.wrapping_add(*pad);
                    }
                }
                SecStmt::Assert(a) => self.check_assert(a, ctx, dot)?,
                SecStmt::Wild(w) => {
                    for &r in &self.mapping.wild_sections[*w] {
                        if self.input_output[r.file][r.sec] == Some(Some(id)) {
                            dot = self.os[id].vma
                                + self.input_offset[r.file][r.sec]
                                + self.input_size(r);
                            if let Some(&k) = self.after_input.get(&r).and_then(|v| v.last()) {
                                let ls = &self.linker_sections[k];
                                dot = self.os[id].vma + ls.offset + ls.size;
                            }
                        }
                    }
                }
                SecStmt::Data(size, e) => {
                    let mut fold = Fold::default();
                    self.fold(&mut fold, e, Ctx::Abs, dot)?;
                    dot += size.bytes();
                }
                SecStmt::Fill(_) | SecStmt::CreateObjectSymbols | SecStmt::Constructors => {}
            }
        }
        Ok(dot)
    }

    fn is_removed(&self, id: OsId) -> bool {
        self.os[id].excluded
    }

    /// The bfd list neighbour of `id` in direction `step` that is still in the list.
    fn bfd_step(&self, id: OsId, forward: bool) -> Option<OsId> {
        let pos = self.bfd_order.iter().position(|&x| x == id)?;
        if forward {
            self.bfd_order[pos + 1..]
                .iter()
                .copied()
                .find(|&x| !self.is_removed(x))
        } else {
            self.bfd_order[..pos]
                .iter()
                .rev()
                .copied()
                .find(|&x| !self.is_removed(x))
        }
    }

    fn alloc_not_tls(&self, id: OsId) -> bool {
        let f = self.os[id].flags;
        f.contains(SecFlags::ALLOC) && !f.contains(SecFlags::THREAD_LOCAL)
    }

    /// ld's `section_for_dot` for a top-level assignment of a `.`-derived value.
    fn section_for_dot(&self) -> Option<OsId> {
        if self.current_section.is_none() || self.prefer_next {
            let mut next =
                self.prog.top[self.current_assign + 1..]
                    .iter()
                    .filter_map(|t| match t {
                        TopStmt::Section(s) => Some(*s),
                        _ => None,
                    });
            let mut os = next.next();
            while let Some(o) = os {
                let st = &self.os[o];
                if st.after_end || (st.created && !st.excluded) {
                    break;
                }
                os = next.next();
            }
            if self.current_section.is_none() || os.is_none_or(|o| !self.os[o].after_end) {
                let mut s = match os {
                    Some(o) => Some(o),
                    None => self
                        .bfd_order
                        .iter()
                        .rev()
                        .copied()
                        .find(|&x| !self.is_removed(x)),
                };
                while let Some(x) = s {
                    if self.alloc_not_tls(x) {
                        return Some(x);
                    }
                    s = self.bfd_step(x, false);
                }
                return None;
            }
        }
        let mut s = self.current_section;
        while let Some(x) = s {
            if !self.is_removed(x) && self.alloc_not_tls(x) {
                break;
            }
            s = self.bfd_step(x, false);
        }
        if s.is_none() {
            s = self
                .bfd_order
                .iter()
                .copied()
                .find(|&x| !self.is_removed(x));
        }
        while let Some(x) = s {
            if self.alloc_not_tls(x) {
                return Some(x);
            }
            s = self.bfd_step(x, true);
        }
        None
    }

    // ----- symbol fix-ups -----------------------------------------------------------------------

    /// ld's fix-ups once addresses are final, each symbol through all three in ld's order
    /// (`ldexp_finalize_syms`, the `__start_`/`__stop_` definitions, then
    /// `_bfd_fix_excluded_sec_syms`): each step reads only its own symbol and the output
    /// sections, so one walk over a 200k-symbol table does what three did.
    fn fix_up_syms(&mut self) {
        for id in 0..self.syms.all().len() {
            self.finalize_sym(id);
            self.define_start_stop(id);
            self.fix_excluded_sym(id);
        }
    }

    /// `ldexp_finalize_syms`: a `.`-derived absolute symbol becomes relative to its section.
    fn finalize_sym(&mut self, id: usize) {
        let s = self.syms.get(id);
        if let (
            Some(sec),
            SymState::Defined {
                base: SymBase::Abs,
                value,
            },
        ) = (s.final_sec, &s.state)
        {
            let sec = sec as OsId;
            let value = value.wrapping_sub(self.os[sec].vma);
            self.syms.get_mut(id).state = SymState::Defined {
                base: SymBase::Out(sec),
                value,
            };
        }
    }

    /// `__start_SEC` / `__stop_SEC` for a referenced, undefined name of an output section.
    fn define_start_stop(&mut self, id: usize) {
        let s = self.syms.get(id);
        if !matches!(s.state, SymState::Undefined { .. }) || !s.referenced {
            return;
        }
        let (is_stop, sec) = if let Some(rest) = s.name.strip_prefix("__start_") {
            (false, rest)
        } else if let Some(rest) = s.name.strip_prefix("__stop_") {
            (true, rest)
        } else {
            return;
        };
        if sec.is_empty() || !sec.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return;
        }
        let Some(os) = self
            .find_output_section(sec)
            .filter(|&o| self.os[o].created && !self.os[o].excluded)
        else {
            return;
        };
        let value = if is_stop { self.os[os].size } else { 0 };
        self.syms.get_mut(id).state = SymState::Defined {
            base: SymBase::Out(os),
            value,
        };
    }

    /// `_bfd_fix_excluded_sec_syms`: a symbol in a removed section moves to a kept neighbour.
    fn fix_excluded_sym(&mut self, id: usize) {
        let SymState::Defined { base, value } = self.syms.get(id).state else {
            return;
        };
        let os = match base {
            SymBase::Out(os) => os,
            SymBase::Input(r) => {
                let r = r.section();
                match self.input_output[r.file][r.sec] {
                    Some(Some(os)) => os,
                    _ => return,
                }
            }
            SymBase::Abs => return,
        };
        if !self.os[os].excluded {
            return;
        }
        let Some((b, off)) = self.resolve_sym_base(base, value) else {
            return;
        };
        let addr = off.wrapping_add(match b {
            Base::Sec(s) => self.os[s].vma,
            _ => 0,
        });
        let new_base = match self.nearby_section(os, addr) {
            Some(near) => SymBase::Out(near),
            None => SymBase::Abs,
        };
        let new_value = match new_base {
            SymBase::Out(near) => addr.wrapping_sub(self.os[near].vma),
            _ => addr,
        };
        self.syms.get_mut(id).state = SymState::Defined {
            base: new_base,
            value: new_value,
        };
    }

    /// `_bfd_nearby_section`: the kept neighbour most likely in the same segment.
    fn nearby_section(&self, s: OsId, addr: u64) -> Option<OsId> {
        let prev = self.bfd_step(s, false);
        let next = self.bfd_step(s, true);
        let f = |x: OsId| self.os[x].flags;
        let sflags = self.os[s].flags & !SecFlags::EXCLUDE;
        let (Some(p), Some(n)) = (prev, next) else {
            return next.or(prev);
        };
        let (pf, nf) = (f(p), f(n));
        let seg = SecFlags::ALLOC | SecFlags::THREAD_LOCAL | SecFlags::LOAD;
        let best = if (pf.0 ^ nf.0) & seg.0 != 0 {
            if (nf.0 ^ sflags.0) & (SecFlags::ALLOC | SecFlags::THREAD_LOCAL).0 != 0
                || (pf.contains(SecFlags::LOAD) && !nf.contains(SecFlags::LOAD))
            {
                p
            } else {
                n
            }
        } else if (pf.0 ^ nf.0) & SecFlags::READONLY.0 != 0 {
            if (nf.0 ^ sflags.0) & SecFlags::READONLY.0 != 0 {
                p
            } else {
                n
            }
        } else if (pf.0 ^ nf.0) & SecFlags::CODE.0 != 0 {
            if (nf.0 ^ sflags.0) & SecFlags::CODE.0 != 0 {
                p
            } else {
                n
            }
        } else if addr < self.os[n].vma {
            p
        } else {
            n
        };
        Some(best)
    }

    // ----- results -------------------------------------------------------------------------------

    fn out_elf(&self, id: OsId) -> (u32, u64) {
        let st = &self.os[id];
        let preset = st.special.map(|(t, _)| t).or(st.first_input_type);
        let extra =
            st.special.map_or(0, |(_, f)| f) | if st.link_order { SHF_LINK_ORDER } else { 0 };
        let mut sh_flags = st.flags.elf_flags() | extra;
        // An output section named `.text` is never writable in ld 2.40's output, whatever its
        // inputs (measured on x86_64, i386, arm and arm64: a writable `.idmap.text`, or only
        // `.data`, in `.text` gives AX, resp. A); any other name keeps SHF_WRITE.
        if self.prog.sections[id].name == ".text" {
            sh_flags &= !elf::SHF_WRITE;
        }
        (st.flags.elf_type(preset), sh_flags)
    }

    /// The `nm` letter of a symbol in output section `base` (None: absolute).
    pub(crate) fn letter(&self, base: Option<OsId>, binding: Binding, kind: SymbolKind) -> char {
        let section = match base {
            None => NmSection::Absolute,
            Some(id) => {
                let (sh_type, sh_flags) = self.out_elf(id);
                NmSection::Section {
                    name: self.prog.sections[id].name.as_bytes(),
                    sh_type,
                    sh_flags,
                }
            }
        };
        type_letter(binding, kind, section)
    }

    fn build_layout(&mut self) -> Layout {
        let mut sections = Vec::new();
        for &id in &self.bfd_order {
            let st = &self.os[id];
            if st.excluded {
                continue;
            }
            let (sh_type, sh_flags) = self.out_elf(id);
            let os = &self.prog.sections[id];
            sections.push(OutputSection {
                name: os.name.to_string(),
                vma: st.vma,
                lma: st.lma,
                size: st.size,
                align: st.align,
                sh_type,
                sh_flags,
                span: (!os.orphan).then_some(os.span),
            });
        }
        let mut removed = Vec::new();
        for (id, os) in self.prog.sections.iter().enumerate() {
            if os.orphan {
                continue;
            }
            let st = &self.os[id];
            let reason = if os.is_discard() {
                RemovedReason::Discard
            } else if st.constraint_failed {
                RemovedReason::ConstraintFailed
            } else if !st.created {
                RemovedReason::NeverCreated
            } else if st.excluded {
                RemovedReason::Empty {
                    advanced_dot: !st.ignored,
                }
            } else {
                continue;
            };
            removed.push(RemovedSection {
                name: os.name.to_string(),
                reason,
                vma: st.vma,
                span: os.span,
            });
        }
        let symbols = self.linked_symbols();
        let entry_name = self
            .opts
            .entry
            .clone()
            .or_else(|| self.prog.entry.map(str::to_string));
        let entry = entry_name.and_then(|n| {
            symbols
                .iter()
                .find(|s| *s.name == *n && s.section != SymbolSection::Undefined)
                .map(|s| s.value)
        });
        Layout {
            sections,
            removed,
            symbols,
            entry,
            failed_asserts: std::mem::take(&mut self.failed_asserts),
            orphans: std::mem::take(&mut self.orphans),
            is_64: self.opts.is_64,
        }
    }

    fn linked_symbols(&self) -> Vec<LinkedSymbol> {
        let mut out = Vec::with_capacity(self.syms.all().len() + self.syms.locals.len());
        let names: Vec<Arc<str>> = self.prog.sections.iter().map(|o| o.name.into()).collect();
        let section = |sec: Option<OsId>| {
            sec.map_or(SymbolSection::Absolute, |id| {
                SymbolSection::Section(names[id].clone())
            })
        };
        // Letters depend on the output section, binding and type only: each is worked out
        // once, in a table by all three.
        let mut letters = vec![None; (names.len() + 1) * LETTER_SLOTS_PER_SECTION];
        let mut letter = |sec: Option<OsId>, binding: Binding, kind: SymbolKind| match letter_slot(
            sec, binding, kind,
        ) {
            Some(slot) => *letters[slot].get_or_insert_with(|| self.letter(sec, binding, kind)),
            None => self.letter(sec, binding, kind),
        };
        let shared = &self.shared_names;
        let (global_text, local_text) = (shared.globals.hold(), shared.locals.hold());
        let global_name = |id: usize, name: &str| -> SymbolName {
            shared
                .globals
                .get(&global_text, id)
                .unwrap_or_else(|| name.into())
        };
        for (id, s) in self.syms.all().iter().enumerate() {
            match &s.state {
                SymState::Defined { base, value } => {
                    let Some((b, off)) = self.resolve_sym_base(*base, *value) else {
                        continue;
                    };
                    let (sec, addr) = match b {
                        Base::Sec(id) => (Some(id), off.wrapping_add(self.os[id].vma)),
                        _ => (None, off),
                    };
                    if sec.is_some_and(|id| self.os[id].excluded) {
                        continue;
                    }
                    let global = !s.forced_local;
                    let binding = match (global, s.weak_def) {
                        (false, _) => Binding::Local,
                        (true, true) => Binding::Weak,
                        (true, false) => Binding::Global,
                    };
                    out.push(LinkedSymbol {
                        name: global_name(id, s.name),
                        value: self.mask(addr),
                        section: section(sec),
                        nm: letter(sec, binding, s.kind),
                        global,
                        from_script: s.script_def,
                        is_function: s.kind == SymbolKind::Func,
                    });
                }
                // A final link writes an undefined symbol (weak, or one left unresolved on
                // request) only when `--emit-relocs` keeps a relocation that names it (checked
                // against ld 2.40 on x86_64, i386, arm and arm64).
                SymState::Undefined { weak } if s.object_ref && self.opts.emit_relocs => {
                    out.push(LinkedSymbol {
                        name: global_name(id, s.name),
                        value: 0,
                        section: SymbolSection::Undefined,
                        nm: type_letter(
                            if *weak {
                                Binding::Weak
                            } else {
                                Binding::Global
                            },
                            s.kind,
                            NmSection::Undefined,
                        ),
                        global: true,
                        from_script: false,
                        is_function: s.kind == SymbolKind::Func,
                    });
                }
                _ => {}
            }
        }
        let mut merged_locals = self.merged_locals.iter().peekable();
        for (k, local) in self.syms.locals.iter().enumerate() {
            let merged = merged_locals
                .next_if(|m| m.local as usize == k)
                .map(|m| m.place);
            let file = local.file;
            // A file a layout swapped in may give its locals other values.
            let swapped = self.replaced_file == Some(file);
            let (value, kind) = if swapped {
                let sym = &self.files[file].symbols[local.index];
                (sym.value, sym.kind)
            } else {
                (local.value, local.kind)
            };
            let (sec, addr) = match local.section {
                None => (None, value),
                Some(pos) => {
                    let r = SectionRef { file, sec: pos };
                    let Some(Some(os)) = self.input_output[file][pos] else {
                        continue;
                    };
                    if self.os[os].excluded {
                        continue;
                    }
                    // Of the prepared files, only the locals `merged_locals` lists moved.
                    let (owner, off) = match merged {
                        _ if swapped => self.merged_location(r, value),
                        Some(place) => place,
                        None => (r, value),
                    };
                    let Some(Some(os)) = self.input_output[owner.file][owner.sec] else {
                        continue;
                    };
                    let addr = self.os[os].vma + self.input_offset[owner.file][owner.sec] + off;
                    (Some(os), addr)
                }
            };
            out.push(LinkedSymbol {
                name: shared
                    .locals
                    .get(&local_text, k)
                    .unwrap_or_else(|| self.files[file].symbols[local.index].name.into()),
                value: self.mask(addr),
                section: section(sec),
                nm: letter(sec, Binding::Local, kind),
                global: false,
                from_script: false,
                is_function: kind == SymbolKind::Func,
            });
        }
        if let Some(hooks) = &self.hooks {
            out.extend(hooks.local_symbols(self));
        }
        out
    }

    /// [`Engine::merged_locals`] for the prepared inputs.
    fn merged_locals(&self) -> Vec<MergedLocal> {
        if self.merged.is_none() {
            return Vec::new();
        }
        let locals = self.syms.locals.par_iter().enumerate();
        locals
            .filter_map(|(k, local)| {
                let r = SectionRef {
                    file: local.file,
                    sec: local.section?,
                };
                if self.merged_size(r) == MergedSize::AsRead {
                    return None;
                }
                Some(MergedLocal {
                    local: u32::try_from(k).ok()?,
                    place: self.merged_location(r, local.value),
                })
            })
            .collect()
    }

    fn mask(&self, v: u64) -> u64 {
        if self.opts.is_64 { v } else { v & 0xffff_ffff }
    }
}

/// What merging made of an input section's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MergedSize {
    /// Not merged: the section's own size.
    AsRead,
    /// Its size after merging.
    Merged(u64),
    /// Its entries live in another section: it takes no room.
    Excluded,
}

/// `bfd_merge_sections`: the merge of the `SHF_MERGE` inputs placed in an output section, in
/// input order (`input_output` says where each went, `file_base` numbers them); None when
/// there are none or ld's merge would give up on them.
fn merged_sections<'a>(
    files: &[InputFile<'a>],
    input_output: &[Vec<InputOutput>],
    file_base: &[usize],
) -> Option<Merged<'a>> {
    let mut inputs = Vec::new();
    for (f, file) in files.iter().enumerate() {
        for (i, sec) in file.sections.iter().enumerate() {
            if sec.sh_flags & elf::SHF_MERGE == 0 {
                continue;
            }
            let Some(Some(os)) = input_output[f][i] else {
                continue;
            };
            inputs.push(MergeInput {
                id: file_base[f] + i,
                group: os,
                data: sec.data,
                entsize: sec.entsize,
                align: sec.align,
                strings: sec.sh_flags & elf::SHF_STRINGS != 0,
                has_relocations: sec.has_relocs(),
            });
        }
    }
    if inputs.is_empty() {
        return None;
    }
    merge(&inputs).ok()
}

/// Bindings times kinds [`letter_slot`] has a place for.
const LETTER_SLOTS_PER_SECTION: usize = 3 * 8;

/// Where a linked symbol's nm letter is kept while listing a layout's symbols: by output
/// section (absolute first), binding and kind; None for a binding or kind listed too rarely
/// to keep (the letter is then worked out each time).
fn letter_slot(sec: Option<OsId>, binding: Binding, kind: SymbolKind) -> Option<usize> {
    let binding = match binding {
        Binding::Local => 0,
        Binding::Global => 1,
        Binding::Weak => 2,
        Binding::Unique | Binding::Other(_) => return None,
    };
    let kind = match kind {
        SymbolKind::NoType => 0,
        SymbolKind::Object => 1,
        SymbolKind::Func => 2,
        SymbolKind::Section => 3,
        SymbolKind::File => 4,
        SymbolKind::Common => 5,
        SymbolKind::Tls => 6,
        SymbolKind::Ifunc => 7,
        SymbolKind::Other(_) => return None,
    };
    let section = sec.map_or(0, |id| id + 1);
    Some(section * LETTER_SLOTS_PER_SECTION + binding * 8 + kind)
}

fn align_up(value: u64, align: u64) -> u64 {
    if align <= 1 {
        value
    } else {
        value.wrapping_add(align - 1) & !(align - 1)
    }
}
