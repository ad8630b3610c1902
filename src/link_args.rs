//! GNU ld command line → [`LinkRequest`].
//!
//! This module owns ld's option syntax (getopt_long_only rules: `-opt value`, `-opt=value`,
//! `--opt=value`, clustered short options, `@file` response files) and records what each option
//! means for the layout. It must not open input files or evaluate expressions (`--defsym`
//! values stay text for the script evaluator).

use std::path::{Path, PathBuf};

use thiserror::Error;

/// One entry of the ordered input list, including the markers that change archive semantics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputItem {
    /// A file named on the command line (object, archive or thin archive).
    File(PathBuf),
    /// `-lNAME`: a library searched in the `-L` directories.
    Library(String),
    /// `--whole-archive`: archives after this are linked completely.
    WholeArchive,
    /// `--no-whole-archive`.
    NoWholeArchive,
    /// `--start-group` / `-(`: archives up to the end are searched repeatedly.
    StartGroup,
    /// `--end-group` / `-)`.
    EndGroup,
}

/// `--build-id[=style]`: decides the size of `.note.gnu.build-id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildId {
    None,
    Md5,
    Sha1,
    Uuid,
    /// `--build-id=0xHEX`: these exact bytes.
    Hex(Vec<u8>),
}

impl BuildId {
    /// Length of the ID payload in the note, in bytes (0 for `none`).
    pub fn len(&self) -> usize {
        match self {
            BuildId::None => 0,
            BuildId::Md5 | BuildId::Uuid => 16,
            BuildId::Sha1 => 20,
            BuildId::Hex(bytes) => bytes.len(),
        }
    }

    /// True for `--build-id=none`, which emits no note.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `--sort-section=`: an implicit SORT on every wildcard input section pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortSection {
    Name,
    Alignment,
}

/// `--sort-common[=order]`: order of COMMON symbols by alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortCommon {
    Descending,
    Ascending,
}

/// Which local symbols reach the output symbol table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Discard {
    /// `--discard-none`: keep every local symbol.
    None,
    /// ld's default (bfd's `discard_sec_merge`): drop assembler temporaries (`.L…`) defined in
    /// mergeable sections, keep the others.
    #[default]
    SecMerge,
    /// `-X` / `--discard-locals`: drop every assembler temporary (`.L…`).
    Locals,
    /// `-x` / `--discard-all`: drop all local symbols.
    All,
}

/// Which symbols and sections `-s`/`-S` strip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strip {
    #[default]
    None,
    /// `-S` / `--strip-debug`.
    Debug,
    /// `-s` / `--strip-all`.
    All,
}

/// `--orphan-handling=`: what ld does with sections no script statement matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrphanHandling {
    #[default]
    Place,
    Warn,
    Error,
    Discard,
}

/// An option accepted but without effect on layout or symbols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// The option as written.
    pub option: String,
    /// One line saying why it does not matter to ldcheck.
    pub note: &'static str,
}

