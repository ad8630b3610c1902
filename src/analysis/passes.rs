//! link-vmlinux.sh's kallsyms passes, replayed in simulation for Linux 6.12 and 6.1.
//!
//! Owns the procedure of each version (which object each pass links, when the extra pass runs,
//! the final `cmp` of System.map) on top of the layout simulator and the kallsyms generator.
//! The kallsyms object of each pass is synthesised from the tables' layout; nothing is run.

use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;
use thiserror::Error;

use super::system_map;
use crate::hash::FastMap;
use crate::input::nm::NmSymbol;
use crate::input::select::LinkSet;
use crate::input::{Binding, InputSymbol, SymbolKind, SymbolSection, Visibility};
use crate::kallsyms::{
    self, CompressCache, KallsymsError, Options, PtrWidth, RodataLayout, SymbolMap, Version,
    parse_symbol_map,
};
use crate::layout::ir::Program;
use crate::layout::map::file_names_equivalent;
use crate::layout::model::{InputFile, InputSection, Relocs, elf, from_link_set};
use crate::layout::{Layout, LayoutOptions, PreparedLink, prepare_inputs};
use crate::report::{Finding, Place};
use crate::script::ast::{Script, Span};
use crate::simulate::{LinkSession, SimulateError, nm_symbols_from, nm_width};
use crate::sync::locked;
use crate::target::{ElfClass, Target};

/// Why the passes could not be simulated.
#[derive(Debug, Error, miette::Diagnostic)]
pub enum PassError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Simulate(#[from] SimulateError),
    #[error("kallsyms failed on the pass {pass} symbol map: {source}")]
    Kallsyms { pass: u32, source: KallsymsError },
}

/// What one link of the procedure produced.
#[derive(Debug, Clone, Serialize)]
pub struct PassOutcome {
    /// The file link-vmlinux.sh writes (`.tmp_vmlinux1`, …, `vmlinux`).
    pub link: String,
    /// The kallsyms object linked in, if any.
    pub kallsyms_object: Option<String>,
    /// Lines of the mksysmap output of this link.
    pub map_lines: usize,
    /// `.rodata` of the kallsyms object generated from this link's map (None for `vmlinux`).
    pub tables: Option<TablesSummary>,
    /// Map lines that appeared or disappeared compared with the previous link's map.
    pub joined: Vec<String>,
    pub left: Vec<String>,
}

/// The size facts of one kallsyms object that link-vmlinux.sh compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TablesSummary {
    pub rodata_size: u64,
    /// `scripts/file-size.sh` of the assembled object up to the end of `.rodata` and its
    /// alignment: the rest of the file is the same in every pass, so this decides the
    /// `size1`/`size2` compare.
    pub object_size_through_rodata: u64,
    /// Each table's label and offset (what `nm` of the object shows, 6.12's extra check).
    pub offsets: Vec<(String, u64)>,
}

/// How the procedure ends.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub enum Verdict {
    /// System.map of vmlinux equals the map kallsyms was generated from.
    Converges { links: usize },
    /// link-vmlinux.sh prints "Inconsistent kallsyms data" and fails.
    Inconsistent { reason: String },
}

/// The whole simulated procedure.
#[derive(Debug, Clone, Serialize)]
pub struct PassReport {
    pub version: String,
    pub passes: Vec<PassOutcome>,
    pub verdict: Verdict,
    /// The predicted System.map (mksysmap of the final vmlinux), shared with the simulator's
    /// cache of links (a copy would be another map-sized allocation at the peak).
    #[serde(skip)]
    pub system_map: Arc<Vec<u8>>,
    /// End address of the final image's last allocated section.
    pub image_end: u64,
}

