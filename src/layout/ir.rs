//! The script lowered to the statement lists GNU ld works on.
//!
//! Owns the shape ld's `lang_*_statement` lists have after parsing: top-level statements in
//! order, one output-section statement per description (OVERLAY members expanded into their
//! implied addresses), and one wild statement per input-section description. No addresses here.

use crate::script::ast::*;

/// Index of an output-section statement in [`Program::sections`].
pub type OsId = usize;
/// Index of a wild (input-section description) statement in [`Program::wilds`].
pub type WildId = usize;

/// A statement directly inside SECTIONS (or outside it).
#[derive(Debug, Clone)]
pub enum TopStmt<'s, 'a> {
    Assign(&'s Assignment<'a>),
    Assert(&'s Assert<'a>),
    Section(OsId),
}

/// A statement inside an output section.
#[derive(Debug, Clone)]
pub enum SecStmt<'s, 'a> {
    Assign(&'s Assignment<'a>),
    Assert(&'s Assert<'a>),
    Wild(WildId),
    Data(DataSize, &'s Expr<'a>),
    Fill(&'s Expr<'a>),
    CreateObjectSymbols,
    Constructors,
}

/// How an output section's address and load address are given.
#[derive(Debug, Clone)]
pub enum AddrSpec<'s, 'a> {
    None,
    Expr(&'s Expr<'a>),
    /// An OVERLAY member after the first: the first member's address.
    SameAs(OsId),
}

/// How an output section's load address is given.
#[derive(Debug, Clone)]
pub enum LmaSpec<'s, 'a> {
    None,
    Expr(&'s Expr<'a>),
    /// An OVERLAY member after the first: right after the previous member's load image.
    After(OsId),
}

/// ld's `sectype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionType {
    Normal,
    NoLoad,
    NoAlloc,
    ReadOnly,
    Overlay,
    FirstOverlay,
}

/// One output-section statement.
#[derive(Debug, Clone)]
pub struct OsStmt<'s, 'a> {
    pub name: &'a str,
    pub ast_name: Name<'a>,
    pub span: Span,
    pub addr: AddrSpec<'s, 'a>,
    pub lma: LmaSpec<'s, 'a>,
    pub align: Option<&'s Expr<'a>>,
    pub subalign: Option<&'s Expr<'a>>,
    pub align_with_input: bool,
    pub constraint: Option<Constraint>,
    pub sectype: SectionType,
    pub region: Option<&'a str>,
    pub lma_region: Option<&'a str>,
    pub fill: Option<&'s Expr<'a>>,
    pub children: Vec<SecStmt<'s, 'a>>,
    /// For the last member of an OVERLAY: `.` after it is the overlay start plus the largest
    /// member size (ld's `update_dot_tree`).
    pub overlay_end: Option<(OsId, Vec<OsId>)>,
    /// Created by orphan placement rather than written in the script.
    pub orphan: bool,
}

impl OsStmt<'_, '_> {
    pub fn is_discard(&self) -> bool {
        self.name == "/DISCARD/"
    }
}

/// One input-section description with the output section it belongs to.
#[derive(Debug, Clone)]
pub struct WildStmt<'s, 'a> {
    pub desc: &'s InputSectionDesc<'a>,
    pub os: OsId,
}

/// Everything ld's parser would have built from the script.
#[derive(Debug, Clone, Default)]
pub struct Program<'s, 'a> {
    pub top: Vec<TopStmt<'s, 'a>>,
    pub sections: Vec<OsStmt<'s, 'a>>,
    pub wilds: Vec<WildStmt<'s, 'a>>,
    pub regions: Vec<&'s MemoryRegion<'a>>,
    pub entry: Option<&'a str>,
    pub output_arch: Option<&'a str>,
    pub output_format: Option<&'a str>,
    /// Whether the script had a SECTIONS command at all.
    pub has_sections: bool,
}

impl<'s, 'a> Program<'s, 'a> {
    /// Lowers a parsed script.
    pub fn build(script: &'s Script<'a>) -> Program<'s, 'a> {
        let mut p = Program::default();
        for cmd in &script.commands {
            match &cmd.kind {
                CommandKind::Sections(items) => {
                    p.has_sections = true;
                    for item in items {
                        p.add_sections_item(item);
                    }
                }
                CommandKind::Memory(regions) => p.regions.extend(regions.iter()),
                CommandKind::Entry(name) => p.entry = Some(name.text),
                CommandKind::OutputArch(name) => p.output_arch = Some(name.text),
                CommandKind::OutputFormat { default, .. } => p.output_format = Some(default.text),
                CommandKind::Assignment(a) => p.top.push(TopStmt::Assign(a)),
                CommandKind::Assert(a) => p.top.push(TopStmt::Assert(a)),
                _ => {}
            }
        }
        p
    }

