//! CONFIG_TRIM_UNUSED_KSYMS: objects whose exports or timestamps show a rebuild make skipped.
//!
//! With trimming, `EXPORT_SYMBOL(sym)` only emits a `__ksymtab` entry when the wanted-symbol
//! list (`include/generated/autoksyms.h`) defines `__KSYM_sym`. When the list changes,
//! `scripts/adjust_autoksyms.sh` touches one stamp file per changed symbol and re-runs make,
//! which rebuilds the objects listing that stamp as a prerequisite — but only when the stamp is
//! *newer* than the object, so an equal mtime on a 1-second filesystem silently skips the
//! rebuild and modpost later finds the export missing.
//!
//! This module owns: which mechanism a tree uses (from its kernel version), the list, the stamp
//! naming of each mechanism, the stamps `.cmd` files list, and which objects carry `__ksymtab`
//! entries or `__ksym_marker_` symbols. It reports; it never runs make. The only write is
//! [`remove_objects`], which deletes exactly the objects a report names as stale.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use thiserror::Error;

use super::tree::{Config, KernelVersion, TreeError, read_version};
use crate::input::{Binding, FileStore, InputFile, InputObject, SymbolSection};

/// Version of the JSON document [`Report`] serializes to (see `docs/ksyms-json.md`).
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// The wanted-symbol list, relative to the object tree.
pub const WANTED_LIST: &str = "include/generated/autoksyms.h";

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// Why a tree could not be checked (exit status 2 in the CLI).
#[derive(Debug, Error, miette::Diagnostic)]
pub enum KsymsError {
    #[error("{0}: not a directory (pass the Kbuild output tree, the O= directory)")]
    NotATree(PathBuf),
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(
        "{0}: not a configured Kbuild tree (no .config, include/config/auto.conf or {WANTED_LIST})"
    )]
    NotConfigured(PathBuf),
    #[error(
        "{0}: cannot tell the kernel version: no include/config/kernel.release, no Makefile with \
         VERSION and PATCHLEVEL (pass --srctree), and no stamp directory (include/config/ksym/ or \
         include/ksym/)"
    )]
    UnknownVersion(PathBuf),
    #[error(
        "{0}: the wanted-symbol list {WANTED_LIST} is missing; build the tree with make before \
         checking it"
    )]
    NoWantedList(PathBuf),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KsymsError + '_ {
    move |source| KsymsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How a kernel keeps objects in step with the wanted-symbol list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    /// Linux 4.7–4.20: `include/config/ksym/<path>.h`, the symbol lower-cased with `_` turned
    /// into `/` (`tr "A-Z_" "a-z/"`); fixdep lists the stamps in the `deps_` of `.cmd` files.
    ConfigKsym,
    /// Linux 5.0–5.14: the same naming under `include/ksym/`; objects carry a
    /// `__ksym_marker_<sym>` symbol per EXPORT_SYMBOL and `.cmd` files a `ksymdeps_` list.
    KsymPath,
    /// Linux 5.15–6.4: `include/ksym/<sym>`, named by the symbol itself.
    KsymRaw,
    /// Linux 6.5 and later: modpost trims the exports; no stamps and no recursive make.
    Modpost,
}

impl Mechanism {
    /// The mechanism of a kernel version; `None` before 4.7, which had no trimming.
    pub fn for_version(v: KernelVersion) -> Option<Self> {
        let v = (v.major, v.minor);
        if v < (4, 7) {
            None
        } else if v < (5, 0) {
            Some(Self::ConfigKsym)
        } else if v < (5, 15) {
            Some(Self::KsymPath)
        } else if v < (6, 5) {
            Some(Self::KsymRaw)
        } else {
            Some(Self::Modpost)
        }
    }

    /// The kernels that use this mechanism, for messages.
    pub fn kernels(self) -> &'static str {
        match self {
            Self::ConfigKsym => "Linux 4.7–4.20",
            Self::KsymPath => "Linux 5.0–5.14",
            Self::KsymRaw => "Linux 5.15–6.4",
            Self::Modpost => "Linux 6.5 and later",
        }
    }

    /// Where the stamps live, relative to the object tree (no trailing `/`).
    pub fn stamp_dir(self) -> Option<&'static str> {
        match self {
            Self::ConfigKsym => Some("include/config/ksym"),
            Self::KsymPath | Self::KsymRaw => Some("include/ksym"),
            Self::Modpost => None,
        }
    }

    /// True when the stamp name is derived from the symbol by `tr "A-Z_" "a-z/"`, so that
    /// different symbols can share a stamp.
    pub fn folds_names(self) -> bool {
        matches!(self, Self::ConfigKsym | Self::KsymPath)
    }

    /// The stamp `adjust_autoksyms.sh` touches for `sym`, relative to the object tree, exactly
    /// as the script spells it (leading or doubled underscores give repeated `/`).
    pub fn stamp_for(self, sym: &str) -> Option<String> {
        let dir = self.stamp_dir()?;
        if !self.folds_names() {
            return Some(format!("{dir}/{sym}"));
        }
        let folded: String = sym
            .chars()
            .map(|c| {
                if c == '_' {
                    '/'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        Some(format!("{dir}/{folded}.h"))
    }
}

/// Collapses runs of `/`, as the filesystem does when it resolves the path.
pub fn normalize_stamp(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c != '/' || !out.ends_with('/') {
            out.push(c);
        }
    }
    out
}

/// What the check could do with the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The tree uses per-symbol stamps and was checked.
    Checked,
    /// CONFIG_TRIM_UNUSED_KSYMS is not set: every export is kept, nothing can go stale.
    TrimDisabled,
    /// Linux 6.5+: trimming happens inside modpost, the race cannot occur.
    NoStamps,
    /// Before Linux 4.7 there was no CONFIG_TRIM_UNUSED_KSYMS.
    PredatesTrim,
}

