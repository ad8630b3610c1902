//! aarch64's linker-made sections and erratum scan: what ld 2.40's aarch64 backend adds to a
//! link. A static link gets a global offset table when code addresses symbols through it. A
//! `-shared` link (how arm64's kbuild links a RELOCATABLE kernel: `-shared -Bsymbolic -z notext
//! --no-apply-dynamic-relocs`) always gets `.got`/`.got.plt`, plus one 24-byte dynamic
//! relocation per absolute address word, which the kernel script gathers into `.rela.dyn`
//! between the init sections and `.data`: its size moves everything after it.
//! `--fix-cortex-a53-843419` makes ld look for erratum 843419 sequences and move one
//! instruction of each into a veneer; every input section with sites is followed by a stub
//! section of whole 4 KiB pages, which moves everything after it.

use std::sync::Arc;

use super::LayoutError;
use super::map::SectionRef;
use super::model::{self, InputFile, InputSection, elf};
use super::place::{Engine, TargetHooks};
use super::symbols::{LinkedSymbol, SymbolSection};
use crate::hash::{FastMap, FastSet};

/// aarch64 options of the command line that change layout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Aarch64Options {
    /// `-shared`: a position-independent image with dynamic relocations.
    pub shared: bool,
    /// `--fix-cortex-a53-843419`.
    pub fix_erratum_843419: bool,
}

const R_AARCH64_ABS64: u32 = 257;
/// `R_AARCH64_GOT_LD_PREL19` … `R_AARCH64_LD64_GOTPAGE_LO15`: the relocations that address a
/// symbol through its GOT entry.
const GOT_RELOCS: std::ops::RangeInclusive<u32> = 309..=313;
const GOT_ENTRY: u64 = 8;
/// `sizeof (Elf64_External_Rela)`.
const RELA_ENTRY: u64 = 24;
/// `.got.plt`'s reserved entries.
const GOT_PLT_SIZE: u64 = 3 * GOT_ENTRY;

const GOT_INDEX: usize = usize::MAX - 2;
const GOT_PLT_INDEX: usize = usize::MAX - 3;
/// Sections of the dynamic-section file (`.dynsym` … and the `.rela*` ones) count down from here.
const DYNAMIC_INDEX: usize = usize::MAX - 4;

/// The sections ld makes for a shared link that only a dynamic loader reads; the kernel script
/// discards them, and their sizes (every exported symbol) are not modelled.
const DYNAMIC_ONLY: [&str; 5] = [".dynsym", ".dynstr", ".hash", ".gnu.hash", ".dynamic"];

/// What ld adds to the inputs before mapping (called from [`super::prepare_inputs`]).
pub(super) fn add_linker_sections(files: &mut [InputFile<'_>], options: Aarch64Options) {
    let (got, absolute) = scan_relocations(files);
    if options.shared {
        add_dynamic_sections(files, &got, &absolute);
    } else if let Some(owner) = got.owner {
        add_got(&mut files[owner], got.entries, false);
    }
}

/// One pass over the allocated sections' relocations: the GOT entries they ask for, and the
/// names (first seen first) of the sections holding an absolute address word.
fn scan_relocations<'a>(files: &[InputFile<'a>]) -> (GotEntries<'a>, Vec<&'a str>) {
    let mut got = GotEntries::new();
    let mut absolute = Vec::new();
    let mut seen = FastSet::default();
    for (f, file) in files.iter().enumerate() {
        let mut file_locals = FastSet::default();
        for sec in file.sections.iter().filter(|s| counts_dynamic_relocs(s)) {
            let mut has_absolute = false;
            for rel in sec.relocs.iter() {
                if GOT_RELOCS.contains(&rel.r_type) {
                    got.owner.get_or_insert(f);
                    got.add(&mut file_locals, file.symbols.get(rel.sym), rel.sym);
                }
                has_absolute |= rel.r_type == R_AARCH64_ABS64;
            }
            if has_absolute && seen.insert(sec.name) {
                absolute.push(sec.name);
            }
        }
    }
    (got, absolute)
}

/// The GOT entries the relocations ask for: a global once, a local once per file.
struct GotEntries<'a> {
    /// The first file with a GOT relocation.
    owner: Option<usize>,
    entries: u64,
    globals: FastSet<&'a str>,
}