impl PassReport {
    /// The verdict as one finding about the script: a warning when link-vmlinux.sh will fail,
    /// a note with the table sizes of each pass when it converges.
    pub fn to_finding(&self) -> Finding {
        let sizes: Vec<String> = self
            .passes
            .iter()
            .filter_map(|p| {
                p.tables
                    .as_ref()
                    .map(|t| format!("{}: {:#x}", p.link, t.rodata_size))
            })
            .collect();
        let (breaks_build, message) = match &self.verdict {
            Verdict::Converges { links } => (
                false,
                format!(
                    "kallsyms passes converge after {links} links (tables {})",
                    sizes.join(", ")
                ),
            ),
            Verdict::Inconsistent { reason } => (
                true,
                format!(
                    "link-vmlinux.sh will fail with \"Inconsistent kallsyms data\": {reason} \
                     (tables {})",
                    sizes.join(", ")
                ),
            ),
        };
        Finding {
            code: "passes".into(),
            breaks_build,
            message,
            help: None,
            places: vec![Place {
                span: Span::new(0, 0),
                text: "this script".into(),
            }],
        }
    }
}

/// Options of the procedure: the kallsyms flags Kbuild passes, and KALLSYMS_EXTRA_PASS.
#[derive(Debug, Clone, Copy)]
pub struct PassOptions {
    pub kallsyms: Options,
    pub extra_pass: bool,
}

/// The kallsyms object of a link, if any: its tables layout and its file name.
type LinkedObject = Option<(RodataLayout, String)>;

#[derive(Clone)]
struct Step {
    /// Shared: the cache and every caller hold the same map.
    map: Arc<Vec<u8>>,
    image_end: u64,
    /// The tables kallsyms builds from `map`, when they were built without an error (an error
    /// is reported by building them again from the text, for the pass that reads it).
    tables: Option<RodataLayout>,
}

/// Replays the version's procedure for the link `session` describes (its command line
/// without any kallsyms object).
pub fn simulate(session: &LinkSession, opts: &PassOptions) -> Result<PassReport, PassError> {
    with_simulator(session, opts, |sim| sim.run())
}

/// Loads the link once and hands a simulator for it to `f`.
pub(super) fn with_simulator<R>(
    session: &LinkSession,
    opts: &PassOptions,
    f: impl FnOnce(&Simulator<'_, '_>) -> Result<R, PassError>,
) -> Result<R, PassError> {
    let script = session.script()?;
    let undefined: Vec<&str> = session
        .request
        .undefined
        .iter()
        .map(String::as_str)
        .collect();
    let set = LinkSet::resolve(
        session.store(),
        session.items(),
        Some(session.target),
        &undefined,
    )
    .map_err(SimulateError::from)?;
    let base = from_link_set(&set, &session.base);
    let ptr = ptr_width(session.target);
    let options = session.options()?;
    let with_object = OnceLock::new();
    let sim = Simulator {
        session,
        script: &script,
        program: Program::build(&script),
        base,
        ptr,
        opts,
        layout_options: &options,
        with_object: &with_object,
        prepared: OnceLock::new(),
        links: Mutex::new(Vec::new()),
        probes: Mutex::new(Vec::new()),
        nm_order: Mutex::new(Vec::new()),
        compress: CompressCache::default(),
    };
    f(&sim)
}

/// Links whose System.map is kept for reuse: the final link, which links the last pass's
/// tables again, and the margin search's template (the final link's tables) look back only
/// this far.
const LINKS_KEPT: usize = 2;

/// One loaded link that can be laid out with kallsyms tables of any size.
pub(super) struct Simulator<'s, 'a> {
    session: &'s LinkSession,
    script: &'s Script<'s>,
    /// The script as the layout sees it, to tell which kallsyms object names it tells apart.
    program: Program<'s, 's>,
    base: Vec<InputFile<'a>>,
    ptr: PtrWidth,
    opts: &'s PassOptions,
    /// The layout options the command line implies.
    layout_options: &'s LayoutOptions,
    /// The inputs plus the first kallsyms object linked, and that link prepared up to ld's
    /// sizing passes: every later link differs from it only in the object's tables.
    with_object: &'s OnceLock<Vec<InputFile<'a>>>,
    prepared: OnceLock<PreparedLink<'s, 's, 's>>,
    /// The latest links, by the kallsyms object they linked: a link is a pure function of the
    /// object's tables layout (and of its name, where the script's file patterns can see it).
    links: Mutex<Vec<(LinkedObject, Step)>>,
    /// The tables of each margin probe, by the `.rodata` size it laid out.
    probes: Mutex<Vec<(u64, RodataLayout)>>,
    /// The nm order of the latest link, where the next link's sort starts.
    nm_order: Mutex<Vec<u32>>,
    compress: CompressCache,
}