/// Timestamp resolution of the files examined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Granularity {
    /// Every examined mtime has zero nanoseconds: compare whole seconds, as make effectively
    /// does on such a filesystem.
    Coarse,
    /// Sub-second mtimes: compare exactly.
    Fine,
    /// No file was examined.
    Unknown,
}

impl Granularity {
    fn step(self) -> i128 {
        match self {
            Self::Coarse => NANOS_PER_SEC,
            Self::Fine | Self::Unknown => 1,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Coarse => "1-second",
            Self::Fine | Self::Unknown => "nanosecond",
        }
    }
}

/// A file modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Mtime {
    /// Seconds since the Unix epoch (negative before it).
    pub secs: i64,
    pub nanos: u32,
}

impl Mtime {
    /// Converts a `SystemTime`, including times before 1970.
    pub fn from_system(t: SystemTime) -> Self {
        let total: i128 = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        Self::from_nanos(total)
    }

    fn from_nanos(total: i128) -> Self {
        let secs = total.div_euclid(NANOS_PER_SEC);
        let secs = i64::try_from(secs).unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX });
        Self {
            secs,
            nanos: total.rem_euclid(NANOS_PER_SEC) as u32,
        }
    }

    fn nanos_total(self) -> i128 {
        i128::from(self.secs) * NANOS_PER_SEC + i128::from(self.nanos)
    }

    fn cmp_at(self, other: Self, granularity: Granularity) -> Ordering {
        let step = granularity.step();
        self.nanos_total()
            .div_euclid(step)
            .cmp(&other.nanos_total().div_euclid(step))
    }
}

impl fmt::Display for Mtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs, self.nanos)
    }
}

/// A position in a text file of the tree, for editors and source snippets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// Relative to the object tree.
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in bytes.
    pub column: usize,
    /// Byte range of the item inside the file.
    #[serde(skip)]
    pub offset: usize,
    #[serde(skip)]
    pub len: usize,
}

/// Turns byte offsets of one text into [`Location`]s, counting lines incrementally (offsets
/// must come in increasing order).
struct LineCounter<'t> {
    file: &'t str,
    text: &'t [u8],
    counted: usize,
    line: usize,
    line_start: usize,
}

impl<'t> LineCounter<'t> {
    fn new(file: &'t str, text: &'t [u8]) -> Self {
        Self {
            file,
            text,
            counted: 0,
            line: 1,
            line_start: 0,
        }
    }

    fn locate(&mut self, offset: usize, len: usize) -> Location {
        for i in memchr::memchr_iter(b'\n', &self.text[self.counted..offset]) {
            self.line += 1;
            self.line_start = self.counted + i + 1;
        }
        self.counted = offset;
        Location {
            file: self.file.to_string(),
            line: self.line,
            column: offset - self.line_start + 1,
            offset,
            len,
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// The list wants the symbol, the object exports it conditionally, no object exports it.
    MissingExport,
    /// Stamp and object have the same mtime at the tree's granularity: make skipped the rebuild.
    EqualMtime,
    /// The stamp is newer than the object and the object's exports do not match the list yet.
    StampNewer,
    /// The stamp path holds repeated `/` (leading or doubled underscores), which the
    /// filesystem collapses.
    RepeatedSlash,
    /// Several symbols share one stamp file.
    AliasedStamp,
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Warning,
    Note,
}

/// Why an object is taken to export a symbol conditionally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evidence {
    /// A `__ksym_marker_<sym>` symbol (5.0–6.4), which EXPORT_SYMBOL emits whether or not
    /// the export is kept.
    Marker,
    /// The object's `.cmd` file lists the symbol's stamp (4.x fixdep dependencies).
    CmdDependency,
    /// No `.cmd` file: the object defines the symbol.
    Definition,
}

/// How an object's exports compare with the list for the symbols of one stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Content {
    /// Exports match the list: nothing to rebuild.
    Consistent,
    /// A wanted symbol has no `__ksymtab` entry anywhere.
    MissingExport,
    /// The object exports a symbol the list no longer wants.
    ExtraExport,
    /// The object could not be read as ELF.
    Unknown,
}

/// One problem, with the object, the symbols and the fix.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    /// True when the object must be rebuilt; `--fix` deletes exactly these objects.
    pub stale: bool,
    /// The object, relative to the object tree.
    pub object: Option<String>,
    pub symbols: Vec<String>,
    /// The stamp as the tree spells it (may hold repeated `/`).
    pub stamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_mtime: Option<Mtime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stamp_mtime: Option<Mtime>,
    /// The best text position: the list line, or the `.cmd` line listing the stamp.
    pub location: Option<Location>,
    pub message: String,
    pub fix: String,
}

/// An object the check could not read.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub object: String,
    pub reason: String,
}

/// The result of checking one tree.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub objtree: String,
    pub status: Status,
    /// One sentence on what was checked, or why nothing could go stale.
    pub note: String,
    pub version: Option<KernelVersion>,
    /// Where the version came from: a file, or `stamp layout`.
    pub version_from: Option<String>,
    pub mechanism: Option<Mechanism>,
    pub stamp_dir: Option<&'static str>,
    pub timestamps: Granularity,
    pub objects_scanned: usize,
    pub wanted_symbols: usize,
    pub skipped: Vec<Skipped>,
    pub findings: Vec<Finding>,
    /// Objects to delete so make rebuilds them, relative to the object tree, sorted.
    pub stale_objects: Vec<String>,
}

impl Report {
    /// True when an object is stale (CLI exit status 1).
    pub fn has_stale(&self) -> bool {
        !self.stale_objects.is_empty()
    }
}

