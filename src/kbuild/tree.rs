//! A Kbuild output tree as `scripts/link-vmlinux.sh` sees it just before its first link.
//!
//! Owns reading the tree: the configuration (`.config`), the kernel version and which
//! link-vmlinux.sh procedure it follows, the architecture and its `vmlinux.lds`, the ld flags
//! Kbuild passed to link-vmlinux.sh (`.vmlinux.cmd`, or a `make V=1` trace), the link inputs
//! and KBUILD_VMLINUX_LIBS, and from all of that the final link command. It only reads: it runs
//! nothing, writes nothing and analyses nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

use crate::kallsyms::{self, Version};

/// Why a tree cannot be read as a link-vmlinux.sh input (exit status 2 in the CLI).
#[derive(Debug, Error, miette::Diagnostic)]
pub enum TreeError {
    #[error("{0}: not a directory (pass the Kbuild output tree, the O= directory)")]
    NotATree(PathBuf),
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{0}: no .config, include/config/auto.conf or config: the configuration says whether \
         link-vmlinux.sh runs kallsyms passes (CONFIG_KALLSYMS*), which objects it links \
         (CONFIG_MODULES, CONFIG_LTO_CLANG, CONFIG_X86_KERNEL_IBT) and the architecture \
         (pass --config FILE)"
    )]
    NoConfig(PathBuf),
    #[error(
        "{tree}: cannot tell the kernel version: no include/config/kernel.release, no Makefile \
         with VERSION and PATCHLEVEL (pass --srctree), and no `# Linux/<arch> <release> Kernel \
         Configuration` line in {config}; the version decides which link-vmlinux.sh procedure \
         to replay"
    )]
    UnknownVersion { tree: PathBuf, config: PathBuf },
    #[error(
        "{tree}: cannot tell the architecture: the header of {config} names none, it sets none \
         of CONFIG_X86, CONFIG_ARM64, CONFIG_ARM, and the tree does not hold exactly one \
         arch/<arch>/kernel/vmlinux.lds; the architecture gives the linker script's path"
    )]
    UnknownArch { tree: PathBuf, config: PathBuf },
    #[error(
        "ARCH=um links vmlinux through the C compiler (-Wl, flags); ldcheck replays GNU ld \
         links only"
    )]
    UserModeLinux,
    #[error(
        "{0}: no .vmlinux.cmd and no V=1 trace (build.link.log): one of them holds the ld flags \
         Kbuild passes to link-vmlinux.sh (LD, KBUILD_LDFLAGS, LDFLAGS_vmlinux); pass \
         --link-log FILE or --ld-call LD KBUILD_LDFLAGS LDFLAGS_vmlinux"
    )]
    NoLinkFlags(PathBuf),
    #[error(
        "{0}: no `link-vmlinux.sh \"LD\" \"KBUILD_LDFLAGS\" \"LDFLAGS_vmlinux\"` call in it, so \
         the ld flags Kbuild passes are unknown (pass --ld-call LD KBUILD_LDFLAGS \
         LDFLAGS_vmlinux)"
    )]
    NoLinkCall(PathBuf),
    #[error(
        "cannot derive KBUILD_VMLINUX_LIBS for ARCH={0}: no .vmlinux.o.cmd or V=1 trace names \
         them, and ldcheck knows the libs-y order of x86, arm and arm64 only (pass --libs \
         \"$KBUILD_VMLINUX_LIBS\")"
    )]
    UnknownLibs(String),
    #[error("{tree}: {count} link input(s) missing", count = missing.len())]
    MissingInputs {
        tree: PathBuf,
        #[related]
        missing: Vec<MissingInput>,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TreeError + '_ {
    move |source| TreeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A file the final link needs that the tree does not hold, and what it is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Error, miette::Diagnostic)]
#[error("{path} is missing: {why}")]
pub struct MissingInput {
    /// Relative to the directory the link runs in.
    pub path: String,
    pub why: String,
}

/// Reads a file that may be absent.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, TreeError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path)(e)),
    }
}

/// A kernel version; what ldcheck does with a tree depends on major.minor only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
}

