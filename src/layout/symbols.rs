//! The global symbol table (bfd's link hash) and the output symbol list.
//!
//! Owns symbol resolution across input files (strong/weak/common/undefined), the definedness
//! bookkeeping script assignments need (DEFINED, PROVIDE, self-reference), and the final values,
//! sections and `nm` letters of every symbol the output lists.

use crate::hash::NameIndex;

use rayon::prelude::*;
use std::sync::Arc;

use serde::Serialize;

use super::ir::OsId;
use super::map::{Disposition, SectionRef};
use super::model::{
    Binding, FileId, InputFile, InputSymbol, SectionPositions, SymbolKind, SymbolSection as Place,
    Visibility, elf,
};
use crate::link_args::Discard;
use crate::prefetch;

/// What a definition is relative to before addresses are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SymBase {
    Abs,
    /// An output section (script symbols).
    Out(OsId),
    /// An input section (object symbols).
    Input(InputBase),
}

/// An input section as a symbol's base, in half a [`SectionRef`]: every layout of a prepared
/// link copies the whole symbol table, so its entries are kept small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InputBase {
    file: u32,
    sec: u32,
}

impl InputBase {
    /// None for a file or section position past 32 bits, which no readable input reaches
    /// (the reader refuses objects with more than 2^22 sections).
    fn new(r: SectionRef) -> Option<InputBase> {
        Some(InputBase {
            file: u32::try_from(r.file).ok()?,
            sec: u32::try_from(r.sec).ok()?,
        })
    }

    pub fn section(self) -> SectionRef {
        SectionRef {
            file: self.file as usize,
            sec: self.sec as usize,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SymState {
    /// Looked up by an expression but never defined or referenced by an object.
    New,
    Undefined {
        weak: bool,
    },
    Defined {
        base: SymBase,
        value: u64,
    },
    Common {
        size: u64,
        align: u64,
    },
}

/// One global symbol; its name borrows from the inputs, the script or the options.
#[derive(Debug, Clone)]
pub(crate) struct Sym<'n> {
    pub name: &'n str,
    pub state: SymState,
    pub weak_def: bool,
    pub kind: SymbolKind,
    /// HIDDEN/PROVIDE_HIDDEN in the script: bfd forces the symbol local in the output. (Hidden
    /// visibility from an object does so only in a link with dynamic sections: a static link
    /// keeps such symbols global.)
    pub forced_local: bool,
    pub script_def: bool,
    /// Defined by an object before any script assignment (ld's `by_object`).
    pub by_object: bool,
    /// The assignment pass (ld's `lang_statement_iteration`) that last assigned it from the script.
    pub def_iteration: Option<u32>,
    /// For `.`-derived absolute script symbols: the section `section_for_dot` chose (an
    /// [`OsId`], in 32 bits to keep the entry small).
    pub final_sec: Option<u32>,
    /// Referenced by an object (undefined reference) or by a script expression.
    pub referenced: bool,
    /// Named by a kept relocation of an input object: with `--emit-relocs`, an undefined one is
    /// listed in the output.
    pub object_ref: bool,
}

/// bfd's link hash table.
///
/// A prepared link's table is copied for every layout, which only adds names the script
/// defines: the names known when it was prepared and the kept locals are shared by the copies
/// (at 200k symbols, ~8 MB each layout did not copy).
#[derive(Debug, Default)]
pub(crate) struct SymbolTable<'n> {
    syms: Vec<Sym<'n>>,
    /// Ids of the names interned before [`SymbolTable::share_names`].
    shared_index: Arc<NameIndex>,
    /// Ids of the names interned since.
    index: NameIndex,
    /// Local symbols kept from the inputs.
    pub locals: Arc<Vec<KeptLocal>>,
}

/// Each input symbol's id in a [`SymbolTable`], by file and position; None for symbols not
/// resolved by name (locals, section and file symbols, unnamed ones).
#[derive(Debug)]
pub(crate) struct InputSymbolIds(Vec<Vec<Option<u32>>>);

impl InputSymbolIds {
    /// The id of symbol `index` of file `file`, if it is resolved by name.
    pub fn get(&self, file: usize, index: usize) -> Option<usize> {
        let id = *self.0.get(file)?.get(index)?;
        id.map(|id| id as usize)
    }
}

/// A local symbol the output keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeptLocal {
    pub file: FileId,
    /// Position in the file's symbol table.
    pub index: usize,
    /// Position in the file's sections of the section it is defined in (None: absolute).
    /// Found once here: every layout of a prepared link lists the locals again.
    pub section: Option<usize>,
    /// The symbol's value and type in its file, copied here for the same reason: the files'
    /// symbol records lie all over memory.
    pub value: u64,
    pub kind: SymbolKind,
}