impl<'a> GotEntries<'a> {
    fn new() -> Self {
        GotEntries {
            owner: None,
            entries: 0,
            globals: FastSet::default(),
        }
    }

    /// Records a GOT relocation naming `sym` (index `index` of its file, whose locals so far
    /// are `file_locals`); whether it asked for a new entry.
    fn add(
        &mut self,
        file_locals: &mut FastSet<usize>,
        sym: Option<&model::InputSymbol<'a>>,
        index: usize,
    ) -> bool {
        let new = match sym {
            Some(sym) if sym.binding != model::Binding::Local => self.globals.insert(sym.name),
            Some(_) => file_locals.insert(index),
            None => false,
        };
        self.entries += u64::from(new);
        new
    }
}

fn linker_section(
    name: &'static str,
    index: usize,
    size: u64,
    sh_type: u32,
    flags: u64,
) -> InputSection<'static> {
    InputSection {
        name,
        index,
        size,
        align: GOT_ENTRY,
        sh_type,
        sh_flags: flags,
        entsize: if sh_type == elf::SHT_RELA {
            RELA_ENTRY
        } else {
            GOT_ENTRY
        },
        data: &[],
        duplicate: false,
        linker_created: true,
        link: 0,
        relocs: model::Relocs::default(),
    }
}

/// `.got` (one reserved entry and `entries`), `.got.plt` (its three reserved entries) and, for a
/// static link, a local `_GLOBAL_OFFSET_TABLE_` at the start of `.got` (a shared link writes it
/// as an absolute symbol instead, see [`Aarch64Backend::local_symbols`]).
fn add_got(file: &mut InputFile<'_>, entries: u64, shared: bool) {
    let data = elf::SHF_ALLOC | elf::SHF_WRITE;
    let sections = Arc::make_mut(&mut file.sections);
    sections.push(linker_section(
        ".got",
        GOT_INDEX,
        (1 + entries) * GOT_ENTRY,
        elf::SHT_PROGBITS,
        data,
    ));
    sections.push(linker_section(
        ".got.plt",
        GOT_PLT_INDEX,
        GOT_PLT_SIZE,
        elf::SHT_PROGBITS,
        data,
    ));
    if shared {
        return;
    }
    let mut table = file.symbols.to_vec();
    table.push(model::InputSymbol {
        index: table.len(),
        name: "_GLOBAL_OFFSET_TABLE_",
        binding: model::Binding::Local,
        visibility: model::Visibility::Hidden,
        kind: model::SymbolKind::Object,
        section: model::SymbolSection::Section(GOT_INDEX),
        value: 0,
        size: 0,
    });
    file.symbols = table.into();
}

/// The name of the dynamic relocation section ld makes for relocations of `section`: the input's
/// own relocation section name, `.rela` and the section's name for every kernel object.
fn rela_name(section: &str) -> String {
    format!(".rela{section}")
}

/// `name` with a static lifetime, as input section names borrowed from no file need: each
/// distinct name is allocated once per process.
fn static_name(name: String) -> &'static str {
    static NAMES: std::sync::Mutex<Option<FastSet<&'static str>>> = std::sync::Mutex::new(None);
    let mut names = crate::sync::locked(&NAMES);
    let names = names.get_or_insert_with(FastSet::default);
    if let Some(&known) = names.get(name.as_str()) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.into_boxed_str());
    names.insert(leaked);
    leaked
}