impl Simulator<'_, '_> {
    fn version(&self) -> Version {
        self.opts.kallsyms.version
    }

    fn link(&self, tables: Option<(&RodataLayout, &str)>) -> Result<Step, PassError> {
        let same_object = |done: &LinkedObject| match (done, tables) {
            (None, None) => true,
            (Some((done, done_name)), Some((layout, name))) => {
                done == layout && file_names_equivalent(&self.program, done_name, name)
            }
            _ => false,
        };
        if let Some((_, step)) = locked(&self.links).iter().find(|(k, _)| same_object(k)) {
            return Ok(step.clone());
        }
        let step = self.link_uncached(tables)?;
        let key = tables.map(|(layout, name)| (layout.clone(), name.to_string()));
        let mut done = locked(&self.links);
        done.insert(0, (key, step.clone()));
        done.truncate(LINKS_KEPT);
        Ok(step)
    }

    fn link_uncached(&self, tables: Option<(&RodataLayout, &str)>) -> Result<Step, PassError> {
        let layout = match tables {
            Some((layout, name)) => {
                self.link_with_object(kallsyms_object(layout, name, self.session.target))?
            }
            None => self.session.layout_files(self.script, self.base.clone())?,
        };
        let symbols = self.nm_symbols(&layout);
        let (width, version) = (nm_width(&layout), self.version());
        // The map's text on another thread while the tables are built from the symbols.
        let mut map = Vec::new();
        let direct = rayon::in_place_scope(|scope| {
            scope.spawn(|_| map = system_map::print(&symbols, width, version));
            system_map::read_directly(&symbols, version).map(|read| self.build(&read))
        });
        let tables = direct.unwrap_or_else(|| {
            let read = parse_symbol_map(&map, version).ok()?;
            self.build(&read)
        });
        Ok(Step {
            map: Arc::new(map),
            image_end: image_end(&layout),
            tables,
        })
    }

