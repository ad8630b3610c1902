//! Candidate edits that remove a build-breaking hazard, each verified and costed.
//!
//! Owns turning hazards into text edits on the script (by span, so the rest of the file keeps
//! its formatting), checking each edited script again — the script-only analysis covers every
//! size, and with the link command the pass simulation must converge — and ranking the ones
//! that work by the bytes they waste. Writing files is the caller's business.

use serde::Serialize;

use super::hazards::{Hazard, HazardKind, Site, analyze, kallsyms_tables_site};
use crate::script::ast::Pattern;
use crate::script::ast::Span;

/// A replacement of `len` bytes at `at` by `text`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edit {
    pub at: usize,
    pub len: usize,
    pub text: String,
}

/// One way to fix a hazard.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub description: String,
    pub edits: Vec<Edit>,
    /// The edited script.
    #[serde(skip)]
    pub script: String,
    /// Bytes the fix adds to the image: exact when measured by simulation, else the bound.
    pub cost_bytes: u64,
    pub cost_measured: bool,
    /// The script-only analysis finds no build-breaking hazard in the edited script.
    pub script_clean: bool,
    /// The pass simulation converges with the edited script (None: no link command given).
    pub passes_converge: Option<bool>,
}

impl Candidate {
    /// Whether the candidate is known to work.
    pub fn verified(&self) -> bool {
        self.script_clean && self.passes_converge != Some(false)
    }
}

/// Applies edits (non-overlapping, any order) to `text`.
pub fn apply(text: &str, edits: &[Edit]) -> String {
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(e.at));
    let mut out = text.to_string();
    for e in sorted {
        let end = (e.at + e.len).min(out.len());
        out.replace_range(e.at.min(end)..end, &e.text);
    }
    out
}

/// The statement at `span` including a `;` that follows it.
fn statement_end(text: &str, span: Span) -> usize {
    let rest = &text[span.end().min(text.len())..];
    let trimmed = rest.trim_start_matches([' ', '\t']);
    if trimmed.starts_with(';') {
        span.end() + (rest.len() - trimmed.len()) + 1
    } else {
        span.end()
    }
}

