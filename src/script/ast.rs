//! The syntax tree of a GNU ld linker script.
//!
//! Owns the shape of the language only: every node records the bytes it came from, names and
//! numbers borrow from the source text, and nothing here evaluates an expression or knows an
//! address. Evaluation lives in `layout`; text comes in through `parse` and out through `print`.

use serde::Serialize;

/// A byte range of the script source. Spans locate diagnostics and fixes; they do not take part
/// in equality, so two trees are equal when they say the same thing wherever it was written.
/// Offsets are 32-bit (every node carries one, and the smaller tree parses measurably faster);
/// `parse_script` refuses a script of 4 GiB or more.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// A span of script offsets, which [`crate::script::parse_script`] keeps below 4 GiB.
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub fn start(self) -> usize {
        self.start as usize
    }

    pub fn end(self) -> usize {
        self.end as usize
    }

    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        Span::new(self.start().min(other.start()), self.end().max(other.end()))
    }

    pub fn len(self) -> usize {
        self.end() - self.start()
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

impl Eq for Span {}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        (span.start(), span.len()).into()
    }
}

/// A symbol, section, region, file or phdr name as written. Quoted names keep their inner text;
/// ld does not interpret escapes inside quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Name<'a> {
    pub text: &'a str,
    pub quoted: bool,
    pub span: Span,
}

/// A whole script: the top-level commands in source order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Script<'a> {
    pub commands: Vec<Command<'a>>,
    /// cpp line markers (`# 12 "file"`) found in a script preprocessed without `-P`, so reports
    /// can name the original header line. They are not commands and are not printed.
    #[serde(skip)]
    pub line_markers: Vec<LineMarker<'a>>,
}