    /// What nm lists for `layout`, sorted from the order of the previous link's list.
    fn nm_symbols<'l>(&self, layout: &'l Layout) -> Vec<NmSymbol<'l>> {
        let e_machine = self.session.target.e_machine;
        // Margin probes list side by side: each sorts from its own copy of the order.
        let mut order = locked(&self.nm_order).clone();
        let symbols = nm_symbols_from(layout, e_machine, &mut order);
        *locked(&self.nm_order) = order;
        symbols
    }

    /// The tables of a map as kallsyms read it; None on an error, which the caller reports by
    /// reading the map's text for the pass concerned.
    fn build(&self, read: &SymbolMap<'_>) -> Option<RodataLayout> {
        kallsyms::rodata_layout_cached(read, &self.opts.kallsyms, self.ptr, &self.compress).ok()
    }

    /// The link of the inputs plus `object`: the first one prepares the link, later ones
    /// reuse it when their object has the first one's shape.
    fn link_with_object(&self, object: InputFile<'static>) -> Result<Layout, PassError> {
        let failure = |e| PassError::from(self.session.layout_failure(e));
        if self.with_object.get().is_some() {
            let relaid = self
                .prepared
                .get()
                .and_then(|prepared| prepared.layout_with(self.base.len(), object.clone()));
            if let Some(done) = relaid {
                return done.map_err(failure);
            }
            let mut files = self.base.clone();
            files.push(object);
            return Ok(self.session.layout_files(self.script, files)?);
        }
        let files = self.with_object.get_or_init(|| {
            let mut files = self.base.clone();
            files.push(object);
            prepare_inputs(&mut files, self.layout_options);
            files
        });
        let prepared =
            PreparedLink::new(self.script, files, self.layout_options).map_err(failure)?;
        let layout = prepared.layout().map_err(failure)?;
        // Only this function sets the cell, once, right after `with_object`.
        let _ = self.prepared.set(prepared);
        Ok(layout)
    }

    /// The tables kallsyms builds from the final link's System.map when the kallsyms object's
    /// `.rodata` is `size` bytes with `template`'s labels (only the size moves anything else).
    /// A margin probe: no System.map is printed unless reading it needs the text.
    pub(super) fn tables_with_size(
        &self,
        template: &RodataLayout,
        size: u64,
    ) -> Result<RodataLayout, PassError> {
        if let Some((_, tables)) = locked(&self.probes).iter().find(|(s, _)| *s == size) {
            return Ok(tables.clone());
        }
        let blob = RodataLayout {
            tables: template.tables.clone(),
            size,
            align: template.align,
        };
        let layout = self.link_with_object(kallsyms_object(
            &blob,
            "vmlinux.kallsyms.o",
            self.session.target,
        ))?;
        let symbols = self.nm_symbols(&layout);
        let direct =
            system_map::read_directly(&symbols, self.version()).and_then(|read| self.build(&read));
        let tables = match direct {
            Some(tables) => tables,
            None => {
                let map = system_map::print(&symbols, nm_width(&layout), self.version());
                self.tables(&map, 0)?
            }
        };
        locked(&self.probes).push((size, tables.clone()));
        Ok(tables)
    }

    /// The tables kallsyms builds from the System.map of `step`, read in pass `pass`.
    fn tables_of(&self, step: &Step, pass: u32) -> Result<RodataLayout, PassError> {
        match &step.tables {
            Some(tables) => Ok(tables.clone()),
            None => self.tables(&step.map, pass),
        }
    }

    /// The tables kallsyms builds from `map`, reusing those of a kept link with that map.
    pub(super) fn tables_of_map(&self, map: &[u8], pass: u32) -> Result<RodataLayout, PassError> {
        let kept = locked(&self.links)
            .iter()
            .find(|(_, step)| step.map.as_slice() == map)
            .and_then(|(_, step)| step.tables.clone());
        match kept {
            Some(tables) => Ok(tables),
            None => self.tables(map, pass),
        }
    }

    /// The tables kallsyms builds from `map`.
    pub(super) fn tables(&self, map: &[u8], pass: u32) -> Result<RodataLayout, PassError> {
        let err = |source| PassError::Kallsyms { pass, source };
        let parsed = kallsyms::parse_symbol_map(map, self.version()).map_err(err)?;
        kallsyms::rodata_layout_cached(&parsed, &self.opts.kallsyms, self.ptr, &self.compress)
            .map_err(err)
    }

    fn summary(&self, t: &RodataLayout) -> TablesSummary {
        TablesSummary {
            rodata_size: t.size,
            object_size_through_rodata: self.object_size(t.size),
            offsets: t
                .tables
                .iter()
                .map(|p| (p.kind.label().to_string(), p.offset))
                .collect(),
        }
    }

    /// `file-size.sh` of the assembled kallsyms object: the ELF header, `.rodata`, then sections
    /// of fixed size whose alignment can absorb small `.rodata` changes (ARM's attributes
    /// section is unaligned, so its symbol table realigns to 4).
    fn object_size(&self, rodata: u64) -> u64 {
        let (header, align, unaligned_tail) = match self.ptr {
            PtrWidth::Bits64 => (0x40, 8, 0),
            PtrWidth::Bits32 => (
                0x34,
                4,
                if self.session.target.e_machine == object::elf::EM_ARM {
                    0x1f
                } else {
                    0
                },
            ),
        };
        (header + rodata + unaligned_tail).div_ceil(align) * align
    }

    fn outcome(
        &self,
        link: &str,
        object: Option<&str>,
        step: &Step,
        prev: Option<&Step>,
        tables: Option<&RodataLayout>,
    ) -> PassOutcome {
        let (joined, left) =
            prev.map_or((Vec::new(), Vec::new()), |p| map_delta(&p.map, &step.map));
        PassOutcome {
            link: link.to_string(),
            kallsyms_object: object.map(str::to_string),
            map_lines: memchr::memchr_iter(b'\n', &step.map).count(),
            tables: tables.map(|t| self.summary(t)),
            joined,
            left,
        }
    }

    fn finish(
        &self,
        mut passes: Vec<PassOutcome>,
        last: Step,
        last_tables: RodataLayout,
        last_object: String,
    ) -> Result<PassReport, PassError> {
        let final_link = self.link(Some((&last_tables, &last_object)))?;
        passes.push(self.outcome(
            "vmlinux",
            Some(&last_object),
            &final_link,
            Some(&last),
            None,
        ));
        let verdict = if final_link.map == last.map {
            Verdict::Converges {
                links: passes.len(),
            }
        } else {
            let previous = &passes[passes.len() - 2];
            let sizes = passes
                .iter()
                .filter_map(|p| p.tables.as_ref().map(|t| format!("{:#x}", t.rodata_size)))
                .collect::<Vec<_>>()
                .join(" -> ");
            let moved = final_link
                .map
                .split(|&b| b == b'\n')
                .zip(last.map.split(|&b| b == b'\n'))
                .filter(|(a, b)| a != b)
                .count();
            Verdict::Inconsistent {
                reason: format!(
                    "vmlinux links {last_object}, whose tables differ from those {} linked \
                     (table sizes {sizes}), so {moved} System.map lines differ; first: {}",
                    previous.link,
                    first_difference(&last.map, &final_link.map)
                ),
            }
        };
        Ok(PassReport {
            version: self.version().as_str().to_string(),
            passes,
            verdict,
            system_map: final_link.map,
            image_end: final_link.image_end,
        })
    }

    /// The version's procedure.
    pub(super) fn run(&self) -> Result<PassReport, PassError> {
        match self.version() {
            Version::V6_12 => self.run_612(),
            Version::V6_1 => self.run_61(),
        }
    }

    fn run_612(&self) -> Result<PassReport, PassError> {
        let t0 = self.tables(b"", 0)?;
        let o0 = ".tmp_vmlinux0.kallsyms.o";
        let s1 = self.link(Some((&t0, o0)))?;
        let t1 = self.tables_of(&s1, 1)?;
        let o1 = ".tmp_vmlinux1.kallsyms.o";
        let mut passes = vec![self.outcome(".tmp_vmlinux1", Some(o0), &s1, None, Some(&t1))];
        let s2 = self.link(Some((&t1, o1)))?;
        let t2 = self.tables_of(&s2, 2)?;
        let o2 = ".tmp_vmlinux2.kallsyms.o";
        passes.push(self.outcome(".tmp_vmlinux2", Some(o1), &s2, Some(&s1), Some(&t2)));
        let (size1, size2) = (self.object_size(t1.size), self.object_size(t2.size));
        let nm_changed = offsets(&t1) != offsets(&t2);
        if size1 != size2 || nm_changed || self.opts.extra_pass {
            let s3 = self.link(Some((&t2, o2)))?;
            let t3 = self.tables_of(&s3, 3)?;
            passes.push(self.outcome(".tmp_vmlinux3", Some(o2), &s3, Some(&s2), Some(&t3)));
            return self.finish(passes, s3, t3, ".tmp_vmlinux3.kallsyms.o".into());
        }
        self.finish(passes, s2, t2, o2.into())
    }

    fn run_61(&self) -> Result<PassReport, PassError> {
        let s1 = self.link(None)?;
        let t1 = self.tables_of(&s1, 1)?;
        let o1 = ".tmp_vmlinux.kallsyms1.o";
        let mut passes = vec![self.outcome(".tmp_vmlinux.kallsyms1", None, &s1, None, Some(&t1))];
        let s2 = self.link(Some((&t1, o1)))?;
        let t2 = self.tables_of(&s2, 2)?;
        let o2 = ".tmp_vmlinux.kallsyms2.o";
        passes.push(self.outcome(
            ".tmp_vmlinux.kallsyms2",
            Some(o1),
            &s2,
            Some(&s1),
            Some(&t2),
        ));
        if self.object_size(t1.size) != self.object_size(t2.size) || self.opts.extra_pass {
            let s3 = self.link(Some((&t2, o2)))?;
            let t3 = self.tables_of(&s3, 3)?;
            passes.push(self.outcome(
                ".tmp_vmlinux.kallsyms3",
                Some(o2),
                &s3,
                Some(&s2),
                Some(&t3),
            ));
            return self.finish(passes, s3, t3, ".tmp_vmlinux.kallsyms3.o".into());
        }
        self.finish(passes, s2, t2, o2.into())
    }
}

