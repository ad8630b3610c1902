//! One finding type, rendered three ways: miette reports for people, JSON for machines, and
//! `file:line:col: warning: …` lines for editors and CI logs.
//!
//! Owns presentation only; analyses produce findings and never print.

use std::sync::Arc;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, Severity,
};
use serde::Serialize;

use crate::script::ast::Span;

/// How a report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Reports for people (colours only on a terminal; NO_COLOR respected).
    Human,
    /// One JSON document.
    Json,
    /// `file:line:col: warning: …` lines for editors and CI.
    Gnu,
}

/// A labelled place in a source file.
#[derive(Debug, Clone, Serialize)]
pub struct Place {
    pub span: Span,
    pub text: String,
}

/// One thing ldcheck has to say, located in a source file.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable identifier of the kind of finding (`range-boundary`, …).
    pub code: String,
    /// Whether it can break the build (warnings) or is informational (notes).
    pub breaks_build: bool,
    pub message: String,
    pub help: Option<String>,
    pub places: Vec<Place>,
}

/// A finding tied to its source text, which is what miette renders.
#[derive(Debug)]
struct Located<'f> {
    finding: &'f Finding,
    source: Arc<NamedSource<String>>,
}

impl std::fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.finding.message)
    }
}

impl std::error::Error for Located<'_> {}

impl Diagnostic for Located<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(format!("ldcheck::{}", self.finding.code)))
    }

    fn severity(&self) -> Option<Severity> {
        Some(if self.finding.breaks_build {
            Severity::Warning
        } else {
            Severity::Advice
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.finding
            .help
            .as_ref()
            .map(|h| Box::new(h.clone()) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&*self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.finding.places.iter().map(|p| {
            LabeledSpan::new_with_span(Some(p.text.clone()), p.span)
        })))
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Renders findings about `file` (whose text is `text`) in `format`.
pub fn render(findings: &[Finding], file: &str, text: &str, format: Format, color: bool) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(&serde_json::json!({
            "schema": "ldcheck-findings/1",
            "file": file,
            "findings": findings,
        }))
        .unwrap_or_default(),
        Format::Gnu => findings
            .iter()
            .map(|f| {
                let (line, col) = f
                    .places
                    .first()
                    .map_or((1, 1), |p| line_column(text, p.span.start));
                let kind = if f.breaks_build { "warning" } else { "note" };
                format!("{file}:{line}:{col}: {kind}: {} [{}]\n", f.message, f.code)
            })
            .collect(),
        Format::Human => {
            let source = Arc::new(NamedSource::new(file, text.to_string()));
            let theme = if color {
                GraphicalTheme::unicode()
            } else {
                GraphicalTheme::unicode_nocolor()
            };
            let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
            let mut out = String::new();
            for f in findings {
                let located = Located {
                    finding: f,
                    source: source.clone(),
                };
                let _ = handler.render_report(&mut out, &located);
                out.push('\n');
            }
            out
        }
    }
}

/// Whether to colour human output: only on a terminal, and never with NO_COLOR set.
pub fn use_color() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}
