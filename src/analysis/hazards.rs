//! Script-only hazard analysis: where a linker script lets a symbol's relation to an aligned
//! boundary depend on the sizes that precede it.
//!
//! Owns an abstract walk of the statement lists (no inputs): `.` is known only by the alignment
//! it is guaranteed to have and by what was placed last. Every finding states the exact
//! condition under which the coincidence holds and points at the statements involved. It never
//! guesses sizes; with link inputs, `passes` and the margin search give the concrete answer.

use serde::Serialize;

use crate::layout::flags::special_section;
use crate::layout::ir::{AddrSpec, OsId, Program, SecStmt, TopStmt};
use crate::report::{Finding, Place};
use crate::script::ast::*;

/// What kind of coincidence a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HazardKind {
    /// A symbol can equal a kallsyms range boundary (`_stext`, `_etext`, `_sinittext`,
    /// `_einittext`) or not, depending on sizes: without CONFIG_KALLSYMS_ALL its membership in
    /// the range — and so the table size — flips.
    RangeBoundary,
    /// An output section whose only possible contents are alignment padding: whether it pads
    /// depends on the sizes before it, and with the padding it becomes allocated, changing the
    /// `nm` letter (and kallsyms type) of the symbols it defines.
    PaddingChangesType,
    /// Symbols that equal a later aligned boundary exactly when the preceding end is aligned:
    /// harmless for table sizes, but it reorders System.map.
    AlignedBoundary,
    /// An output section that may be empty and defines symbols: ld removes it and re-homes the
    /// symbols to a neighbouring section (their letter follows that section's flags).
    EmptySectionSymbols,
}

impl HazardKind {
    /// Whether this kind can make two link passes produce tables of different sizes when it
    /// depends on the kallsyms tables.
    pub fn can_break_build(self) -> bool {
        matches!(
            self,
            HazardKind::RangeBoundary | HazardKind::PaddingChangesType
        )
    }
}

/// One script location a finding points at.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

/// Where in the script a hazard can be fixed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub enum Site {
    /// Symbols assigned before an `ALIGN(n)` boundary they may or may not equal.
    Coincidence {
        before: Vec<Span>,
        boundary: Span,
        n: u64,
    },
    /// An output section whose start should be aligned to `n`.
    Padding {
        section: Span,
        n: u64,
    },
    None,
}

/// One finding of the script-only analysis.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Hazard {
    /// The statements a fix would edit.
    #[serde(skip)]
    pub site: Site,
    pub kind: HazardKind,
    /// The coincidence depends on the kallsyms tables' size (it is placed after them), so it
    /// can differ between link passes.
    pub variable: bool,
    /// The symbols whose relation flips.
    pub symbols: Vec<String>,
    /// The exact condition, in terms of the script ("equal when the end of .init.data is a
    /// multiple of 8192").
    pub condition: String,
    pub labels: Vec<Label>,
}

/// What is known about `.` at a point of the walk.
#[derive(Debug, Clone)]
struct Dot {
    /// `.` is always a multiple of this.
    align: u64,
    /// A description of what `.` follows ("the end of .init.data").
    anchor: String,
}

/// Whether an input-section description takes the kallsyms object's `.rodata`: the first one
/// that does holds the tables, and everything after it moves when they change size.
fn takes_kallsyms_tables(desc: &InputSectionDesc<'_>) -> bool {
    crate::layout::glob::name_matches(desc.file.pattern.text, "kallsyms.o")
        && desc.file.exclude.is_empty()
        && desc.sections.iter().any(|s| {
            s.exclude.is_empty() && crate::layout::glob::name_matches(s.pattern.text, ".rodata")
        })
}

/// A symbol whose value is `.` at some point, with the alignment `.` had there.
#[derive(Debug, Clone)]
struct Pending {
    name: String,
    span: Span,
    align: u64,
    anchor: String,
    /// Its value moves with the kallsyms tables in steps of this many bytes (`u64::MAX`: it
    /// does not move).
    granularity: u64,
}

const RANGE_SYMBOLS: [&str; 4] = ["_stext", "_etext", "_sinittext", "_einittext"];

/// Symbols that equal an aligned boundary exactly when what precedes it is aligned, and the
/// symbols assigned at the boundary itself.
#[derive(Debug, Clone)]
struct Coincidence {
    before: Vec<Pending>,
    at_boundary: Vec<Pending>,
    boundary: Span,
    n: u64,
}

struct Walk<'p, 's, 'a> {
    prog: &'p Program<'s, 'a>,
    dot: Dot,
    /// Symbols equal to the current `.` (nothing of unknown size placed since).
    pending: Vec<Pending>,
    /// How `.` moves when the kallsyms tables change size: in steps of this many bytes
    /// (1 right after them, coarser after each ALIGN), or `u64::MAX` before them.
    granularity: u64,
    /// Coincidences still collecting symbols assigned at their boundary.
    open: Vec<Coincidence>,
    out: Vec<Hazard>,
}