/// The end of the highest allocated output section.
fn image_end(layout: &Layout) -> u64 {
    layout
        .sections
        .iter()
        .filter(|s| s.sh_flags & elf::SHF_ALLOC != 0)
        .map(|s| s.vma + s.size)
        .max()
        .unwrap_or(0)
}

fn offsets(t: &RodataLayout) -> Vec<u64> {
    t.tables.iter().map(|p| p.offset).collect()
}

/// The kallsyms object `gcc -c` makes from the tables for `target`: empty text/data/bss, the
/// tables in `.rodata`, one global label per table, and the pointer-sized reference to `_text`
/// (`kallsyms_relative_base`), whose relocation a shared aarch64 link turns into a dynamic one.
pub fn kallsyms_object(t: &RodataLayout, name: &str, target: &Target) -> InputFile<'static> {
    let ptr = ptr_width(target);
    let class64 = ptr == PtrWidth::Bits64;
    let section =
        |index: usize, name: &'static str, sh_type: u32, sh_flags: u64, size: u64, align: u64| {
            InputSection {
                name,
                index,
                size,
                align,
                sh_type,
                sh_flags,
                entsize: 0,
                data: &[],
                duplicate: false,
                linker_created: false,
                link: 0,
                relocs: Relocs {
                    data: &[],
                    rela: class64,
                    class64,
                    big_endian: false,
                },
            }
        };
    let mut rodata = section(
        4,
        ".rodata",
        elf::SHT_PROGBITS,
        elf::SHF_ALLOC,
        t.size,
        ptr.bytes(),
    );
    rodata.relocs.data = text_reference(target.e_machine);
    let sections = vec![
        section(
            1,
            ".text",
            elf::SHT_PROGBITS,
            elf::SHF_ALLOC | elf::SHF_EXECINSTR,
            0,
            1,
        ),
        section(
            2,
            ".data",
            elf::SHT_PROGBITS,
            elf::SHF_ALLOC | elf::SHF_WRITE,
            0,
            1,
        ),
        section(
            3,
            ".bss",
            elf::SHT_NOBITS,
            elf::SHF_ALLOC | elf::SHF_WRITE,
            0,
            1,
        ),
        rodata,
    ];
    let symbol =
        |index: usize, name: &'static str, section: SymbolSection, value: u64| InputSymbol {
            index,
            name,
            binding: if index == 0 {
                Binding::Local
            } else {
                Binding::Global
            },
            visibility: Visibility::Default,
            kind: SymbolKind::NoType,
            section,
            value,
            size: 0,
        };
    let mut symbols = vec![
        symbol(0, "", SymbolSection::Undefined, 0),
        symbol(TEXT_SYMBOL, "_text", SymbolSection::Undefined, 0),
    ];
    for p in &t.tables {
        symbols.push(symbol(
            symbols.len(),
            p.kind.label(),
            SymbolSection::Section(4),
            p.offset,
        ));
    }
    let mut reloc_referenced = vec![false; symbols.len()];
    reloc_referenced[TEXT_SYMBOL] = true;
    InputFile {
        name: name.to_string(),
        archive: None,
        sections: sections.into(),
        symbols: symbols.into(),
        reloc_referenced,
        bfd_id: 0,
    }
}