/// A shared link's dynamic sections, all in the first input file as ld makes them there:
/// `.got`/`.got.plt`, the loader-only sections (empty: only their placement is checked), and
/// one `.rela*` section per relocated section name that may need dynamic relocations, sized
/// after mapping by [`size_dynamic_relocs`].
fn add_dynamic_sections(files: &mut [InputFile<'_>], got: &GotEntries<'_>, absolute: &[&str]) {
    let got_relocs = (got.entries > 0).then(|| rela_name(".got"));
    // The GOT's `.rela.got` once, even beside an input section named `.got`.
    let rela_names: Vec<String> = got_relocs
        .into_iter()
        .chain(
            absolute
                .iter()
                .filter(|&&name| got.entries == 0 || name != ".got")
                .map(|name| rela_name(name)),
        )
        .collect();
    let Some(dynobj) = files.first_mut() else {
        return;
    };
    add_got(dynobj, got.entries, true);
    let names: Vec<&'static str> = DYNAMIC_ONLY
        .iter()
        .copied()
        .chain(rela_names.into_iter().map(static_name))
        .collect();
    let sections = Arc::make_mut(&mut dynobj.sections);
    for (k, name) in names.into_iter().enumerate() {
        let sh_type = if name.starts_with(".rela") {
            elf::SHT_RELA
        } else {
            elf::SHT_PROGBITS
        };
        sections.push(linker_section(
            name,
            DYNAMIC_INDEX - k,
            0,
            sh_type,
            elf::SHF_ALLOC,
        ));
    }
}

/// Whether ld's relocation scan (`elf64_aarch64_check_relocs`) looks at `section` at all:
/// allocated, and neither a dropped group copy nor `SHF_EXCLUDE`.
fn counts_dynamic_relocs(section: &InputSection<'_>) -> bool {
    !section.duplicate
        && !section.linker_created
        && section.sh_flags & elf::SHF_ALLOC != 0
        && section.sh_flags & elf::SHF_EXCLUDE == 0
        && !section.relocs.data.is_empty()
}

/// Sizes a shared link's `.rela*` sections once mapping is known, as ld 2.40 does: every
/// `R_AARCH64_ABS64` in an allocated section becomes one dynamic relocation — against a global
/// symbol even where the section itself is discarded (`.discard.addressable`), against a local
/// one only where it is kept — except against an undefined weak symbol of non-default
/// visibility; every GOT entry gets one too. Empty ones are excluded, as ld excludes them.
pub(super) fn size_dynamic_relocs(e: &mut Engine<'_, '_, '_>) -> Result<(), LayoutError> {
    let files = e.files;
    let Some(dynobj) = files.first() else {
        return Ok(());
    };
    let mut placeholder: FastMap<&str, usize> = FastMap::default();
    for (s, sec) in dynobj.sections.iter().enumerate() {
        if sec.linker_created && sec.index <= DYNAMIC_INDEX {
            placeholder.insert(sec.name, s);
        }
    }
    for name in DYNAMIC_ONLY {
        if let Some(&s) = placeholder.get(name)
            && let Some(Some(os)) = e.input_output[0][s]
        {
            return Err(LayoutError::Unsupported {
                what: "keeping the dynamic-loader sections of a -shared link (.dynsym, .dynstr, \
                       .hash, .gnu.hash, .dynamic)",
                span: e.prog.sections[os].span,
            });
        }
    }
    let undefined_weak = UndefinedWeak::new(files);
    let mut counts: FastMap<String, u64> = FastMap::default();
    let mut got = GotEntries::new();
    let mut got_relocs = 0u64;
    for (f, file) in files.iter().enumerate() {
        let mut file_locals = FastSet::default();
        for (s, sec) in file.sections.iter().enumerate() {
            if !counts_dynamic_relocs(sec) {
                continue;
            }
            let kept = matches!(e.input_output[f][s], Some(Some(_)));
            let mut here = 0u64;
            for rel in sec.relocs.iter() {
                let sym = file.symbols.get(rel.sym);
                let global = sym.is_some_and(|s| s.binding != model::Binding::Local);
                if rel.r_type == R_AARCH64_ABS64 {
                    let counted = match sym {
                        Some(sym) if global => !undefined_weak.hidden_and_undefined(sym),
                        _ => kept,
                    };
                    here += u64::from(counted);
                } else if GOT_RELOCS.contains(&rel.r_type)
                    && got.add(&mut file_locals, sym, rel.sym)
                    && sym.is_some_and(|s| !undefined_weak.hidden_and_undefined(s))
                {
                    got_relocs += 1;
                }
            }
            if here > 0 {
                *counts.entry(rela_name(sec.name)).or_default() += here;
            }
        }
    }
    if got_relocs > 0 {
        counts.insert(".rela.got".to_string(), got_relocs);
    }
    for (name, &s) in &placeholder {
        if !name.starts_with(".rela") {
            continue;
        }
        let r = SectionRef { file: 0, sec: s };
        match counts.get(*name) {
            Some(&n) => e.set_input_size(r, n * RELA_ENTRY),
            None => e.input_output[0][s] = Some(None),
        }
    }
    Ok(())
}

/// Which globals no input defines, for ld's rule that an undefined weak symbol of non-default
/// visibility needs no dynamic relocation (it resolves to 0). Built only when some relocation
/// could name one.
struct UndefinedWeak<'a> {
    defined: Option<FastSet<&'a str>>,
}

