//! Which objects a link uses, and in which order: ld's archive semantics.
//!
//! Plain objects are always linked. A normal archive contributes a member only while its
//! symbol index names a symbol that is currently undefined (or common, when the member defines
//! it for real), scanning the index again after each pass that pulled something. Weak
//! undefined symbols pull nothing. `--whole-archive` takes every member in archive order.
//! `--start-group … --end-group` rescans its archives until no new undefined symbol appears.
//! The resulting order is load order, which is the order ld places input sections in.
//! Also decides which COMDAT groups are kept (first signature wins).

use crate::hash::{FastMap, FastSet};
use std::path::Path;

use super::{Archive, FileId, FileStore, InputError, InputFile, InputObject, SymbolSection};
use crate::link_args::InputItem;
use crate::target::Target;

/// An input item after its file was mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadedItem {
    File(FileId),
    WholeArchive,
    NoWholeArchive,
    StartGroup,
    EndGroup,
}

/// Identifies one object of a [`LinkSet`]: a plain file, or a member of an archive file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// Index into [`LinkSet::files`].
    pub file: usize,
    /// Member index for archives.
    pub member: Option<usize>,
}

/// The parsed inputs of a link and the objects ld uses, in ld's order.
#[derive(Debug)]
pub struct LinkSet<'a> {
    /// Every file named on the command line, parsed, in command-line order.
    pub files: Vec<InputFile<'a>>,
    /// The objects ld links, in load order (= input section order).
    pub order: Vec<ObjectRef>,
    /// Symbols undefined before any input (`-u`, and `ENTRY` when ld adds it).
    pub initially_undefined: Vec<&'a str>,
}

impl FileStore {
    /// Maps every file of a command line's input list, resolving `-l` with `find_library`.
    pub fn load_items(
        &mut self,
        items: &[InputItem],
        base: &Path,
        mut find_library: impl FnMut(&str) -> Option<std::path::PathBuf>,
    ) -> Result<Vec<LoadedItem>, InputError> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(match item {
                InputItem::File(p) => LoadedItem::File(self.load(&base.join(p))?),
                InputItem::Library(name) => {
                    let path = find_library(name).ok_or_else(|| InputError::Io {
                        path: format!("-l{name}").into(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "library not found",
                        ),
                    })?;
                    LoadedItem::File(self.load(&path)?)
                }
                InputItem::WholeArchive => LoadedItem::WholeArchive,
                InputItem::NoWholeArchive => LoadedItem::NoWholeArchive,
                InputItem::StartGroup => LoadedItem::StartGroup,
                InputItem::EndGroup => LoadedItem::EndGroup,
            });
        }
        Ok(out)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// No loaded object mentions the name yet.
    Unseen,
    Undefined,
    UndefWeak,
    Common,
    Defined,
}

/// ld's archive search, tracking only the names some searched archive's index offers: no
/// other name can pull a member, and a kernel link's objects define hundreds of thousands of
/// names its libraries never mention.
struct Resolver<'a> {
    watched: FastMap<&'a str, State>,
    /// Count of watched symbols that ever entered the undefined list (ld's `undefs` chain;
    /// other names entering it cannot make a group's rescan pull anything).
    undefs_added: usize,
    order: Vec<ObjectRef>,
    loaded: FastSet<ObjectRef>,
}

impl<'a> Resolver<'a> {
    fn add_undefined(&mut self, name: &'a str, weak: bool) {
        let new = if weak {
            State::UndefWeak
        } else {
            State::Undefined
        };
        match self.watched.get_mut(name) {
            Some(s @ State::Unseen) => {
                *s = new;
                self.undefs_added += 1;
            }
            Some(s @ State::UndefWeak) if !weak => *s = State::Undefined,
            _ => {}
        }
    }