/// The width of the kernel's `PTR` on `target`.
fn ptr_width(target: &Target) -> PtrWidth {
    match target.class {
        ElfClass::Elf64 => PtrWidth::Bits64,
        ElfClass::Elf32 => PtrWidth::Bits32,
    }
}

/// The kallsyms object's symbol index of `_text`.
const TEXT_SYMBOL: usize = 1;

/// The relocation entry of `.quad _text` / `.long _text` for `machine` (its offset, which no
/// layout reads, left 0): RELA for the 64-bit targets, REL for the 32-bit ones.
fn text_reference(machine: u16) -> &'static [u8] {
    const fn rela64(r_type: u32) -> [u8; 24] {
        let info = ((TEXT_SYMBOL as u64) << 32 | r_type as u64).to_le_bytes();
        let mut entry = [0u8; 24];
        let mut i = 0;
        while i < 8 {
            entry[8 + i] = info[i];
            i += 1;
        }
        entry
    }
    const fn rel32(r_type: u32) -> [u8; 8] {
        let info = ((TEXT_SYMBOL as u32) << 8 | r_type).to_le_bytes();
        [0, 0, 0, 0, info[0], info[1], info[2], info[3]]
    }
    static AARCH64: [u8; 24] = rela64(object::elf::R_AARCH64_ABS64);
    static X86_64: [u8; 24] = rela64(object::elf::R_X86_64_64);
    static ARM: [u8; 8] = rel32(object::elf::R_ARM_ABS32);
    static I386: [u8; 8] = rel32(object::elf::R_386_32);
    match machine {
        object::elf::EM_AARCH64 => &AARCH64,
        object::elf::EM_X86_64 => &X86_64,
        object::elf::EM_ARM => &ARM,
        _ => &I386,
    }
}

