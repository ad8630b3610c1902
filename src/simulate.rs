//! One simulated link: a GNU ld command line, its inputs and its script, laid out.
//!
//! Owns the glue between `link_args`, `input`, `script` and `layout`: which script and target a
//! command line selects, which objects it links, and the layout options it implies. Loading is
//! done once per session so that callers (the pass simulator) can lay out many variants.

use std::path::{Path, PathBuf};

use miette::Diagnostic;
use thiserror::Error;

use crate::input::nm::{NmSymbol, format, sort_numeric, sort_numeric_from};
use crate::input::select::{LinkSet, LoadedItem};
use crate::input::{FileStore, InputError};
use crate::layout::map::SortMode;
use crate::layout::model::{InputFile, from_link_set};
use crate::layout::{Layout, LayoutError, LayoutOptions, SymbolSection};
use crate::link_args::{LinkArgsError, LinkRequest, SortSection, Strip};
use crate::script::ast::Script;
use crate::target::{ElfClass, Endian, Target, TargetError};

/// Why a link could not be simulated.
#[derive(Debug, Error, Diagnostic)]
pub enum SimulateError {
    #[error(transparent)]
    Args(#[from] LinkArgsError),
    #[error("the command line names no linker script (-T); kernel links always use one")]
    NoScript,
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Script(Box<crate::script::ParseError>),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("{0} is not supported by the layout simulator")]
    Unsupported(String),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Layout(Box<LayoutFailure>),
}

/// A layout error with the script it points into.
#[derive(Debug, Error, Diagnostic)]
#[error("layout failed: {error}")]
#[diagnostic(forward(error))]
pub struct LayoutFailure {
    #[source_code]
    source_code: crate::report::ScriptSource,
    error: LayoutError,
}

/// A command line with its inputs loaded, ready to be laid out (repeatedly).
pub struct LinkSession {
    pub request: LinkRequest,
    /// Directory relative paths on the command line are resolved against.
    pub base: PathBuf,
    pub script_path: PathBuf,
    pub script_text: String,
    pub target: &'static Target,
    store: FileStore,
    items: Vec<LoadedItem>,
}

impl LinkSession {
    /// Parses `args` (ld's arguments, without the program name) and maps every input.
    pub fn open<S: AsRef<str>>(args: &[S], base: &Path) -> Result<Self, SimulateError> {
        let request = LinkRequest::parse(args)?;
        if request.gc_sections {
            return Err(SimulateError::Unsupported("--gc-sections".into()));
        }
        if request.pie {
            return Err(SimulateError::Unsupported("-pie".into()));
        }
        let script_rel = request.scripts.first().ok_or(SimulateError::NoScript)?;
        let script_path = base.join(script_rel);
        let script_text = crate::input::read_regular_file(&script_path)
            .and_then(|bytes| {
                String::from_utf8(bytes).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error())
                })
            })
            .map_err(|source| SimulateError::Io {
                path: script_path.clone(),
                source,
            })?;
        let mut store = FileStore::new();
        let lib_request = &request;
        let items = store.load_items(&request.inputs, base, |name| {
            lib_request.find_library(name, base).ok()
        })?;
        let session_script = parse(&script_text, &script_path)?;
        let program = crate::layout::ir::Program::build(&session_script);
        let machines = machines_of(&store, &items);
        let machines: Vec<(u16, &str)> = machines.iter().map(|(m, f)| (*m, f.as_str())).collect();
        let target = Target::resolve(
            request.emulation.as_deref(),
            program.output_arch,
            program.output_format,
            &machines,
        )?;
        if request.shared && (target.e_machine != object::elf::EM_AARCH64 || !request.bsymbolic) {
            return Err(SimulateError::Unsupported(
                "-shared (modelled for aarch64 with -Bsymbolic, as arm64's RELOCATABLE kernels \
                 link)"
                    .into(),
            ));
        }
        Ok(LinkSession {
            request,
            base: base.to_path_buf(),
            script_path,
            script_text,
            target,
            store,
            items,
        })
    }

    /// The layout options the command line implies.
    pub fn options(&self) -> Result<LayoutOptions, SimulateError> {
        let r = &self.request;
        let mut defsyms = Vec::new();
        for (name, expr) in &r.defsyms {
            let value = parse_number(expr).ok_or_else(|| {
                SimulateError::Unsupported(format!(
                    "--defsym {name}={expr} (only numbers are modelled)"
                ))
            })?;
            defsyms.push((name.clone(), value));
        }
        Ok(LayoutOptions {
            max_page_size: r.max_page_size.unwrap_or(self.target.layout.max_page_size),
            common_page_size: r
                .common_page_size
                .unwrap_or(self.target.layout.common_page_size),
            build_id_size: r
                .build_id
                .as_ref()
                .filter(|b| !b.is_empty())
                .map(|b| b.len() as u64),
            strip_debug: matches!(r.strip, Strip::Debug | Strip::All),
            sort_section: match r.sort_section {
                None => SortMode::None,
                Some(SortSection::Name) => SortMode::ByName,
                Some(SortSection::Alignment) => SortMode::ByAlignment,
            },
            is_64: self.target.class == ElfClass::Elf64,
            big_endian: self.target.endian == Endian::Big,
            defsyms,
            entry: r.entry.clone(),
            emit_relocs: r.emit_relocs,
            discard: r.discard,
            machine: self.target.e_machine,
            arm: crate::layout::ArmOptions {
                pic_veneer: r.pic_veneer,
                merge_exidx_entries: !r.no_merge_exidx_entries,
                fix_cortex_a8: r.fix_cortex_a8,
            },
            aarch64: crate::layout::Aarch64Options {
                shared: r.shared,
                fix_erratum_843419: r.fix_cortex_a53_843419,
            },
        })
    }

    /// Lays the link out.
    pub fn layout(&self) -> Result<Layout, SimulateError> {
        let script = self.script()?;
        let undefined: Vec<&str> = self.request.undefined.iter().map(String::as_str).collect();
        let set = LinkSet::resolve(&self.store, &self.items, Some(self.target), &undefined)?;
        let files = from_link_set(&set, &self.base);
        self.layout_files(&script, files)
    }

    /// Lays out an explicit list of input files under the session's script and options.
    pub fn layout_files(
        &self,
        script: &Script<'_>,
        files: Vec<InputFile<'_>>,
    ) -> Result<Layout, SimulateError> {
        let options = self.options()?;
        crate::layout::link(script, files, &options).map_err(|error| self.layout_failure(error))
    }

    /// A layout error of this session's script, with the script text to point into.
    pub fn layout_failure(&self, error: LayoutError) -> SimulateError {
        SimulateError::Layout(Box::new(LayoutFailure {
            source_code: crate::report::ScriptSource::new(
                self.script_path.display().to_string(),
                self.script_text.clone(),
            ),
            error,
        }))
    }

    /// The same link with another script text (a candidate fix); inputs stay loaded.
    pub fn with_script_text(&mut self, text: String) -> Result<(), SimulateError> {
        parse(&text, &self.script_path)?;
        self.script_text = text;
        Ok(())
    }

    /// The session's script, parsed.
    pub fn script(&self) -> Result<Script<'_>, SimulateError> {
        parse(&self.script_text, &self.script_path)
    }

    pub fn store(&self) -> &FileStore {
        &self.store
    }

    /// The command line's inputs as loaded, with archive markers.
    pub fn items(&self) -> &[LoadedItem] {
        &self.items
    }
}

