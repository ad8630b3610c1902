//! `ldcheck kbuild --objtree O [--srctree S] [--format human|json|gnu]`
//!
//! Calls [`ldcheck::kbuild::verdict::check`], prints its report (miette for people, JSON per
//! `docs/kbuild-json.md`, GNU `file:line:col:` lines) and sets the exit status: 0 safe, 1 the
//! link will fail or a flip that breaks it is within reach, 2 usage or input error.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use ldcheck::kbuild::tree::{LdCall, TreeOptions};
use ldcheck::kbuild::verdict::{
    DEFAULT_FRAGILE_REACH, KbuildOptions, KbuildReport, Outcome, check,
};
use ldcheck::report::{Format, render, use_color};

/// Arguments of `ldcheck kbuild`.
#[derive(clap::Args)]
#[command(after_help = "\
Reads what link-vmlinux.sh reads: the configuration (.config), the version \
(include/config/kernel.release, the Makefile, or the configuration's header), the ld flags \
(.vmlinux.cmd, or a V=1 trace), KBUILD_VMLINUX_LIBS (.vmlinux.o.cmd, the V=1 trace, or derived \
from the architecture), arch/<arch>/kernel/vmlinux.lds and the link inputs. A corpus build folder \
(objtree/, config, build.link.log) is read as a tree too.

Exit status: 0 the link will succeed; 1 it will fail with \"Inconsistent kallsyms data\", or a \
flip that breaks it is within --fragile-reach; 2 usage or input error (what is missing is named).

From scripts/link-vmlinux.sh, before the first link (see docs/kbuild.md):
  ldcheck kbuild --objtree . --srctree \"$srctree\" --ld-call \"$LD\" \"$KBUILD_LDFLAGS\" \
\"$LDFLAGS_vmlinux\" --libs \"$KBUILD_VMLINUX_LIBS\"")]
pub struct Args {
    /// The Kbuild output tree: the O= directory (the source tree for in-tree builds), or a
    /// corpus build folder.
    #[arg(long, value_name = "O")]
    pub objtree: PathBuf,
    /// The kernel source tree; its Makefile gives the version when the tree has no
    /// include/config/kernel.release.
    #[arg(long, value_name = "S")]
    pub srctree: Option<PathBuf>,
    /// The configuration to read instead of the tree's .config.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A .vmlinux.cmd or `make V=1` log holding the link-vmlinux.sh call (and the vmlinux.o
    /// link), instead of the tree's .vmlinux.cmd.
    #[arg(long, value_name = "FILE")]
    pub link_log: Option<PathBuf>,
    /// link-vmlinux.sh's three arguments, as it received them ("$1" "$2" "$3").
    #[arg(long, num_args = 3, value_names = ["LD", "KBUILD_LDFLAGS", "LDFLAGS_vmlinux"], allow_hyphen_values = true)]
    pub ld_call: Option<Vec<String>>,
    /// KBUILD_VMLINUX_LIBS as link-vmlinux.sh's environment has it (may be empty).
    #[arg(long, value_name = "LIBS", allow_hyphen_values = true)]
    pub libs: Option<String>,
    /// KALLSYMS_EXTRA_PASS is set: replay the extra pass.
    #[arg(long)]
    pub extra_pass: bool,
    /// A flip of the tables that makes the passes disagree counts against this build
    /// (fragile, exit 1) when growing or shrinking the tables by at most BYTES causes it; 0
    /// never.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_FRAGILE_REACH)]
    pub fragile_reach: u64,
    /// How to print the report (json: schema in docs/kbuild-json.md).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Also show notes (coincidences that cannot change table sizes, removable sections);
    /// JSON output always has them.
    #[arg(long)]
    pub notes: bool,
}

