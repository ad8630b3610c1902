//! One finding type, rendered three ways: miette reports for people, JSON for machines, and
//! `file:line:col: warning: …` lines for editors and CI logs.
//!
//! Owns presentation only; analyses produce findings and never print.

use std::sync::Arc;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError,
    MietteSpanContents, Severity, SourceCode, SourceSpan, SpanContents,
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
    source: Arc<ScriptSource>,
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
                    .map_or((1, 1), |p| line_column(text, p.span.start()));
                let kind = if f.breaks_build { "warning" } else { "note" };
                format!("{file}:{line}:{col}: {kind}: {} [{}]\n", f.message, f.code)
            })
            .collect(),
        Format::Human => {
            let source = Arc::new(ScriptSource::new(file, text));
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

/// A script's text as diagnostics show it. Reports quote the lines a label falls on; on a very
/// long line (a generated script, an expression nested a hundred thousand deep) only a window
/// either side of the label is quoted, so a report stays a few lines long whatever the input.
#[derive(Debug)]
pub struct ScriptSource {
    name: String,
    text: String,
}

/// Lines longer than this are quoted in part.
const LONG_LINE: usize = 400;
/// Bytes quoted either side of a label on a long line.
const WINDOW: usize = 80;

impl ScriptSource {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> ScriptSource {
        ScriptSource {
            name: name.into(),
            text: text.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

impl SourceCode for ScriptSource {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let text = self.text.as_str();
        let whole = text.read_span(span, context_lines_before, context_lines_after)?;
        let long_line = whole
            .data()
            .split(|&b| b == b'\n')
            .any(|line| line.len() > LONG_LINE);
        if !long_line {
            return Ok(Box::new(MietteSpanContents::new_named(
                self.name.clone(),
                whole.data(),
                *whole.span(),
                whole.line(),
                whole.column(),
                whole.line_count(),
            )));
        }
        // The label's own line(s), cut to a window around it on char boundaries.
        let floor = |mut i: usize| {
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let ceil = |mut i: usize| {
            while !text.is_char_boundary(i) {
                i += 1;
            }
            i
        };
        let label_end = (span.offset() + span.len()).min(text.len());
        let line_start = text[..span.offset().min(text.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let line_end = text[label_end..]
            .find('\n')
            .map_or(text.len(), |i| label_end + i);
        let start = floor(span.offset().saturating_sub(WINDOW).max(line_start));
        let end = ceil((label_end + WINDOW).min(line_end));
        let line = text[..start].matches('\n').count();
        let column = text[line_start..start].chars().count();
        let excerpt = &text[start..end];
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            excerpt.as_bytes(),
            (start, end - start).into(),
            line,
            column,
            excerpt.matches('\n').count() + 1,
        )))
    }
}