    fn add_sections_item(&mut self, item: &'s SectionsItem<'a>) {
        match item {
            SectionsItem::Assignment(a) => self.top.push(TopStmt::Assign(a)),
            SectionsItem::Assert(a) => self.top.push(TopStmt::Assert(a)),
            SectionsItem::Entry { symbol, .. } => self.entry = Some(symbol.text),
            SectionsItem::Include { .. } => {}
            SectionsItem::OutputSection(os) => {
                let id = self.sections.len();
                let sectype = match &os.kind {
                    Some(OutputSectionType::NoLoad) => SectionType::NoLoad,
                    Some(
                        OutputSectionType::DSect
                        | OutputSectionType::Copy
                        | OutputSectionType::Info
                        | OutputSectionType::Overlay,
                    ) => SectionType::NoAlloc,
                    Some(OutputSectionType::ReadOnly) => SectionType::ReadOnly,
                    Some(OutputSectionType::Type {
                        read_only: true, ..
                    }) => SectionType::ReadOnly,
                    _ => SectionType::Normal,
                };
                self.sections.push(OsStmt {
                    name: os.name.text,
                    ast_name: os.name,
                    span: os.span,
                    addr: os.address.as_ref().map_or(AddrSpec::None, AddrSpec::Expr),
                    lma: os.lma.as_ref().map_or(LmaSpec::None, LmaSpec::Expr),
                    align: os.align.as_ref(),
                    subalign: os.subalign.as_ref(),
                    align_with_input: os.align_with_input,
                    constraint: os.constraint,
                    sectype,
                    region: os.region.map(|r| r.text),
                    lma_region: os.lma_region.map(|r| r.text),
                    fill: os.fill.as_ref(),
                    children: Vec::new(),
                    overlay_end: None,
                    orphan: false,
                });
                let children = self.lower_body(&os.body, id);
                self.sections[id].children = children;
                self.top.push(TopStmt::Section(id));
            }
            SectionsItem::Overlay(ov) => self.add_overlay(ov),
        }
    }

    fn add_overlay(&mut self, ov: &'s Overlay<'a>) {
        let first = self.sections.len();
        let mut members = Vec::new();
        for (k, member) in ov.sections.iter().enumerate() {
            let id = self.sections.len();
            let addr = if k == 0 {
                ov.address.as_ref().map_or(AddrSpec::None, AddrSpec::Expr)
            } else {
                AddrSpec::SameAs(first)
            };
            let lma = if k == 0 {
                ov.lma.as_ref().map_or(LmaSpec::None, LmaSpec::Expr)
            } else {
                LmaSpec::After(id - 1)
            };
            self.sections.push(OsStmt {
                name: member.name.text,
                ast_name: member.name,
                span: member.span,
                addr,
                lma,
                align: None,
                subalign: ov.subalign.as_ref(),
                align_with_input: false,
                constraint: None,
                sectype: if k == 0 {
                    SectionType::FirstOverlay
                } else {
                    SectionType::Overlay
                },
                region: ov.region.map(|r| r.text),
                lma_region: ov.lma_region.map(|r| r.text),
                fill: member.fill.as_ref().or(ov.fill.as_ref()),
                children: Vec::new(),
                overlay_end: None,
                orphan: false,
            });
            let children = self.lower_body(&member.body, id);
            self.sections[id].children = children;
            self.top.push(TopStmt::Section(id));
            members.push(id);
        }
        if let Some(&last) = members.last() {
            self.sections[last].overlay_end = Some((first, members));
        }
    }

    fn lower_body(&mut self, body: &'s [SectionStatement<'a>], os: OsId) -> Vec<SecStmt<'s, 'a>> {
        let mut out = Vec::with_capacity(body.len());
        for st in body {
            match st {
                SectionStatement::Assignment(a) => out.push(SecStmt::Assign(a)),
                SectionStatement::Assert(a) => out.push(SecStmt::Assert(a)),
                SectionStatement::Input(desc) => {
                    let id = self.wilds.len();
                    self.wilds.push(WildStmt { desc, os });
                    out.push(SecStmt::Wild(id));
                }
                SectionStatement::Data { size, value, .. } => out.push(SecStmt::Data(*size, value)),
                SectionStatement::Fill { value, .. } => out.push(SecStmt::Fill(value)),
                SectionStatement::CreateObjectSymbols(_) => out.push(SecStmt::CreateObjectSymbols),
                SectionStatement::Constructors { .. } => out.push(SecStmt::Constructors),
                SectionStatement::Include { .. } => {}
            }
        }
        out
    }
}