/// Room a copy of the table keeps for symbols the script defines that no input named: a
/// layout interns them while sizing, and the first one past a full table would copy it all.
const SCRIPT_SYMBOL_ROOM: usize = 1024;

impl Clone for SymbolTable<'_> {
    fn clone(&self) -> Self {
        let mut syms = Vec::with_capacity(self.syms.len() + SCRIPT_SYMBOL_ROOM);
        syms.extend_from_slice(&self.syms);
        SymbolTable {
            syms,
            shared_index: Arc::clone(&self.shared_index),
            index: self.index.clone(),
            locals: Arc::clone(&self.locals),
        }
    }
}

impl<'n> SymbolTable<'n> {
    /// Moves the names interned so far to the part copies of the table share.
    pub fn share_names(&mut self) {
        if self.index.is_empty() {
            return;
        }
        let own = std::mem::take(&mut self.index);
        if self.shared_index.is_empty() {
            self.shared_index = Arc::new(own);
        } else {
            let syms = &self.syms;
            let shared = Arc::make_mut(&mut self.shared_index);
            for id in own.ids() {
                let name = syms[id as usize].name;
                shared.insert_new(NameIndex::hash(name), id, |id| syms[id as usize].name);
            }
        }
    }

    pub fn intern(&mut self, name: &'n str) -> usize {
        let hash = NameIndex::hash(name);
        if let Some(i) = self.find(hash, name) {
            return i;
        }
        let i = self.syms.len();
        self.syms.push(Sym {
            name,
            state: SymState::New,
            weak_def: false,
            kind: SymbolKind::NoType,
            forced_local: false,
            script_def: false,
            by_object: false,
            def_iteration: None,
            final_sec: None,
            referenced: false,
            object_ref: false,
        });
        let syms = &self.syms;
        self.index
            .insert_new(hash, i as u32, |id| syms[id as usize].name);
        i
    }

    pub fn lookup(&self, name: &str) -> Option<usize> {
        self.find(NameIndex::hash(name), name)
    }

    fn find(&self, hash: u64, name: &str) -> Option<usize> {
        let name_of = |id: u32| self.syms[id as usize].name;
        self.shared_index
            .find(hash, name, name_of)
            .or_else(|| self.index.find(hash, name, name_of))
            .map(|id| id as usize)
    }