impl KernelVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// Reads `6.1.192`, `4.14.23-custom`, `5.10.0-rc1`: the first two numbers.
    pub fn parse_release(text: &str) -> Option<Self> {
        let text = text.trim();
        let (major, rest) = text.split_once('.')?;
        let minor: String = rest.chars().take_while(char::is_ascii_digit).collect();
        Some(Self::new(major.parse().ok()?, minor.parse().ok()?))
    }

    /// Reads the top-level kernel Makefile's `VERSION = 6` and `PATCHLEVEL = 1` lines.
    pub fn parse_makefile(text: &str) -> Option<Self> {
        let value = |name: &str| {
            text.lines().find_map(|line| {
                let rest = line.strip_prefix(name)?.trim_start().strip_prefix('=')?;
                rest.trim().parse::<u32>().ok()
            })
        };
        Some(Self::new(value("VERSION")?, value("PATCHLEVEL")?))
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Serialize for KernelVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Reads the version from `include/config/kernel.release`, else a top-level Makefile
/// (`srctree`, the tree itself, or its `source` link). Returns where it was found.
pub fn read_version(
    objtree: &Path,
    srctree: Option<&Path>,
) -> Result<Option<(KernelVersion, String)>, TreeError> {
    let release = objtree.join("include/config/kernel.release");
    if let Some(text) = read_optional(&release)?
        && let Some(v) = KernelVersion::parse_release(&text)
    {
        return Ok(Some((v, "include/config/kernel.release".into())));
    }
    let mut makefiles = Vec::new();
    if let Some(src) = srctree {
        makefiles.push(src.join("Makefile"));
    }
    makefiles.push(objtree.join("Makefile"));
    makefiles.push(objtree.join("source/Makefile"));
    for makefile in makefiles {
        if let Some(text) = read_optional(&makefile)?
            && let Some(v) = KernelVersion::parse_makefile(&text)
        {
            return Ok(Some((v, makefile.display().to_string())));
        }
    }
    Ok(None)
}

/// Where Kconfig leaves a tree's configuration, in the order they are read.
pub const CONFIG_FILES: [&str; 2] = [".config", "include/config/auto.conf"];

/// A Kconfig output file: its `CONFIG_` values and the `# Linux/<arch> <release> Kernel
/// Configuration` header line, which names the architecture and version it was made for.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    values: BTreeMap<String, String>,
    header: Option<(String, String)>,
}

impl Config {
    /// Parses the text of a `.config` or `auto.conf` read from `path`.
    pub fn parse(path: PathBuf, text: &str) -> Self {
        let mut values = BTreeMap::new();
        let mut header = None;
        for line in text.lines().map(str::trim_end) {
            if let Some(rest) = line.strip_prefix("# Linux/")
                && let Some(rest) = rest.strip_suffix(" Kernel Configuration")
                && let Some((arch, release)) = rest.split_once(' ')
            {
                header.get_or_insert((arch.to_string(), release.trim().to_string()));
            } else if let Some(rest) = line.strip_prefix("CONFIG_")
                && let Some((name, value)) = rest.split_once('=')
            {
                values.insert(name.to_string(), value.to_string());
            }
        }
        Config {
            path,
            values,
            header,
        }
    }

    /// Reads `path`, or None when it does not exist.
    pub fn read(path: &Path) -> Result<Option<Self>, TreeError> {
        Ok(read_optional(path)?.map(|text| Self::parse(path.to_path_buf(), &text)))
    }

    /// The first of [`CONFIG_FILES`] the tree holds.
    pub fn find(objtree: &Path) -> Result<Option<Self>, TreeError> {
        for name in CONFIG_FILES {
            if let Some(config) = Self::read(&objtree.join(name))? {
                return Ok(Some(config));
            }
        }
        Ok(None)
    }

    /// `CONFIG_<name>=y`: what link-vmlinux.sh's `is_enabled` tests.
    pub fn enabled(&self, name: &str) -> bool {
        self.value(name) == Some("y")
    }

    /// The value of `CONFIG_<name>`, quotes included for strings.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The `ARCH` the configuration was made with (`x86_64`, `i386`, `arm`, …).
    pub fn header_arch(&self) -> Option<&str> {
        self.header.as_ref().map(|(arch, _)| arch.as_str())
    }