/// Lines (type and name, address dropped) only in `new` and only in `old`.
fn map_delta(old: &[u8], new: &[u8]) -> (Vec<String>, Vec<String>) {
    // Usually only addresses moved, and where lines did change they change in one stretch
    // (labels that swapped places): only what lies between the common head and tail is counted.
    let (old, new) = changed_stretch(old, new);
    let mut counts: FastMap<&[u8], i64> = FastMap::default();
    for k in map_keys(old) {
        *counts.entry(k).or_default() += 1;
    }
    for k in map_keys(new) {
        *counts.entry(k).or_default() -= 1;
    }
    let text = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
    let mut joined: Vec<String> = counts
        .iter()
        .filter(|(_, c)| **c < 0)
        .map(|(k, _)| text(k))
        .collect();
    let mut left: Vec<String> = counts
        .iter()
        .filter(|(_, c)| **c > 0)
        .map(|(k, _)| text(k))
        .collect();
    joined.sort();
    left.sort();
    (joined, left)
}

/// What lies between the longest common head and the longest common tail of two maps, line
/// by line with the address dropped: the rest holds the same keys in the same order.
fn changed_stretch<'m>(old: &'m [u8], new: &'m [u8]) -> (&'m [u8], &'m [u8]) {
    let line_end = |map: &[u8], from: usize| {
        memchr::memchr(b'\n', &map[from..]).map_or(map.len(), |i| from + i)
    };
    // Lines before the first differing byte are equal; only the rest is compared by key.
    let same = common_prefix(old, new);
    let start = memchr::memrchr(b'\n', &old[..same]).map_or(0, |i| i + 1);
    let (mut o, mut n) = (start, start);
    while o < old.len() && n < new.len() {
        let (oe, ne) = (line_end(old, o), line_end(new, n));
        if line_key(&old[o..oe]) != line_key(&new[n..ne]) {
            break;
        }
        o = (oe + 1).min(old.len());
        n = (ne + 1).min(new.len());
    }
    // Backwards: a line runs from just after the newline before its end (or the head's end).
    let line_start = |map: &[u8], floor: usize, end: usize| {
        memchr::memrchr(b'\n', &map[floor..end]).map_or(floor, |i| floor + i + 1)
    };
    let (mut oe, mut ne) = (old.len(), new.len());
    while oe > o && ne > n {
        let (os, ns) = (line_start(old, o, oe), line_start(new, n, ne));
        if line_key(&old[os..oe]) != line_key(&new[ns..ne]) {
            break;
        }
        // Step over the newline before the line too, unless the line began at the head's end.
        oe = if os > o { os - 1 } else { os };
        ne = if ns > n { ns - 1 } else { ns };
    }
    (&old[o..oe], &new[n..ne])
}