/// Everything a GNU ld command line asks for, in the terms the layout needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkRequest {
    /// `-T`/`--script` files, in order.
    pub scripts: Vec<PathBuf>,
    /// `-m EMULATION`.
    pub emulation: Option<String>,
    /// `-EL`/`-EB`: `Some(true)` for little-endian.
    pub little_endian: Option<bool>,
    /// `-o FILE` (ld writes `a.out` when absent).
    pub output: Option<PathBuf>,
    /// Inputs and archive markers, in command-line order.
    pub inputs: Vec<InputItem>,
    /// `-L` directories, in order.
    pub library_paths: Vec<PathBuf>,
    /// `-e`/`--entry`.
    pub entry: Option<String>,
    /// `-u`/`--undefined` symbols (they pull archive members like undefined references).
    pub undefined: Vec<String>,
    /// `--defsym SYMBOL=EXPRESSION`, expression kept as text.
    pub defsyms: Vec<(String, String)>,
    /// `--section-start=NAME=ADDR`, `-Ttext=`, `-Tdata=`, `-Tbss=`.
    pub section_starts: Vec<(String, u64)>,
    /// `-z max-page-size=`.
    pub max_page_size: Option<u64>,
    /// `-z common-page-size=`.
    pub common_page_size: Option<u64>,
    /// `-z separate-code` / `-z noseparate-code`.
    pub separate_code: Option<bool>,
    /// `-z relro` / `-z norelro`.
    pub relro: Option<bool>,
    /// `-z execstack` (`Some(true)`) / `-z noexecstack` (`Some(false)`).
    pub execstack: Option<bool>,
    /// Every `-z` keyword in order, including those above.
    pub z_keywords: Vec<String>,
    /// `--build-id[=style]`.
    pub build_id: Option<BuildId>,
    pub sort_section: Option<SortSection>,
    pub sort_common: Option<SortCommon>,
    /// `--gc-sections`: recorded so the layout can refuse it.
    pub gc_sections: bool,
    /// `--emit-relocs` / `-q`.
    pub emit_relocs: bool,
    pub discard: Discard,
    pub strip: Strip,
    /// `-N` / `--omagic`: text writable, no page alignment of the data segment.
    pub omagic: bool,
    /// `-n` / `--nmagic`: no page alignment of sections.
    pub nmagic: bool,
    /// `-pie` / `--pic-executable`.
    pub pie: bool,
    /// `-shared` / `-Bshareable`.
    pub shared: bool,
    /// `-Bsymbolic`: a shared link binds its global symbols to their own definitions.
    pub bsymbolic: bool,
    pub orphan_handling: OrphanHandling,
    /// ARM `--pic-veneer`: position-independent long-branch stubs (their sizes differ).
    pub pic_veneer: bool,
    /// ARM `--no-merge-exidx-entries` (ld merges duplicate unwind index entries by default).
    pub no_merge_exidx_entries: bool,
    /// ARM `--fix-cortex-a8` (`Some(true)`) / `--no-fix-cortex-a8` (`Some(false)`); ld enables
    /// the erratum fix for ARMv7-A when neither is given.
    pub fix_cortex_a8: Option<bool>,
    /// aarch64 `--fix-cortex-a53-843419[=full|adr|adrp]`: ld scans for the erratum's sequences.
    pub fix_cortex_a53_843419: bool,
    /// ARM `--fix-v4bx` (1) / `--fix-v4bx-interworking` (2): BX rewriting, with interworking
    /// veneers in `.v4_bx` for the latter.
    pub fix_v4bx: u8,
    /// Options accepted without effect, with a note each.
    pub ignored: Vec<Ignored>,
}

/// Why a command line cannot be turned into a [`LinkRequest`].
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LinkArgsError {
    #[error("unknown ld option(s): {}", .0.join(", "))]
    Unknown(Vec<String>),
    #[error("option {0} needs a value")]
    MissingValue(String),
    #[error("bad value `{value}` for {option}: {reason}")]
    BadValue {
        option: String,
        value: String,
        reason: &'static str,
    },
    #[error("{0}: relocatable output (-r) is not a final link; ldcheck only simulates final links")]
    Relocatable(String),
    #[error("response file {path}: {message}")]
    ResponseFile { path: PathBuf, message: String },
    #[error("library -l{0} not found in the -L directories")]
    LibraryNotFound(String),
}

/// What an option does with its argument.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arg {
    None,
    Required,
    /// Only in the `--opt=value` form.
    Optional,
}