    /// The full release the configuration was made for (`6.12.117`).
    pub fn header_release(&self) -> Option<&str> {
        self.header.as_ref().map(|(_, release)| release.as_str())
    }
}

/// The link-vmlinux.sh procedure ldcheck replays for a kernel version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Procedure {
    /// The replayed procedure (6.12 or 6.1).
    pub version: Version,
    /// Whether the kernel is that version; otherwise the nearest one stands in for it.
    pub exact: bool,
}

/// Linux 6.10 replaced the first link without kallsyms object by a link with an empty-table
/// object (upstream commit 951bcae6c5a0, "kallsyms: Avoid weak references for kallsyms
/// symbols"): from there on the procedure is 6.12's, before it 6.1's.
const PASS_ZERO_SINCE: KernelVersion = KernelVersion::new(6, 10);

impl Procedure {
    /// The procedure `v` follows: 6.12's from 6.10 on, 6.1's before; exact for 6.12 and 6.1.
    pub fn for_kernel(v: KernelVersion) -> Self {
        let version = if v >= PASS_ZERO_SINCE {
            Version::V6_12
        } else {
            Version::V6_1
        };
        let exact = match version {
            Version::V6_12 => v == KernelVersion::new(6, 12),
            Version::V6_1 => v == KernelVersion::new(6, 1),
        };
        Procedure { version, exact }
    }
}

impl Serialize for Procedure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.version)
    }
}

/// link-vmlinux.sh's three arguments, as Kbuild's `cmd_link_vmlinux` passes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LdCall {
    /// `$(LD)`: the linker and any words that come with it.
    pub ld: String,
    /// `$(KBUILD_LDFLAGS)`.
    pub kbuild_ldflags: String,
    /// `$(LDFLAGS_vmlinux)`.
    pub ldflags_vmlinux: String,
}

impl LdCall {
    /// Finds the last `link-vmlinux.sh "…" "…" "…"` call in `text` (a `.cmd` file or a log).
    /// `make_escaped` undoes the `$$` and `$(pound)` escapes Kbuild writes into `.cmd` files.
    pub fn find(text: &str, make_escaped: bool) -> Option<Self> {
        text.lines().rev().find_map(|line| {
            let line = if make_escaped {
                make_unescape(line)
            } else {
                line.to_string()
            };
            let mut found = None;
            let mut from = 0;
            while let Some(at) = line[from..].find("link-vmlinux.sh") {
                let rest = &line[from + at + "link-vmlinux.sh".len()..];
                if let Some(call) = Self::quoted_three(rest) {
                    found = Some(call);
                }
                from += at + 1;
            }
            found
        })
    }

    /// Three double-quoted shell words at the start of `rest`.
    fn quoted_three(rest: &str) -> Option<Self> {
        let mut words = Vec::new();
        let mut chars = rest.chars().peekable();
        while words.len() < 3 {
            let c = chars.next()?;
            if c == ' ' || c == '\t' {
                continue;
            }
            if c != '"' {
                return None;
            }
            let mut word = String::new();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' if matches!(chars.peek(), Some('"' | '\\' | '$' | '`')) => {
                        word.extend(chars.next());
                    }
                    other => word.push(other),
                }
            }
            words.push(word);
        }
        let mut words = words.into_iter();
        Some(LdCall {
            ld: words.next()?,
            kbuild_ldflags: words.next()?,
            ldflags_vmlinux: words.next()?,
        })
    }
}

/// Undoes Kbuild's `.cmd` escapes, left to right: `$$` is `$`, `$(pound)` is `#`.
fn make_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("$(pound)") {
            out.push('#');
            rest = after;
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The words between `--start-group` and `--end-group` of the `vmlinux.o` link
/// (`ld … -r -o vmlinux.o … --start-group $(KBUILD_VMLINUX_LIBS) --end-group`) in `text`.
pub fn vmlinux_o_libs(text: &str) -> Option<Vec<String>> {
    text.lines().rev().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        let out = words.windows(2).any(|w| w == ["-o", "vmlinux.o"]);
        if !out || !words.contains(&"-r") {
            return None;
        }
        let start = words.iter().position(|w| *w == "--start-group")?;
        let end = start + words[start..].iter().position(|w| *w == "--end-group")?;
        Some(
            words[start + 1..end]
                .iter()
                .map(|w| w.to_string())
                .collect(),
        )
    })
}