/// Checks the Kbuild output tree `objtree`; `srctree` supplies the top Makefile when the tree
/// has no `include/config/kernel.release`.
pub fn check_tree(objtree: &Path, srctree: Option<&Path>) -> Result<Report, KsymsError> {
    if !objtree.is_dir() {
        return Err(KsymsError::NotATree(objtree.to_path_buf()));
    }
    let (version, version_from) = match read_version(objtree, srctree)? {
        Some((v, from)) => (Some(v), Some(from)),
        None => (None, None),
    };
    let mut report = Report {
        schema_version: JSON_SCHEMA_VERSION,
        objtree: objtree.display().to_string(),
        status: Status::Checked,
        note: String::new(),
        version,
        version_from,
        mechanism: None,
        stamp_dir: None,
        timestamps: Granularity::Unknown,
        objects_scanned: 0,
        wanted_symbols: 0,
        skipped: Vec::new(),
        findings: Vec::new(),
        stale_objects: Vec::new(),
    };
    let shown = version.map_or_else(|| "this kernel".to_string(), |v| format!("Linux {v}"));
    if let Some(v) = version {
        match Mechanism::for_version(v) {
            None => {
                report.status = Status::PredatesTrim;
                report.note = format!(
                    "{shown} predates CONFIG_TRIM_UNUSED_KSYMS (added in 4.7): every export is \
                     kept, no object can go stale"
                );
                return Ok(report);
            }
            Some(Mechanism::Modpost) => {
                report.status = Status::NoStamps;
                report.mechanism = Some(Mechanism::Modpost);
                report.note = format!(
                    "{shown} trims unused exports inside modpost: there are no per-symbol stamps \
                     and no recursive make, so the stamp/object timestamp race cannot occur"
                );
                return Ok(report);
            }
            Some(m) => report.mechanism = Some(m),
        }
    }
    let list_path = objtree.join(WANTED_LIST);
    match trim_config(objtree)? {
        TrimConfig::Disabled => {
            report.status = Status::TrimDisabled;
            report.note = format!(
                "CONFIG_TRIM_UNUSED_KSYMS is not set in {shown}: every export is kept, no object \
                 can go stale"
            );
            return Ok(report);
        }
        TrimConfig::Unknown if !list_path.is_file() => {
            return Err(KsymsError::NotConfigured(objtree.to_path_buf()));
        }
        TrimConfig::Enabled | TrimConfig::Unknown => {}
    }
    let mechanism = match report.mechanism {
        Some(m) => m,
        None => {
            let m = mechanism_from_layout(objtree)
                .ok_or_else(|| KsymsError::UnknownVersion(objtree.to_path_buf()))?;
            report.version_from = Some("stamp layout".into());
            report.mechanism = Some(m);
            m
        }
    };
    report.stamp_dir = mechanism.stamp_dir();

    let list_text = match std::fs::read(&list_path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(KsymsError::NoWantedList(objtree.to_path_buf()));
        }
        Err(e) => return Err(io_error(&list_path)(e)),
    };
    let wanted = parse_wanted(&list_text);
    report.wanted_symbols = wanted.len();

    let (objects, skipped) = scan_objects(objtree, mechanism, &wanted)?;
    report.objects_scanned = objects.len();
    report.skipped = skipped;
    let mut analysis = Analysis::new(objtree, mechanism, &wanted, &objects);
    report.timestamps = analysis.granularity;
    analysis.missing_exports();
    analysis.timestamps();
    if mechanism.folds_names() {
        analysis.aliases();
    }
    let mut findings = analysis.findings;
    findings.sort_by(|a, b| {
        (&a.object, a.kind, &a.symbols, &a.stamp).cmp(&(&b.object, b.kind, &b.symbols, &b.stamp))
    });
    let stale: BTreeSet<String> = findings
        .iter()
        .filter(|f| f.stale)
        .filter_map(|f| f.object.clone())
        .collect();
    report.note = format!(
        "{shown}: {} stamps under {}/ ({}); {} timestamps",
        match mechanism {
            Mechanism::ConfigKsym | Mechanism::KsymPath => "per-symbol folded-name",
            Mechanism::KsymRaw | Mechanism::Modpost => "per-symbol",
        },
        report.stamp_dir.unwrap_or_default(),
        mechanism.kernels(),
        report.timestamps.describe()
    );
    report.findings = findings;
    report.stale_objects = stale.into_iter().collect();
    Ok(report)
}

/// One stale object `--fix` deleted or would delete.
#[derive(Debug, Clone, Serialize)]
pub struct Removal {
    /// Relative to the object tree.
    pub object: String,
    #[serde(skip)]
    pub path: PathBuf,
    /// Why it could not be deleted.
    pub error: Option<String>,
}

/// Deletes the report's stale objects when `write`, else only lists them, so the next make
/// rebuilds them. Objects already gone are left out; a failure on one does not stop the rest.
pub fn remove_objects(objtree: &Path, report: &Report, write: bool) -> Vec<Removal> {
    let mut done = Vec::new();
    for rel in &report.stale_objects {
        let path = objtree.join(rel);
        let error = match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {
                if write {
                    std::fs::remove_file(&path).err().map(|e| e.to_string())
                } else {
                    None
                }
            }
            Ok(_) => Some("not a regular file; left alone".to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => Some(e.to_string()),
        };
        done.push(Removal {
            object: rel.clone(),
            path,
            error,
        });
    }
    done
}

enum TrimConfig {
    Enabled,
    Disabled,
    Unknown,
}

fn trim_config(objtree: &Path) -> Result<TrimConfig, KsymsError> {
    Ok(match Config::find(objtree)? {
        Some(config) if config.enabled("TRIM_UNUSED_KSYMS") => TrimConfig::Enabled,
        Some(_) => TrimConfig::Disabled,
        None => TrimConfig::Unknown,
    })
}