/// The edits that would remove `hazard`, before verification. `tables` is where the kallsyms
/// tables enter the script and where a section of their own could go.
fn proposals(
    text: &str,
    hazard: &Hazard,
    tables: Option<(Pattern<'_>, usize)>,
) -> Vec<(String, Vec<Edit>, u64)> {
    let mut out = Vec::new();
    if let Some((pattern, insert_at)) = tables
        && !pattern.quoted
    {
        // Move the variable section after the hazard: the tables get an output section of
        // their own after everything allocated, so nothing before them moves with their size.
        out.push((
            "move the kallsyms tables into their own output section after the allocated sections"
                .to_string(),
            vec![
                Edit {
                    at: pattern.span.start(),
                    len: 0,
                    text: "EXCLUDE_FILE(*kallsyms.o) ".into(),
                },
                Edit {
                    at: insert_at,
                    len: 0,
                    text: format!(" .rodata.kallsyms : {{ *kallsyms.o({}) }}\n", pattern.text),
                },
            ],
            0,
        ));
    }
    match &hazard.site {
        Site::Coincidence {
            before,
            boundary,
            n,
        } => {
            let names = hazard.symbols.join(", ");
            // Pad right after the last symbol: the boundary then always lies past it.
            if let Some(last) = before.iter().max_by_key(|s| s.end()) {
                let at = statement_end(text, *last);
                out.push((
                    format!("pad one byte after {names} so it can never share the ALIGN({n:#x}) boundary"),
                    vec![Edit { at, len: 0, text: " . = . + 1;".into() }],
                    *n,
                ));
            }
            // Move the assignments past the boundary: they then always equal it.
            let boundary_end = statement_end(text, *boundary);
            let mut edits: Vec<Edit> = before
                .iter()
                .map(|s| Edit {
                    at: s.start(),
                    len: statement_end(text, *s) - s.start(),
                    text: String::new(),
                })
                .collect();
            let moved: Vec<String> = before
                .iter()
                .map(|s| format!(" {};", &text[s.start()..s.end()]))
                .collect();
            edits.push(Edit {
                at: boundary_end,
                len: 0,
                text: moved.concat(),
            });
            out.push((
                format!("move {names} after the ALIGN({n:#x}) boundary so it always equals it"),
                edits,
                0,
            ));
        }
        Site::Padding { section, n } => {
            out.push((
                format!(
                    "align the start of the section to {n:#x} so its inner alignment never pads"
                ),
                vec![Edit {
                    at: section.start(),
                    len: 0,
                    text: format!(". = ALIGN({n:#x}); "),
                }],
                *n - 1,
            ));
        }
        Site::None => {}
    }
    out
}

/// Re-runs the pass simulation on an edited script: (converges, bytes the image grew).
pub type PassCheck<'f> = &'f mut dyn FnMut(&str) -> Option<(bool, u64)>;

/// Candidate fixes for every build-breaking hazard of `text`, verified.
pub fn candidates(
    text: &str,
    hazards: &[Hazard],
    all_symbols: bool,
    mut passes: Option<PassCheck<'_>>,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    let parsed = crate::script::parse_script(text).ok();
    let tables = parsed.as_ref().and_then(kallsyms_tables_site);
    for hazard in hazards.iter().filter(|h| h.breaks_build(all_symbols)) {
        for (description, edits, bound) in proposals(text, hazard, tables) {
            let script = apply(text, &edits);
            let script_clean = match crate::script::parse_script(&script) {
                Ok(parsed) => !analyze(&parsed)
                    .iter()
                    .any(|h| h.breaks_build(all_symbols) && same_place(h, hazard)),
                Err(_) => false,
            };
            let measured = passes.as_mut().and_then(|run| run(&script));
            out.push(Candidate {
                description,
                edits,
                script,
                cost_bytes: measured.map_or(bound, |(_, grew)| grew),
                cost_measured: measured.is_some(),
                script_clean,
                passes_converge: measured.map(|(ok, _)| ok),
            });
        }
    }
    out.sort_by_key(|c| (!c.verified(), c.cost_bytes));
    out
}

/// Whether `h` is the same hazard as `original` (same kind and symbols) in an edited script.
fn same_place(h: &Hazard, original: &Hazard) -> bool {
    h.kind == original.kind
        && (original.kind == HazardKind::PaddingChangesType
            || h.symbols.iter().any(|s| original.symbols.contains(s)))
}

/// A unified diff of `old` → `new` for `path`, one hunk around the changed lines.
pub fn unified_diff(path: &str, old: &str, new: &str) -> String {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    if prefix == a.len() && prefix == b.len() {
        return String::new();
    }
    let ctx = 3;
    let start = prefix.saturating_sub(ctx);
    let a_end = (a.len() - suffix + ctx).min(a.len());
    let b_end = (b.len() - suffix + ctx).min(b.len());
    let mut out = format!(
        "--- {path}\n+++ {path}\n@@ -{},{} +{},{} @@\n",
        start + 1,
        a_end - start,
        start + 1,
        b_end - start
    );
    let line = |l: &str| {
        if l.ends_with('\n') {
            l.to_string()
        } else {
            format!("{l}\n\\ No newline at end of file\n")
        }
    };
    for l in &a[start..prefix] {
        out += &format!(" {}", line(l));
    }
    for l in &a[prefix..a.len() - suffix] {
        out += &format!("-{}", line(l));
    }
    for l in &b[prefix..b.len() - suffix] {
        out += &format!("+{}", line(l));
    }
    for l in &a[a.len() - suffix..a_end] {
        out += &format!(" {}", line(l));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_apply_back_to_front() {
        let text = "a = .; . = ALIGN(8); b";
        let out = apply(
            text,
            &[
                Edit {
                    at: 0,
                    len: 6,
                    text: String::new(),
                },
                Edit {
                    at: 20,
                    len: 0,
                    text: " a = .;".into(),
                },
            ],
        );
        assert_eq!(out, " . = ALIGN(8); a = .; b");
    }

    #[test]
    fn diff_has_one_hunk() {
        let d = unified_diff("f", "1\n2\n3\n4\n5\n", "1\n2\nx\n4\n5\n");
        assert_eq!(d, "--- f\n+++ f\n@@ -1,5 +1,5 @@\n 1\n 2\n-3\n+x\n 4\n 5\n");
    }
}
