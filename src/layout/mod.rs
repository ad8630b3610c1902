//! The GNU ld 2.40 layout simulator.
//!
//! Owns the evaluation of a parsed script over a set of inputs: which output section each input
//! section lands in, every output section's address, load address, size and flags, and every
//! symbol's final value, section and `nm` letter — following ld's phases (map, mark, allocate,
//! final assignments, symbol fix-ups) so that the same corner cases come out the same way.

pub mod flags;
pub mod glob;
pub mod ir;
pub mod map;
pub mod merge;
pub mod model;

mod aarch64;
mod arm;
mod eval;
mod gnu_property;
mod place;
mod symbols;

use crate::hash::FastMap;
use std::sync::Arc;

use miette::Diagnostic;
use serde::Serialize;
use thiserror::Error;

use crate::script::ast::{Script, Span};
use flags::SecFlags;
use ir::{OsId, Program};
use map::{MapOptions, SortMode};
use model::InputFile;

pub use aarch64::Aarch64Options;
pub use arm::ArmOptions;
pub use symbols::{LinkedSymbol, SymbolName, SymbolSection};

/// A layout failure ld would also report, with the script span where there is one.
#[derive(Debug, Error, Diagnostic, Clone, PartialEq, Eq)]
pub enum LayoutError {
    #[error("undefined symbol `{name}` referenced in expression")]
    UndefinedSymbol {
        name: String,
        #[label("referenced here")]
        span: Span,
    },
    #[error("undefined section `{name}` referenced in expression")]
    UndefinedSection {
        name: String,
        #[label("referenced here")]
        span: Span,
    },
    #[error("undefined MEMORY region `{name}` referenced in expression")]
    UndefinedRegion {
        name: String,
        #[label("referenced here")]
        span: Span,
    },
    #[error("{op} by zero")]
    DivisionByZero {
        op: &'static str,
        #[label("this divisor is zero")]
        span: Span,
    },
    #[error("cannot move location counter backwards (from {from:#x} to {to:#x})")]
    DotBackwards {
        from: u64,
        to: u64,
        #[label("this assignment")]
        span: Span,
    },
    #[error("invalid assignment to location counter")]
    InvalidDotAssignment {
        #[label("this assignment")]
        span: Span,
    },
    #[error("non constant or forward reference address expression for section {name}")]
    NonConstantAddress {
        name: String,
        #[label("this address")]
        span: Span,
    },
    #[error("{what} must be a power of two, not {value:#x}")]
    BadAlignment {
        what: &'static str,
        value: u64,
        #[label("this value")]
        span: Span,
    },
    #[error("can not PROVIDE assignment to location counter")]
    ProvideDot {
        #[label("here")]
        span: Span,
    },
    #[error("assertion failed: {message}")]
    AssertionFailed {
        message: String,
        #[label("this ASSERT")]
        span: Span,
    },
    #[error("{what} is not modelled by ldcheck's layout simulator")]
    Unsupported {
        what: &'static str,
        #[label("used here")]
        span: Span,
    },
    #[error(
        "{file}: {problem} in .note.gnu.property, whose merge (ld folds every input's GNU \
         properties into one note) is not modelled by ldcheck's layout simulator"
    )]
    UnmodelledGnuProperty {
        file: String,
        problem: String,
        #[label("this statement keeps the note")]
        span: Span,
    },
    #[error("expression nesting too deep")]
    TooDeep {
        #[label("here")]
        span: Span,
    },
}

/// Link options that change layout.
#[derive(Debug, Clone)]
pub struct LayoutOptions {
    pub max_page_size: u64,
    pub common_page_size: u64,
    /// Bytes of build-id hash (`--build-id=sha1` → 20), or None without `--build-id`.
    pub build_id_size: Option<u64>,
    pub strip_debug: bool,
    pub sort_section: SortMode,
    /// Whether symbol values are 64-bit (ELFCLASS64).
    pub is_64: bool,
    /// Whether the inputs are big-endian (section contents the layout reads, such as notes).
    pub big_endian: bool,
    /// `--defsym NAME=EXPR` assignments, already parsed as script text.
    pub defsyms: Vec<(String, u64)>,
    /// `-e`: overrides ENTRY.
    pub entry: Option<String>,
    /// `--emit-relocs`: output sections with only empty inputs are kept.
    pub emit_relocs: bool,
    /// Which local symbols the output keeps.
    pub discard: crate::link_args::Discard,
    /// The output's `e_machine`: selects the target backend's passes (ARM stubs and unwind
    /// tables); 0 runs none.
    pub machine: u16,
    /// ARM backend options (ignored for other machines).
    pub arm: ArmOptions,
    /// aarch64 backend options (ignored for other machines).
    pub aarch64: Aarch64Options,
}