/// Without a version: `include/config/ksym/` means 4.x; `include/ksym/` holding `.h` files or
/// subdirectories means the folded names of 5.0–5.14, plain files the raw names of 5.15+.
fn mechanism_from_layout(objtree: &Path) -> Option<Mechanism> {
    if objtree.join("include/config/ksym").is_dir() {
        return Some(Mechanism::ConfigKsym);
    }
    let entries = std::fs::read_dir(objtree.join("include/ksym")).ok()?;
    let mut any = false;
    for entry in entries.flatten() {
        any = true;
        let folded = entry.file_type().is_ok_and(|t| t.is_dir())
            || entry.file_name().to_string_lossy().ends_with(".h");
        if folded {
            return Some(Mechanism::KsymPath);
        }
    }
    any.then_some(Mechanism::KsymRaw)
}

/// The list's symbols with the position of their `#define __KSYM_<sym> 1` line.
fn parse_wanted(text: &str) -> BTreeMap<String, Location> {
    let mut wanted = BTreeMap::new();
    let mut lines = LineCounter::new(WANTED_LIST, text.as_bytes());
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end();
        if let Some(rest) = body.strip_prefix("#define")
            && let Some(rest) = rest.trim_start().strip_prefix("__KSYM_")
        {
            let mut parts = rest.split_whitespace();
            if let (Some(sym), Some("1"), None) = (parts.next(), parts.next(), parts.next())
                && rest.starts_with(sym)
                && !wanted.contains_key(sym)
            {
                let at = offset + (body.len() - rest.len());
                wanted.insert(sym.to_string(), lines.locate(at, sym.len()));
            }
        }
        offset += line.len();
    }
    wanted
}

/// One stamp a `.cmd` file lists.
#[derive(Debug, Clone)]
struct CmdStamp {
    /// As written, relative to the object tree.
    path: String,
    location: Location,
}

/// Finds every `$(wildcard <dir>/…)` in a `.cmd` file (bytes: these files can be large, and
/// only the stamp paths need to be text).
fn stamps_in_cmd(cmd_rel: &str, text: &[u8], dir: &str) -> Vec<CmdStamp> {
    const WILDCARD: &[u8] = b"$(wildcard ";
    let needle = format!("$(wildcard {dir}/");
    let finder = memchr::memmem::Finder::new(needle.as_bytes());
    let mut lines = LineCounter::new(cmd_rel, text);
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = finder.find(&text[from..]) {
        let start = from + found + WILDCARD.len();
        let Some(len) = memchr::memchr(b')', &text[start..]) else {
            break;
        };
        let raw = text[start..start + len].trim_ascii_end();
        out.push(CmdStamp {
            path: String::from_utf8_lossy(raw).into_owned(),
            location: lines.locate(start, raw.len()),
        });
        from = start + len;
    }
    out
}

/// What one object's ELF file says, reduced to what the check needs.
#[derive(Debug, Default)]
struct ObjectContent {
    /// Symbols with a `__ksymtab` entry.
    exports: BTreeSet<String>,
    /// Symbols with a `__ksym_marker_` symbol.
    markers: BTreeSet<String>,
    /// Wanted symbols the object defines (global or weak).
    defines_wanted: BTreeSet<String>,
}

fn is_ksymtab_section(name: &str) -> bool {
    name.starts_with("___ksymtab") || (name.starts_with("__ksymtab") && name != "__ksymtab_strings")
}

impl ObjectContent {
    fn read(obj: &InputObject<'_>, wanted: &BTreeMap<String, Location>) -> Self {
        let mut content = Self::default();
        for section in &obj.sections {
            if let Some((_, sym)) = section.name.split_once('+')
                && section.name.starts_with("___ksymtab")
                && !sym.is_empty()
            {
                content.exports.insert(sym.to_string());
            }
        }
        for sym in &obj.symbols {
            if let Some(name) = sym.name.strip_prefix("__ksym_marker_") {
                content.markers.insert(name.to_string());
                continue;
            }
            let SymbolSection::Section(index) = sym.section else {
                continue;
            };
            if let Some(name) = sym.name.strip_prefix("__ksymtab_")
                && obj
                    .sections
                    .get(index)
                    .is_some_and(|s| is_ksymtab_section(s.name))
            {
                content.exports.insert(name.to_string());
            } else if sym.binding != Binding::Local && wanted.contains_key(sym.name) {
                content.defines_wanted.insert(sym.name.to_string());
            }
        }
        content
    }
}

/// One object of the tree.
#[derive(Debug)]
struct Scanned {
    /// Relative to the object tree.
    rel: String,
    mtime: Mtime,
    /// `None` when the file is not a readable ELF object.
    content: Option<ObjectContent>,
    /// The stamps its `.cmd` file lists; `None` without a `.cmd` file.
    cmd_stamps: Option<Vec<CmdStamp>>,
}

/// Directories at the top of the tree that hold host programs, not kernel objects.
const HOST_DIRS: &[&str] = &["scripts", "tools"];