/// Length of the longest common prefix of `a` and `b`, compared a block at a time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 64;
    let blocks = a
        .chunks_exact(BLOCK)
        .zip(b.chunks_exact(BLOCK))
        .take_while(|(x, y)| x == y)
        .count();
    let from = blocks * BLOCK;
    from + a[from..]
        .iter()
        .zip(&b[from..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// A line's type and name: what follows its first space.
fn line_key(line: &[u8]) -> &[u8] {
    memchr::memchr(b' ', line).map_or(line, |space| &line[space + 1..])
}

/// A map's lines as type and name (the address and its space dropped).
fn map_keys(map: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', map)
        .chain((!map.ends_with(b"\n")).then_some(map.len()))
        .map(move |end| {
            let line = &map[start..end];
            start = end + 1;
            line
        })
        .filter(|l| !l.is_empty())
        .map(line_key)
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    let la = a.split(|&c| c == b'\n');
    let lb = b.split(|&c| c == b'\n');
    for (x, y) in la.zip(lb) {
        if x != y {
            return format!(
                "`{}` vs `{}`",
                String::from_utf8_lossy(x),
                String::from_utf8_lossy(y)
            );
        }
    }
    "one map is a prefix of the other".to_string()
}

#[cfg(test)]
mod tests {
    use super::{map_delta, map_keys};

    #[test]
    fn map_keys_drop_addresses_and_empty_lines() {
        let keys: Vec<&[u8]> = map_keys(b"0010 T a\n\n0020 t b").collect();
        assert_eq!(keys, [&b"T a"[..], b"t b"]);
        let keys: Vec<&[u8]> = map_keys(b"0010 T a\n").collect();
        assert_eq!(keys, [&b"T a"[..]]);
        assert_eq!(map_keys(b"").count(), 0);
    }

    #[test]
    fn map_delta_counts_only_what_changed() {
        let old = b"0010 T _stext\n0020 t b\n0030 t c\n0040 T _etext\n";
        let new = b"0010 T _stext\n0028 t c\n0030 t d\n0048 T _etext\n";
        let (joined, left) = map_delta(old, new);
        assert_eq!(joined, ["t d"]);
        assert_eq!(left, ["t b"]);
        assert_eq!(map_delta(old, old), (Vec::new(), Vec::new()));
    }

    /// Keys only in one of two maps, counted over the whole maps.
    fn naive_delta(old: &[u8], new: &[u8]) -> (Vec<String>, Vec<String>) {
        let mut counts: std::collections::BTreeMap<&[u8], i64> = Default::default();
        map_keys(old).for_each(|k| *counts.entry(k).or_default() += 1);
        map_keys(new).for_each(|k| *counts.entry(k).or_default() -= 1);
        let side = |keep: fn(i64) -> bool| {
            counts
                .iter()
                .filter(|(_, c)| keep(**c))
                .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
                .collect()
        };
        (side(|c| c < 0), side(|c| c > 0))
    }

    #[test]
    fn map_delta_matches_counting_whole_maps() {
        let mut random = crate::test_rng::xorshift(0x2545_f491_4f6c_dd1d);
        let mut next = move |n: u64| random() % n;
        let map = |next: &mut dyn FnMut(u64) -> u64| {
            let mut text = Vec::new();
            for _ in 0..next(12) {
                match next(10) {
                    0 => text.push(b'\n'),
                    k => text.extend(format!("{:04x} t s{}\n", next(4), k % 5).bytes()),
                }
            }
            if next(3) == 0 {
                text.pop();
            }
            text
        };
        for _ in 0..5000 {
            let old = map(&mut next);
            let new = match next(3) {
                0 => old.clone(),
                1 => map(&mut next),
                _ => {
                    // The same lines at other addresses, one of them replaced.
                    let mut lines: Vec<Vec<u8>> =
                        old.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
                    for line in lines.iter_mut().filter(|l| l.len() > 4) {
                        line[0] = b"0123"[next(4) as usize];
                    }
                    let at = next(lines.len() as u64) as usize;
                    lines[at] = format!("0000 t s{}", next(5)).into_bytes();
                    lines.join(&b'\n')
                }
            };
            assert_eq!(
                map_delta(&old, &new),
                naive_delta(&old, &new),
                "{:?} -> {:?}",
                String::from_utf8_lossy(&old),
                String::from_utf8_lossy(&new)
            );
        }
    }
}