impl Default for LayoutOptions {
    fn default() -> Self {
        LayoutOptions {
            max_page_size: 0x1000,
            common_page_size: 0x1000,
            build_id_size: None,
            strip_debug: false,
            sort_section: SortMode::None,
            is_64: true,
            big_endian: false,
            defsyms: Vec::new(),
            entry: None,
            emit_relocs: false,
            discard: crate::link_args::Discard::SecMerge,
            machine: 0,
            arm: ArmOptions::default(),
            aarch64: Aarch64Options::default(),
        }
    }
}

/// One output section of the linked image.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OutputSection {
    pub name: String,
    pub vma: u64,
    pub lma: u64,
    pub size: u64,
    pub align: u64,
    pub sh_type: u32,
    pub sh_flags: u64,
    /// The script span of the output-section statement (None for orphans and linker-made ones).
    #[serde(skip)]
    pub span: Option<Span>,
}

/// Why an output-section statement produced no section in the image.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum RemovedReason {
    /// Nothing was ever placed in it and it assigns nothing (ld never created it).
    NeverCreated,
    /// Created but empty and not kept; `advanced_dot` when its symbols made ld still honour its
    /// alignment (the section was not "ignored").
    Empty { advanced_dot: bool },
    /// ONLY_IF_RO / ONLY_IF_RW did not hold.
    ConstraintFailed,
    /// `/DISCARD/`.
    Discard,
}

/// A statement of the script that produced no output section, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RemovedSection {
    pub name: String,
    pub reason: RemovedReason,
    /// The address ld computed for it anyway (what symbols inside it were relative to).
    pub vma: u64,
    #[serde(skip)]
    pub span: Span,
}

/// The evaluated layout of one link.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    /// Output sections in the order of the output file's section headers.
    pub sections: Vec<OutputSection>,
    pub removed: Vec<RemovedSection>,
    /// Every symbol the output's symbol table lists, in no particular order.
    pub symbols: Vec<LinkedSymbol>,
    pub entry: Option<u64>,
    /// Failed ASSERTs, which ld reports as errors after layout.
    pub failed_asserts: Vec<String>,
    /// Orphan input sections and where they were put.
    pub orphans: Vec<(String, String)>,
    pub is_64: bool,
}

impl Layout {
    pub fn section(&self, name: &str) -> Option<&OutputSection> {
        self.sections.iter().find(|s| s.name == name)
    }

    pub fn symbol(&self, name: &str) -> Option<&LinkedSymbol> {
        self.symbols.iter().find(|s| &*s.name == name)
    }
}

/// Runs the layout of `files` (in link order, after archive member selection) under `script`.
pub fn link(
    script: &Script<'_>,
    mut files: Vec<InputFile<'_>>,
    options: &LayoutOptions,
) -> Result<Layout, LayoutError> {
    prepare_inputs(&mut files, options);
    PreparedLink::new(script, &files, options)?.into_layout()
}

/// What ld does to the inputs before anything is mapped: the build-id note, the merge of GNU
/// property notes, the `COMMON` sections and aarch64's GOT and dynamic sections.
/// [`PreparedLink::new`] expects inputs that went through this.
pub fn prepare_inputs(files: &mut [InputFile<'_>], options: &LayoutOptions) {
    gnu_property::apply(files, note_format(options));
    if let (Some(hash), Some(first)) = (options.build_id_size, files.first_mut()) {
        Arc::make_mut(&mut first.sections).push(build_id_section(hash));
    }
    allocate_commons(files);
    if options.machine == object::elf::EM_AARCH64 {
        aarch64::add_linker_sections(files, options.aarch64);
    }
}

/// A link taken through ld's steps that read neither input section sizes nor symbol values:
/// symbol resolution, mapping, orphan placement and merging. It can then be laid out many
/// times, each time with one input swapped for a file of the same shape — the pass simulator's
/// kallsyms object, whose tables change size and labels between passes while nothing else does.
pub struct PreparedLink<'s, 'a, 'f> {
    engine: place::Engine<'s, 'a, 'f>,
}