fn scan_objects(
    objtree: &Path,
    mechanism: Mechanism,
    wanted: &BTreeMap<String, Location>,
) -> Result<(Vec<Scanned>, Vec<Skipped>), KsymsError> {
    let mut objects = Vec::new();
    let mut skipped = Vec::new();
    let mut dirs = vec![(objtree.to_path_buf(), String::new())];
    let stamp_dir = mechanism.stamp_dir().unwrap_or_default();
    while let Some((dir, rel_dir)) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(io_error(&dir))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error(&dir))?;
            let file_type = entry.file_type().map_err(io_error(&entry.path()))?;
            names.push((entry.file_name(), file_type));
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, file_type) in names {
            let Some(name) = name.to_str() else {
                skipped.push(Skipped {
                    object: format!("{rel_dir}{}", name.to_string_lossy()),
                    reason: "path is not UTF-8".into(),
                });
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let rel = format!("{rel_dir}{name}");
            if file_type.is_dir() {
                if !(rel_dir.is_empty() && HOST_DIRS.contains(&name)) {
                    dirs.push((dir.join(name), format!("{rel}/")));
                }
                continue;
            }
            if !file_type.is_file()
                || !name.ends_with(".o")
                || name.ends_with(".mod.o")
                || rel == "vmlinux.o"
            {
                continue;
            }
            let path = dir.join(name);
            let meta = std::fs::metadata(&path).map_err(io_error(&path))?;
            let mtime = Mtime::from_system(meta.modified().map_err(io_error(&path))?);
            let cmd_rel = format!("{rel_dir}.{name}.cmd");
            let cmd_path = objtree.join(&cmd_rel);
            let cmd_stamps = match std::fs::read(&cmd_path) {
                Ok(text) => Some(stamps_in_cmd(&cmd_rel, &text, stamp_dir)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_error(&cmd_path)(e)),
            };
            let content = match read_object(&path, wanted) {
                Ok(Some(content)) => Some(content),
                Ok(None) => continue,
                Err(reason) => {
                    skipped.push(Skipped {
                        object: rel.clone(),
                        reason,
                    });
                    None
                }
            };
            objects.push(Scanned {
                rel,
                mtime,
                content,
                cmd_stamps,
            });
        }
    }
    objects.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok((objects, skipped))
}

/// Reads an object's exports and markers; `Ok(None)` for archives named `.o` (4.13+
/// `built-in.o` thin archives), which only point at other objects.
fn read_object(
    path: &Path,
    wanted: &BTreeMap<String, Location>,
) -> Result<Option<ObjectContent>, String> {
    let prefix = format!("{}: ", path.display());
    let reason = |e: crate::input::InputError| {
        let text = e.to_string();
        text.strip_prefix(&prefix)
            .map_or(text.clone(), str::to_string)
    };
    let mut store = FileStore::new();
    let id = store.load(path).map_err(reason)?;
    match store.parse(id, None).map_err(reason)? {
        InputFile::Object(obj) => Ok(Some(ObjectContent::read(&obj, wanted))),
        InputFile::Archive(_) => Ok(None),
    }
}

/// One stamp an object depends on, with its mtime when it exists.
struct Dependency<'a> {
    path: String,
    location: Option<&'a Location>,
    mtime: Option<Mtime>,
}

/// Cross-object state for producing findings.
struct Analysis<'a> {
    mechanism: Mechanism,
    wanted: &'a BTreeMap<String, Location>,
    objects: &'a [Scanned],
    /// Every symbol some object exports.
    exported: BTreeSet<&'a str>,
    /// Folded-name mechanisms: the wanted symbols of each normalized stamp path.
    wanted_by_stamp: HashMap<String, Vec<&'a str>>,
    /// Per object (same order as `objects`): candidate symbols and why.
    candidates: Vec<BTreeMap<String, Evidence>>,
    /// Per object: the stamps it depends on.
    dependencies: Vec<Vec<Dependency<'a>>>,
    granularity: Granularity,
    findings: Vec<Finding>,
}

impl<'a> Analysis<'a> {
    fn new(
        objtree: &Path,
        mechanism: Mechanism,
        wanted: &'a BTreeMap<String, Location>,
        objects: &'a [Scanned],
    ) -> Self {
        let exported = objects
            .iter()
            .filter_map(|o| o.content.as_ref())
            .flat_map(|c| c.exports.iter().map(String::as_str))
            .collect();
        let mut wanted_by_stamp: HashMap<String, Vec<&str>> = HashMap::new();
        if mechanism.folds_names() {
            for sym in wanted.keys() {
                if let Some(path) = mechanism.stamp_for(sym) {
                    wanted_by_stamp
                        .entry(normalize_stamp(&path))
                        .or_default()
                        .push(sym);
                }
            }
        }
        let mut analysis = Self {
            mechanism,
            wanted,
            objects,
            exported,
            wanted_by_stamp,
            candidates: Vec::with_capacity(objects.len()),
            dependencies: Vec::with_capacity(objects.len()),
            granularity: Granularity::Unknown,
            findings: Vec::new(),
        };
        for object in objects {
            let candidates = analysis.candidates_of(object);
            let deps = analysis.dependencies_of(objtree, object, &candidates);
            analysis.candidates.push(candidates);
            analysis.dependencies.push(deps);
        }
        let mut mtimes = objects.iter().map(|o| o.mtime).chain(
            analysis
                .dependencies
                .iter()
                .flatten()
                .filter_map(|d| d.mtime),
        );
        analysis.granularity = match mtimes.next() {
            None => Granularity::Unknown,
            Some(first) if first.nanos == 0 && mtimes.all(|m| m.nanos == 0) => Granularity::Coarse,
            Some(_) => Granularity::Fine,
        };
        analysis
    }

    /// The symbols an object exports conditionally (has an EXPORT_SYMBOL for), with evidence.
    fn candidates_of(&self, object: &Scanned) -> BTreeMap<String, Evidence> {
        let Some(content) = &object.content else {
            return BTreeMap::new();
        };
        let listed: Option<BTreeSet<String>> = object
            .cmd_stamps
            .as_ref()
            .map(|stamps| stamps.iter().map(|s| normalize_stamp(&s.path)).collect());
        let stamp_of = |sym: &str| {
            self.mechanism
                .stamp_for(sym)
                .map(|p| normalize_stamp(&p))
                .unwrap_or_default()
        };
        match self.mechanism {
            Mechanism::KsymPath | Mechanism::KsymRaw => content
                .markers
                .iter()
                .filter(|sym| listed.as_ref().is_none_or(|l| l.contains(&stamp_of(sym))))
                .map(|sym| (sym.clone(), Evidence::Marker))
                .collect(),
            Mechanism::ConfigKsym => match &listed {
                None => content
                    .defines_wanted
                    .iter()
                    .map(|sym| (sym.clone(), Evidence::Definition))
                    .collect(),
                Some(listed) => {
                    let mut out = BTreeMap::new();
                    for stamp in listed {
                        let Some(syms) = self.wanted_by_stamp.get(stamp) else {
                            continue;
                        };
                        let defined: Vec<&str> = syms
                            .iter()
                            .copied()
                            .filter(|s| content.defines_wanted.contains(*s))
                            .collect();
                        let keep = if defined.is_empty() { syms } else { &defined };
                        for sym in keep {
                            out.insert(sym.to_string(), Evidence::CmdDependency);
                        }
                    }
                    out
                }
            },
            Mechanism::Modpost => BTreeMap::new(),
        }
    }