pub fn run(args: Args) -> ExitCode {
    let ld_call = args.ld_call.as_ref().and_then(|v| match v.as_slice() {
        [ld, kbuild, vmlinux] => Some(LdCall {
            ld: ld.clone(),
            kbuild_ldflags: kbuild.clone(),
            ldflags_vmlinux: vmlinux.clone(),
        }),
        _ => None,
    });
    let opts = KbuildOptions {
        tree: TreeOptions {
            objtree: args.objtree.clone(),
            srctree: args.srctree.clone(),
            config: args.config.clone(),
            link_log: args.link_log.clone(),
            ld_call,
            libs: args.libs.clone(),
        },
        extra_pass: args.extra_pass,
        fragile_reach: args.fragile_reach,
    };
    let mut report = match check(&opts) {
        Ok(report) => report,
        Err(e) => return super::report_error(e.into()),
    };
    let text = match args.format {
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => json + "\n",
            Err(e) => return super::report_error(miette::miette!("cannot encode the report: {e}")),
        },
        Format::Human => {
            if !args.notes {
                report.findings.retain(shown);
            }
            human(&report)
        }
        Format::Gnu => {
            if !args.notes {
                report.findings.retain(shown);
            }
            gnu(&report)
        }
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return super::report_error(miette::miette!("cannot write output: {e}")),
    }
    ExitCode::from(report.verdict.exit_code())
}

/// Without --notes: the pass verdict, the margins and what can break the build.
fn shown(f: &ldcheck::report::Finding) -> bool {
    f.breaks_build || f.code == "passes" || f.code == "margin"
}

fn verdict_word(v: Outcome) -> &'static str {
    match v {
        Outcome::Safe => "safe",
        Outcome::Fragile => "fragile",
        Outcome::Fails => "fails",
    }
}

fn human(r: &KbuildReport) -> String {
    let t = &r.tree;
    let mut out = format!("ldcheck kbuild: {}\n", r.objtree);
    let _ = writeln!(
        out,
        "  Linux {}{} ({}), ARCH {} ({}); link-vmlinux.sh procedure of {}{}",
        t.version,
        t.release
            .as_ref()
            .map_or(String::new(), |rel| format!(" [{rel}]")),
        t.version_from,
        t.arch,
        t.arch_from,
        t.procedure.version,
        if t.procedure_exact { "" } else { " (nearest)" }
    );
    let c = &t.config;
    let flag = |b: bool| if b { "y" } else { "n" };
    let _ = writeln!(
        out,
        "  {}: KALLSYMS={} KALLSYMS_ALL={} KALLSYMS_ABSOLUTE_PERCPU={} MODULES={} LTO_CLANG={} \
         X86_KERNEL_IBT={}",
        t.config_file,
        flag(c.kallsyms),
        flag(c.kallsyms_all),
        flag(c.kallsyms_absolute_percpu),
        flag(c.modules),
        flag(c.lto_clang),
        flag(c.x86_kernel_ibt)
    );
    if let Some(link) = &r.link {
        let _ = writeln!(out, "  ld flags: {}", link.flags_from);
        let _ = writeln!(
            out,
            "  KBUILD_VMLINUX_LIBS = \"{}\": {}",
            link.libs.join(" "),
            link.libs_from
        );
        let _ = writeln!(
            out,
            "  final link (in {}): {} {}",
            t.link_dir,
            link.program,
            link.args.join(" ")
        );
    }
    out.push('\n');
    if let Some((file, text)) = &r.script {
        out.push_str(&render(&r.findings, file, text, Format::Human, use_color()));
    }
    for caveat in &r.caveats {
        let _ = writeln!(out, "caveat: {caveat}");
    }
    let _ = writeln!(out, "verdict: {}: {}", verdict_word(r.verdict), r.summary);
    out
}

fn gnu(r: &KbuildReport) -> String {
    let mut out = String::new();
    let file = match &r.script {
        Some((file, text)) => {
            out.push_str(&render(&r.findings, file, text, Format::Gnu, false));
            file.clone()
        }
        None => r.tree.config_file.clone(),
    };
    for caveat in &r.caveats {
        let _ = writeln!(out, "{file}:1:1: note: {caveat} [kbuild-caveat]");
    }
    let kind = match r.verdict {
        Outcome::Safe => "note",
        Outcome::Fragile => "warning",
        Outcome::Fails => "error",
    };
    let _ = writeln!(
        out,
        "{file}:1:1: {kind}: {}: {} [kbuild-verdict]",
        verdict_word(r.verdict),
        r.summary
    );
    out
}
