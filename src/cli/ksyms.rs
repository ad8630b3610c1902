//! `ldcheck ksyms --objtree O [--srctree S] [--format human|json|gnu] [--fix [--write]]`
//!
//! Calls [`ldcheck::kbuild::ksyms`], renders its report (miette for people, JSON per
//! `docs/ksyms-json.md`, GNU `file:line:col:` lines for editors), deletes stale objects on
//! request, and sets the exit status: 0 nothing stale, 1 stale objects found, 2 usage or input
//! errors (including an object that could not be deleted).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ldcheck::kbuild::ksyms::{
    Finding, Location, Removal, Report, Severity, Status, WANTED_LIST, check_tree, remove_objects,
};
use ldcheck::report::Format;
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource};
use serde::Serialize;

/// Arguments of `ldcheck ksyms`.
#[derive(clap::Args)]
#[command(
    after_help = "Exit status: 0 nothing stale, 1 stale objects found, 2 usage or input \
                        error (or an object --fix --write could not delete).\n\
                        Check a tree before modpost runs, or after modpost failed with \
                        `ERROR: \"sym\" [...] undefined!`: \
                        `ldcheck ksyms --objtree $O --fix --write; make O=$O`."
)]
pub struct Args {
    /// The Kbuild output tree: the O= directory, or the source tree for in-tree builds.
    #[arg(long, value_name = "O")]
    pub objtree: PathBuf,
    /// The kernel source tree; its Makefile gives the version when the object tree has no
    /// include/config/kernel.release.
    #[arg(long, value_name = "S")]
    pub srctree: Option<PathBuf>,
    /// How to print the report (json: schema in docs/ksyms-json.md).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// List the stale objects to delete so the next make rebuilds them.
    #[arg(long)]
    pub fix: bool,
    /// With --fix: delete them.
    #[arg(long, requires = "fix")]
    pub write: bool,
}

/// Unreadable objects named in human output (an LTO tree has thousands of bitcode objects).
const SKIPPED_SHOWN: usize = 10;

const STALE: u8 = 1;
const FAILURE: u8 = 2;

pub fn run(args: Args) -> ExitCode {
    let report = match check_tree(&args.objtree, args.srctree.as_deref()) {
        Ok(report) => report,
        Err(e) => return super::report_error(e.into()),
    };
    let removals = args
        .fix
        .then(|| remove_objects(&args.objtree, &report, args.write));
    let text = match args.format {
        Format::Human => human(&args.objtree, &report, removals.as_deref(), args.write),
        Format::Gnu => gnu(&args.objtree, &report, removals.as_deref(), args.write),
        Format::Json => {
            let doc = JsonDoc {
                report: &report,
                removal: removals.as_ref().map(|objects| JsonRemoval {
                    written: args.write,
                    objects,
                }),
            };
            match serde_json::to_string_pretty(&doc) {
                Ok(json) => json + "\n",
                Err(e) => {
                    return super::report_error(miette::miette!("cannot encode the report: {e}"));
                }
            }
        }
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return super::report_error(miette::miette!("cannot write output: {e}")),
    }
    if removals
        .iter()
        .flatten()
        .any(|removal| removal.error.is_some())
    {
        ExitCode::from(FAILURE)
    } else if report.has_stale() {
        ExitCode::from(STALE)
    } else {
        ExitCode::SUCCESS
    }
}

#[derive(Serialize)]
struct JsonDoc<'r> {
    #[serde(flatten)]
    report: &'r Report,
    #[serde(skip_serializing_if = "Option::is_none")]
    removal: Option<JsonRemoval<'r>>,
}

#[derive(Serialize)]
struct JsonRemoval<'r> {
    written: bool,
    objects: &'r [Removal],
}

fn removal_line(removal: &Removal, write: bool) -> String {
    match (&removal.error, write) {
        (Some(e), _) => format!("cannot delete {}: {e}", removal.path.display()),
        (None, true) => format!("removed {}", removal.path.display()),
        (None, false) => format!(
            "would remove {} (add --write to delete it)",
            removal.path.display()
        ),
    }
}

/// Where a finding points in GNU output: its text location, else its object, else the list.
fn gnu_position(objtree: &Path, finding: &Finding) -> String {
    match (&finding.location, &finding.object) {
        (Some(at), _) => format!(
            "{}:{}:{}",
            objtree.join(&at.file).display(),
            at.line,
            at.column
        ),
        (None, Some(object)) => format!("{}:1:1", objtree.join(object).display()),
        (None, None) => format!("{}:1:1", objtree.join(WANTED_LIST).display()),
    }
}