fn parse<'t>(text: &'t str, path: &Path) -> Result<Script<'t>, SimulateError> {
    crate::script::parse_script(text)
        .map_err(|e| SimulateError::Script(Box::new(e.with_file_name(path.display().to_string()))))
}

/// Each distinct `e_machine` among the inputs, with the first file that has it.
fn machines_of(store: &FileStore, items: &[LoadedItem]) -> Vec<(u16, String)> {
    let mut machines: Vec<(u16, String)> = Vec::new();
    for item in items {
        if let LoadedItem::File(id) = item {
            let data = store.bytes(*id);
            if data.len() >= 20 && &data[..4] == b"\x7fELF" {
                let m = if data[5] == 2 {
                    u16::from_be_bytes([data[18], data[19]])
                } else {
                    u16::from_le_bytes([data[18], data[19]])
                };
                if !machines.iter().any(|(seen, _)| *seen == m) {
                    machines.push((m, store.path(*id).display().to_string()));
                }
            }
        }
    }
    machines
}

fn parse_number(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else {
        t.parse().ok()
    }
}

/// What `nm -n` would print for the simulated output, for machine `e_machine`.
pub fn predicted_nm(layout: &Layout, e_machine: u16) -> Vec<u8> {
    format(&nm_symbols(layout, e_machine), nm_width(layout))
}

/// The symbols `nm -n` would list for the simulated output, in its order.
pub fn nm_symbols(layout: &Layout, e_machine: u16) -> Vec<NmSymbol<'_>> {
    let mut syms = listed_symbols(layout, e_machine);
    sort_numeric(&mut syms);
    syms
}

/// [`nm_symbols`], sorted starting from the order of an earlier call for a layout of the same
/// link (see [`sort_numeric_from`]), which `order` holds and gets this call's order.
pub fn nm_symbols_from<'l>(
    layout: &'l Layout,
    e_machine: u16,
    order: &mut Vec<u32>,
) -> Vec<NmSymbol<'l>> {
    sort_numeric_from(&listed_symbols(layout, e_machine), order)
}

/// The symbols nm lists, in the output's symbol table order.
fn listed_symbols(layout: &Layout, e_machine: u16) -> Vec<NmSymbol<'_>> {
    let mut listed = Vec::with_capacity(layout.symbols.len());
    let symbols = layout
        .symbols
        .iter()
        .filter(|s| !crate::input::nm::is_target_special(e_machine, s.name.as_bytes()))
        .map(|s| NmSymbol {
            value: if s.section == SymbolSection::Undefined {
                0
            } else if e_machine == object::elf::EM_ARM && s.is_function {
                s.value & !1
            } else {
                s.value
            },
            letter: s.nm,
            name: s.name.as_bytes(),
        });
    listed.extend(symbols);
    listed
}

/// Hex digits nm prints per address for the simulated output.
pub fn nm_width(layout: &Layout) -> usize {
    if layout.is_64 { 16 } else { 8 }
}