    fn add_object(&mut self, r: ObjectRef, obj: &InputObject<'a>) {
        self.order.push(r);
        self.loaded.insert(r);
        for sym in obj.symbols.iter().skip(1) {
            if sym.binding == super::Binding::Local || sym.name.is_empty() {
                continue;
            }
            match sym.section {
                SymbolSection::Undefined => {
                    self.add_undefined(sym.name, sym.binding == super::Binding::Weak)
                }
                SymbolSection::Common => {
                    if let Some(s) = self.watched.get_mut(sym.name)
                        && *s != State::Defined
                    {
                        *s = State::Common;
                    }
                }
                _ => {
                    if let Some(s) = self.watched.get_mut(sym.name) {
                        *s = State::Defined;
                    }
                }
            }
        }
    }

    /// One search of a normal archive: pass over its index until a pass pulls nothing.
    /// Returns whether anything was pulled.
    fn search(&mut self, file: usize, archive: &Archive<'a>) -> Result<bool, InputError> {
        let index = archive
            .index
            .as_ref()
            .ok_or_else(|| InputError::NoIndex(archive.path.display().to_string()))?;
        let mut any = false;
        loop {
            let mut pulled = false;
            for entry in index {
                let r = ObjectRef {
                    file,
                    member: Some(entry.member),
                };
                if self.loaded.contains(&r) {
                    continue;
                }
                let member = &archive.members[entry.member];
                let wanted = match self.watched.get(entry.name) {
                    Some(State::Undefined) => true,
                    Some(State::Common) => defines_for_real(member, entry.name),
                    _ => false,
                };
                if wanted {
                    self.add_object(r, member);
                    pulled = true;
                }
            }
            if !pulled {
                return Ok(any);
            }
            any = true;
        }
    }
}

/// A common symbol pulls a member only if the member defines it in a section or absolutely.
fn defines_for_real(obj: &InputObject<'_>, name: &str) -> bool {
    obj.symbols.iter().any(|s| {
        s.name == name
            && s.binding != super::Binding::Local
            && matches!(
                s.section,
                SymbolSection::Section(_) | SymbolSection::Absolute
            )
    })
}

impl<'a> LinkSet<'a> {
    /// Parses the loaded items and decides which objects the link uses and in which order.
    /// `undefined` lists symbols undefined before any input (`-u`, and `ENTRY` when ld adds it).
    pub fn resolve(
        store: &'a FileStore,
        items: &[LoadedItem],
        target: Option<&Target>,
        undefined: &[&'a str],
    ) -> Result<Self, InputError> {
        let mut files = Vec::new();
        let mut file_of_item = Vec::with_capacity(items.len());
        for item in items {
            if let LoadedItem::File(id) = item {
                file_of_item.push(Some(files.len()));
                files.push(store.parse(*id, target)?);
            } else {
                file_of_item.push(None);
            }
        }
        let mut res = Resolver {
            watched: searched_index_names(items, &file_of_item, &files),
            undefs_added: 0,
            order: Vec::new(),
            loaded: FastSet::default(),
        };
        for name in undefined {
            res.add_undefined(name, false);
        }
        let mut whole = false;
        let mut group_start: Option<usize> = None;
        for (i, item) in items.iter().enumerate() {
            match item {
                LoadedItem::WholeArchive => whole = true,
                LoadedItem::NoWholeArchive => whole = false,
                LoadedItem::StartGroup => group_start = Some(i),
                LoadedItem::EndGroup => {
                    if let Some(start) = group_start.take() {
                        loop {
                            let before = res.undefs_added;
                            for (j, file) in file_of_item.iter().enumerate().take(i).skip(start) {
                                let Some(f) = *file else { continue };
                                if let InputFile::Archive(a) = &files[f]
                                    && !is_whole(items, j)
                                {
                                    res.search(f, a)?;
                                }
                            }
                            if res.undefs_added == before {
                                break;
                            }
                        }
                    }
                }
                LoadedItem::File(_) => {
                    let Some(f) = file_of_item[i] else { continue };
                    match &files[f] {
                        InputFile::Object(o) => res.add_object(
                            ObjectRef {
                                file: f,
                                member: None,
                            },
                            o,
                        ),
                        InputFile::Archive(a) if whole => {
                            for (m, member) in a.members.iter().enumerate() {
                                res.add_object(
                                    ObjectRef {
                                        file: f,
                                        member: Some(m),
                                    },
                                    member,
                                );
                            }
                        }
                        InputFile::Archive(a) => {
                            res.search(f, a)?;
                        }
                    }
                }
            }
        }
        Ok(LinkSet {
            files,
            order: res.order,
            initially_undefined: undefined.to_vec(),
        })
    }

    /// Global symbols still undefined after all archives were searched (strong ones only),
    /// sorted: referenced strongly (or by `-u`) and neither defined nor common in any linked
    /// object, whatever the order.
    pub fn undefined(&self) -> Vec<&'a str> {
        let mut referenced: FastSet<&'a str> = self.initially_undefined.iter().copied().collect();
        let mut provided: FastSet<&'a str> = FastSet::default();
        for (_, obj) in self.objects() {
            for sym in obj.symbols.iter().skip(1) {
                if sym.binding == super::Binding::Local || sym.name.is_empty() {
                    continue;
                }
                match sym.section {
                    SymbolSection::Undefined if sym.binding == super::Binding::Weak => {}
                    SymbolSection::Undefined => {
                        referenced.insert(sym.name);
                    }
                    _ => {
                        provided.insert(sym.name);
                    }
                }
            }
        }
        let mut undefined: Vec<&'a str> = referenced.difference(&provided).copied().collect();
        undefined.sort_unstable();
        undefined
    }

