//! Architecture facts: one data file per target in `targets/`, embedded at build time.
//!
//! This module owns every architecture number (ELF class, e_machine, page sizes, fill patterns,
//! BFD names) and the rule that picks the target of a link. It must not hold layout logic:
//! it only answers "what does ld 2.40 assume for this target".

use std::sync::OnceLock;

use serde::Deserialize;
use thiserror::Error;

/// The embedded target files. Adding an architecture is one new file and one line here.
const TARGET_FILES: &[(&str, &str)] = &[
    ("x86_64.toml", include_str!("../targets/x86_64.toml")),
    ("i386.toml", include_str!("../targets/i386.toml")),
    ("arm.toml", include_str!("../targets/arm.toml")),
    ("arm64.toml", include_str!("../targets/arm64.toml")),
];

/// ELF file class (word size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum ElfClass {
    Elf32,
    Elf64,
}

impl TryFrom<u8> for ElfClass {
    type Error = String;
    fn try_from(bits: u8) -> Result<Self, String> {
        match bits {
            32 => Ok(ElfClass::Elf32),
            64 => Ok(ElfClass::Elf64),
            other => Err(format!("ELF class must be 32 or 64, not {other}")),
        }
    }
}

impl From<ElfClass> for u8 {
    fn from(class: ElfClass) -> u8 {
        match class {
            ElfClass::Elf32 => 32,
            ElfClass::Elf64 => 64,
        }
    }
}

/// Byte order of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Endian {
    Little,
    Big,
}

/// ld 2.40's defaults that move addresses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutDefaults {
    /// `CONSTANT(MAXPAGESIZE)` unless `-z max-page-size=` overrides it.
    pub max_page_size: u64,
    /// `CONSTANT(COMMONPAGESIZE)` unless `-z common-page-size=` overrides it.
    pub common_page_size: u64,
    /// `SEGMENT_START("text-segment", …)` default of the built-in script.
    pub text_segment_start: u64,
    /// Whether `-z separate-code` is on by default (it changes the program header count and so
    /// `SIZEOF_HEADERS`).
    pub separate_code: bool,
    /// Whether `-z relro` is on by default.
    pub relro: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeFillFile {
    nops: Vec<String>,
}

/// Output sections the ELF orphan placer anchors each class of orphan section after.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrphanAnchors {
    pub text: String,
    pub rodata: String,
    pub tdata: String,
    pub data: String,
    pub bss: String,
    pub rel: String,
    pub interp: String,
    pub sdata: String,
    pub nonalloc: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    name: String,
    class: ElfClass,
    endian: Endian,
    e_machine: u16,
    emulations: Vec<String>,
    bfd_targets: Vec<String>,
    output_arches: Vec<String>,
    layout: LayoutDefaults,
    code_fill: CodeFillFile,
    orphan: OrphanAnchors,
}

/// One architecture as GNU ld 2.40 sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Short name, also the data file's stem (`x86_64`, `arm`, …).
    pub name: String,
    pub class: ElfClass,
    pub endian: Endian,
    /// The `e_machine` every input object must carry.
    pub e_machine: u16,
    /// Names accepted by `-m`.
    pub emulations: Vec<String>,
    /// Names accepted by `OUTPUT_FORMAT` (BFD target names).
    pub bfd_targets: Vec<String>,
    /// Names accepted by `OUTPUT_ARCH` (BFD printable architecture names).
    pub output_arches: Vec<String>,
    pub layout: LayoutDefaults,
    /// NOP patterns for code padding, indexed by length - 1; empty means zero fill.
    pub code_nops: Vec<Vec<u8>>,
    pub orphan: OrphanAnchors,
}

/// Why a target could not be loaded or chosen.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("target file {file}: {message}")]
    BadFile { file: String, message: String },
    #[error("unknown emulation `{0}` (-m); known: {1}")]
    UnknownEmulation(String, String),
    #[error("unknown OUTPUT_ARCH `{0}`; known: {1}")]
    UnknownArch(String, String),
    #[error("unknown OUTPUT_FORMAT `{0}`; known: {1}")]
    UnknownFormat(String, String),
    #[error("{file}: no target with e_machine {machine}")]
    UnknownMachine { file: String, machine: u16 },
    #[error(
        "conflicting targets: {first} selects {first_target}, but {second} selects {second_target}"
    )]
    Conflict {
        first: String,
        first_target: String,
        second: String,
        second_target: String,
    },
    #[error("cannot tell the target: no -m, no OUTPUT_ARCH/OUTPUT_FORMAT and no input objects")]
    Undetermined,
}

