//! `ar` archives, regular and thin: members parsed as [`InputObject`]s, plus the symbol index
//! ld searches. Thin archive members are separate files, named relative to the archive's
//! directory, which the [`FileStore`] maps when the archive is loaded.

use crate::hash::FastMap;
use std::path::{Path, PathBuf};

use object::read::archive::ArchiveFile;
use rayon::prelude::*;

use super::{FileStore, InputError, InputObject, Origin};
use crate::target::Target;

const MAGIC: &[u8] = b"!<arch>\n";
const THIN_MAGIC: &[u8] = b"!<thin>\n";

/// True when the bytes start like an `ar` archive (regular or thin).
pub(super) fn is_archive(data: &[u8]) -> bool {
    data.starts_with(MAGIC) || data.starts_with(THIN_MAGIC)
}

/// One entry of an archive's symbol index: a defined global symbol and its member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveSymbol<'a> {
    pub name: &'a str,
    /// Index into [`Archive::members`].
    pub member: usize,
}

/// A parsed archive.
#[derive(Debug)]
pub struct Archive<'a> {
    pub path: &'a Path,
    pub thin: bool,
    /// Members in archive order.
    pub members: Vec<InputObject<'a>>,
    /// The archive's symbol index in stored order (`None` when the archive has none).
    pub index: Option<Vec<ArchiveSymbol<'a>>>,
}

fn bad_archive(path: &Path, detail: impl ToString) -> InputError {
    InputError::BadArchive {
        file: path.display().to_string(),
        detail: detail.to_string(),
    }
}

fn member_name<'a>(path: &Path, raw: &'a [u8]) -> Result<&'a str, InputError> {
    std::str::from_utf8(raw).map_err(|_| InputError::NonUtf8 {
        file: path.display().to_string(),
        what: "an archive member name".into(),
    })
}

/// For a thin archive, the paths of its member files (relative to the archive's directory
/// unless absolute); `None` for anything else.
pub(super) fn thin_member_paths(
    path: &Path,
    data: &[u8],
) -> Result<Option<Vec<PathBuf>>, InputError> {
    if !data.starts_with(THIN_MAGIC) {
        return Ok(None);
    }
    let archive = ArchiveFile::parse(data).map_err(|e| bad_archive(path, e))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut paths = Vec::new();
    for member in archive.members() {
        let member = member.map_err(|e| bad_archive(path, e))?;
        paths.push(dir.join(member_name(path, member.name())?));
    }
    Ok(Some(paths))
}

/// Identifies a member by where its header lies in the archive (thin members have no data
/// offset of their own).
fn header_key(member: &object::read::archive::ArchiveMember<'_>) -> usize {
    member
        .header()
        .map_or(0, |h| std::ptr::from_ref(h) as usize)
}

/// One member's origin, bytes (a thin member's from its mapped file) and [`header_key`].
fn member_bytes<'a>(
    store: Option<&'a FileStore>,
    path: &'a Path,
    dir: &Path,
    thin: bool,
    data: &'a [u8],
    member: object::Result<object::read::archive::ArchiveMember<'a>>,
) -> Result<(Origin<'a>, &'a [u8], usize), InputError> {
    let member = member.map_err(|e| bad_archive(path, e))?;
    let name = member_name(path, member.name())?;
    let bytes = if thin {
        let file = dir.join(name);
        let loaded = store.and_then(|s| Some((s, s.lookup(&file)?)));
        let (store, id) = loaded.ok_or_else(|| {
            bad_archive(
                path,
                format!("thin member {} was not loaded", file.display()),
            )
        })?;
        store.bytes(id)
    } else {
        member.data(data).map_err(|e| bad_archive(path, e))?
    };
    let origin = Origin {
        file: path,
        member: Some(name),
    };
    Ok((origin, bytes, header_key(&member)))
}

impl<'a> Archive<'a> {
    /// Parses an archive whose bytes (and, if thin, member files) `store` has mapped; without
    /// a store, a thin archive's members are reported as not loaded.
    pub(super) fn parse(
        store: Option<&'a FileStore>,
        path: &'a Path,
        data: &'a [u8],
        target: Option<&Target>,
    ) -> Result<Self, InputError> {
        let archive = ArchiveFile::parse(data).map_err(|e| bad_archive(path, e))?;
        let thin = archive.is_thin();
        let dir = path.parent().unwrap_or(Path::new(""));
        // Members are read in order and parsed on every thread, which is also where a thin
        // archive's member files are first touched; a bad member header stops the reading,
        // and the first error in archive order is the one reported.
        let mut unparsed = Vec::new();
        let mut by_offset = FastMap::default();
        let mut stopped = None;
        for member in archive.members() {
            match member_bytes(store, path, dir, thin, data, member) {
                Ok((origin, bytes, key)) => {
                    by_offset.insert(key, unparsed.len());
                    unparsed.push((origin, bytes));
                }
                Err(e) => {
                    stopped = Some(e);
                    break;
                }
            }
        }
        let parsed: Vec<Result<InputObject<'a>, InputError>> = unparsed
            .into_par_iter()
            .map(|(origin, bytes)| {
                if is_archive(bytes) {
                    let name = origin.member.unwrap_or_default();
                    return Err(bad_archive(
                        path,
                        format!("member {name} is itself an archive"),
                    ));
                }
                InputObject::parse(bytes, origin, target)
            })
            .collect();
        let members = parsed.into_iter().collect::<Result<Vec<_>, _>>()?;
        if let Some(e) = stopped {
            return Err(e);
        }
        let index = match archive.symbols().map_err(|e| bad_archive(path, e))? {
            None => None,
            Some(symbols) => {
                let mut index = Vec::new();
                for sym in symbols {
                    let sym = sym.map_err(|e| bad_archive(path, e))?;
                    let member = archive
                        .member(sym.offset())
                        .map_err(|e| bad_archive(path, e))?;
                    let member = *by_offset
                        .get(&header_key(&member))
                        .ok_or_else(|| bad_archive(path, "symbol index points between members"))?;
                    let name =
                        std::str::from_utf8(sym.name()).map_err(|_| InputError::NonUtf8 {
                            file: path.display().to_string(),
                            what: "a symbol index entry".into(),
                        })?;
                    index.push(ArchiveSymbol { name, member });
                }
                Some(index)
            }
        };
        Ok(Archive {
            path,
            thin,
            members,
            index,
        })
    }
}