    /// The object an [`ObjectRef`] names.
    pub fn object(&self, r: ObjectRef) -> Option<&InputObject<'a>> {
        match (self.files.get(r.file)?, r.member) {
            (InputFile::Object(o), None) => Some(o),
            (InputFile::Archive(a), Some(m)) => a.members.get(m),
            _ => None,
        }
    }

    /// The linked objects in ld's order.
    pub fn objects(&self) -> impl Iterator<Item = (ObjectRef, &InputObject<'a>)> {
        self.order
            .iter()
            .filter_map(|&r| Some((r, self.object(r)?)))
    }

    /// Sections ld drops as duplicates: members of a COMDAT group whose signature an earlier
    /// object already brought, and `.gnu.linkonce.*` sections whose name was already seen.
    pub fn discarded_duplicates(&self) -> FastSet<(ObjectRef, usize)> {
        let mut seen_groups = FastSet::default();
        let mut seen_linkonce = FastSet::default();
        let mut dropped = FastSet::default();
        for (r, obj) in self.objects() {
            for g in obj.groups.iter().filter(|g| g.comdat) {
                if !seen_groups.insert(g.signature) {
                    dropped.insert((r, g.section));
                    dropped.extend(g.members.iter().map(|&m| (r, m)));
                }
            }
            for s in obj
                .sections
                .iter()
                .filter(|s| s.name.starts_with(".gnu.linkonce."))
            {
                if !seen_linkonce.insert(s.name) {
                    dropped.insert((r, s.index));
                }
            }
        }
        dropped
    }
}

/// Whether item `j` falls under `--whole-archive`.
/// Every name in the index of an archive the link searches (one not under `--whole-archive`),
/// none of them seen yet.
fn searched_index_names<'a>(
    items: &[LoadedItem],
    file_of_item: &[Option<usize>],
    files: &[InputFile<'a>],
) -> FastMap<&'a str, State> {
    let mut watched = FastMap::default();
    for (i, file) in file_of_item.iter().enumerate() {
        if let Some(InputFile::Archive(a)) = file.map(|f| &files[f])
            && !is_whole(items, i)
        {
            for entry in a.index.iter().flatten() {
                watched.insert(entry.name, State::Unseen);
            }
        }
    }
    watched
}

fn is_whole(items: &[LoadedItem], j: usize) -> bool {
    items[..j]
        .iter()
        .rev()
        .find_map(|it| match it {
            LoadedItem::WholeArchive => Some(true),
            LoadedItem::NoWholeArchive => Some(false),
            _ => None,
        })
        .unwrap_or(false)
}