    pub fn get(&self, id: usize) -> &Sym<'n> {
        &self.syms[id]
    }

    pub fn get_mut(&mut self, id: usize) -> &mut Sym<'n> {
        &mut self.syms[id]
    }

    pub fn all(&self) -> &[Sym<'n>] {
        &self.syms
    }

    pub fn mark_referenced(&mut self, id: usize) {
        let s = &mut self.syms[id];
        s.referenced = true;
        if s.state == SymState::New {
            s.state = SymState::Undefined { weak: false };
        }
    }

    /// A table of every global name of `files`, in link order, and each input symbol's id in
    /// it (None for the symbols [`SymbolTable::add_inputs`] does not resolve by name). The
    /// interning needs no section placement, so it runs while the sections are mapped.
    pub fn with_input_names(files: &[InputFile<'n>]) -> (SymbolTable<'n>, InputSymbolIds) {
        let mut table = SymbolTable::default();
        // Most global names are distinct: size the table once instead of regrowing it.
        let globals: usize = files
            .iter()
            .map(|f| {
                f.symbols
                    .iter()
                    .filter(|s| s.binding != Binding::Local)
                    .count()
            })
            .sum();
        table.syms.reserve(globals);
        let syms = &table.syms;
        table.index.reserve(globals, |id| syms[id as usize].name);
        let ids = files
            .iter()
            .map(|file| {
                // Hashing reads each name: start loading some ahead.
                prefetch::ahead(file.symbols.iter(), |sym| sym.name.as_bytes())
                    .map(|sym| {
                        let by_name = is_named(sym) && sym.binding != Binding::Local;
                        by_name.then(|| table.intern(sym.name) as u32)
                    })
                    .collect()
            })
            .collect();
        (table, InputSymbolIds(ids))
    }

    /// Adds every input file's symbols in link order, resolving as bfd's ELF linker does.
    /// The table holds the inputs' names already, and `ids` says where (see
    /// [`SymbolTable::with_input_names`]). With `localize_hidden` (a link with dynamic
    /// sections, where bfd adjusts every dynamic symbol) a global any input marks hidden or
    /// internal, defining or referencing it, is written local; a static link keeps it global.
    pub fn add_inputs(
        &mut self,
        files: &[InputFile<'n>],
        ids: &InputSymbolIds,
        disposition: &[Vec<Disposition>],
        discard: Discard,
        emit_relocs: bool,
        localize_hidden: bool,
    ) {
        // Which locals a file keeps depends on that file alone: the files are read side by
        // side, and their locals listed in file order.
        let (positions, kept): (Vec<SectionPositions<'_, '_>>, Vec<Vec<KeptLocal>>) = files
            .par_iter()
            .zip(disposition)
            .enumerate()
            .map(|(file_id, (file, disposition))| {
                let positions = file.section_positions();
                let kept =
                    kept_locals(file_id, file, &positions, disposition, discard, emit_relocs);
                (positions, kept)
            })
            .unzip();
        let locals = Arc::make_mut(&mut self.locals);
        locals.reserve_exact(kept.iter().map(Vec::len).sum());
        locals.extend(kept.into_iter().flatten());
        for (file_id, (file, positions)) in files.iter().zip(&positions).enumerate() {
            for (sym_idx, sym) in file.symbols.iter().enumerate() {
                if !is_named(sym) || sym.binding == Binding::Local {
                    continue;
                }
                let placed =
                    |shndx: usize| placed(positions, &disposition[file_id], file_id, shndx);
                let Some(id) = ids.get(file_id, sym_idx) else {
                    continue;
                };
                if localize_hidden
                    && matches!(sym.visibility, Visibility::Hidden | Visibility::Internal)
                {
                    self.syms[id].forced_local = true;
                }
                let weak = sym.binding == Binding::Weak;
                let definition = match sym.section {
                    Place::Undefined | Place::Reserved(_) => None,
                    Place::Absolute => Some(SymBase::Abs),
                    Place::Section(shndx) => {
                        placed(shndx).and_then(InputBase::new).map(SymBase::Input)
                    }
                    Place::Common => {
                        let align = sym.value;
                        let s = &mut self.syms[id];
                        match &mut s.state {
                            SymState::Defined { .. } => {}
                            SymState::Common { size, align: a } => {
                                *size = (*size).max(sym.size);
                                *a = (*a).max(align);
                            }
                            _ => {
                                s.state = SymState::Common {
                                    size: sym.size,
                                    align,
                                };
                                s.kind = SymbolKind::Object;
                            }
                        }
                        continue;
                    }
                };
                let s = &mut self.syms[id];
                match definition {
                    None => {
                        s.referenced = true;
                        if file.reloc_referenced.get(sym_idx).copied().unwrap_or(false) {
                            s.object_ref = true;
                        }
                        match s.state {
                            SymState::New => s.state = SymState::Undefined { weak },
                            SymState::Undefined { weak: true } if !weak => {
                                s.state = SymState::Undefined { weak: false }
                            }
                            _ => {}
                        }
                    }
                    Some(base) => {
                        let replace = match s.state {
                            SymState::New
                            | SymState::Undefined { .. }
                            | SymState::Common { .. } => true,
                            SymState::Defined { .. } => s.weak_def && !weak,
                        };
                        if replace {
                            s.state = SymState::Defined {
                                base,
                                value: sym.value,
                            };
                            s.weak_def = weak;
                            s.kind = sym.kind;
                            s.by_object = true;
                        }
                    }
                }
            }
        }
    }

    /// Takes the values of `file`'s section-relative globals from `replacement`, a file of the
    /// same shape standing in for input `file_id` (see [`InputFile::same_shape`]), wherever
    /// that file's definition is the one the table chose.
    pub fn revalue_file(
        &mut self,
        file_id: FileId,
        file: &InputFile<'_>,
        replacement: &InputFile<'_>,
    ) {
        for sym in replacement.symbols.iter() {
            let Place::Section(shndx) = sym.section else {
                continue;
            };
            if sym.binding == Binding::Local || sym.name.is_empty() {
                continue;
            }
            let (Some(id), Some(pos)) = (self.lookup(sym.name), file.section_position(shndx))
            else {
                continue;
            };
            if let SymState::Defined {
                base: SymBase::Input(r),
                value,
            } = &mut self.syms[id].state
                && r.section()
                    == (SectionRef {
                        file: file_id,
                        sec: pos,
                    })
            {
                *value = sym.value;
            }
        }
    }
}

/// The section a linked symbol's value is relative to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SymbolSection {
    Absolute,
    Undefined,
    /// An output section, by name (shared by all its symbols).
    Section(Arc<str>),
}