impl Target {
    /// Every embedded target, parsed once.
    pub fn all() -> Result<&'static [Target], TargetError> {
        static ALL: OnceLock<Result<Vec<Target>, TargetError>> = OnceLock::new();
        match ALL.get_or_init(load_all) {
            Ok(targets) => Ok(targets),
            Err(e) => Err(e.clone()),
        }
    }

    /// The target with this short name (`x86_64`, `i386`, `arm`, `arm64`).
    pub fn by_name(name: &str) -> Result<Option<&'static Target>, TargetError> {
        Ok(Self::all()?.iter().find(|t| t.name == name))
    }

    /// Picks the target of a link the way ld does: `-m` first, then the script's
    /// `OUTPUT_ARCH`/`OUTPUT_FORMAT`, then the inputs' `e_machine`. Any disagreement between
    /// the sources that are present is an error, as is a name no target knows.
    /// `input_machines` pairs each input's `e_machine` with the file it was read from.
    pub fn resolve(
        emulation: Option<&str>,
        output_arch: Option<&str>,
        output_format: Option<&str>,
        input_machines: &[(u16, &str)],
    ) -> Result<&'static Target, TargetError> {
        let all = Self::all()?;
        let mut chosen: Option<(String, &'static Target)> = None;
        let mut consider = |source: String, target: &'static Target| -> Result<(), TargetError> {
            match &chosen {
                Some((first, t)) if t.name != target.name => Err(TargetError::Conflict {
                    first: first.clone(),
                    first_target: t.name.clone(),
                    second: source,
                    second_target: target.name.clone(),
                }),
                Some(_) => Ok(()),
                None => {
                    chosen = Some((source, target));
                    Ok(())
                }
            }
        };
        if let Some(m) = emulation {
            let t = all
                .iter()
                .find(|t| t.emulations.iter().any(|e| e == m))
                .ok_or_else(|| {
                    TargetError::UnknownEmulation(m.into(), known(all, |t| &t.emulations))
                })?;
            consider(format!("-m {m}"), t)?;
        }
        if let Some(a) = output_arch {
            let t = all
                .iter()
                .find(|t| t.output_arches.iter().any(|n| n == a))
                .ok_or_else(|| {
                    TargetError::UnknownArch(a.into(), known(all, |t| &t.output_arches))
                })?;
            consider(format!("OUTPUT_ARCH({a})"), t)?;
        }
        if let Some(f) = output_format {
            let t = all
                .iter()
                .find(|t| t.bfd_targets.iter().any(|n| n == f))
                .ok_or_else(|| {
                    TargetError::UnknownFormat(f.into(), known(all, |t| &t.bfd_targets))
                })?;
            consider(format!("OUTPUT_FORMAT({f})"), t)?;
        }
        for &(machine, file) in input_machines {
            let t = all.iter().find(|t| t.e_machine == machine).ok_or_else(|| {
                TargetError::UnknownMachine {
                    file: file.into(),
                    machine,
                }
            })?;
            consider(format!("{file} (e_machine {machine})"), t)?;
        }
        chosen.map(|(_, t)| t).ok_or(TargetError::Undetermined)
    }

    /// Hex digits `nm` uses for an address of this class.
    pub fn address_width(&self) -> usize {
        match self.class {
            ElfClass::Elf32 => 8,
            ElfClass::Elf64 => 16,
        }
    }

    /// Size of the ELF file header, the first term of `SIZEOF_HEADERS`.
    pub fn elf_header_size(&self) -> u64 {
        match self.class {
            ElfClass::Elf32 => 52,
            ElfClass::Elf64 => 64,
        }
    }

    /// Size of one program header; `SIZEOF_HEADERS` adds one per segment ld expects.
    pub fn program_header_size(&self) -> u64 {
        match self.class {
            ElfClass::Elf32 => 32,
            ElfClass::Elf64 => 56,
        }
    }

    /// The bytes ld writes for `len` bytes of padding between input sections of a code
    /// section that has no explicit `=fill`.
    pub fn code_fill(&self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let Some(longest) = self.code_nops.last() else {
            out.resize(len, 0);
            return out;
        };
        let mut rest = len;
        while rest >= longest.len() {
            out.extend_from_slice(longest);
            rest -= longest.len();
        }
        if rest > 0 {
            out.extend_from_slice(&self.code_nops[rest - 1]);
        }
        out
    }
}

fn known(all: &[Target], names: impl Fn(&Target) -> &Vec<String>) -> String {
    all.iter()
        .flat_map(|t| names(t).iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(", ")
}

fn load_all() -> Result<Vec<Target>, TargetError> {
    TARGET_FILES
        .iter()
        .map(|(file, text)| parse_target(file, text))
        .collect()
}

fn parse_target(file: &str, text: &str) -> Result<Target, TargetError> {
    let bad = |message: String| TargetError::BadFile {
        file: file.to_string(),
        message,
    };
    let raw: TargetFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
    let mut code_nops = Vec::with_capacity(raw.code_fill.nops.len());
    for (i, hex) in raw.code_fill.nops.iter().enumerate() {
        let bytes =
            decode_hex(hex).ok_or_else(|| bad(format!("code_fill.nops[{i}] is not hex")))?;
        if bytes.len() != i + 1 {
            return Err(bad(format!(
                "code_fill.nops[{i}] must be {} bytes long",
                i + 1
            )));
        }
        code_nops.push(bytes);
    }
    Ok(Target {
        name: raw.name,
        class: raw.class,
        endian: raw.endian,
        e_machine: raw.e_machine,
        emulations: raw.emulations,
        bfd_targets: raw.bfd_targets,
        output_arches: raw.output_arches,
        layout: raw.layout,
        code_nops,
        orphan: raw.orphan,
    })
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect()
}
