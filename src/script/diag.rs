//! Diagnostics for linker scripts that do not parse.
//!
//! Owns the error value the parser returns and how it renders through miette: the file name,
//! the line and column, a label under the offending text and what was expected. It does not
//! decide what is an error; the lexer and parser do.

use std::sync::Arc;

use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

use super::ast::Span;
use crate::report::ScriptSource;

/// Why a script was rejected, located in its source text.
///
/// `parse_script` names the source `<script>`; callers that read a file rename it with
/// [`ParseError::with_file_name`] so the report points at the real path.
#[derive(Debug, Error, Diagnostic)]
#[error("{message}")]
#[diagnostic(code(ldcheck::script::parse))]
pub struct ParseError {
    /// What went wrong, e.g. "expected `;` after assignment".
    pub message: String,
    /// Short text shown under the offending bytes.
    pub label: String,
    /// 1-based line of `span.start`.
    pub line: usize,
    /// 1-based column (in characters) of `span.start`.
    pub column: usize,
    #[help]
    pub help: Option<String>,
    #[label("{label}")]
    at: SourceSpan,
    #[source_code]
    source_code: Arc<ScriptSource>,
}

impl ParseError {
    /// Attaches the source text the span points into; line and column are computed here.
    pub(crate) fn located(problem: Problem, src: &str) -> ParseError {
        let problem = *problem.0;
        let start = problem.span.start().min(src.len());
        let end = problem.span.end().clamp(start, src.len());
        let span = Span::new(start, end);
        let (line, column) = line_column(src, start);
        ParseError {
            message: problem.message,
            label: problem.label,
            line,
            column,
            help: problem.help,
            at: span.into(),
            source_code: Arc::new(ScriptSource::new("<script>", src)),
        }
    }

    /// The same error, reported as coming from `name` (usually the script's path).
    pub fn with_file_name(self, name: impl AsRef<str>) -> ParseError {
        let text = self.source_code.text().to_owned();
        ParseError {
            source_code: Arc::new(ScriptSource::new(name.as_ref(), text)),
            ..self
        }
    }

    /// Byte range of the offending text.
    pub fn span(&self) -> Span {
        Span::new(self.at.offset(), self.at.offset() + self.at.len())
    }

    /// The name the report shows for the source.
    pub fn file_name(&self) -> &str {
        self.source_code.name()
    }
}

/// An error found while parsing, before it is tied to the source text. Boxed so the parser's
/// `Result`s stay as small as a token.
#[derive(Debug, Clone)]
pub(crate) struct Problem(Box<ProblemDetail>);

#[derive(Debug, Clone)]
pub(crate) struct ProblemDetail {
    pub message: String,
    pub label: String,
    pub span: Span,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(span: Span, message: impl Into<String>, label: impl Into<String>) -> Problem {
        Problem(Box::new(ProblemDetail {
            message: message.into(),
            label: label.into(),
            span,
            help: None,
        }))
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Problem {
        self.0.help = Some(help.into());
        self
    }
}

/// 1-based line and character column of byte `offset`.
fn line_column(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