impl<'s, 'a, 'f> PreparedLink<'s, 'a, 'f> {
    /// Prepares `files` (already through [`prepare_inputs`]) under `script`.
    pub fn new(
        script: &'s Script<'a>,
        files: &'f [InputFile<'a>],
        options: &'f LayoutOptions,
    ) -> Result<Self, LayoutError> {
        if let Some(&(_, span)) = script.includes().first() {
            return Err(LayoutError::Unsupported {
                what: "INCLUDE (the included script is not read)",
                span,
            });
        }
        let program = Program::build(script);
        // Interning the inputs' names needs no placement: it runs while sections are mapped.
        let (mapping, (syms, input_ids)) = rayon::join(
            || {
                map::map_inputs(
                    &program,
                    files,
                    MapOptions {
                        strip_debug: options.strip_debug,
                        sort_section: options.sort_section,
                    },
                )
            },
            || symbols::SymbolTable::with_input_names(files),
        );
        let mut engine = place::Engine::new(program, files, mapping, syms, options);
        // The ARM backend's tables read only the inputs, and preparing uses no target hooks:
        // they are built side by side.
        let (arm, prepared) = rayon::join(
            || {
                (options.machine == object::elf::EM_ARM)
                    .then(|| arm::ArmBackend::new(options.arm, files, &input_ids))
            },
            || engine.prepare(&input_ids),
        );
        prepared?;
        if let Some(arm) = arm {
            engine.hooks = Some(Box::new(arm));
        } else if options.machine == object::elf::EM_AARCH64 {
            engine.hooks = Some(Box::new(aarch64::Aarch64Backend::new(options.aarch64)));
        }
        refuse_unmodelled_gnu_properties(&engine)?;
        if options.machine == object::elf::EM_AARCH64 && options.aarch64.shared {
            aarch64::size_dynamic_relocs(&mut engine)?;
        }
        Ok(PreparedLink { engine })
    }

    /// The layout of the prepared inputs.
    pub fn layout(&self) -> Result<Layout, LayoutError> {
        self.engine.clone().finish()
    }

    /// The layout, consuming the prepared state (no copy of it is made).
    pub fn into_layout(mut self) -> Result<Layout, LayoutError> {
        self.engine.finish()
    }

    /// The layout with input `index` replaced by `replacement`, or None when the replacement
    /// differs in more than section sizes, symbol values and a name no file pattern tells
    /// apart (see [`InputFile::same_shape`]): then only a new [`PreparedLink`] lays it out.
    pub fn layout_with(
        &self,
        index: usize,
        replacement: InputFile<'a>,
    ) -> Option<Result<Layout, LayoutError>> {
        let original = self.engine.files.get(index)?;
        if !original.same_shape(&replacement)
            || !map::file_names_equivalent(&self.engine.prog, &original.name, &replacement.name)
        {
            return None;
        }
        let mut files = self.engine.files.to_vec();
        files[index] = replacement;
        let mut engine: place::Engine<'s, 'a, '_> = self.engine.clone();
        engine.syms.revalue_file(index, original, &files[index]);
        engine.replaced_file = Some(index);
        engine.files = &files;
        Some(engine.finish())
    }
}

fn note_format(options: &LayoutOptions) -> gnu_property::NoteFormat {
    gnu_property::NoteFormat {
        machine: options.machine,
        is_64: options.is_64,
        big_endian: options.big_endian,
    }
}

/// A script that keeps a `.note.gnu.property` ld's merge leaves as it is (a property type or
/// note layout [`gnu_property`] does not model) is refused rather than laid out wrong.
fn refuse_unmodelled_gnu_properties(engine: &place::Engine<'_, '_, '_>) -> Result<(), LayoutError> {
    let kept = engine.files.iter().enumerate().find_map(|(f, file)| {
        file.sections.iter().enumerate().find_map(|(s, sec)| {
            if sec.name != gnu_property::SECTION {
                return None;
            }
            engine.input_output[f][s].flatten()
        })
    });
    let Some(os) = kept else {
        return Ok(());
    };
    match gnu_property::unmodelled(engine.files, note_format(engine.opts)) {
        Some(u) => Err(LayoutError::UnmodelledGnuProperty {
            file: u.file,
            problem: u.problem,
            span: engine.prog.sections[os].span,
        }),
        None => Ok(()),
    }
}

/// Section index given to the `COMMON` input section ld makes for a file's common symbols.
const COMMON_INDEX: usize = usize::MAX - 1;