    /// The stamps an object depends on: its `.cmd` list, or without one the stamps of its
    /// candidates.
    fn dependencies_of(
        &self,
        objtree: &Path,
        object: &'a Scanned,
        candidates: &BTreeMap<String, Evidence>,
    ) -> Vec<Dependency<'a>> {
        let mut seen = BTreeSet::new();
        let listed: Vec<(String, Option<&'a Location>)> = match &object.cmd_stamps {
            Some(stamps) => stamps
                .iter()
                .map(|s| (s.path.clone(), Some(&s.location)))
                .collect(),
            None => candidates
                .keys()
                .filter_map(|sym| self.mechanism.stamp_for(sym))
                .map(|p| (p, None))
                .collect(),
        };
        listed
            .into_iter()
            .filter(|(path, _)| seen.insert(normalize_stamp(path)))
            .map(|(path, location)| {
                let mtime = std::fs::metadata(objtree.join(&path))
                    .and_then(|m| m.modified())
                    .ok()
                    .map(Mtime::from_system);
                Dependency {
                    path,
                    location,
                    mtime,
                }
            })
            .collect()
    }

    /// Wanted symbols an object exports conditionally but that no object exports.
    fn missing_exports(&mut self) {
        for (object, candidates) in self.objects.iter().zip(&self.candidates) {
            for (sym, &evidence) in candidates {
                let Some(line) = self.wanted.get(sym) else {
                    continue;
                };
                if self.exported.contains(sym.as_str()) {
                    continue;
                }
                let stamp = self.mechanism.stamp_for(sym);
                let why = match evidence {
                    Evidence::Marker => format!("has EXPORT_SYMBOL({sym}) (`__ksym_marker_{sym}`)"),
                    Evidence::CmdDependency => format!(
                        "lists its stamp {} as a prerequisite",
                        stamp.as_deref().unwrap_or_default()
                    ),
                    Evidence::Definition => "defines it".to_string(),
                };
                self.findings.push(Finding {
                    kind: FindingKind::MissingExport,
                    severity: Severity::Warning,
                    stale: true,
                    object: Some(object.rel.clone()),
                    symbols: vec![sym.clone()],
                    stamp,
                    evidence: Some(evidence),
                    content: Some(Content::MissingExport),
                    object_mtime: Some(object.mtime),
                    stamp_mtime: None,
                    location: Some(line.clone()),
                    message: format!(
                        "stale object {}: {WANTED_LIST} wants `{sym}` and the object {why}, but \
                         no object has a __ksymtab entry for it; modpost will report `{sym}` \
                         undefined",
                        object.rel
                    ),
                    fix: rebuild_fix(&object.rel),
                });
            }
        }
    }

    /// The symbols a stamp stands for, as far as this object and the list tell.
    fn stamp_symbols(&self, index: usize, stamp: &str) -> Vec<String> {
        if !self.mechanism.folds_names() {
            let dir = self.mechanism.stamp_dir().unwrap_or_default();
            let name = normalize_stamp(stamp);
            let name = name
                .strip_prefix(dir)
                .unwrap_or(&name)
                .trim_start_matches('/');
            return vec![name.to_string()];
        }
        let target = normalize_stamp(stamp);
        let mut syms: BTreeSet<String> = self
            .wanted_by_stamp
            .get(&target)
            .into_iter()
            .flatten()
            .map(|s| s.to_string())
            .collect();
        let mut own: BTreeSet<&String> = self.candidates[index].keys().collect();
        if let Some(content) = &self.objects[index].content {
            own.extend(content.exports.iter());
            own.extend(content.markers.iter());
        }
        for sym in own {
            if self
                .mechanism
                .stamp_for(sym)
                .is_some_and(|p| normalize_stamp(&p) == target)
            {
                syms.insert(sym.clone());
            }
        }
        syms.into_iter().collect()
    }

    /// Whether the object's exports match the list for these symbols, and the symbols that
    /// do not.
    fn content_for(&self, index: usize, syms: &[String]) -> (Content, Vec<String>) {
        let Some(content) = &self.objects[index].content else {
            return (Content::Unknown, Vec::new());
        };
        let candidates = &self.candidates[index];
        let missing: Vec<String> = syms
            .iter()
            .filter(|s| {
                candidates.contains_key(*s)
                    && self.wanted.contains_key(*s)
                    && !self.exported.contains(s.as_str())
            })
            .cloned()
            .collect();
        if !missing.is_empty() {
            return (Content::MissingExport, missing);
        }
        let extra: Vec<String> = syms
            .iter()
            .filter(|s| content.exports.contains(*s) && !self.wanted.contains_key(*s))
            .cloned()
            .collect();
        if extra.is_empty() {
            (Content::Consistent, extra)
        } else {
            (Content::ExtraExport, extra)
        }
    }

    /// Stamps whose mtime equals or exceeds their object's at the tree's granularity.
    fn timestamps(&mut self) {
        let mut found = Vec::new();
        for (index, object) in self.objects.iter().enumerate() {
            for dep in &self.dependencies[index] {
                let Some(stamp_mtime) = dep.mtime else {
                    continue;
                };
                let order = stamp_mtime.cmp_at(object.mtime, self.granularity);
                if order == Ordering::Less {
                    continue;
                }
                let syms = self.stamp_symbols(index, &dep.path);
                let (content, culprits) = self.content_for(index, &syms);
                let stale = content != Content::Consistent;
                if order == Ordering::Greater && !stale {
                    continue;
                }
                let named = if syms.is_empty() {
                    "its symbol".to_string()
                } else {
                    quoted(&syms)
                };
                let culprits = quoted(&culprits);
                let state = match content {
                    Content::Consistent => format!(
                        "; the object's exports already match the list for {named}, so nothing \
                         needs rebuilding this time"
                    ),
                    Content::MissingExport => format!(
                        ": stale, the list wants {culprits} but the object has no __ksymtab entry"
                    ),
                    Content::ExtraExport => format!(
                        ": stale, the object still exports {culprits}, which the list no longer \
                         wants"
                    ),
                    Content::Unknown => {
                        ": stale unless proven otherwise, the object is not readable ELF".into()
                    }
                };
                let (kind, message) = if order == Ordering::Equal {
                    (
                        FindingKind::EqualMtime,
                        format!(
                            "stamp {} and object {} have the same mtime at {} granularity ({} \
                             vs {}); make rebuilds only when a prerequisite is newer, so a change \
                             to {named} in the list can have skipped this rebuild{state}",
                            dep.path,
                            object.rel,
                            self.granularity.describe(),
                            stamp_mtime,
                            object.mtime
                        ),
                    )
                } else {
                    (
                        FindingKind::StampNewer,
                        format!(
                            "stamp {} is newer than object {} ({} vs {}): the list changed for \
                             {named} after the object was built and make has not rebuilt it{state}",
                            dep.path, object.rel, stamp_mtime, object.mtime
                        ),
                    )
                };
                let fix = if stale {
                    let mut fix = rebuild_fix(&object.rel);
                    if kind == FindingKind::EqualMtime {
                        fix.push_str(&self.race_advice());
                    }
                    fix
                } else {
                    "nothing to do now; the race can hit the next list change".to_string()
                        + &self.race_advice()
                };
                found.push(Finding {
                    kind,
                    severity: if stale {
                        Severity::Warning
                    } else {
                        Severity::Note
                    },
                    stale,
                    object: Some(object.rel.clone()),
                    symbols: syms,
                    stamp: Some(dep.path.clone()),
                    evidence: None,
                    content: Some(content),
                    object_mtime: Some(object.mtime),
                    stamp_mtime: Some(stamp_mtime),
                    location: dep.location.cloned(),
                    message,
                    fix,
                });
            }
        }
        self.findings.extend(found);
    }

    fn race_advice(&self) -> String {
        let mut advice = String::new();
        if self.granularity == Granularity::Coarse {
            advice.push_str(
                "; build on a filesystem with sub-second timestamps (ext4, xfs, btrfs, tmpfs)",
            );
        }
        if self.mechanism == Mechanism::ConfigKsym {
            advice.push_str(
                "; Linux 5.0+ adjust_autoksyms.sh re-touches each stamp until it is newer than \
                 the new list",
            );
        }
        advice
    }

    /// Stamps spelled with repeated `/`, and stamps several symbols share (folded names only).
    fn aliases(&mut self) {
        let mut universe: BTreeSet<&str> = self.wanted.keys().map(String::as_str).collect();
        universe.extend(self.exported.iter().copied());
        for content in self.objects.iter().filter_map(|o| o.content.as_ref()) {
            universe.extend(content.markers.iter().map(String::as_str));
        }
        let mut by_stamp: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        for sym in &universe {
            if let Some(path) = self.mechanism.stamp_for(sym) {
                by_stamp
                    .entry(normalize_stamp(&path))
                    .or_default()
                    .insert(sym);
            }
        }
        let mut dependents: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, deps) in self.dependencies.iter().enumerate() {
            for dep in deps {
                dependents
                    .entry(normalize_stamp(&dep.path))
                    .or_default()
                    .push(index);
            }
        }
        let mut found = Vec::new();
        for (sym, line) in self.wanted {
            let Some(written) = self.mechanism.stamp_for(sym) else {
                continue;
            };
            let normal = normalize_stamp(&written);
            if written == normal {
                continue;
            }
            found.extend(self.per_dependent(
                &dependents,
                StampProblem {
                    kind: FindingKind::RepeatedSlash,
                    symbols: vec![sym.clone()],
                    message: format!(
                        "the stamp of `{sym}` is written {written}: its leading or doubled \
                         underscores become repeated `/`, which the filesystem collapses to \
                         {normal}"
                    ),
                    fix: "harmless alone (fixdep and adjust_autoksyms.sh reach the same file), \
                          but the stamp is shared with every symbol that differs only in \
                          underscores or case; Linux 5.15+ names stamps after the raw symbol",
                    stamp: written,
                    normal: &normal,
                    line: Some(line),
                },
            ));
        }
        for (normal, syms) in &by_stamp {
            if syms.len() < 2 || !syms.iter().any(|s| self.wanted.contains_key(*s)) {
                continue;
            }
            let symbols: Vec<String> = syms.iter().map(|s| s.to_string()).collect();
            let listed = quoted(&symbols);
            found.extend(self.per_dependent(
                &dependents,
                StampProblem {
                    kind: FindingKind::AliasedStamp,
                    message: format!(
                        "{listed} share the stamp {normal}: a list change for any of them \
                         touches it, and the stamp cannot tell which symbol changed"
                    ),
                    fix: "expect extra rebuilds of every object listing this stamp; after an \
                          interrupted build delete them all; Linux 5.15+ names stamps after the \
                          raw symbol",
                    symbols,
                    stamp: normal.clone(),
                    normal,
                    line: syms.iter().find_map(|s| self.wanted.get(*s)),
                },
            ));
        }
        self.findings.extend(found);
    }

    /// One finding per object depending on the stamp (or one without an object).
    fn per_dependent(
        &self,
        dependents: &HashMap<String, Vec<usize>>,
        problem: StampProblem<'_>,
    ) -> Vec<Finding> {
        let make = |object: Option<&Scanned>, location: Option<Location>| Finding {
            kind: problem.kind,
            severity: Severity::Warning,
            stale: false,
            object: object.map(|o| o.rel.clone()),
            symbols: problem.symbols.clone(),
            stamp: Some(problem.stamp.clone()),
            evidence: None,
            content: None,
            object_mtime: object.map(|o| o.mtime),
            stamp_mtime: None,
            location,
            message: match object {
                Some(o) => format!("{} (object {} depends on it)", problem.message, o.rel),
                None => problem.message.clone(),
            },
            fix: problem.fix.to_string(),
        };
        match dependents.get(problem.normal) {
            Some(indices) => indices
                .iter()
                .map(|&i| {
                    let spelled = self.objects[i]
                        .cmd_stamps
                        .iter()
                        .flatten()
                        .find(|s| s.path == problem.stamp)
                        .map(|s| &s.location);
                    let cmd_line = spelled.or_else(|| {
                        self.dependencies[i]
                            .iter()
                            .find(|d| normalize_stamp(&d.path) == problem.normal)
                            .and_then(|d| d.location)
                    });
                    make(Some(&self.objects[i]), cmd_line.or(problem.line).cloned())
                })
                .collect(),
            None => vec![make(None, problem.line.cloned())],
        }
    }
}

