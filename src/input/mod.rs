//! Link inputs: ELF relocatable objects and archives (regular and thin), memory-mapped.
//!
//! [`FileStore`] owns the mappings; everything parsed from them ([`InputObject`], [`Archive`])
//! borrows section data and names from the mapped bytes and copies nothing. [`select`] decides
//! which archive members a link uses and in which order, as ld does. This module must not do
//! layout: it only reports what the inputs contain.

mod archive;
pub mod nm;
mod object;
pub mod select;

use crate::hash::{FastMap, FastSet};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use rayon::prelude::*;
use thiserror::Error;

pub use self::archive::{Archive, ArchiveSymbol};
pub use self::object::{
    Binding, Group, InputObject, InputSection, InputSymbol, SymbolKind, SymbolSection, Visibility,
};
use crate::target::{ElfClass, Endian};

/// Fails unless `path` names a regular file (following symlinks), without opening it: opening a
/// FIFO would block until a writer appears, and devices can stream forever.
pub fn ensure_regular_file(path: &Path) -> std::io::Result<()> {
    regular(std::fs::metadata(path)?.file_type())
}

/// Fails unless `kind` is a regular file, naming what it is instead.
fn regular(kind: std::fs::FileType) -> std::io::Result<()> {
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "a special file"
    };
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("is {what}, not a regular file"),
    ))
}

/// Reads a whole regular file; see [`ensure_regular_file`].
pub fn read_regular_file(path: &Path) -> std::io::Result<Vec<u8>> {
    ensure_regular_file(path)?;
    std::fs::read(path)
}

/// Why an input could not be read. Every variant names the file (and archive member).
#[derive(Debug, Error)]
pub enum InputError {
    #[error("{path}: cannot open: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: is a directory, not an object or archive")]
    Directory(PathBuf),
    #[error("{file}: not an ELF object or archive ({detail})")]
    Foreign { file: String, detail: &'static str },
    #[error("{file}: malformed ELF: {detail}")]
    Malformed { file: String, detail: String },
    #[error("{file}: is not a relocatable object (ELF type {e_type})")]
    NotRelocatable { file: String, e_type: u16 },
    #[error("{file}: is {found:?}, the target needs {expected:?}")]
    WrongClass {
        file: String,
        expected: ElfClass,
        found: ElfClass,
    },
    #[error("{file}: is {found:?}-endian, the target needs {expected:?}-endian")]
    WrongEndian {
        file: String,
        expected: Endian,
        found: Endian,
    },
    #[error("{file}: has e_machine {found}, the target `{target}` needs {expected}")]
    WrongMachine {
        file: String,
        target: String,
        expected: u16,
        found: u16,
    },
    #[error("{file}: bad archive: {detail}")]
    BadArchive { file: String, detail: String },
    #[error("{file}: {what} is not valid UTF-8")]
    NonUtf8 { file: String, what: String },
    #[error(
        "{0}: archive has no symbol index (run ranlib), and it is not linked with --whole-archive"
    )]
    NoIndex(String),
}

/// Where an object came from: a file, or a member of an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    /// The file named on the command line (the archive for members).
    pub file: &'a Path,
    /// The member name inside the archive (a path for thin archives).
    pub member: Option<&'a str>,
}