/// A linked symbol's name: a stretch of one text that holds the names of every symbol a
/// prepared link knows, so each layout's symbol list copies no name and touches no memory per
/// name (at 200k symbols, one reference count per name cost a cache miss per symbol in every
/// layout, and as many allocations when preparing).
#[derive(Clone)]
pub struct SymbolName {
    text: Arc<NamesHold>,
    start: u32,
    len: u32,
}

/// One layout's reference to a names text. Its symbols count their references here, not on
/// the text, so that layouts built side by side (margin probes) do not all update one count.
pub struct NamesHold(Arc<String>);

impl SymbolName {
    pub fn as_str(&self) -> &str {
        let start = self.start as usize;
        &self.text.0[start..start + self.len as usize]
    }
}

/// The names of many symbols in one text; [`SymbolNames::get`] hands them out.
#[derive(Debug, Default)]
pub(crate) struct SymbolNames {
    text: Arc<String>,
    /// Start and length of each name in `text`.
    spans: Vec<(u32, u32)>,
}

impl SymbolNames {
    /// `names` in order, or None when their text would not fit 32-bit offsets.
    pub fn new<'n>(names: impl Iterator<Item = &'n str> + Clone) -> Option<SymbolNames> {
        let bytes: usize = names.clone().map(str::len).sum();
        u32::try_from(bytes).ok()?;
        let mut text = String::with_capacity(bytes);
        // The names lie wherever their string tables put them: start loading some ahead.
        let spans = prefetch::ahead(names, |name| name.as_bytes())
            .map(|name| {
                let start = text.len() as u32;
                text.push_str(name);
                (start, name.len() as u32)
            })
            .collect();
        Some(SymbolNames {
            text: Arc::new(text),
            spans,
        })
    }

    /// A new hold on the text, for one layout's names.
    pub fn hold(&self) -> Arc<NamesHold> {
        Arc::new(NamesHold(Arc::clone(&self.text)))
    }

    /// Name `i` of the list, held by `hold` (from [`SymbolNames::hold`]).
    pub fn get(&self, hold: &Arc<NamesHold>, i: usize) -> Option<SymbolName> {
        let &(start, len) = self.spans.get(i)?;
        Some(SymbolName {
            text: Arc::clone(hold),
            start,
            len,
        })
    }
}

impl From<&str> for SymbolName {
    fn from(name: &str) -> Self {
        SymbolName {
            text: Arc::new(NamesHold(Arc::new(name.to_string()))),
            start: 0,
            len: name.len() as u32,
        }
    }
}