impl<'a> UndefinedWeak<'a> {
    fn new(files: &[InputFile<'a>]) -> Self {
        let candidate = |s: &model::InputSymbol<'_>| {
            s.binding == model::Binding::Weak
                && s.section == model::SymbolSection::Undefined
                && s.visibility != model::Visibility::Default
        };
        let any = files.iter().any(|f| f.symbols.iter().any(candidate));
        let defined = any.then(|| {
            files
                .iter()
                .flat_map(|f| f.symbols.iter())
                .filter(|s| {
                    s.binding != model::Binding::Local
                        && s.section != model::SymbolSection::Undefined
                })
                .map(|s| s.name)
                .collect()
        });
        UndefinedWeak { defined }
    }

    fn hidden_and_undefined(&self, sym: &model::InputSymbol<'_>) -> bool {
        let Some(defined) = &self.defined else {
            return false;
        };
        sym.binding == model::Binding::Weak
            && sym.section == model::SymbolSection::Undefined
            && sym.visibility != model::Visibility::Default
            && !defined.contains(sym.name)
    }
}

/// The aarch64 backend's part in ld's passes: the erratum 843419 veneers after allocation, and
/// the local symbols it writes (the veneers' names, a shared link's absolute
/// `_GLOBAL_OFFSET_TABLE_`).
#[derive(Clone)]
pub(crate) struct Aarch64Backend {
    options: Aarch64Options,
    veneers: Vec<Veneer>,
}

/// One erratum 843419 site ld moves into a veneer.
#[derive(Debug, Clone)]
struct Veneer {
    /// `e843419@BFD_SECTION_OFFSET`: ids of the object and section, offset of the moved
    /// instruction.
    name: String,
    /// Its stub section, an index into [`Engine::linker_sections`].
    stub: usize,
}

/// The bfd sections ld creates in the first object of a shared link as soon as it is loaded
/// (`.dynsym` … `.dynbss`), ahead of the next object's: they shift every later section id
/// (measured with ld 2.40, default hash style).
const DYNAMIC_SECTIONS_AT_LOAD: usize = 15;
/// A stub section starts with a branch over its stubs (8 bytes, to keep stubs aligned); each
/// erratum veneer holds the moved instruction and a branch back.
const STUB_HEADER: u64 = 8;
const STUB_ALIGN: u64 = 8;
const VENEER_SIZE: u64 = 8;
/// With the ADRP workaround ld rounds every stub section up to whole pages, so adding stubs
/// cannot move code into new erratum sites.
const STUB_SECTION_ROUNDING: u64 = 0x1000;
/// Veneers laid out in the order of [`super::bfd_hash_bucket`]: past three quarters of its 4051
/// buckets bfd grows the stub table, which changes the order.
const STUB_TABLE_ORDERED: usize = 4051 * 3 / 4;

impl Aarch64Backend {
    pub(crate) fn new(options: Aarch64Options) -> Self {
        Aarch64Backend {
            options,
            veneers: Vec::new(),
        }
    }

