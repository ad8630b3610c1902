//! One verdict for a Kbuild tree before link-vmlinux.sh's first link: will its kallsyms passes
//! agree, and how close is the build to a change of the tables that makes them disagree.
//!
//! Owns the order of the analyses on the link [`super::tree`] reconstructs (script hazards,
//! the pass simulation, the margin search) and the rule that turns their results into safe,
//! fragile or fails. The analyses themselves live in `analysis`; printing is the CLI's.

use serde::Serialize;
use thiserror::Error;

use super::tree::{KernelVersion, LinkPlan, Procedure, Tree, TreeError, TreeOptions};
use crate::analysis::hazards::analyze;
use crate::analysis::margin::{Flip, Margins, simulate_with_margins};
use crate::analysis::passes::{PassError, PassOptions, PassReport, Verdict};
use crate::report::Finding;
use crate::simulate::{LinkSession, SimulateError};

/// Name and version of the JSON document [`KbuildReport`] serializes to (docs/kbuild-json.md).
pub const JSON_SCHEMA: &str = "ldcheck-kbuild/1";

/// Default reach of [`KbuildOptions::fragile_reach`]: 4 KiB of tables is a few hundred
/// symbols, the size of an ordinary patch series.
pub const DEFAULT_FRAGILE_REACH: u64 = 4096;

/// Why no verdict could be given (exit status 2 in the CLI).
#[derive(Debug, Error, miette::Diagnostic)]
pub enum KbuildError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Simulate(#[from] SimulateError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Passes(#[from] PassError),
}

/// What to check and how strictly.
#[derive(Debug, Clone)]
pub struct KbuildOptions {
    pub tree: TreeOptions,
    /// KALLSYMS_EXTRA_PASS is set in link-vmlinux.sh's environment.
    pub extra_pass: bool,
    /// A flip of the tables that makes the passes disagree is a hazard for this build when
    /// growing or shrinking the tables by at most this many bytes causes it (0: never).
    pub fragile_reach: u64,
}

/// The one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The link will succeed, and no flip that breaks it is within reach.
    Safe,
    /// The link will succeed, but a change of the tables within reach makes the passes
    /// disagree (confirmed by laying the link out at that size).
    Fragile,
    /// link-vmlinux.sh will stop with "Inconsistent kallsyms data".
    Fails,
}

impl Outcome {
    /// ldcheck's exit status for it: 0 safe, 1 otherwise.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Safe => 0,
            Outcome::Fragile | Outcome::Fails => 1,
        }
    }
}

/// The CONFIG_ options that decide what link-vmlinux.sh does.
#[derive(Debug, Clone, Serialize)]
pub struct LinkConfig {
    pub kallsyms: bool,
    pub kallsyms_all: bool,
    pub kallsyms_absolute_percpu: bool,
    pub kallsyms_base_relative: bool,
    pub lto_clang: bool,
    pub x86_kernel_ibt: bool,
    pub modules: bool,
    pub debug_info_btf: bool,
    #[serde(rename = "64bit")]
    pub bits64: bool,
}

/// What was learnt about the tree, and from where.
#[derive(Debug, Clone, Serialize)]
pub struct TreeFacts {
    /// The directory the link runs in.
    pub link_dir: String,
    pub version: KernelVersion,
    /// The full release from the configuration's header, when it has one.
    pub release: Option<String>,
    pub version_from: String,
    /// The link-vmlinux.sh procedure replayed (`6.12` or `6.1`).
    pub procedure: Procedure,
    /// Whether the kernel is that version (otherwise the nearest procedure stands in).
    pub procedure_exact: bool,
    /// SRCARCH.
    pub arch: String,
    pub arch_from: String,
    /// The configuration file read.
    pub config_file: String,
    pub config: LinkConfig,
}

/// Everything `ldcheck kbuild` found, and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct KbuildReport {
    pub schema: &'static str,
    /// The tree as given.
    pub objtree: String,
    pub verdict: Outcome,
    /// One sentence saying why.
    pub summary: String,
    pub tree: TreeFacts,
    /// The final link; None when CONFIG_KALLSYMS is not set (nothing to predict).
    pub link: Option<LinkPlan>,
    pub passes: Option<PassReport>,
    pub margins: Option<Margins>,
    /// The pass verdict, the margins, then the script's hazards (notes included).
    pub findings: Vec<Finding>,
    /// What makes the prediction less than exact for this tree.
    pub caveats: Vec<String>,
    /// The linker script the findings point into: its path and text.
    #[serde(skip)]
    pub script: Option<(String, String)>,
}