/// Aligned-boundary coincidences below this alignment are too common to be worth a note (they
/// only reorder System.map); range-boundary ones are always reported.
const NOTE_MIN_ALIGN: u64 = 0x1000;

/// One note per INCLUDE: the analysis covers this file only, and says which parts it did not
/// read.
pub fn unread_includes(script: &Script<'_>) -> Vec<Finding> {
    script
        .includes()
        .into_iter()
        .map(|(file, span)| Finding {
            code: "include".into(),
            breaks_build: false,
            message: format!(
                "INCLUDE {file} is not read: hazards in it are not analysed, and a link that \
                 uses this script cannot be simulated"
            ),
            help: Some("analyse the script ld sees with everything included inline".into()),
            places: vec![Place {
                span,
                text: "not followed".into(),
            }],
        })
        .collect()
}

/// Runs the script-only analysis.
pub fn analyze(script: &Script<'_>) -> Vec<Hazard> {
    let prog = Program::build(script);
    let mut walk = Walk {
        prog: &prog,
        dot: Dot {
            align: 1,
            anchor: "the start of the image".into(),
        },
        pending: Vec::new(),
        granularity: u64::MAX,
        open: Vec::new(),
        out: Vec::new(),
    };
    for stmt in &prog.top {
        match stmt {
            TopStmt::Assign(a) => walk.assign(a),
            TopStmt::Assert(_) => {}
            TopStmt::Section(id) => walk.section(*id),
        }
    }
    walk.close_coincidences();
    walk.out
}

/// The constant of `ALIGN(n)` / `. = ALIGN(n)`, when it is one.
fn align_constant(e: &Expr<'_>) -> Option<u64> {
    match &e.kind {
        ExprKind::Call(Builtin::Align, args) if args.len() == 1 => const_value(&args[0]),
        _ => None,
    }
}

fn const_value(e: &Expr<'_>) -> Option<u64> {
    Some(match &e.kind {
        ExprKind::Number { value, .. } => *value,
        ExprKind::Binary(op, l, r) => {
            let (a, b) = (const_value(l)?, const_value(r)?);
            match op {
                BinaryOp::Add => a.wrapping_add(b),
                BinaryOp::Sub => a.wrapping_sub(b),
                BinaryOp::Mul => a.wrapping_mul(b),
                BinaryOp::Div if b != 0 => a / b,
                BinaryOp::Shl => a.wrapping_shl(b as u32),
                BinaryOp::Shr => a.wrapping_shr(b as u32),
                BinaryOp::BitAnd => a & b,
                BinaryOp::BitOr => a | b,
                _ => return None,
            }
        }
        ExprKind::Unary(UnaryOp::BitNot, x) => !const_value(x)?,
        _ => return None,
    })
}

/// The largest power of two dividing `v` (the alignment a constant address guarantees).
fn alignment_of(v: u64) -> u64 {
    if v == 0 {
        1 << 63
    } else {
        1 << v.trailing_zeros()
    }
}