/// ld's common-symbol allocation (`lang_common`, `bfd_define_common_symbol`): each common
/// symbol, at its largest size and alignment, goes into a `COMMON` input section of the file
/// that defined that largest copy, aligned within it; `*(COMMON)` then places those sections.
/// A symbol defined for real anywhere is not common. ld visits commons in its hash table's
/// order; this allocates them in link order, which gives the same result whenever a file owns
/// at most one common per alignment.
fn allocate_commons(files: &mut [InputFile<'_>]) {
    use crate::hash::FastSet;
    use model::{Binding, SymbolSection};
    let has_common = |file: &InputFile<'_>| {
        file.symbols
            .iter()
            .any(|s| s.section == SymbolSection::Common && s.binding != Binding::Local)
    };
    // Kernel objects are built with -fno-common: most links have nothing to allocate.
    if !files.iter().any(has_common) {
        return;
    }
    let mut defined: FastSet<&str> = FastSet::default();
    // name -> (file, symbol position, size, align)
    let mut commons: FastMap<&str, (usize, usize, u64, u64)> = FastMap::default();
    let mut order: Vec<&str> = Vec::new();
    for (f, file) in files.iter().enumerate() {
        for (i, sym) in file.symbols.iter().enumerate() {
            if sym.binding == Binding::Local {
                continue;
            }
            match sym.section {
                SymbolSection::Common => {
                    let align = sym.value.max(1);
                    match commons.get_mut(sym.name) {
                        Some(c) => {
                            if sym.size > c.2 {
                                *c = (f, i, sym.size, c.3.max(align));
                            } else {
                                c.3 = c.3.max(align);
                            }
                        }
                        None => {
                            commons.insert(sym.name, (f, i, sym.size, align));
                            order.push(sym.name);
                        }
                    }
                }
                SymbolSection::Section(_) | SymbolSection::Absolute => {
                    defined.insert(sym.name);
                }
                _ => {}
            }
        }
    }
    // Per owning file: the (symbol position, offset) pairs, and its COMMON size and alignment.
    struct Owned {
        symbols: Vec<(usize, u64)>,
        size: u64,
        align: u64,
    }
    let mut placed: FastMap<usize, Owned> = FastMap::default();
    for name in order {
        if defined.contains(name) {
            continue;
        }
        let (f, i, size, align) = commons[name];
        let entry = placed.entry(f).or_insert(Owned {
            symbols: Vec::new(),
            size: 0,
            align: 1,
        });
        let offset = entry.size.div_ceil(align) * align;
        entry.symbols.push((i, offset));
        entry.size = offset + size;
        entry.align = entry.align.max(align);
    }
    let mut owners: Vec<usize> = placed.keys().copied().collect();
    owners.sort_unstable();
    for f in owners {
        let Owned {
            symbols,
            size,
            align,
        } = &placed[&f];
        let mut table = files[f].symbols.to_vec();
        for &(i, offset) in symbols {
            table[i].section = SymbolSection::Section(COMMON_INDEX);
            table[i].value = offset;
        }
        files[f].symbols = table.into();
        Arc::make_mut(&mut files[f].sections).push(model::InputSection {
            name: "COMMON",
            index: COMMON_INDEX,
            size: *size,
            align: *align,
            sh_type: model::elf::SHT_NOBITS,
            sh_flags: model::elf::SHF_ALLOC | model::elf::SHF_WRITE,
            entsize: 0,
            data: &[],
            duplicate: false,
            linker_created: false,
            link: 0,
            relocs: model::Relocs::default(),
        });
    }
}

/// The bucket of `name` in a bfd hash table of the default size (`bfd_hash_hash` modulo 4051).
pub(crate) fn bfd_hash_bucket(name: &str) -> u64 {
    let mut hash: u64 = 0;
    for &c in name.as_bytes() {
        let c = u64::from(c);
        hash = hash.wrapping_add(c.wrapping_add(c << 17));
        hash ^= hash >> 2;
    }
    let len = name.len() as u64;
    hash = hash.wrapping_add(len.wrapping_add(len << 17));
    hash ^= hash >> 2;
    hash % 4051
}

/// The `.note.gnu.build-id` input section ld adds to the first input file: a note header
/// (12 bytes), the name `GNU\0` and the hash.
fn build_id_section(hash: u64) -> model::InputSection<'static> {
    model::InputSection {
        name: ".note.gnu.build-id",
        index: usize::MAX,
        size: 16 + hash,
        align: 4,
        sh_type: model::elf::SHT_NOTE,
        sh_flags: model::elf::SHF_ALLOC,
        entsize: 0,
        data: &[],
        duplicate: false,
        linker_created: true,
        link: 0,
        relocs: model::Relocs::default(),
    }
}

/// Output section state while ld's passes run (the `asection` of an output statement).
#[derive(Debug, Clone, Default)]
pub(crate) struct OutState {
    /// bfd created the output section (`os->bfd_section != NULL`).
    pub created: bool,
    pub flags: SecFlags,
    pub first_input_type: Option<u32>,
    pub has_input: bool,
    pub align: u64,
    pub vma: u64,
    pub lma: u64,
    pub size: u64,
    pub rawsize: u64,
    pub processed_vma: bool,
    pub processed_lma: bool,
    pub ignored: bool,
    pub excluded: bool,
    pub update_dot: bool,
    pub constraint_failed: bool,
    pub after_end: bool,
    pub entsize: u64,
    /// ELF type and flags bfd presets from the section's name when it was created empty.
    pub special: Option<(u32, u64)>,
    /// An input had SHF_LINK_ORDER, which the output keeps (ARM unwind tables).
    pub link_order: bool,
}

/// Shared lookups from output-section names to statements.
pub(crate) fn section_index(program: &Program<'_, '_>) -> FastMap<String, OsId> {
    let mut map = FastMap::default();
    for (i, os) in program.sections.iter().enumerate() {
        map.entry(os.name.to_string()).or_insert(i);
    }
    map
}
