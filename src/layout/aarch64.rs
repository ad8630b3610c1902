//! aarch64's linker-made sections and erratum scan: what ld 2.40's aarch64 backend adds to a
//! link. A static link gets a global offset table when code addresses symbols through it. A
//! `-shared` link (how arm64's kbuild links a RELOCATABLE kernel: `-shared -Bsymbolic -z notext
//! --no-apply-dynamic-relocs`) always gets `.got`/`.got.plt`, plus one 24-byte dynamic
//! relocation per absolute address word, which the kernel script gathers into `.rela.dyn`
//! between the init sections and `.data`: its size moves everything after it.
//! `--fix-cortex-a53-843419` makes ld look for erratum sequences; a link with none is laid out
//! exactly, one with a possible sequence is refused, since the veneer ld would add is not
//! simulated.

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
    let got = GotEntries::count(files);
    if options.shared {
        add_dynamic_sections(files, &got);
    } else if let Some(owner) = got.owner {
        add_got(&mut files[owner], got.entries, false);
    }
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

    fn count(files: &[InputFile<'a>]) -> Self {
        let mut got = GotEntries::new();
        for (f, file) in files.iter().enumerate() {
            let mut file_locals = FastSet::default();
            let code = file.sections.iter();
            for sec in code.filter(|s| !s.duplicate && s.sh_flags & elf::SHF_ALLOC != 0) {
                for rel in sec.relocs.iter().filter(|r| GOT_RELOCS.contains(&r.r_type)) {
                    got.owner.get_or_insert(f);
                    got.add(&mut file_locals, file.symbols.get(rel.sym), rel.sym);
                }
            }
        }
        got
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
    let mut names = NAMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
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
fn add_dynamic_sections(files: &mut [InputFile<'_>], got: &GotEntries<'_>) {
    let mut rela_names: Vec<String> = Vec::new();
    if got.entries > 0 {
        rela_names.push(".rela.got".to_string());
    }
    let mut seen: FastSet<&str> = FastSet::default();
    for file in files.iter() {
        for sec in file.sections.iter().filter(|s| counts_dynamic_relocs(s)) {
            if !seen.contains(sec.name) && sec.relocs.iter().any(|r| r.r_type == R_AARCH64_ABS64) {
                seen.insert(sec.name);
                rela_names.push(rela_name(sec.name));
            }
        }
    }
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

/// Whether ld's relocation scan (`elf64_aarch64_check_relocs`) looks at `section` at all.
fn counts_dynamic_relocs(section: &InputSection<'_>) -> bool {
    !section.duplicate
        && !section.linker_created
        && section.sh_flags & elf::SHF_ALLOC != 0
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

/// The aarch64 backend's part in ld's passes: the erratum 843419 scan after allocation, and a
/// shared link's absolute `_GLOBAL_OFFSET_TABLE_`.
#[derive(Clone)]
pub(crate) struct Aarch64Backend {
    options: Aarch64Options,
}

impl Aarch64Backend {
    pub(crate) fn new(options: Aarch64Options) -> Self {
        Aarch64Backend { options }
    }
}

impl TargetHooks for Aarch64Backend {
    fn after_allocation(&mut self, e: &mut Engine<'_, '_, '_>) -> Result<(), LayoutError> {
        if self.options.fix_erratum_843419 {
            scan_erratum_843419(e)?;
        }
        Ok(())
    }

    fn local_symbols(&self, e: &Engine<'_, '_, '_>) -> Vec<LinkedSymbol> {
        if !self.options.shared {
            return Vec::new();
        }
        let got = e.files.first().and_then(|f| {
            let s = f.sections.iter().position(|s| s.index == GOT_INDEX)?;
            e.input_address(SectionRef { file: 0, sec: s })
        });
        got.map(|value| LinkedSymbol {
            name: "_GLOBAL_OFFSET_TABLE_".to_string().into(),
            value,
            section: SymbolSection::Absolute,
            nm: 'a',
            global: false,
            from_script: false,
            is_function: false,
        })
        .into_iter()
        .collect()
    }

    fn boxed_clone(&self) -> Box<dyn TargetHooks> {
        Box::new(self.clone())
    }
}

/// Looks for Cortex-A53 erratum 843419 sequences where ld would: an `ADRP` in the last two
/// words of a 4 KiB page, a load or store after it, and a load or store (unsigned offset) based
/// on the `ADRP`'s register one or two instructions later. ld then rewrites the code or adds a
/// veneer, which ldcheck does not simulate, so any match — the test is looser than ld's, never
/// missing one — is reported; a link with none lays out as without the option.
fn scan_erratum_843419(e: &Engine<'_, '_, '_>) -> Result<(), LayoutError> {
    for (f, file) in e.files.iter().enumerate() {
        for (s, sec) in file.sections.iter().enumerate() {
            if sec.sh_type != elf::SHT_PROGBITS || sec.sh_flags & elf::SHF_EXECINSTR == 0 {
                continue;
            }
            let Some(base) = e.input_address(SectionRef { file: f, sec: s }) else {
                continue;
            };
            if let Some(offset) = erratum_843419_at(sec.data, base) {
                return Err(LayoutError::Erratum843419 {
                    address: base + offset,
                    file: file.name.clone(),
                    section: sec.name.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The offset of the first possible erratum 843419 sequence in `code` placed at `base`.
fn erratum_843419_at(code: &[u8], base: u64) -> Option<u64> {
    let word = |at: u64| -> Option<u32> {
        let at = usize::try_from(at).ok()?;
        let b = code.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let is_adrp = |insn: u32| insn & 0x9f00_0000 == 0x9000_0000;
    // The load/store encoding group: op0 = x1x0.
    let is_load_store = |insn: u32| insn & 0x0a00_0000 == 0x0800_0000;
    // Load/store register (unsigned immediate), with its base register.
    let unsigned_offset_base =
        |insn: u32| (insn & 0x3b00_0000 == 0x3900_0000).then_some((insn >> 5) & 31);
    let size = code.len() as u64;
    // Instructions are 4-aligned in the output; the candidates sit at page offsets 0xff8, 0xffc.
    let mut page_end = (base & !0xfff) + 0xff8;
    while page_end < base + size {
        for at in [page_end, page_end + 4] {
            if at < base || at % 4 != 0 {
                continue;
            }
            let i = at - base;
            let (Some(first), Some(second)) = (word(i), word(i + 4)) else {
                continue;
            };
            if !is_adrp(first) || !is_load_store(second) {
                continue;
            }
            let register = first & 31;
            let based = |k: u64| word(i + k).and_then(unsigned_offset_base) == Some(register);
            if based(8) || based(12) {
                return Some(i);
            }
        }
        page_end += 0x1000;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    const ADRP_X1: u32 = 0x9000_0001;
    /// `ldr w0, [x0, #320]`
    const LDR_W0_X0: u32 = 0xb941_4000;
    /// `ldr x1, [x1, #2152]`
    const LDR_X1_X1: u32 = 0xf944_3421;
    /// `add x2, x0, #0x100`
    const ADD: u32 = 0x9104_0002;
    const NOP: u32 = 0xd503_201f;

    #[test]
    fn a_sequence_at_a_page_end_is_found() {
        let seq = code(&[ADRP_X1, LDR_W0_X0, LDR_X1_X1, NOP]);
        assert_eq!(erratum_843419_at(&seq, 0xffff_0000_0000_1ff8), Some(0));
        assert_eq!(erratum_843419_at(&seq, 0xffff_0000_0000_1ffc), Some(0));
        let later = code(&[NOP, ADRP_X1, LDR_W0_X0, NOP, LDR_X1_X1]);
        assert_eq!(erratum_843419_at(&later, 0x1ff4), Some(4));
    }

    #[test]
    fn other_offsets_and_shapes_are_not() {
        let seq = code(&[ADRP_X1, LDR_W0_X0, LDR_X1_X1, NOP]);
        assert_eq!(erratum_843419_at(&seq, 0x1ff0), None);
        assert_eq!(erratum_843419_at(&seq, 0x2000), None);
        // The real kernel's `adrp x1; add x2, x0, #0x100; ldr w0, [x0, #320]; ldr x1, [x1, …]`
        // at 0x…ffc: the second instruction is no load or store.
        let kernel = code(&[ADRP_X1, ADD, LDR_W0_X0, LDR_X1_X1]);
        assert_eq!(erratum_843419_at(&kernel, 0x61ffc), None);
        // The load is based on another register.
        let other = code(&[ADRP_X1, LDR_W0_X0, LDR_W0_X0, LDR_W0_X0]);
        assert_eq!(erratum_843419_at(&other, 0x1ff8), None);
        // Cut short by the section's end.
        assert_eq!(
            erratum_843419_at(&code(&[ADRP_X1, LDR_W0_X0]), 0x1ff8),
            None
        );
    }
}