/// Every option ldcheck understands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Opt {
    Script,
    Emulation,
    Output,
    LibraryPath,
    Library,
    Entry,
    Undefined,
    Z,
    BuildId,
    Defsym,
    SortSection,
    SortCommon,
    GcSections,
    NoGcSections,
    Relocatable,
    StartGroup,
    EndGroup,
    WholeArchive,
    NoWholeArchive,
    DiscardLocals,
    DiscardAll,
    DiscardNone,
    StripDebug,
    StripAll,
    EmitRelocs,
    Omagic,
    NoOmagic,
    Nmagic,
    OrphanHandling,
    LittleEndian,
    BigEndian,
    Pie,
    Shared,
    SectionStart,
    Ttext,
    Tdata,
    Tbss,
    PicVeneer,
    NoMergeExidx,
    MergeExidx,
    FixCortexA8,
    NoFixCortexA8,
    FixCortexA53Erratum843419,
    Bsymbolic,
    FixV4bx,
    FixV4bxInterworking,
    /// Accepted, no effect on layout; the note says why.
    Ignore(&'static str),
    /// Accepted with its argument, no effect on layout.
    IgnoreArg(&'static str),
}

const NOTE_WARN: &str = "only changes which warnings ld prints";
const NOTE_DIAG: &str = "only changes diagnostics, not the output";
const NOTE_DYN: &str = "only matters for dynamic linking";
const NOTE_INFO: &str = "only prints information";

/// Long options (usable with one or two dashes, as getopt_long_only allows).
const LONG: &[(&str, Arg, Opt)] = &[
    ("script", Arg::Required, Opt::Script),
    ("output", Arg::Required, Opt::Output),
    ("library-path", Arg::Required, Opt::LibraryPath),
    ("library", Arg::Required, Opt::Library),
    ("entry", Arg::Required, Opt::Entry),
    ("undefined", Arg::Required, Opt::Undefined),
    ("build-id", Arg::Optional, Opt::BuildId),
    ("defsym", Arg::Required, Opt::Defsym),
    ("sort-section", Arg::Required, Opt::SortSection),
    ("sort-common", Arg::Optional, Opt::SortCommon),
    ("gc-sections", Arg::None, Opt::GcSections),
    ("no-gc-sections", Arg::None, Opt::NoGcSections),
    ("relocatable", Arg::None, Opt::Relocatable),
    ("start-group", Arg::None, Opt::StartGroup),
    ("end-group", Arg::None, Opt::EndGroup),
    ("whole-archive", Arg::None, Opt::WholeArchive),
    ("no-whole-archive", Arg::None, Opt::NoWholeArchive),
    ("discard-locals", Arg::None, Opt::DiscardLocals),
    ("discard-all", Arg::None, Opt::DiscardAll),
    ("discard-none", Arg::None, Opt::DiscardNone),
    ("strip-debug", Arg::None, Opt::StripDebug),
    ("strip-all", Arg::None, Opt::StripAll),
    ("emit-relocs", Arg::None, Opt::EmitRelocs),
    ("omagic", Arg::None, Opt::Omagic),
    ("no-omagic", Arg::None, Opt::NoOmagic),
    ("nmagic", Arg::None, Opt::Nmagic),
    ("orphan-handling", Arg::Required, Opt::OrphanHandling),
    ("EL", Arg::None, Opt::LittleEndian),
    ("EB", Arg::None, Opt::BigEndian),
    ("pie", Arg::None, Opt::Pie),
    ("pic-executable", Arg::None, Opt::Pie),
    ("shared", Arg::None, Opt::Shared),
    ("Bshareable", Arg::None, Opt::Shared),
    ("section-start", Arg::Required, Opt::SectionStart),
    ("Ttext", Arg::Required, Opt::Ttext),
    ("Tdata", Arg::Required, Opt::Tdata),
    ("Tbss", Arg::Required, Opt::Tbss),
    ("no-undefined", Arg::None, Opt::Ignore(NOTE_DIAG)),
    ("fatal-warnings", Arg::None, Opt::Ignore(NOTE_WARN)),
    ("no-fatal-warnings", Arg::None, Opt::Ignore(NOTE_WARN)),
    ("warn-common", Arg::None, Opt::Ignore(NOTE_WARN)),
    ("warn-constructors", Arg::None, Opt::Ignore(NOTE_WARN)),
    ("warn-multiple-gp", Arg::None, Opt::Ignore(NOTE_WARN)),
    ("warn-once", Arg::None, Opt::Ignore(NOTE_WARN)),
    ("warn-section-align", Arg::None, Opt::Ignore(NOTE_WARN)),
    ("warn-textrel", Arg::None, Opt::Ignore(NOTE_WARN)),
    ("warn-execstack", Arg::None, Opt::Ignore(NOTE_WARN)),
    ("warn-rwx-segments", Arg::None, Opt::Ignore(NOTE_WARN)),
    ("warn-mismatch", Arg::None, Opt::Ignore(NOTE_WARN)),
    ("no-warn-mismatch", Arg::None, Opt::Ignore(NOTE_WARN)),
    ("no-warn-search-mismatch", Arg::None, Opt::Ignore(NOTE_WARN)),
    ("no-warn-rwx-segments", Arg::None, Opt::Ignore(NOTE_WARN)),
    ("no-warn-execstack", Arg::None, Opt::Ignore(NOTE_WARN)),
    ("no-warnings", Arg::None, Opt::Ignore(NOTE_WARN)),
    (
        "error-unresolved-symbols",
        Arg::None,
        Opt::Ignore(NOTE_DIAG),
    ),
    ("warn-unresolved-symbols", Arg::None, Opt::Ignore(NOTE_DIAG)),
    (
        "allow-multiple-definition",
        Arg::None,
        Opt::Ignore(NOTE_DIAG),
    ),
    ("check-sections", Arg::None, Opt::Ignore(NOTE_DIAG)),
    ("no-check-sections", Arg::None, Opt::Ignore(NOTE_DIAG)),
    ("print-map", Arg::None, Opt::Ignore(NOTE_INFO)),
    ("Map", Arg::Required, Opt::IgnoreArg(NOTE_INFO)),
    ("cref", Arg::None, Opt::Ignore(NOTE_INFO)),
    ("stats", Arg::None, Opt::Ignore(NOTE_INFO)),
    ("trace", Arg::None, Opt::Ignore(NOTE_INFO)),
    ("verbose", Arg::Optional, Opt::Ignore(NOTE_INFO)),
    ("print-memory-usage", Arg::None, Opt::Ignore(NOTE_INFO)),
    ("print-gc-sections", Arg::None, Opt::Ignore(NOTE_INFO)),
    ("pic-veneer", Arg::None, Opt::PicVeneer),
    ("no-merge-exidx-entries", Arg::None, Opt::NoMergeExidx),
    ("merge-exidx-entries", Arg::None, Opt::MergeExidx),
    ("fix-cortex-a8", Arg::None, Opt::FixCortexA8),
    ("no-fix-cortex-a8", Arg::None, Opt::NoFixCortexA8),
    (
        "fix-cortex-a53-843419",
        Arg::Optional,
        Opt::FixCortexA53Erratum843419,
    ),
    (
        "no-apply-dynamic-relocs",
        Arg::None,
        Opt::Ignore("only changes the words dynamic relocations rewrite"),
    ),
    ("fix-v4bx", Arg::None, Opt::FixV4bx),
    ("fix-v4bx-interworking", Arg::None, Opt::FixV4bxInterworking),
    ("as-needed", Arg::None, Opt::Ignore(NOTE_DYN)),
    ("no-as-needed", Arg::None, Opt::Ignore(NOTE_DYN)),
    ("no-dynamic-linker", Arg::None, Opt::Ignore(NOTE_DYN)),
    ("export-dynamic", Arg::None, Opt::Ignore(NOTE_DYN)),
    ("hash-style", Arg::Required, Opt::IgnoreArg(NOTE_DYN)),
    ("Bstatic", Arg::None, Opt::Ignore(NOTE_DYN)),
    ("Bdynamic", Arg::None, Opt::Ignore(NOTE_DYN)),
    ("static", Arg::None, Opt::Ignore(NOTE_DYN)),
    ("non_shared", Arg::None, Opt::Ignore(NOTE_DYN)),
    ("Bsymbolic", Arg::None, Opt::Bsymbolic),
    (
        "nostdlib",
        Arg::None,
        Opt::Ignore("only limits library search paths"),
    ),
    (
        "no-relax",
        Arg::None,
        Opt::Ignore("x86/ARM final links do not relax code sizes"),
    ),
    (
        "no-define-common",
        Arg::None,
        Opt::Ignore("only applies to shared objects"),
    ),
    (
        "no-keep-memory",
        Arg::None,
        Opt::Ignore("only changes ld's memory use"),
    ),
    (
        "reduce-memory-overheads",
        Arg::None,
        Opt::Ignore("only changes ld's memory use"),
    ),
    (
        "threads",
        Arg::Optional,
        Opt::Ignore("only changes ld's own parallelism"),
    ),
    (
        "no-threads",
        Arg::None,
        Opt::Ignore("only changes ld's own parallelism"),
    ),
    ("color-diagnostics", Arg::Optional, Opt::Ignore(NOTE_DIAG)),
];

/// Short options: letter, argument, meaning.
const SHORT: &[(char, Arg, Opt)] = &[
    ('T', Arg::Required, Opt::Script),
    ('m', Arg::Required, Opt::Emulation),
    ('o', Arg::Required, Opt::Output),
    ('L', Arg::Required, Opt::LibraryPath),
    ('l', Arg::Required, Opt::Library),
    ('e', Arg::Required, Opt::Entry),
    ('u', Arg::Required, Opt::Undefined),
    ('z', Arg::Required, Opt::Z),
    ('r', Arg::None, Opt::Relocatable),
    ('i', Arg::None, Opt::Relocatable),
    ('(', Arg::None, Opt::StartGroup),
    (')', Arg::None, Opt::EndGroup),
    ('X', Arg::None, Opt::DiscardLocals),
    ('x', Arg::None, Opt::DiscardAll),
    ('S', Arg::None, Opt::StripDebug),
    ('s', Arg::None, Opt::StripAll),
    ('q', Arg::None, Opt::EmitRelocs),
    ('N', Arg::None, Opt::Omagic),
    ('n', Arg::None, Opt::Nmagic),
    ('M', Arg::None, Opt::Ignore(NOTE_INFO)),
    ('t', Arg::None, Opt::Ignore(NOTE_INFO)),
    ('v', Arg::None, Opt::Ignore(NOTE_INFO)),
    (
        'O',
        Arg::Required,
        Opt::IgnoreArg("only affects hash table sizes of shared objects"),
    ),
    ('g', Arg::None, Opt::Ignore("ignored by ld itself")),
];

impl LinkRequest {
    /// Parses ld's arguments (without the program name). `@FILE` arguments are expanded
    /// relative to the current directory, as ld does.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<LinkRequest, LinkArgsError> {
        let mut expanded = Vec::with_capacity(args.len());
        for a in args {
            expand_arg(a.as_ref(), &mut expanded, 0)?;
        }
        Parser::default().run(&expanded)
    }

    /// Finds `libNAME.a` for `-lNAME` (or `-l:FILE` verbatim) in the `-L` directories, relative
    /// to `base` when they are relative. Only static archives: the kernel links no shared ones.
    pub fn find_library(&self, name: &str, base: &Path) -> Result<PathBuf, LinkArgsError> {
        let file = match name.strip_prefix(':') {
            Some(exact) => exact.to_string(),
            None => format!("lib{name}.a"),
        };
        self.library_paths
            .iter()
            .map(|dir| base.join(dir).join(&file))
            .find(|p| p.is_file())
            .ok_or_else(|| LinkArgsError::LibraryNotFound(name.to_string()))
    }
}