impl Walk<'_, '_, '_> {
    fn assign(&mut self, a: &Assignment<'_>) {
        match a.target {
            AssignTarget::Dot => {
                if let Some(n) = align_constant(&a.value) {
                    self.align_to(n, a.span);
                } else if let Some(v) = const_value(&a.value) {
                    self.reset(alignment_of(v), format!("{v:#x}"));
                } else if !matches!(a.value.kind, ExprKind::Dot) {
                    self.reset(1, "an address computed by the script".into());
                }
            }
            AssignTarget::Symbol(name) => {
                if matches!(a.value.kind, ExprKind::Dot) {
                    let p = Pending {
                        name: name.text.to_string(),
                        span: a.span,
                        align: self.dot.align,
                        anchor: self.dot.anchor.clone(),
                        granularity: self.granularity,
                    };
                    for c in &mut self.open {
                        c.at_boundary.push(p.clone());
                    }
                    self.pending.push(p);
                }
            }
        }
    }

    fn reset(&mut self, align: u64, anchor: String) {
        self.dot = Dot { align, anchor };
        self.pending.clear();
        self.close_coincidences();
    }

    /// Reports the coincidences whose boundary `.` has moved past.
    fn close_coincidences(&mut self) {
        for c in std::mem::take(&mut self.open) {
            let all: Vec<&Pending> = c.before.iter().chain(&c.at_boundary).collect();
            let range = all.iter().any(|p| RANGE_SYMBOLS.contains(&p.name.as_str()));
            let variable = c.before.iter().any(|p| p.granularity < c.n);
            if !range && c.n < NOTE_MIN_ALIGN {
                continue;
            }
            let anchor = c.before[0].anchor.clone();
            let mut labels: Vec<Label> = c
                .before
                .iter()
                .map(|p| Label {
                    span: p.span,
                    text: format!("`{}` is assigned here", p.name),
                })
                .collect();
            labels.push(Label {
                span: c.boundary,
                text: format!("the boundary: ALIGN({:#x})", c.n),
            });
            labels.extend(c.at_boundary.iter().map(|p| Label {
                span: p.span,
                text: format!("`{}` is always on the boundary", p.name),
            }));
            let before: Vec<String> = c.before.iter().map(|p| p.name.clone()).collect();
            let at: Vec<String> = c.at_boundary.iter().map(|p| p.name.clone()).collect();
            let moves = if variable {
                "; it moves with the kallsyms tables, so it can change between link passes"
            } else {
                "; it is fixed before the kallsyms tables, so it cannot change between passes"
            };
            let condition = if at.is_empty() {
                format!(
                    "equal to the ALIGN({:#x}) boundary when {anchor} is a multiple of {:#x} (it is always a multiple of {:#x})",
                    c.n, c.n, c.before[0].align
                ) + moves
            } else {
                format!(
                    "equal to {} when {anchor} is a multiple of {:#x}, below it otherwise (it is always a multiple of {:#x})",
                    at.join(", "),
                    c.n,
                    c.before[0].align
                ) + moves
            };
            self.out.push(Hazard {
                site: Site::Coincidence {
                    before: c.before.iter().map(|p| p.span).collect(),
                    boundary: c.boundary,
                    n: c.n,
                },
                variable,
                kind: if range {
                    HazardKind::RangeBoundary
                } else {
                    HazardKind::AlignedBoundary
                },
                symbols: before,
                condition,
                labels,
            });
        }
    }

    /// `. = ALIGN(n)`: symbols pending from before equal the new `.` exactly when the old `.`
    /// was already a multiple of `n`.
    fn align_to(&mut self, n: u64, span: Span) {
        if n <= self.dot.align {
            return;
        }
        let before: Vec<Pending> = self
            .pending
            .iter()
            .filter(|p| p.align < n)
            .cloned()
            .collect();
        if !before.is_empty() {
            self.open.push(Coincidence {
                before,
                at_boundary: Vec::new(),
                boundary: span,
                n,
            });
        }
        self.dot = Dot {
            align: n,
            anchor: format!("{} rounded up to {n:#x}", self.dot.anchor),
        };
        self.granularity = self.granularity.max(n);
        // Symbols assigned from here on equal the boundary; earlier ones only conditionally.
        for p in &mut self.pending {
            p.align = n;
        }
    }

    fn section(&mut self, id: OsId) {
        let os = &self.prog.sections[id];
        if os.is_discard() {
            return;
        }
        match &os.addr {
            AddrSpec::Expr(e) => match const_value(e) {
                Some(v) => self.reset(alignment_of(v), format!("{v:#x}")),
                None => self.reset(1, format!("the address of {}", os.name)),
            },
            AddrSpec::SameAs(_) => self.reset(1, format!("the address of {}", os.name)),
            AddrSpec::None => {
                if let Some(n) = os.align.and_then(const_value) {
                    self.align_to(n, os.span);
                }
            }
        }
        let may_be_empty = !os.children.iter().any(|c| matches!(c, SecStmt::Data(..)));
        let mut has_inputs = false;
        let mut defines: Vec<(String, Span)> = Vec::new();
        let mut inner_align: Option<(u64, Span, u64, u64)> = None;
        for child in &os.children {
            match child {
                SecStmt::Assign(a) => {
                    if let AssignTarget::Symbol(n) = a.target {
                        defines.push((n.text.to_string(), a.span));
                    }
                    if a.target == AssignTarget::Dot
                        && let Some(n) = align_constant(&a.value)
                        && !has_inputs
                        && inner_align.is_none()
                        && n > self.dot.align
                    {
                        inner_align = Some((n, a.span, self.dot.align, self.granularity));
                    }
                    self.assign(a);
                }
                SecStmt::Wild(w) => {
                    has_inputs = true;
                    self.reset(1, format!("the end of {}", os.name));
                    if takes_kallsyms_tables(self.prog.wilds[*w].desc) {
                        self.granularity = 1;
                    }
                }
                SecStmt::Data(..) => {
                    has_inputs = true;
                    self.reset(1, format!("the end of {}", os.name));
                }
                _ => {}
            }
        }
        if let Some((n, span, guaranteed, granularity)) = inner_align
            && special_section(os.name).is_none_or(|(_, flags)| flags & 2 == 0)
            && !defines.is_empty()
        {
            self.out.push(Hazard {
                site: Site::Padding { section: os.span, n },
                variable: granularity < n,
                kind: HazardKind::PaddingChangesType,
                symbols: defines.iter().map(|(n, _)| n.clone()).collect(),
                condition: format!(
                    "when no input matches, {} is padded (and becomes allocated) unless its start is a multiple of {n:#x}; it is only guaranteed to be a multiple of {guaranteed:#x}",
                    os.name
                ),
                labels: vec![
                    Label {
                        span: os.ast_name.span,
                        text: format!("{} has no flags of its own when it has no inputs", os.name),
                    },
                    Label {
                        span,
                        text: "this alignment pads or not".into(),
                    },
                ],
            });
        }
        if may_be_empty && has_inputs && !defines.is_empty() && inner_align.is_none() {
            self.out.push(Hazard {
                site: Site::None,
                variable: false,
                kind: HazardKind::EmptySectionSymbols,
                symbols: defines.iter().map(|(n, _)| n.clone()).collect(),
                condition: format!(
                    "when no input matches, {} is removed and these symbols move to a neighbouring section",
                    os.name
                ),
                labels: vec![Label {
                    span: os.ast_name.span,
                    text: format!("{} may be empty", os.name),
                }],
            });
        }
    }
}