fn gnu(objtree: &Path, report: &Report, removals: Option<&[Removal]>, write: bool) -> String {
    let mut out = String::new();
    if report.status != Status::Checked {
        let file = match report.status {
            Status::TrimDisabled => Some(".config"),
            _ => report.version_from.as_deref(),
        };
        let path = file.map_or_else(|| objtree.to_path_buf(), |f| objtree.join(f));
        let _ = writeln!(out, "{}:1:1: note: {}", path.display(), report.note);
    }
    for finding in &report.findings {
        let at = gnu_position(objtree, finding);
        let severity = match finding.severity {
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        let kind = serde_json::to_value(finding.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(out, "{at}: {severity}: {} [ksyms-{kind}]", finding.message);
        let _ = writeln!(out, "{at}: note: fix: {}", finding.fix);
    }
    for removal in removals.unwrap_or_default() {
        let _ = writeln!(
            out,
            "{}:1:1: note: {}",
            removal.path.display(),
            removal_line(removal, write)
        );
    }
    out
}

/// Colours only on a terminal, and never when NO_COLOR is set to anything non-empty.
fn theme() -> GraphicalTheme {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    match (std::io::stdout().is_terminal(), no_color) {
        (true, false) => GraphicalTheme::unicode(),
        (true, true) => GraphicalTheme::unicode_nocolor(),
        (false, _) => GraphicalTheme::none(),
    }
}

fn human(objtree: &Path, report: &Report, removals: Option<&[Removal]>, write: bool) -> String {
    let handler = GraphicalReportHandler::new_themed(theme())
        .with_links(false)
        .without_syntax_highlighting();
    let mut sources: HashMap<String, Option<String>> = HashMap::new();
    let mut out = format!("ldcheck ksyms: {}: {}\n", objtree.display(), report.note);
    for finding in &report.findings {
        let mut diagnostic = MietteDiagnostic::new(finding.message.clone())
            .with_severity(match finding.severity {
                Severity::Warning => miette::Severity::Warning,
                Severity::Note => miette::Severity::Advice,
            })
            .with_help(finding.fix.clone());
        let source = finding.location.as_ref().and_then(|at| {
            let text = sources
                .entry(at.file.clone())
                .or_insert_with(|| std::fs::read_to_string(objtree.join(&at.file)).ok())
                .as_ref()?;
            (at.offset + at.len <= text.len()).then(|| (at, text.clone()))
        });
        let rendered = match source {
            Some((at, text)) => {
                diagnostic = diagnostic.with_label(LabeledSpan::at(
                    at.offset..at.offset + at.len,
                    label_for(at),
                ));
                let named = NamedSource::new(objtree.join(&at.file).display().to_string(), text);
                render(
                    &handler,
                    miette::Report::new(diagnostic).with_source_code(named),
                )
            }
            None => render(&handler, miette::Report::new(diagnostic)),
        };
        out.push_str(&rendered);
    }
    if report.status == Status::Checked {
        let _ = writeln!(
            out,
            "{} objects scanned, {} wanted symbols, {} findings: {}",
            report.objects_scanned,
            report.wanted_symbols,
            report.findings.len(),
            match report.stale_objects.len() {
                0 => "no stale objects".to_string(),
                1 => "1 stale object".to_string(),
                n => format!("{n} stale objects"),
            }
        );
        for skipped in report.skipped.iter().take(SKIPPED_SHOWN) {
            let _ = writeln!(
                out,
                "skipped {}: {}",
                objtree.join(&skipped.object).display(),
                skipped.reason
            );
        }
        if let Some(more) = report.skipped.len().checked_sub(SKIPPED_SHOWN)
            && more > 0
        {
            let _ = writeln!(
                out,
                "… and {more} more skipped (all are listed by --format json)"
            );
        }
    }
    for removal in removals.unwrap_or_default() {
        let _ = writeln!(out, "{}", removal_line(removal, write));
    }
    out
}

fn label_for(at: &Location) -> &'static str {
    if at.file == WANTED_LIST {
        "wanted here"
    } else {
        "listed as a prerequisite here"
    }
}

fn render(handler: &GraphicalReportHandler, report: miette::Report) -> String {
    let mut text = String::new();
    if handler.render_report(&mut text, report.as_ref()).is_err() {
        text = format!("{report}\n");
    }
    text
}