/// Reads the tree `opts` names, replays its link and decides.
pub fn check(opts: &KbuildOptions) -> Result<KbuildReport, KbuildError> {
    let tree = Tree::open(&opts.tree)?;
    let facts = facts(&tree);
    let mut report = KbuildReport {
        schema: JSON_SCHEMA,
        objtree: tree.root.display().to_string(),
        verdict: Outcome::Safe,
        summary: String::new(),
        tree: facts,
        link: None,
        passes: None,
        margins: None,
        findings: Vec::new(),
        caveats: Vec::new(),
        script: None,
    };
    if !tree.kallsyms_enabled() {
        report.summary = "CONFIG_KALLSYMS is not set: link-vmlinux.sh links vmlinux once, \
                          with no kallsyms passes that could disagree"
            .into();
        return Ok(report);
    }
    let plan = tree.link_plan(&opts.tree)?;
    let session = LinkSession::open(&plan.args, &tree.inputs)?;
    let script = session.script()?;
    let kallsyms = tree.kallsyms_options();
    let hazards = analyze(&script);
    let pass_options = PassOptions {
        kallsyms,
        extra_pass: opts.extra_pass,
    };
    let (passes, margins) = simulate_with_margins(&session, &pass_options, &hazards)?;

    let (verdict, summary) = decide(&passes, &margins, opts.fragile_reach, &tree);
    report.verdict = verdict;
    report.summary = summary;
    report.findings.push(passes.to_finding());
    report.findings.push(margins.to_finding());
    report
        .findings
        .extend(hazards.iter().map(|h| h.to_finding(kallsyms.all_symbols)));
    report.caveats = plan.caveats.clone();
    report.script = Some((
        tree.inputs.join(&plan.script).display().to_string(),
        session.script_text.clone(),
    ));
    report.link = Some(plan);
    report.passes = Some(passes);
    report.margins = Some(margins);
    Ok(report)
}

fn facts(tree: &Tree) -> TreeFacts {
    let c = &tree.config;
    TreeFacts {
        link_dir: tree.inputs.display().to_string(),
        version: tree.version,
        release: c.header_release().map(str::to_string),
        version_from: tree.version_from.clone(),
        procedure: tree.procedure,
        procedure_exact: tree.procedure.exact,
        arch: tree.srcarch.clone(),
        arch_from: tree.arch_from.clone(),
        config_file: tree.shown(&c.path),
        config: LinkConfig {
            kallsyms: c.enabled("KALLSYMS"),
            kallsyms_all: c.enabled("KALLSYMS_ALL"),
            kallsyms_absolute_percpu: c.enabled("KALLSYMS_ABSOLUTE_PERCPU"),
            kallsyms_base_relative: c.enabled("KALLSYMS_BASE_RELATIVE"),
            lto_clang: c.enabled("LTO_CLANG"),
            x86_kernel_ibt: c.enabled("X86_KERNEL_IBT"),
            modules: c.enabled("MODULES"),
            debug_info_btf: c.enabled("DEBUG_INFO_BTF"),
            bits64: c.enabled("64BIT"),
        },
    }
}

/// Fails when the simulation says so; fragile when a flip that feeds back is within reach.
fn decide(passes: &PassReport, m: &Margins, reach: u64, tree: &Tree) -> (Outcome, String) {
    let procedure = format!("link-vmlinux.sh ({} procedure)", tree.procedure.version);
    if let Verdict::Inconsistent { reason } = &passes.verdict {
        return (
            Outcome::Fails,
            format!("{procedure} will fail with \"Inconsistent kallsyms data\": {reason}"),
        );
    }
    let links = passes.passes.len();
    match m.breaking_flip_within(reach) {
        Some((direction, flip)) => (
            Outcome::Fragile,
            format!(
                "{procedure} will succeed after {links} links, but if the kallsyms tables \
                 {direction} by {} bytes, {} flips them by {:+} bytes and the passes stop \
                 agreeing (reach {reach} bytes)",
                flip.at.unsigned_abs(),
                flip.cause,
                flip.tables_delta
            ),
        ),
        None => {
            let margin = |direction: &str, v: Option<u64>, flip: &Option<Flip>| match (v, flip) {
                (Some(n), Some(f)) => format!(
                    "{direction} {n} bytes before a flip{}",
                    if f.feeds_back {
                        " that breaks the passes (beyond the reach)"
                    } else {
                        " that the passes absorb"
                    }
                ),
                _ => format!("{direction} with no flip at the script's coincidences"),
            };
            (
                Outcome::Safe,
                format!(
                    "{procedure} will succeed after {links} links; the kallsyms tables \
                     ({:#x} bytes) may {}, and {}",
                    m.tables_size,
                    margin("grow", m.grow, &m.grow_flip),
                    margin("shrink", m.shrink, &m.shrink_flip)
                ),
            )
        }
    }
}