/// What to read, and values for what a tree does not hold.
#[derive(Debug, Clone, Default)]
pub struct TreeOptions {
    /// The Kbuild output tree (O=), or a corpus build folder (`objtree/`, `config`,
    /// `build.link.log`).
    pub objtree: PathBuf,
    /// The source tree, whose Makefile gives the version when the tree has no kernel.release.
    pub srctree: Option<PathBuf>,
    /// The configuration file, instead of looking for one.
    pub config: Option<PathBuf>,
    /// A `.vmlinux.cmd` or a `make V=1` log, instead of looking for one.
    pub link_log: Option<PathBuf>,
    /// link-vmlinux.sh's arguments, instead of reading them from a file.
    pub ld_call: Option<LdCall>,
    /// KBUILD_VMLINUX_LIBS as link-vmlinux.sh's environment holds it (words split by spaces).
    pub libs: Option<String>,
}

/// A tree whose configuration, version and architecture are known.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The directory given.
    pub root: PathBuf,
    /// The directory the link runs in (`root`, or `root/objtree` for a corpus build folder).
    pub inputs: PathBuf,
    pub config: Config,
    pub version: KernelVersion,
    /// Where the version was read.
    pub version_from: String,
    pub procedure: Procedure,
    /// `SRCARCH`: the directory under `arch/`.
    pub srcarch: String,
    /// Where the architecture was read.
    pub arch_from: String,
}

/// Config files looked for in each searched directory, in order: Kconfig's own names, then the
/// corpus's `config`.
const CONFIG_NAMES: [&str; 3] = [".config", "include/config/auto.conf", "config"];

/// `ARCH` → `SRCARCH`, as the top Makefile maps them.
fn srcarch_of(arch: &str) -> &str {
    match arch {
        "x86_64" | "i386" => "x86",
        "sparc32" | "sparc64" => "sparc",
        "parisc64" => "parisc",
        "sh64" => "sh",
        other => other,
    }
}