impl<'a> Script<'a> {
    /// Every INCLUDE, wherever it stands, with the file it names: ldcheck does not read
    /// included scripts, and says so rather than analyse half a script silently.
    pub fn includes(&self) -> Vec<(&'a str, Span)> {
        let in_body = |body: &[SectionStatement<'a>], out: &mut Vec<(&'a str, Span)>| {
            for statement in body {
                if let SectionStatement::Include { file, span } = statement {
                    out.push((file.text, *span));
                }
            }
        };
        let mut out = Vec::new();
        for command in &self.commands {
            match &command.kind {
                CommandKind::Include(file) => out.push((file.text, command.span)),
                CommandKind::Sections(items) => {
                    for item in items {
                        match item {
                            SectionsItem::Include { file, span } => out.push((file.text, *span)),
                            SectionsItem::OutputSection(os) => in_body(&os.body, &mut out),
                            SectionsItem::Overlay(overlay) => {
                                for section in &overlay.sections {
                                    in_body(&section.body, &mut out);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// `# LINE "FILE" FLAGS…` left in the text by the C preprocessor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineMarker<'a> {
    /// Byte offset of the first byte after the marker's line.
    pub offset: usize,
    /// The source line number the next line had in `file`.
    pub line: u64,
    pub file: &'a str,
    pub span: Span,
}

/// A top-level command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command<'a> {
    pub kind: CommandKind<'a>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum CommandKind<'a> {
    Sections(Vec<SectionsItem<'a>>),
    Memory(Vec<MemoryRegion<'a>>),
    Phdrs(Vec<Phdr<'a>>),
    Entry(Name<'a>),
    /// `OUTPUT_FORMAT(default)` or `OUTPUT_FORMAT(default, big, little)`.
    OutputFormat {
        default: Name<'a>,
        big: Option<Name<'a>>,
        little: Option<Name<'a>>,
    },
    OutputArch(Name<'a>),
    Output(Name<'a>),
    Input(Vec<InputFile<'a>>),
    Group(Vec<InputFile<'a>>),
    SearchDir(Name<'a>),
    Include(Name<'a>),
    Startup(Name<'a>),
    Target(Name<'a>),
    Extern(Vec<Name<'a>>),
    ForceCommonAllocation,
    /// `FORCE_GROUP_ALLOCATION`: place group members like normal input sections.
    ForceGroupAllocation,
    InhibitCommonAllocation,
    /// `MAP(file)`: where to write the link map.
    Map(Name<'a>),
    /// `LD_FEATURE(name)`: opt into a linker behaviour (`SANE_EXPR`).
    LdFeature(Name<'a>),
    NoCrossRefs(Vec<Name<'a>>),
    NoCrossRefsTo(Vec<Name<'a>>),
    RegionAlias {
        alias: Name<'a>,
        region: Name<'a>,
    },
    /// `INSERT AFTER|BEFORE section`: this script's SECTIONS augment the default script.
    Insert {
        position: InsertPosition,
        section: Name<'a>,
    },
    Assert(Assert<'a>),
    Assignment(Assignment<'a>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InsertPosition {
    After,
    Before,
}

/// One entry of INPUT(…) or GROUP(…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum InputFile<'a> {
    /// A file name, searched as ld documents (sysroot, then the search path).
    Path(Name<'a>),
    /// `-lNAME`.
    Library(Name<'a>),
    AsNeeded(Vec<InputFile<'a>>),
}

/// A statement directly inside `SECTIONS { … }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SectionsItem<'a> {
    Assignment(Assignment<'a>),
    OutputSection(OutputSection<'a>),
    Overlay(Overlay<'a>),
    Assert(Assert<'a>),
    Entry { symbol: Name<'a>, span: Span },
    Include { file: Name<'a>, span: Span },
}

/// `name [address] [(type)] : [AT(lma)] [ALIGN(a) | ALIGN_WITH_INPUT] [SUBALIGN(a)]
/// [constraint] { … } [>region] [AT>region] [:phdr…] [=fill]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputSection<'a> {
    pub name: Name<'a>,
    pub address: Option<Expr<'a>>,
    pub kind: Option<OutputSectionType<'a>>,
    pub lma: Option<Expr<'a>>,
    pub align: Option<Expr<'a>>,
    pub align_with_input: bool,
    pub subalign: Option<Expr<'a>>,
    pub constraint: Option<Constraint>,
    pub body: Vec<SectionStatement<'a>>,
    pub region: Option<Name<'a>>,
    pub lma_region: Option<Name<'a>>,
    pub phdrs: Vec<Name<'a>>,
    pub fill: Option<Expr<'a>>,
    pub span: Span,
}

impl OutputSection<'_> {
    /// `/DISCARD/` throws away whatever its patterns match.
    pub fn is_discard(&self) -> bool {
        self.name.text == "/DISCARD/"
    }
}

/// The parenthesised type after an output section's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum OutputSectionType<'a> {
    NoLoad,
    DSect,
    Copy,
    Info,
    Overlay,
    ReadOnly,
    /// `(TYPE = expr)`, optionally as `(READONLY (TYPE = expr))`.
    Type {
        read_only: bool,
        value: Expr<'a>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Constraint {
    OnlyIfRo,
    OnlyIfRw,
    Special,
}

/// `OVERLAY [start] : [NOCROSSREFS] [AT(lma)] [SUBALIGN(a)] { sections } [>region]
/// [AT>region] [:phdr…] [=fill]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overlay<'a> {
    pub address: Option<Expr<'a>>,
    pub no_cross_refs: bool,
    pub lma: Option<Expr<'a>>,
    /// `SUBALIGN(a)`, applied to every section of the overlay.
    pub subalign: Option<Expr<'a>>,
    pub sections: Vec<OverlaySection<'a>>,
    pub region: Option<Name<'a>>,
    /// `AT> region`: where the overlay's load addresses are allocated.
    pub lma_region: Option<Name<'a>>,
    pub phdrs: Vec<Name<'a>>,
    pub fill: Option<Expr<'a>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverlaySection<'a> {
    pub name: Name<'a>,
    pub body: Vec<SectionStatement<'a>>,
    pub phdrs: Vec<Name<'a>>,
    pub fill: Option<Expr<'a>>,
    pub span: Span,
}

/// A statement inside an output section's braces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SectionStatement<'a> {
    Assignment(Assignment<'a>),
    Input(InputSectionDesc<'a>),
    /// `BYTE(x)`, `SHORT(x)`, `LONG(x)`, `QUAD(x)`, `SQUAD(x)`.
    Data {
        size: DataSize,
        value: Expr<'a>,
        span: Span,
    },
    Fill {
        value: Expr<'a>,
        span: Span,
    },
    CreateObjectSymbols(Span),
    Constructors {
        sorted: bool,
        span: Span,
    },
    Assert(Assert<'a>),
    Include {
        file: Name<'a>,
        span: Span,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DataSize {
    Byte,
    Short,
    Long,
    Quad,
    Squad,
}

impl DataSize {
    pub fn bytes(self) -> u64 {
        match self {
            DataSize::Byte => 1,
            DataSize::Short => 2,
            DataSize::Long => 4,
            DataSize::Quad | DataSize::Squad => 8,
        }
    }
}

/// `[KEEP(] [INPUT_SECTION_FLAGS(…)] file-spec ( section-spec … ) [)]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputSectionDesc<'a> {
    pub keep: bool,
    /// Flag tests from INPUT_SECTION_FLAGS, all of which must hold.
    pub flags: Vec<SectionFlagTest<'a>>,
    pub file: FileSpec<'a>,
    /// Empty for the bare `file` form (no parentheses), which takes every section of the
    /// matching files; ld's grammar requires at least one pattern inside parentheses.
    pub sections: Vec<SectionSpec<'a>>,
    pub span: Span,
}

/// One `FLAG` or `!FLAG` of INPUT_SECTION_FLAGS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SectionFlagTest<'a> {
    pub negated: bool,
    pub flag: Name<'a>,
}

/// Which input files a description applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSpec<'a> {
    /// Files excluded by an `EXCLUDE_FILE(…)` written before the file pattern, which applies to
    /// every section pattern of the description.
    pub exclude: Vec<Pattern<'a>>,
    pub pattern: Pattern<'a>,
    /// `SORT(*)(…)`: sort files by name (only SORT_BY_NAME is meaningful here).
    pub sort: Vec<SortKey>,
}

/// One section-name pattern inside the parentheses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionSpec<'a> {
    /// Files excluded by an `EXCLUDE_FILE(…)` inside the parentheses, for this pattern only.
    pub exclude: Vec<Pattern<'a>>,
    pub pattern: Pattern<'a>,
    /// Sorting wrappers, outermost first: `SORT_BY_NAME(SORT_BY_ALIGNMENT(.x*))` is
    /// `[Name, Alignment]`.
    pub sort: Vec<SortKey>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SortKey {
    /// `SORT` and `SORT_BY_NAME`.
    Name,
    Alignment,
    InitPriority,
    /// `SORT_NONE`: keep input order even under `--sort-section`.
    None,
    /// `REVERSE`: from later ld releases; ld 2.40 itself does not know it.
    Reverse,
}

/// A glob as ld matches it (`*`, `?`, `[…]`; `archive:member` forms stay in the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pattern<'a> {
    pub text: &'a str,
    pub quoted: bool,
    pub span: Span,
}

impl Pattern<'_> {
    /// Whether matching needs glob logic; plain names match by string equality.
    pub fn has_wildcard(&self) -> bool {
        !self.quoted && self.text.contains(['*', '?', '['])
    }
}

/// `symbol op expr` or `. op expr`, possibly wrapped in PROVIDE, PROVIDE_HIDDEN or HIDDEN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assignment<'a> {
    pub target: AssignTarget<'a>,
    pub op: AssignOp,
    pub value: Expr<'a>,
    pub visibility: AssignVisibility,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AssignTarget<'a> {
    /// The location counter `.`.
    Dot,
    Symbol(Name<'a>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AssignVisibility {
    /// A plain assignment: always defines the symbol.
    Plain,
    /// PROVIDE: defines the symbol only when it is referenced and not defined elsewhere.
    Provide,
    ProvideHidden,
    /// HIDDEN: defines it with hidden visibility.
    Hidden,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AssignOp {
    Set,
    Add,
    Sub,
    Mul,
    Div,
    Shl,
    Shr,
    And,
    Or,
    Xor,
}

impl AssignOp {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignOp::Set => "=",
            AssignOp::Add => "+=",
            AssignOp::Sub => "-=",
            AssignOp::Mul => "*=",
            AssignOp::Div => "/=",
            AssignOp::Shl => "<<=",
            AssignOp::Shr => ">>=",
            AssignOp::And => "&=",
            AssignOp::Or => "|=",
            AssignOp::Xor => "^=",
        }
    }

    /// The binary operator a compound assignment applies (`a += b` is `a = a + b`).
    pub fn binary(self) -> Option<BinaryOp> {
        Some(match self {
            AssignOp::Set => return None,
            AssignOp::Add => BinaryOp::Add,
            AssignOp::Sub => BinaryOp::Sub,
            AssignOp::Mul => BinaryOp::Mul,
            AssignOp::Div => BinaryOp::Div,
            AssignOp::Shl => BinaryOp::Shl,
            AssignOp::Shr => BinaryOp::Shr,
            AssignOp::And => BinaryOp::BitAnd,
            AssignOp::Or => BinaryOp::BitOr,
            AssignOp::Xor => BinaryOp::BitXor,
        })
    }
}

/// `ASSERT(expr, "message")`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assert<'a> {
    pub condition: Expr<'a>,
    pub message: Name<'a>,
    pub span: Span,
}

/// One `name (attrs) : ORIGIN = expr, LENGTH = expr` line of MEMORY.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryRegion<'a> {
    pub name: Name<'a>,
    /// The attribute letters between the parentheses (`rwx!…`), as written.
    pub attributes: Option<&'a str>,
    pub origin: Expr<'a>,
    pub length: Expr<'a>,
    pub span: Span,
}

/// One `name TYPE [FILEHDR] [PHDRS] [AT(addr)] [FLAGS(flags)] ;` of PHDRS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phdr<'a> {
    pub name: Name<'a>,
    pub kind: PhdrType<'a>,
    pub file_header: bool,
    pub program_headers: bool,
    pub at: Option<Expr<'a>>,
    pub flags: Option<Expr<'a>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PhdrType<'a> {
    /// `PT_LOAD`, `PT_NOTE`, … by name.
    Named(Name<'a>),
    Value(Expr<'a>),
}

/// An expression with its span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expr<'a> {
    pub kind: ExprKind<'a>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ExprKind<'a> {
    /// A number with the text it was written as (so printing keeps `0x1000`, `4K`, `1000h`).
    Number {
        value: u64,
        text: &'a str,
    },
    Symbol(Name<'a>),
    /// The location counter `.`.
    Dot,
    Unary(UnaryOp, Box<Expr<'a>>),
    Binary(BinaryOp, Box<Expr<'a>>, Box<Expr<'a>>),
    Conditional(Box<Expr<'a>>, Box<Expr<'a>>, Box<Expr<'a>>),
    /// ADDR, SIZEOF, LOADADDR, ALIGNOF of an output section.
    SectionQuery(SectionQuery, Name<'a>),
    /// ORIGIN or LENGTH of a memory region.
    RegionQuery(RegionQuery, Name<'a>),
    Defined(Name<'a>),
    SizeofHeaders,
    Constant(ConstantName),
    /// `SEGMENT_START("segment", default)`.
    SegmentStart(Name<'a>, Box<Expr<'a>>),
    /// Builtins whose arguments are all expressions.
    Call(Builtin, Vec<Expr<'a>>),
    /// `ASSERT(cond, "message")` used as a value (`. = ASSERT(…);`): checks, then yields `cond`.
    Assert(Box<Assert<'a>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum UnaryOp {
    Neg,
    Not,
    BitNot,
}

impl UnaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            UnaryOp::Neg => "-",
            UnaryOp::Not => "!",
            UnaryOp::BitNot => "~",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BinaryOp {
    Mul,
    Div,
    Rem,
    Add,
    Sub,
    Shl,
    Shr,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    BitAnd,
    BitXor,
    BitOr,
    And,
    Or,
}

impl BinaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Shl => "<<",
            BinaryOp::Shr => ">>",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::BitAnd => "&",
            BinaryOp::BitXor => "^",
            BinaryOp::BitOr => "|",
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
        }
    }

    /// Binding strength as in ld's grammar (C's): higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => 10,
            BinaryOp::Add | BinaryOp::Sub => 9,
            BinaryOp::Shl | BinaryOp::Shr => 8,
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => 7,
            BinaryOp::Eq | BinaryOp::Ne => 6,
            BinaryOp::BitAnd => 5,
            BinaryOp::BitXor => 4,
            BinaryOp::BitOr => 3,
            BinaryOp::And => 2,
            BinaryOp::Or => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SectionQuery {
    Addr,
    Sizeof,
    LoadAddr,
    AlignOf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RegionQuery {
    Origin,
    Length,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ConstantName {
    MaxPageSize,
    CommonPageSize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Builtin {
    Absolute,
    /// `ALIGN(align)` (of `.`) or `ALIGN(exp, align)`.
    Align,
    Block,
    DataSegmentAlign,
    DataSegmentEnd,
    DataSegmentRelroEnd,
    Log2Ceil,
    Max,
    Min,
    Next,
}

impl Builtin {
    pub fn as_str(self) -> &'static str {
        match self {
            Builtin::Absolute => "ABSOLUTE",
            Builtin::Align => "ALIGN",
            Builtin::Block => "BLOCK",
            Builtin::DataSegmentAlign => "DATA_SEGMENT_ALIGN",
            Builtin::DataSegmentEnd => "DATA_SEGMENT_END",
            Builtin::DataSegmentRelroEnd => "DATA_SEGMENT_RELRO_END",
            Builtin::Log2Ceil => "LOG2CEIL",
            Builtin::Max => "MAX",
            Builtin::Min => "MIN",
            Builtin::Next => "NEXT",
        }
    }
}