impl Hazard {
    /// The finding this hazard reports; `all_symbols` (CONFIG_KALLSYMS_ALL) makes range
    /// membership irrelevant to the tables.
    pub fn to_finding(&self, all_symbols: bool) -> Finding {
        let (code, what) = match self.kind {
            HazardKind::RangeBoundary => {
                ("range-boundary", "can land on a kallsyms range boundary")
            }
            HazardKind::PaddingChangesType => (
                "padding-changes-type",
                "change their nm type with the padding",
            ),
            HazardKind::AlignedBoundary => {
                ("aligned-boundary", "can coincide with an aligned boundary")
            }
            HazardKind::EmptySectionSymbols => (
                "empty-section-symbols",
                "are re-homed when their section is empty",
            ),
        };
        let breaks = self.breaks_build(all_symbols);
        let help = match self.kind {
            HazardKind::RangeBoundary => Some(
                "without CONFIG_KALLSYMS_ALL, kallsyms keeps a symbol only inside [_stext, _etext] and [_sinittext, _einittext]; run `ldcheck check` with the link command to see the margin, or `ldcheck fix`".to_string(),
            ),
            HazardKind::PaddingChangesType => Some(
                "give the section a guaranteed aligned start (ALIGN before it) or a name with fixed flags".to_string(),
            ),
            _ => None,
        };
        Finding {
            code: code.to_string(),
            breaks_build: breaks,
            message: format!("{} {what}: {}", self.symbols.join(", "), self.condition),
            help,
            places: self
                .labels
                .iter()
                .map(|l| Place {
                    span: l.span,
                    text: l.text.clone(),
                })
                .collect(),
        }
    }
}

impl Hazard {
    /// Whether it can make link passes disagree (given CONFIG_KALLSYMS_ALL or not).
    pub fn breaks_build(&self, all_symbols: bool) -> bool {
        self.kind.can_break_build()
            && self.variable
            && !(all_symbols && self.kind == HazardKind::RangeBoundary)
    }
}

/// Where the kallsyms tables enter the script, for a fix that moves them: the section pattern
/// that takes the kallsyms object's `.rodata`, and where a new output section for them can go
/// (before the first output section at address 0, or at the end of SECTIONS).
pub fn kallsyms_tables_site<'a>(script: &Script<'a>) -> Option<(Pattern<'a>, usize)> {
    for cmd in &script.commands {
        let CommandKind::Sections(items) = &cmd.kind else {
            continue;
        };
        let mut pattern = None;
        let mut insert_at = cmd.span.end().saturating_sub(1);
        for item in items {
            let SectionsItem::OutputSection(os) = item else {
                continue;
            };
            if pattern.is_none() {
                pattern = os.body.iter().find_map(|st| match st {
                    SectionStatement::Input(desc) if takes_kallsyms_tables(desc) => desc
                        .sections
                        .iter()
                        .find(|s| {
                            s.exclude.is_empty()
                                && crate::layout::glob::name_matches(s.pattern.text, ".rodata")
                        })
                        .map(|s| s.pattern),
                    _ => None,
                });
            } else if os
                .address
                .as_ref()
                .is_some_and(|a| const_value(a) == Some(0))
            {
                insert_at = os.span.start();
                break;
            }
        }
        return pattern.map(|p| (p, insert_at));
    }
    None
}