impl Tree {
    /// Reads the configuration, version and architecture of the tree `opts` names.
    pub fn open(opts: &TreeOptions) -> Result<Self, TreeError> {
        let root = opts.objtree.clone();
        if !root.is_dir() {
            return Err(TreeError::NotATree(root));
        }
        let corpus_folder = root.join("objtree").is_dir()
            && !root.join("vmlinux.a").exists()
            && !root.join("vmlinux.o").exists();
        let inputs = if corpus_folder {
            root.join("objtree")
        } else {
            root.clone()
        };
        let config = match &opts.config {
            Some(path) => Config::read(path)?.ok_or_else(|| TreeError::Io {
                path: path.clone(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })?,
            None => {
                find_config(&inputs, &root)?.ok_or_else(|| TreeError::NoConfig(root.clone()))?
            }
        };
        let (version, version_from) = match read_version(&inputs, opts.srctree.as_deref())? {
            Some(found) => found,
            None => config
                .header_release()
                .and_then(KernelVersion::parse_release)
                .map(|v| (v, format!("{} (header)", shown(&root, &config.path))))
                .ok_or_else(|| TreeError::UnknownVersion {
                    tree: root.clone(),
                    config: config.path.clone(),
                })?,
        };
        let (srcarch, arch_from) = Self::arch(&inputs, &root, &config)?;
        if srcarch == "um" {
            return Err(TreeError::UserModeLinux);
        }
        Ok(Tree {
            root,
            inputs,
            procedure: Procedure::for_kernel(version),
            config,
            version,
            version_from,
            srcarch,
            arch_from,
        })
    }

    fn arch(inputs: &Path, root: &Path, config: &Config) -> Result<(String, String), TreeError> {
        let file = shown(root, &config.path);
        if let Some(arch) = config.header_arch() {
            return Ok((srcarch_of(arch).to_string(), format!("{file} (header)")));
        }
        for (symbol, arch) in [("X86", "x86"), ("ARM64", "arm64"), ("ARM", "arm")] {
            if config.enabled(symbol) {
                return Ok((arch.to_string(), format!("{file} (CONFIG_{symbol})")));
            }
        }
        let mut scripts = Vec::new();
        if let Ok(entries) = std::fs::read_dir(inputs.join("arch")) {
            for entry in entries.flatten() {
                if entry.path().join("kernel/vmlinux.lds").is_file() {
                    scripts.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        match scripts.as_slice() {
            [one] => Ok((
                one.clone(),
                format!("arch/{one}/kernel/vmlinux.lds (the only linker script)"),
            )),
            _ => Err(TreeError::UnknownArch {
                tree: root.to_path_buf(),
                config: config.path.clone(),
            }),
        }
    }

    /// `path` relative to the directory given when it lies inside it, for reports.
    pub fn shown(&self, path: &Path) -> String {
        shown(&self.root, path)
    }

    /// `KBUILD_LDS`: the linker script, relative to the link directory.
    pub fn script(&self) -> String {
        format!("arch/{}/kernel/vmlinux.lds", self.srcarch)
    }

    /// Whether link-vmlinux.sh runs the kallsyms passes at all.
    pub fn kallsyms_enabled(&self) -> bool {
        self.config.enabled("KALLSYMS")
    }

    /// The options link-vmlinux.sh's `kallsyms()` gives scripts/kallsyms for this tree.
    pub fn kallsyms_options(&self) -> kallsyms::Options {
        let mut options = kallsyms::Options::new(self.procedure.version);
        options.all_symbols = self.config.enabled("KALLSYMS_ALL");
        options.absolute_percpu = self.config.enabled("KALLSYMS_ABSOLUTE_PERCPU");
        if self.procedure.version == Version::V6_1 {
            options.base_relative = self.config.enabled("KALLSYMS_BASE_RELATIVE");
            options.lto_clang = self.config.enabled("LTO_CLANG");
        }
        options
    }

    /// Directories searched for files the tree may hold, link directory first.
    fn search_dirs(&self) -> Vec<&Path> {
        let mut dirs = vec![self.inputs.as_path()];
        if self.root != self.inputs {
            dirs.push(self.root.as_path());
        }
        dirs
    }

    /// The ld flags: `opts.ld_call`, else `.vmlinux.cmd`, else the V=1 trace.
    fn ld_call(&self, opts: &TreeOptions) -> Result<(LdCall, String), TreeError> {
        if let Some(call) = &opts.ld_call {
            return Ok((call.clone(), "--ld-call".into()));
        }
        let mut logs: Vec<(PathBuf, bool)> = Vec::new();
        match &opts.link_log {
            Some(path) => logs.push((path.clone(), is_cmd_file(path))),
            None => {
                for dir in self.search_dirs() {
                    logs.push((dir.join(".vmlinux.cmd"), true));
                    logs.push((dir.join("build.link.log"), false));
                }
            }
        }
        for (path, make_escaped) in logs {
            let Some(text) = read_optional(&path)? else {
                if opts.link_log.is_some() {
                    return Err(io_error(&path)(std::io::ErrorKind::NotFound.into()));
                }
                continue;
            };
            return LdCall::find(&text, make_escaped)
                .map(|call| (call, self.shown(&path)))
                .ok_or(TreeError::NoLinkCall(path));
        }
        Err(TreeError::NoLinkFlags(self.root.clone()))
    }

    /// KBUILD_VMLINUX_LIBS: `opts.libs`, else the `vmlinux.o` link in `.vmlinux.o.cmd` or the
    /// V=1 trace, else derived from the architecture's libs-y order and CONFIG_MODULES.
    fn libs(&self, opts: &TreeOptions) -> Result<(Vec<String>, String), TreeError> {
        if let Some(libs) = &opts.libs {
            return Ok((
                libs.split_whitespace().map(str::to_string).collect(),
                "--libs".into(),
            ));
        }
        let mut files: Vec<PathBuf> = self
            .search_dirs()
            .iter()
            .map(|d| d.join(".vmlinux.o.cmd"))
            .collect();
        match &opts.link_log {
            Some(path) => files.push(path.clone()),
            None => files.extend(self.search_dirs().iter().map(|d| d.join("build.link.log"))),
        }
        for path in files {
            if let Some(text) = read_optional(&path)?
                && let Some(libs) = vmlinux_o_libs(&text)
            {
                return Ok((libs, format!("{} (the vmlinux.o link)", self.shown(&path))));
            }
        }
        self.derived_libs()
    }

    /// The top Makefile's KBUILD_VMLINUX_LIBS: without CONFIG_MODULES each libs-y directory's
    /// `lib.a`; with it, only libs-y entries that are files (the directories' `lib.a` go into
    /// vmlinux.a). The arch Makefile puts its `lib/` before the top-level `lib/` on arm and
    /// arm64, after it on x86.
    fn derived_libs(&self) -> Result<(Vec<String>, String), TreeError> {
        let arch_lib = format!("arch/{}/lib/", self.srcarch);
        let (dirs, files): (Vec<String>, Vec<String>) = match self.srcarch.as_str() {
            "x86" => (vec!["lib/".into(), arch_lib], Vec::new()),
            "arm" => (vec![arch_lib, "lib/".into()], Vec::new()),
            "arm64" => (
                vec![arch_lib, "lib/".into()],
                if self.config.enabled("EFI_STUB") {
                    vec!["./drivers/firmware/efi/libstub/lib.a".into()]
                } else {
                    Vec::new()
                },
            ),
            other => return Err(TreeError::UnknownLibs(other.to_string())),
        };
        let libs = if self.config.enabled("MODULES") {
            files
        } else {
            dirs.iter()
                .map(|d| format!("{d}lib.a"))
                .chain(files)
                .collect()
        };
        Ok((
            libs,
            format!(
                "derived from the libs-y order of arch/{}/Makefile and CONFIG_MODULES ({}): no \
                 .vmlinux.o.cmd or V=1 trace names them",
                self.srcarch,
                if self.config.enabled("MODULES") {
                    "set"
                } else {
                    "not set"
                }
            ),
        ))
    }

    /// The final link (`vmlinux_link vmlinux` without the kallsyms object), checked against
    /// the tree: every file it names must be there.
    pub fn link_plan(&self, opts: &TreeOptions) -> Result<LinkPlan, TreeError> {
        let (call, flags_from) = self.ld_call(opts)?;
        let vmlinux_o = self.config.enabled("LTO_CLANG") || self.config.enabled("X86_KERNEL_IBT");
        let mut objs = vec![if vmlinux_o { "vmlinux.o" } else { "vmlinux.a" }.to_string()];
        let (libs, libs_from) = if vmlinux_o {
            (
                Vec::new(),
                "none: with CONFIG_LTO_CLANG or CONFIG_X86_KERNEL_IBT vmlinux.o holds them".into(),
            )
        } else {
            self.libs(opts)?
        };
        if self.config.enabled("MODULES") {
            objs.push(".vmlinux.export.o".into());
        }
        objs.push("init/version-timestamp.o".into());

        let mut words = call.ld.split_whitespace().map(str::to_string);
        let program = words.next().unwrap_or_default();
        let mut args: Vec<String> = words.collect();
        args.extend(call.kbuild_ldflags.split_whitespace().map(str::to_string));
        args.extend(call.ldflags_vmlinux.split_whitespace().map(str::to_string));
        let script = self.script();
        args.push(format!("--script=./{script}"));
        if self.config.enabled("VMLINUX_MAP") {
            args.push("-Map=vmlinux.map".into());
        }
        args.extend(["-o", "vmlinux", "--whole-archive"].map(str::to_string));
        args.extend(objs.iter().cloned());
        args.extend(["--no-whole-archive", "--start-group"].map(str::to_string));
        args.extend(libs.iter().cloned());
        args.push("--end-group".into());

        let mut missing = Vec::new();
        let mut need = |path: &str, why: String| {
            if !self.inputs.join(path).is_file() {
                missing.push(MissingInput {
                    path: path.to_string(),
                    why,
                });
            }
        };
        need(
            &script,
            "the linker script (KBUILD_LDS); make generates it before vmlinux.o".into(),
        );
        for obj in &objs {
            let why = match obj.as_str() {
                "vmlinux.a" => "the built-in objects, linked --whole-archive".to_string(),
                "vmlinux.o" => "CONFIG_LTO_CLANG or CONFIG_X86_KERNEL_IBT: link-vmlinux.sh links \
                                vmlinux.o instead of vmlinux.a"
                    .to_string(),
                ".vmlinux.export.o" => {
                    "CONFIG_MODULES: the export table scripts/Makefile.vmlinux builds".to_string()
                }
                _ => "link-vmlinux.sh builds it at its start: run ldcheck after that step \
                      (docs/kbuild.md)"
                    .to_string(),
            };
            need(obj, why);
        }
        for lib in &libs {
            need(lib, format!("KBUILD_VMLINUX_LIBS ({libs_from})"));
        }
        if !missing.is_empty() {
            return Err(TreeError::MissingInputs {
                tree: self.inputs.clone(),
                missing,
            });
        }

        let mut caveats = Vec::new();
        if !self.procedure.exact {
            caveats.push(format!(
                "Linux {} is replayed with the link-vmlinux.sh procedure of {}, the nearest \
                 one ldcheck reproduces exactly",
                self.version, self.procedure.version
            ));
        }
        if program.contains("lld") || self.config.enabled("LD_IS_LLD") {
            caveats.push(format!(
                "the linker is {program}: ldcheck simulates GNU ld, whose layout LLD does not \
                 follow exactly"
            ));
        }
        if self.config.enabled("DEBUG_INFO_BTF") {
            caveats.push(
                "CONFIG_DEBUG_INFO_BTF: the .BTF object pahole makes from the first link is \
                 left out, so addresses after .BTF are off by its size"
                    .into(),
            );
        }
        Ok(LinkPlan {
            program,
            args,
            script,
            objs,
            libs,
            flags_from,
            libs_from,
            call,
            caveats,
        })
    }
}

fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn is_cmd_file(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with(".cmd"))
}

/// Looks for the configuration in the link directory, then the folder given.
fn find_config(inputs: &Path, root: &Path) -> Result<Option<Config>, TreeError> {
    let mut dirs = vec![inputs];
    if root != inputs {
        dirs.push(root);
    }
    for dir in dirs {
        for name in CONFIG_NAMES {
            if let Some(config) = Config::read(&dir.join(name))? {
                return Ok(Some(config));
            }
        }
    }
    Ok(None)
}

/// The final link command link-vmlinux.sh will run, and where each part came from.
#[derive(Debug, Clone, Serialize)]
pub struct LinkPlan {
    /// The linker (first word of LD).
    pub program: String,
    /// Its arguments, without the kallsyms object (what the pass simulation takes).
    pub args: Vec<String>,
    /// KBUILD_LDS, relative to the link directory.
    pub script: String,
    /// The objects linked --whole-archive.
    pub objs: Vec<String>,
    /// KBUILD_VMLINUX_LIBS.
    pub libs: Vec<String>,
    /// Where the ld flags were read.
    pub flags_from: String,
    /// Where KBUILD_VMLINUX_LIBS was read, or how it was derived.
    pub libs_from: String,
    /// link-vmlinux.sh's arguments.
    pub call: LdCall,
    /// What makes the prediction less than exact for this tree (reports list them once, at
    /// the top level).
    #[serde(skip)]
    pub caveats: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(
            KernelVersion::parse_release("6.1.192\n"),
            Some(KernelVersion::new(6, 1))
        );
        assert_eq!(
            KernelVersion::parse_release("4.14.23-custom"),
            Some(KernelVersion::new(4, 14))
        );
        assert_eq!(
            KernelVersion::parse_release("5.10-rc1"),
            Some(KernelVersion::new(5, 10))
        );
        assert_eq!(KernelVersion::parse_release("six"), None);
        assert_eq!(KernelVersion::parse_release("6"), None);
        let makefile = "# SPDX\nVERSION = 5\nPATCHLEVEL = 10\nSUBLEVEL = 0\nVERSION_X = 9\n";
        assert_eq!(
            KernelVersion::parse_makefile(makefile),
            Some(KernelVersion::new(5, 10))
        );
        assert_eq!(KernelVersion::parse_makefile("VERSION = 5\n"), None);
    }

    #[test]
    fn procedures_by_version() {
        let p = |a, b| Procedure::for_kernel(KernelVersion::new(a, b));
        assert_eq!(p(6, 12).version, Version::V6_12);
        assert!(p(6, 12).exact);
        assert_eq!(p(6, 1).version, Version::V6_1);
        assert!(p(6, 1).exact);
        assert_eq!(p(6, 9).version, Version::V6_1);
        assert!(!p(6, 9).exact);
        assert_eq!(p(6, 10).version, Version::V6_12);
        assert_eq!(p(7, 0).version, Version::V6_12);
        assert!(!p(7, 0).exact);
        assert_eq!(p(5, 15).version, Version::V6_1);
    }

    #[test]
    fn config_values_and_header() {
        let c = Config::parse(
            ".config".into(),
            "#\n# Linux/x86_64 6.12.117 Kernel Configuration\n#\nCONFIG_KALLSYMS=y\n\
             # CONFIG_MODULES is not set\nCONFIG_ARCH_MMAP_RND_BITS=28\nCONFIG_CC=\"gcc\"\n",
        );
        assert!(c.enabled("KALLSYMS"));
        assert!(!c.enabled("MODULES"));
        assert!(!c.enabled("ARCH_MMAP_RND_BITS"));
        assert_eq!(c.value("ARCH_MMAP_RND_BITS"), Some("28"));
        assert_eq!(c.value("CC"), Some("\"gcc\""));
        assert_eq!(c.header_arch(), Some("x86_64"));
        assert_eq!(c.header_release(), Some("6.12.117"));
    }

    #[test]
    fn link_vmlinux_call_from_cmd_and_trace() {
        let cmd = "savedcmd_vmlinux := /src/scripts/link-vmlinux.sh \"ld\" \"-m elf_x86_64 \
                   -z noexecstack\" \"--build-id=sha1 $$$(pound)x $$(pound)\";  make -f post vmlinux\n";
        let call = LdCall::find(cmd, true).expect("call");
        assert_eq!(call.ld, "ld");
        assert_eq!(call.kbuild_ldflags, "-m elf_x86_64 -z noexecstack");
        assert_eq!(call.ldflags_vmlinux, "--build-id=sha1 $#x $(pound)");
        let trace = "+ echo vmlinux: /src/scripts/link-vmlinux.sh\n  /src/scripts/link-vmlinux.sh \
                     \"arm-linux-gnueabihf-ld\" \"-EL\" \"\";  true\n";
        let call = LdCall::find(trace, false).expect("call");
        assert_eq!(call.ld, "arm-linux-gnueabihf-ld");
        assert_eq!(call.kbuild_ldflags, "-EL");
        assert_eq!(call.ldflags_vmlinux, "");
        assert_eq!(LdCall::find("link-vmlinux.sh \"ld\" \"x\"", false), None);
    }

    #[test]
    fn libs_of_the_vmlinux_o_link() {
        let log = "# LD      vmlinux.o\n  ld -m elf_x86_64 -r -o vmlinux.o   --whole-archive \
                   vmlinux.a --no-whole-archive --start-group lib/lib.a arch/x86/lib/lib.a \
                   --end-group \n";
        assert_eq!(
            vmlinux_o_libs(log),
            Some(vec!["lib/lib.a".into(), "arch/x86/lib/lib.a".into()])
        );
        let empty = "ld -EL -r -o vmlinux.o --whole-archive vmlinux.a --no-whole-archive \
                     --start-group  --end-group";
        assert_eq!(vmlinux_o_libs(empty), Some(Vec::new()));
        assert_eq!(
            vmlinux_o_libs("ld -o vmlinux --start-group a --end-group"),
            None
        );
    }
}