/// A stamp-naming problem, before it is attributed to the objects that depend on the stamp.
struct StampProblem<'p> {
    kind: FindingKind,
    symbols: Vec<String>,
    /// The stamp as written.
    stamp: String,
    /// The stamp as the filesystem resolves it.
    normal: &'p str,
    line: Option<&'p Location>,
    message: String,
    fix: &'static str,
}

/// `a`, `b` and `c`.
fn quoted(syms: &[String]) -> String {
    let names: Vec<String> = syms.iter().map(|s| format!("`{s}`")).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

fn rebuild_fix(object: &str) -> String {
    format!(
        "delete {object} and run make again so it is rebuilt against the current list \
         (`ldcheck ksyms --fix --write` does the deleting)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_by_version() {
        let m = |a, b| Mechanism::for_version(KernelVersion::new(a, b));
        assert_eq!(m(4, 6), None);
        assert_eq!(m(4, 7), Some(Mechanism::ConfigKsym));
        assert_eq!(m(4, 20), Some(Mechanism::ConfigKsym));
        assert_eq!(m(5, 0), Some(Mechanism::KsymPath));
        assert_eq!(m(5, 14), Some(Mechanism::KsymPath));
        assert_eq!(m(5, 15), Some(Mechanism::KsymRaw));
        assert_eq!(m(6, 4), Some(Mechanism::KsymRaw));
        assert_eq!(m(6, 5), Some(Mechanism::Modpost));
        assert_eq!(m(6, 12), Some(Mechanism::Modpost));
    }

    #[test]
    fn stamp_names() {
        let c = Mechanism::ConfigKsym;
        assert_eq!(
            c.stamp_for("__clear_user").as_deref(),
            Some("include/config/ksym///clear/user.h")
        );
        assert_eq!(
            normalize_stamp("include/config/ksym///clear/user.h"),
            "include/config/ksym/clear/user.h"
        );
        assert_eq!(
            Mechanism::KsymPath.stamp_for("Foo_Bar").as_deref(),
            Some("include/ksym/foo/bar.h")
        );
        assert_eq!(
            Mechanism::KsymRaw.stamp_for("__Foo").as_deref(),
            Some("include/ksym/__Foo")
        );
        assert_eq!(Mechanism::Modpost.stamp_for("x"), None);
    }

    #[test]
    fn wanted_list_positions() {
        let text = "/*\n * Automatically generated file; DO NOT EDIT.\n */\n\n\
                    #define __KSYM_clear_user 1\n#define __KSYM___put_user_2 1\n#define X 1\n";
        let wanted = parse_wanted(text);
        assert_eq!(
            wanted.keys().collect::<Vec<_>>(),
            ["__put_user_2", "clear_user"]
        );
        let at = &wanted["clear_user"];
        assert_eq!((at.line, at.column), (5, 16));
        assert_eq!(&text[at.offset..at.offset + at.len], "clear_user");
    }

    #[test]
    fn cmd_stamps_found_with_positions() {
        let text = "deps_a.o := \\\n    $(wildcard include/config/ksym/clear/user.h) \\\n  \
                    include/linux/x.h \\\n    $(wildcard include/config/smp.h) \\\n";
        let found = stamps_in_cmd("lib/.a.o.cmd", text.as_bytes(), "include/config/ksym");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "include/config/ksym/clear/user.h");
        assert_eq!((found[0].location.line, found[0].location.column), (2, 16));
    }

    #[test]
    fn symbol_lists_read_as_prose() {
        let list =
            |names: &[&str]| quoted(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(list(&[]), "");
        assert_eq!(list(&["a"]), "`a`");
        assert_eq!(list(&["a", "b", "c"]), "`a`, `b` and `c`");
    }

    #[test]
    fn mtimes_compare_at_granularity() {
        let a = Mtime::from_nanos(10 * NANOS_PER_SEC + 700);
        let b = Mtime::from_nanos(10 * NANOS_PER_SEC + 300);
        assert_eq!(a.cmp_at(b, Granularity::Coarse), Ordering::Equal);
        assert_eq!(a.cmp_at(b, Granularity::Fine), Ordering::Greater);
        let before = Mtime::from_nanos(-1);
        assert_eq!((before.secs, before.nanos), (-1, 999_999_999));
        assert_eq!(before.to_string(), "-1.999999999");
    }
}