/// Response files may name further response files; ld (libiberty) stops at this depth.
const MAX_RESPONSE_DEPTH: usize = 64;

fn expand_arg(arg: &str, out: &mut Vec<String>, depth: usize) -> Result<(), LinkArgsError> {
    let Some(file) = arg.strip_prefix('@') else {
        out.push(arg.to_string());
        return Ok(());
    };
    let path = PathBuf::from(file);
    if depth >= MAX_RESPONSE_DEPTH {
        return Err(LinkArgsError::ResponseFile {
            path,
            message: "response files nested too deeply".into(),
        });
    }
    let text = std::fs::read_to_string(&path).map_err(|e| LinkArgsError::ResponseFile {
        path: path.clone(),
        message: e.to_string(),
    })?;
    for word in split_response(&text) {
        expand_arg(&word, out, depth + 1)?;
    }
    Ok(())
}

/// Splits a response file like libiberty's buildargv: whitespace separates, single and
/// double quotes group, a backslash escapes the next character.
fn split_response(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                if let Some(next) = chars.next() {
                    cur.push(next);
                }
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

#[derive(Default)]
struct Parser {
    req: LinkRequest,
    unknown: Vec<String>,
}

impl Parser {
    fn run(mut self, args: &[String]) -> Result<LinkRequest, LinkArgsError> {
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if arg == "--" {
                for rest in &args[i..] {
                    self.req.inputs.push(InputItem::File(rest.into()));
                }
                break;
            }
            let body = if let Some(b) = arg.strip_prefix("--") {
                b
            } else if let Some(b) = arg.strip_prefix('-').filter(|b| !b.is_empty()) {
                b
            } else {
                self.req.inputs.push(InputItem::File(arg.into()));
                continue;
            };
            let double = arg.starts_with("--");
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            // getopt_long_only: a single-dash word is a long option when one matches exactly,
            // except a lone letter that is a short option.
            let single_letter = !double && body.chars().count() == 1;
            if let Some(&(_, kind, opt)) = LONG
                .iter()
                .find(|(n, ..)| *n == name)
                .filter(|_| !single_letter)
            {
                let value = match (kind, inline) {
                    (Arg::None, Some(_)) => {
                        return Err(LinkArgsError::BadValue {
                            option: arg.clone(),
                            value: inline.unwrap_or_default().to_string(),
                            reason: "this option takes no value",
                        });
                    }
                    (Arg::None, None) | (Arg::Optional, None) => None,
                    (_, Some(v)) => Some(v.to_string()),
                    (Arg::Required, None) => {
                        let v = args
                            .get(i)
                            .ok_or_else(|| LinkArgsError::MissingValue(arg.clone()))?;
                        i += 1;
                        Some(v.clone())
                    }
                };
                self.apply(opt, arg, value)?;
                continue;
            }
            if double {
                self.unknown.push(arg.clone());
                continue;
            }
            // Short options, possibly clustered; one that takes a value ends the cluster.
            let mut rest = body;
            while let Some(c) = rest.chars().next() {
                rest = &rest[c.len_utf8()..];
                let Some(&(_, kind, opt)) = SHORT.iter().find(|(l, ..)| *l == c) else {
                    self.unknown.push(format!("-{c}{rest}"));
                    break;
                };
                if kind == Arg::None {
                    self.apply(opt, &format!("-{c}"), None)?;
                    continue;
                }
                let value = if rest.is_empty() {
                    let v = args
                        .get(i)
                        .ok_or_else(|| LinkArgsError::MissingValue(format!("-{c}")))?;
                    i += 1;
                    v.clone()
                } else {
                    rest.to_string()
                };
                self.apply(opt, &format!("-{c}"), Some(value))?;
                break;
            }
        }
        if self.unknown.is_empty() {
            Ok(self.req)
        } else {
            Err(LinkArgsError::Unknown(self.unknown))
        }
    }

    fn apply(
        &mut self,
        opt: Opt,
        option: &str,
        value: Option<String>,
    ) -> Result<(), LinkArgsError> {
        let r = &mut self.req;
        let bad = |value: &str, reason: &'static str| LinkArgsError::BadValue {
            option: option.to_string(),
            value: value.to_string(),
            reason,
        };
        let v = value.unwrap_or_default();
        match opt {
            Opt::Script => r.scripts.push(v.into()),
            Opt::Emulation => r.emulation = Some(v),
            Opt::Output => r.output = Some(v.into()),
            Opt::LibraryPath => r.library_paths.push(v.into()),
            Opt::Library => r.inputs.push(InputItem::Library(v)),
            Opt::Entry => r.entry = Some(v),
            Opt::Undefined => r.undefined.push(v),
            Opt::Z => self.z_keyword(option, &v)?,
            Opt::BuildId => {
                r.build_id = Some(match v.as_str() {
                    "" | "sha1" | "tree" => BuildId::Sha1,
                    "md5" => BuildId::Md5,
                    "uuid" => BuildId::Uuid,
                    "none" => BuildId::None,
                    hex => BuildId::Hex(
                        parse_hex_id(hex)
                            .ok_or_else(|| bad(hex, "expected md5, sha1, uuid, none or 0xHEX"))?,
                    ),
                })
            }
            Opt::Defsym => {
                let (sym, expr) = v
                    .split_once('=')
                    .ok_or_else(|| bad(&v, "expected SYMBOL=EXPRESSION"))?;
                if sym.trim().is_empty() || expr.trim().is_empty() {
                    return Err(bad(&v, "expected SYMBOL=EXPRESSION"));
                }
                r.defsyms
                    .push((sym.trim().to_string(), expr.trim().to_string()));
            }
            Opt::SortSection => {
                r.sort_section = Some(match v.as_str() {
                    "name" => SortSection::Name,
                    "alignment" => SortSection::Alignment,
                    _ => return Err(bad(&v, "expected name or alignment")),
                })
            }
            Opt::SortCommon => {
                r.sort_common = Some(match v.as_str() {
                    "" | "descending" => SortCommon::Descending,
                    "ascending" => SortCommon::Ascending,
                    _ => return Err(bad(&v, "expected ascending or descending")),
                })
            }
            Opt::GcSections => r.gc_sections = true,
            Opt::NoGcSections => r.gc_sections = false,
            Opt::Relocatable => return Err(LinkArgsError::Relocatable(option.to_string())),
            Opt::StartGroup => r.inputs.push(InputItem::StartGroup),
            Opt::EndGroup => r.inputs.push(InputItem::EndGroup),
            Opt::WholeArchive => r.inputs.push(InputItem::WholeArchive),
            Opt::NoWholeArchive => r.inputs.push(InputItem::NoWholeArchive),
            Opt::DiscardLocals => r.discard = Discard::Locals,
            Opt::DiscardAll => r.discard = Discard::All,
            Opt::DiscardNone => r.discard = Discard::None,
            Opt::StripDebug => r.strip = Strip::Debug,
            Opt::StripAll => r.strip = Strip::All,
            Opt::EmitRelocs => r.emit_relocs = true,
            Opt::Omagic => r.omagic = true,
            Opt::PicVeneer => r.pic_veneer = true,
            Opt::NoMergeExidx => r.no_merge_exidx_entries = true,
            Opt::MergeExidx => r.no_merge_exidx_entries = false,
            Opt::FixCortexA8 => r.fix_cortex_a8 = Some(true),
            Opt::NoFixCortexA8 => r.fix_cortex_a8 = Some(false),
            Opt::Bsymbolic => r.bsymbolic = true,
            Opt::FixCortexA53Erratum843419 => match v.as_str() {
                "" | "full" | "adr" | "adrp" => r.fix_cortex_a53_843419 = true,
                other => return Err(bad(other, "expected full, adr or adrp")),
            },
            Opt::FixV4bx => r.fix_v4bx = 1,
            Opt::FixV4bxInterworking => r.fix_v4bx = 2,
            Opt::NoOmagic => r.omagic = false,
            Opt::Nmagic => r.nmagic = true,
            Opt::OrphanHandling => {
                r.orphan_handling = match v.as_str() {
                    "place" => OrphanHandling::Place,
                    "warn" => OrphanHandling::Warn,
                    "error" => OrphanHandling::Error,
                    "discard" => OrphanHandling::Discard,
                    _ => return Err(bad(&v, "expected place, warn, error or discard")),
                }
            }
            Opt::LittleEndian => r.little_endian = Some(true),
            Opt::BigEndian => r.little_endian = Some(false),
            Opt::Pie => r.pie = true,
            Opt::Shared => r.shared = true,
            Opt::SectionStart => {
                let (name, addr) = v
                    .split_once('=')
                    .ok_or_else(|| bad(&v, "expected SECTION=ADDRESS"))?;
                let addr = parse_hex_address(addr)
                    .ok_or_else(|| bad(&v, "address must be hexadecimal"))?;
                r.section_starts.push((name.to_string(), addr));
            }
            Opt::Ttext | Opt::Tdata | Opt::Tbss => {
                let name = match opt {
                    Opt::Ttext => ".text",
                    Opt::Tdata => ".data",
                    _ => ".bss",
                };
                let addr =
                    parse_hex_address(&v).ok_or_else(|| bad(&v, "address must be hexadecimal"))?;
                r.section_starts.push((name.to_string(), addr));
            }
            Opt::Ignore(note) | Opt::IgnoreArg(note) => {
                let option = if v.is_empty() {
                    option.to_string()
                } else {
                    format!("{option} {v}")
                };
                r.ignored.push(Ignored { option, note });
            }
        }
        Ok(())
    }

    fn z_keyword(&mut self, option: &str, kw: &str) -> Result<(), LinkArgsError> {
        let r = &mut self.req;
        let size = |value: &str| {
            parse_c_number(value).ok_or_else(|| LinkArgsError::BadValue {
                option: format!("{option} {kw}"),
                value: value.to_string(),
                reason: "expected a number",
            })
        };
        if let Some(v) = kw.strip_prefix("max-page-size=") {
            r.max_page_size = Some(size(v)?);
        } else if let Some(v) = kw.strip_prefix("common-page-size=") {
            r.common_page_size = Some(size(v)?);
        } else {
            match kw {
                "separate-code" => r.separate_code = Some(true),
                "noseparate-code" => r.separate_code = Some(false),
                "relro" => r.relro = Some(true),
                "norelro" => r.relro = Some(false),
                "execstack" => r.execstack = Some(true),
                "noexecstack" => r.execstack = Some(false),
                _ => {}
            }
        }
        r.z_keywords.push(kw.to_string());
        Ok(())
    }
}

/// A number as ld's `-z` options read it (C `strtoul` base 0: `0x` hex, leading `0` octal).
fn parse_c_number(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

/// Addresses of `--section-start`/`-Ttext` are always hexadecimal, `0x` optional.
fn parse_hex_address(s: &str) -> Option<u64> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u64::from_str_radix(digits, 16).ok()
}

fn parse_hex_id(s: &str) -> Option<Vec<u8>> {
    let digits: String = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))?
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    if digits.is_empty() || !digits.is_ascii() || !digits.len().is_multiple_of(2) {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).ok())
        .collect()
}