impl From<String> for SymbolName {
    fn from(name: String) -> Self {
        SymbolName {
            start: 0,
            len: name.len() as u32,
            text: Arc::new(NamesHold(Arc::new(name))),
        }
    }
}

impl std::ops::Deref for SymbolName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for SymbolName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SymbolName {}

impl std::fmt::Debug for SymbolName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

impl std::fmt::Display for SymbolName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

impl Serialize for SymbolName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A symbol of the linked output, as `nm` would show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkedSymbol {
    pub name: SymbolName,
    pub value: u64,
    pub section: SymbolSection,
    /// The `nm` type letter.
    pub nm: char,
    pub global: bool,
    /// Defined by the linker script rather than an input object.
    pub from_script: bool,
    /// STT_FUNC (ARM's nm clears the Thumb bit of these).
    pub is_function: bool,
}

/// Whether an input symbol is one the link resolves or keeps under its name: not a section
/// or file symbol, and named.
fn is_named(sym: &InputSymbol<'_>) -> bool {
    !matches!(sym.kind, SymbolKind::Section | SymbolKind::File) && !sym.name.is_empty()
}

/// Where a symbol of input `file_id` defined in its section of ELF index `shndx` ends up:
/// None when that section was dropped.
fn placed(
    positions: &SectionPositions<'_, '_>,
    disposition: &[Disposition],
    file_id: FileId,
    shndx: usize,
) -> Option<SectionRef> {
    let pos = positions.get(shndx)?;
    match disposition[pos] {
        Disposition::Dropped => None,
        _ => Some(SectionRef {
            file: file_id,
            sec: pos,
        }),
    }
}

/// The local symbols input `file_id` keeps in the output, in its symbol table's order.
fn kept_locals(
    file_id: FileId,
    file: &InputFile<'_>,
    positions: &SectionPositions<'_, '_>,
    disposition: &[Disposition],
    discard: Discard,
    emit_relocs: bool,
) -> Vec<KeptLocal> {
    let mut kept = Vec::new();
    for (sym_idx, sym) in file.symbols.iter().enumerate() {
        if !is_named(sym) || sym.binding != Binding::Local {
            continue;
        }
        // Measured against ld 2.40: `--emit-relocs` keeps a local that a kept relocation
        // names whatever the discard mode.
        let in_merge_section = || match sym.section {
            Place::Section(shndx) => positions
                .get(shndx)
                .is_some_and(|pos| file.sections[pos].sh_flags & elf::SHF_MERGE != 0),
            _ => false,
        };
        let discarded = match discard {
            Discard::None => false,
            Discard::SecMerge => is_local_label_name(sym.name) && in_merge_section(),
            Discard::Locals => is_local_label_name(sym.name),
            Discard::All => true,
        };
        if discarded
            && !(emit_relocs && file.reloc_referenced.get(sym_idx).copied().unwrap_or(false))
        {
            continue;
        }
        let section = match sym.section {
            Place::Section(shndx) => match placed(positions, disposition, file_id, shndx) {
                Some(r) => Some(r.sec),
                None => continue,
            },
            Place::Absolute => None,
            _ => continue,
        };
        kept.push(KeptLocal {
            file: file_id,
            index: sym_idx,
            section,
            value: sym.value,
            kind: sym.kind,
        });
    }
    kept
}

/// bfd's `_bfd_elf_is_local_label_name`: assembler temporaries (`.L…`, `..…`, `_.L_…`) and
/// the `L0^A`/`L1^B2` fake and numeric local labels gas emits, which `-X` drops (ld's default
/// only in mergeable sections).
pub fn is_local_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.starts_with(b".L") || b.starts_with(b"..") || b.starts_with(b"_.L_") {
        return true;
    }
    if b.len() >= 2 && b[0] == b'L' && b[1].is_ascii_digit() {
        let mut i = 2;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i < b.len() && (b[i] == 1 || b[i] == 2) {
            return b[i + 1..].iter().all(u8::is_ascii_digit) || b[i] == 1;
        }
    }
    false
}