    /// `elf64_aarch64_size_stubs` with `--fix-cortex-a53-843419`: one scan of the code at the
    /// allocation pass's addresses (ld does not scan again after the stubs moved code), a stub
    /// section after each input section with sites, then one more layout.
    fn add_erratum_843419_veneers(
        &mut self,
        e: &mut Engine<'_, '_, '_>,
    ) -> Result<(), LayoutError> {
        let sites = erratum_843419_sites(e);
        let section_ids = SectionIds::new(e.files, self.options.shared);
        let mut stub_of: FastMap<SectionRef, usize> = FastMap::default();
        let mut veneers_in: FastMap<usize, u64> = FastMap::default();
        for (r, offset) in sites {
            let Some(Some(os)) = e.input_output[r.file][r.sec] else {
                continue;
            };
            let stub = *stub_of
                .entry(r)
                .or_insert_with(|| e.add_linker_section(os, r, STUB_ALIGN));
            *veneers_in.entry(stub).or_default() += 1;
            self.veneers.push(Veneer {
                name: format!(
                    "e843419@{:04x}_{:08x}_{offset:x}",
                    e.files[r.file].bfd_id,
                    section_ids.of(r)
                ),
                stub,
            });
        }
        if self.veneers.len() > STUB_TABLE_ORDERED {
            let os = e.linker_sections[self.veneers[0].stub].os;
            return Err(LayoutError::Unsupported {
                what: "more than 3,038 erratum 843419 veneers (ld's stub table grows and \
                       reorders them)",
                span: e.prog.sections[os].span,
            });
        }
        for (stub, count) in veneers_in {
            e.linker_sections[stub].size =
                (STUB_HEADER + count * VENEER_SIZE).next_multiple_of(STUB_SECTION_ROUNDING);
        }
        e.relayout()
    }
}

impl TargetHooks for Aarch64Backend {
    fn after_allocation(&mut self, e: &mut Engine<'_, '_, '_>) -> Result<(), LayoutError> {
        if self.options.fix_erratum_843419 {
            self.add_erratum_843419_veneers(e)?;
        }
        Ok(())
    }

    fn local_symbols(&self, e: &Engine<'_, '_, '_>) -> Vec<LinkedSymbol> {
        let mut out = Vec::new();
        // ld builds the stubs in its stub hash table's order (by bucket, later insertions
        // first within one), each at the next free offset of its section.
        let mut order: Vec<usize> = (0..self.veneers.len()).collect();
        order.sort_by_key(|&k| {
            (
                super::bfd_hash_bucket(&self.veneers[k].name),
                std::cmp::Reverse(k),
            )
        });
        let mut next: FastMap<usize, u64> = FastMap::default();
        for k in order {
            let veneer = &self.veneers[k];
            let ls = &e.linker_sections[veneer.stub];
            let at = next.entry(veneer.stub).or_insert(STUB_HEADER);
            out.push(LinkedSymbol {
                name: veneer.name.clone().into(),
                value: e.os[ls.os].vma + ls.offset + *at,
                section: SymbolSection::Section(e.prog.sections[ls.os].name.into()),
                nm: e.letter(Some(ls.os), model::Binding::Local, model::SymbolKind::Func),
                global: false,
                from_script: false,
                is_function: true,
            });
            *at += VENEER_SIZE;
        }
        if self.options.shared {
            let got = e.files.first().and_then(|f| {
                let s = f.sections.iter().position(|s| s.index == GOT_INDEX)?;
                e.input_address(SectionRef { file: 0, sec: s })
            });
            out.extend(got.map(|value| LinkedSymbol {
                name: "_GLOBAL_OFFSET_TABLE_".to_string().into(),
                value,
                section: SymbolSection::Absolute,
                nm: 'a',
                global: false,
                from_script: false,
                is_function: false,
            }));
        }
        out
    }

    fn boxed_clone(&self) -> Box<dyn TargetHooks> {
        Box::new(self.clone())
    }
}

/// bfd's section ids of input sections: every section bfd creates takes the next id from 0x10,
/// in the order ld loads the objects; a shared link's first object is followed by
/// [`DYNAMIC_SECTIONS_AT_LOAD`] more. Linker-made sections come later and are not counted.
struct SectionIds {
    /// The id of each file's first section.
    first: Vec<usize>,
}