impl std::fmt::Display for Origin<'_> {
    /// `file` or `archive(member)`, the way ld names inputs in its messages and maps.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.member {
            Some(m) => write!(f, "{}({m})", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// Handle of a mapped file inside a [`FileStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId(usize);

struct Mapped {
    path: PathBuf,
    /// `None` for an empty file, which cannot be mapped. Mapped lazily: nothing is copied, and
    /// only the pages the readers touch (headers, symbol and string tables, mergeable strings)
    /// are ever faulted in.
    map: Option<Mmap>,
}

/// Owner of every mapped input file; parsed views borrow from it.
#[derive(Default)]
pub struct FileStore {
    files: Vec<Mapped>,
    /// Keyed by the path's bytes: hashing a `Path` walks its components, and a kernel link
    /// looks up every thin-archive member.
    by_path: FastMap<Box<[u8]>, FileId>,
}

/// A parsed input file.
#[derive(Debug)]
pub enum InputFile<'a> {
    Object(InputObject<'a>),
    Archive(Archive<'a>),
}

impl FileStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `path` (once; a second call returns the same id) and, for a thin archive, every
    /// member file it names, relative to the archive's directory.
    pub fn load(&mut self, path: &Path) -> Result<FileId, InputError> {
        let id = self.map_file(path)?;
        if let Some(members) = archive::thin_member_paths(path, self.bytes(id))? {
            self.map_members(members)?;
        }
        Ok(id)
    }

    fn map_file(&mut self, path: &Path) -> Result<FileId, InputError> {
        if let Some(id) = self.lookup(path) {
            return Ok(id);
        }
        let map = map_path(path)?;
        Ok(self.add(path.to_path_buf(), map))
    }

    /// Maps a thin archive's member files, opening them on every thread (a kernel link
    /// names hundreds); the first error in the archive's order is the one reported.
    fn map_members(&mut self, members: Vec<PathBuf>) -> Result<(), InputError> {
        let mut seen = FastSet::default();
        let fresh: Vec<&PathBuf> = members
            .iter()
            .filter(|m| self.lookup(m).is_none() && seen.insert(m.as_os_str().as_encoded_bytes()))
            .collect();
        let maps: Vec<Result<Option<Mmap>, InputError>> =
            fresh.par_iter().map(|m| map_path(m)).collect();
        for (path, map) in fresh.into_iter().zip(maps) {
            self.add(path.clone(), map?);
        }
        Ok(())
    }

    fn add(&mut self, path: PathBuf, map: Option<Mmap>) -> FileId {
        let id = FileId(self.files.len());
        self.by_path
            .insert(path.as_os_str().as_encoded_bytes().into(), id);
        self.files.push(Mapped { path, map });
        id
    }

    /// The mapped bytes of a file.
    pub fn bytes(&self, id: FileId) -> &[u8] {
        self.files[id.0].map.as_deref().unwrap_or(&[])
    }

    /// The path a file was loaded from.
    pub fn path(&self, id: FileId) -> &Path {
        &self.files[id.0].path
    }

    fn lookup(&self, path: &Path) -> Option<FileId> {
        self.by_path
            .get(path.as_os_str().as_encoded_bytes())
            .copied()
    }

    /// Parses a loaded file as an object or archive. With a target, every object is checked
    /// against its class, byte order and machine.
    pub fn parse(
        &self,
        id: FileId,
        target: Option<&crate::target::Target>,
    ) -> Result<InputFile<'_>, InputError> {
        parse_input(Some(self), self.path(id), self.bytes(id), target)
    }
}

/// Maps the regular file at `path` (`None` when it is empty, which cannot be mapped).
fn map_path(path: &Path) -> Result<Option<Mmap>, InputError> {
    let io = |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Opened without blocking, so that a FIFO named as an input is refused below instead of
    // waiting for a writer; one fstat then tells what the path is.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(InputError::Directory(path.to_path_buf()));
    }
    regular(meta.file_type()).map_err(io)?;
    let len = meta.len();
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: the mapping is read-only and private to this process. As with ld itself,
    // another process truncating an input while we read it is outside our contract.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .len(usize::try_from(len).unwrap_or(usize::MAX))
            .map(&file)
    };
    map.map(Some).map_err(io)
}

/// Parses in-memory bytes as an object or archive, named `path` in errors: what
/// [`FileStore::parse`] does for a mapped file. It exists so that fuzzers and tests can feed
/// buffers without files; a thin archive's members are files, so they are reported as not
/// loaded.
pub fn parse_bytes<'a>(
    path: &'a Path,
    data: &'a [u8],
    target: Option<&crate::target::Target>,
) -> Result<InputFile<'a>, InputError> {
    parse_input(None, path, data, target)
}

fn parse_input<'a>(
    store: Option<&'a FileStore>,
    path: &'a Path,
    data: &'a [u8],
    target: Option<&crate::target::Target>,
) -> Result<InputFile<'a>, InputError> {
    if archive::is_archive(data) {
        Ok(InputFile::Archive(Archive::parse(
            store, path, data, target,
        )?))
    } else {
        let origin = Origin {
            file: path,
            member: None,
        };
        Ok(InputFile::Object(InputObject::parse(data, origin, target)?))
    }
}