impl SectionIds {
    fn new(files: &[InputFile<'_>], shared: bool) -> Self {
        let mut next = 0x10;
        let first = files
            .iter()
            .enumerate()
            .map(|(f, file)| {
                if shared && f == 1 {
                    next += DYNAMIC_SECTIONS_AT_LOAD;
                }
                let here = next;
                next += file.sections.iter().filter(|s| !s.linker_created).count();
                here
            })
            .collect();
        SectionIds { first }
    }

    fn of(&self, r: SectionRef) -> usize {
        self.first[r.file] + r.sec
    }
}

/// ld's erratum 843419 scan (`_bfd_aarch64_erratum_843419_scan`) over every placed code
/// section, at its current address: the sites (section, offset of the instruction a veneer
/// takes over) in ld's order. Only code stretches between mapping symbols (`$x`, not `$d`)
/// are scanned; a section with no mapping symbol is not.
fn erratum_843419_sites(e: &Engine<'_, '_, '_>) -> Vec<(SectionRef, u64)> {
    let mut sites = Vec::new();
    for (f, file) in e.files.iter().enumerate() {
        let mut maps: Option<FastMap<usize, Vec<(u64, u8)>>> = None;
        for (s, sec) in file.sections.iter().enumerate() {
            if sec.sh_type != elf::SHT_PROGBITS
                || sec.sh_flags & elf::SHF_EXECINSTR == 0
                || sec.duplicate
            {
                continue;
            }
            let r = SectionRef { file: f, sec: s };
            let Some(base) = e.input_address(r) else {
                continue;
            };
            let maps = maps.get_or_insert_with(|| mapping_symbols(file));
            let Some(map) = maps.get(&sec.index) else {
                continue;
            };
            for (k, &(start, kind)) in map.iter().enumerate() {
                let end = map.get(k + 1).map_or(map[0].0 + sec.size, |m| m.0);
                if kind == b'x' {
                    sites.extend(
                        erratum_843419_in(sec.data, base, start, end).map(|offset| (r, offset)),
                    );
                }
            }
        }
    }
    sites
}

/// A file's aarch64 mapping symbols (`$x`, `$d`, optionally with a `.suffix`) by section
/// index, sorted by offset.
fn mapping_symbols(file: &InputFile<'_>) -> FastMap<usize, Vec<(u64, u8)>> {
    let mut maps: FastMap<usize, Vec<(u64, u8)>> = FastMap::default();
    for sym in file.symbols.iter() {
        let (model::Binding::Local, model::SymbolSection::Section(shndx)) =
            (sym.binding, sym.section)
        else {
            continue;
        };
        if let [b'$', kind @ (b'x' | b'd'), rest @ ..] = sym.name.as_bytes()
            && (rest.is_empty() || rest[0] == b'.')
        {
            maps.entry(shndx).or_default().push((sym.value, *kind));
        }
    }
    for map in maps.values_mut() {
        map.sort_by_key(|&(value, _)| value);
    }
    maps
}

/// The erratum 843419 sites in the code stretch `start..end` of `code`, placed at `base`: an
/// `ADRP` in one of a 4 KiB page's last two words, then any load or store but a load pair, then
/// within two instructions a load or store (unsigned offset) based on the `ADRP`'s register;
/// each as the offset of that last instruction. (Matches ld 2.40 on every load/store class,
/// see the tests.)
fn erratum_843419_in(code: &[u8], base: u64, start: u64, end: u64) -> impl Iterator<Item = u64> {
    let word = move |at: u64| -> Option<u32> {
        let at = usize::try_from(at).ok()?;
        let b = code.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let end = end.min(code.len() as u64);
    let first_page = base.wrapping_add(start) & !0xfff;
    let pages = (end.saturating_sub(start) >> 12) + 2;
    (0..pages)
        .flat_map(move |p| {
            let page = first_page.wrapping_add(p << 12);
            [page.wrapping_add(0xff8), page.wrapping_add(0xffc)]
        })
        .filter_map(move |vma| {
            let i = vma.wrapping_sub(base);
            if i < start || !(i - start).is_multiple_of(4) || i.checked_add(8)? >= end {
                return None;
            }
            let (first, second) = (word(i)?, word(i + 4)?);
            if !is_adrp(first) || !starts_erratum_sequence(second) {
                return None;
            }
            let based = |k: u64| {
                i + k + 4 <= end
                    && word(i + k).is_some_and(|x| unsigned_offset_base(x) == Some(first & 31))
            };
            [8, 12].into_iter().find(|&k| based(k)).map(|k| i + k)
        })
}

fn is_adrp(insn: u32) -> bool {
    insn & 0x9f00_0000 == 0x9000_0000
}

/// Load/store register (unsigned immediate), including SIMD registers and `PRFM`: its base
/// register.
fn unsigned_offset_base(insn: u32) -> Option<u32> {
    (insn & 0x3b00_0000 == 0x3900_0000).then_some((insn >> 5) & 31)
}

/// Whether the instruction after the `ADRP` can be the erratum's second one: a load or store
/// of a class ld recognises (exclusive, pair, literal, single register in any addressing mode,
/// SIMD structure), but not a load of a register pair.
fn starts_erratum_sequence(insn: u32) -> bool {
    if insn & 0x0a00_0000 != 0x0800_0000 {
        return false;
    }
    let bit = |n: u32| insn >> n & 1 == 1;
    let exclusive = insn & 0x3f00_0000 == 0x0800_0000;
    let pair = insn & 0x3a00_0000 == 0x2800_0000;
    if exclusive || pair {
        let is_pair = pair || bit(21);
        let load = bit(22);
        return !(is_pair && load);
    }
    let literal = insn & 0x3b00_0000 == 0x1800_0000;
    let single = insn & 0x3b00_0000 == 0x3900_0000
        || insn & 0x3b20_0000 == 0x3800_0000
        || insn & 0x3b20_0c00 == 0x3820_0800;
    let simd = insn & 0xbfbf_0000 == 0x0c00_0000
        || insn & 0xbfa0_0000 == 0x0c80_0000
        || insn & 0xbf9f_0000 == 0x0d00_0000
        || insn & 0xbf80_0000 == 0x0d80_0000;
    literal || single || simd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    fn sites(words: &[u32], base: u64) -> Vec<u64> {
        let code = code(words);
        erratum_843419_in(&code, base, 0, code.len() as u64).collect()
    }

    const ADRP_X1: u32 = 0x9000_0001;
    /// `ldr w0, [x0, #320]`
    const LDR_W0_X0: u32 = 0xb941_4000;
    /// `ldr x1, [x1, #2152]`
    const LDR_X1_X1: u32 = 0xf944_3421;
    /// `ldp w0, w2, [x0]`
    const LDP: u32 = 0x2940_0800;
    /// `stp w0, w2, [x0]`
    const STP: u32 = 0x2900_0800;
    /// `add x2, x0, #0x100`
    const ADD: u32 = 0x9104_0002;
    const NOP: u32 = 0xd503_201f;

    #[test]
    fn sequences_at_a_page_end_are_found() {
        let seq = [ADRP_X1, LDR_W0_X0, LDR_X1_X1, NOP];
        assert_eq!(sites(&seq, 0xffff_0000_0000_1ff8), vec![8]);
        assert_eq!(sites(&seq, 0xffff_0000_0000_1ffc), vec![8]);
        // One instruction between the load and the one based on the ADRP's register.
        assert_eq!(
            sites(&[NOP, ADRP_X1, STP, NOP, LDR_X1_X1], 0x1ff4),
            vec![16]
        );
    }

    #[test]
    fn other_offsets_shapes_and_stretches_are_not() {
        let seq = [ADRP_X1, LDR_W0_X0, LDR_X1_X1, NOP];
        assert!(sites(&seq, 0x1ff0).is_empty());
        assert!(sites(&seq, 0x2000).is_empty());
        // A load pair cannot be the second instruction.
        assert!(sites(&[ADRP_X1, LDP, LDR_X1_X1, NOP], 0x1ff8).is_empty());
        // The real kernel's `adrp x1; add x2, x0, #0x100; ldr w0, [x0, #320]; ldr x1, [x1, …]`
        // at 0x…ffc: the second instruction is no load or store.
        assert!(sites(&[ADRP_X1, ADD, LDR_W0_X0, LDR_X1_X1], 0x61ffc).is_empty());
        // The loads are based on another register.
        assert!(sites(&[ADRP_X1, LDR_W0_X0, LDR_W0_X0, LDR_W0_X0], 0x1ff8).is_empty());
        // Cut short by the stretch's end.
        let code = code(&seq);
        assert_eq!(erratum_843419_in(&code, 0x1ff8, 0, 8).count(), 0);
        assert_eq!(erratum_843419_in(&code, 0x1ff8, 0, 12).count(), 1);
    }
}
