//! The canonical printer: a syntax tree back to linker-script text.
//!
//! One statement a line, two spaces per nesting level, and only the parentheses precedence
//! needs. The output re-parses to the same tree (spans aside), which means respecting ld's
//! moded lexer: an unquoted command-level name swallows a following `,`, `=` or `:`, so those
//! get a space in front. Line markers and comments are not reproduced. It does not judge
//! whether a script makes sense.

use std::fmt::Write as _;

use super::ast::*;

/// Prints a whole script.
pub fn print_script(script: &Script<'_>) -> String {
    let mut out = Printer::default();
    for command in &script.commands {
        out.command(command);
    }
    out.buf
}

/// Prints one expression with minimal parentheses.
pub fn print_expr(expr: &Expr<'_>) -> String {
    let mut out = Printer::default();
    out.expr(expr);
    out.buf
}

/// The attributes of an output section as they appear around its braces:
/// `NAME [addr] [(type)] : [AT(…)] [ALIGN(…)] … { } [>region] [AT>region] [:phdr…] [=fill]`
/// without the body. For summaries and diagnostics.
pub fn print_section_header(section: &OutputSection<'_>) -> String {
    let mut out = Printer::default();
    out.section_head(section);
    out.buf.push_str("{ … }");
    out.section_tail(
        section.region.as_ref(),
        section.lma_region.as_ref(),
        &section.phdrs,
        section.fill.as_ref(),
    );
    out.buf
}

#[derive(Default)]
struct Printer {
    buf: String,
    indent: usize,
}

/// Binding strength of an expression node: conditional 0, binary 1–10, unary 11, atoms 12.
fn strength(expr: &Expr<'_>) -> u8 {
    match &expr.kind {
        ExprKind::Conditional(..) => 0,
        ExprKind::Binary(op, ..) => op.precedence(),
        ExprKind::Unary(..) => 11,
        _ => 12,
    }
}

/// Whether a name printed unquoted could run into a following `,`, `=` or `:` in ld's
/// command-level and input-section lexer modes.
fn glues(name: &Name<'_>) -> bool {
    !name.quoted
}

fn sort_keyword(key: SortKey) -> &'static str {
    match key {
        SortKey::Name => "SORT_BY_NAME",
        SortKey::Alignment => "SORT_BY_ALIGNMENT",
        SortKey::InitPriority => "SORT_BY_INIT_PRIORITY",
        SortKey::None => "SORT_NONE",
        SortKey::Reverse => "REVERSE",
    }
}

fn starts_like_name(text: &str) -> bool {
    text.bytes().next().is_some_and(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'$' | b'/' | b'\\' | b'~')
    })
}

impl Printer {
    fn line(&mut self) {
        self.buf.push('\n');
        for _ in 0..self.indent {
            self.buf.push_str("  ");
        }
    }

    fn start_line(&mut self) {
        for _ in 0..self.indent {
            self.buf.push_str("  ");
        }
    }

    fn end_line(&mut self) {
        self.buf.push('\n');
    }

    fn name(&mut self, name: &Name<'_>) {
        if name.quoted {
            self.buf.push('"');
            self.buf.push_str(name.text);
            self.buf.push('"');
        } else {
            self.buf.push_str(name.text);
        }
    }

    fn pattern(&mut self, p: &Pattern<'_>) {
        self.name(&Name {
            text: p.text,
            quoted: p.quoted,
            span: p.span,
        });
    }

    /// `,` after `name`, spaced so an unquoted name does not swallow it.
    fn comma_after(&mut self, name: &Name<'_>) {
        self.buf.push_str(if glues(name) { " , " } else { ", " });
    }

    fn command(&mut self, command: &Command<'_>) {
        self.start_line();
        match &command.kind {
            CommandKind::Sections(items) => {
                self.buf.push_str("SECTIONS");
                self.line();
                self.buf.push('{');
                self.indent += 1;
                self.buf.push('\n');
                for (i, item) in items.iter().enumerate() {
                    self.sections_item(item, items.get(i + 1));
                }
                self.indent -= 1;
                self.start_line();
                self.buf.push('}');
            }
            CommandKind::Memory(regions) => {
                self.buf.push_str("MEMORY");
                self.line();
                self.buf.push('{');
                self.indent += 1;
                for (i, region) in regions.iter().enumerate() {
                    self.line();
                    self.memory_region(region);
                    if i + 1 < regions.len() {
                        self.buf.push(',');
                    }
                }
                self.indent -= 1;
                self.line();
                self.buf.push('}');
            }
            CommandKind::Phdrs(phdrs) => {
                self.buf.push_str("PHDRS");
                self.line();
                self.buf.push('{');
                self.indent += 1;
                for phdr in phdrs {
                    self.line();
                    self.phdr(phdr);
                }
                self.indent -= 1;
                self.line();
                self.buf.push('}');
            }
            CommandKind::Entry(n) => self.call_name("ENTRY", n),
            CommandKind::OutputFormat {
                default,
                big,
                little,
            } => {
                self.buf.push_str("OUTPUT_FORMAT(");
                self.name(default);
                if let (Some(big), Some(little)) = (big, little) {
                    self.comma_after(default);
                    self.name(big);
                    self.comma_after(big);
                    self.name(little);
                }
                self.buf.push(')');
            }
            CommandKind::OutputArch(n) => self.call_name("OUTPUT_ARCH", n),
            CommandKind::Output(n) => self.call_name("OUTPUT", n),
            CommandKind::Input(files) => self.input_list("INPUT", files),
            CommandKind::Group(files) => self.input_list("GROUP", files),
            CommandKind::SearchDir(n) => self.call_name("SEARCH_DIR", n),
            CommandKind::Include(n) => {
                self.buf.push_str("INCLUDE ");
                self.name(n);
            }
            CommandKind::Startup(n) => self.call_name("STARTUP", n),
            CommandKind::Target(n) => self.call_name("TARGET", n),
            CommandKind::Map(n) => self.call_name("MAP", n),
            CommandKind::LdFeature(n) => self.call_name("LD_FEATURE", n),
            CommandKind::Extern(names) => self.name_list("EXTERN", names),
            CommandKind::ForceCommonAllocation => self.buf.push_str("FORCE_COMMON_ALLOCATION"),
            CommandKind::ForceGroupAllocation => self.buf.push_str("FORCE_GROUP_ALLOCATION"),
            CommandKind::InhibitCommonAllocation => {
                self.buf.push_str("INHIBIT_COMMON_ALLOCATION");
            }
            CommandKind::NoCrossRefs(names) => self.name_list("NOCROSSREFS", names),
            CommandKind::NoCrossRefsTo(names) => self.name_list("NOCROSSREFS_TO", names),
            CommandKind::RegionAlias { alias, region } => {
                self.buf.push_str("REGION_ALIAS(");
                self.name(alias);
                self.comma_after(alias);
                self.name(region);
                self.buf.push(')');
            }
            CommandKind::Insert { position, section } => {
                self.buf.push_str(match position {
                    InsertPosition::After => "INSERT AFTER ",
                    InsertPosition::Before => "INSERT BEFORE ",
                });
                self.name(section);
            }
            CommandKind::Assert(a) => self.assert(a),
            CommandKind::Assignment(a) => {
                self.assignment(a);
                self.buf.push(';');
            }
        }
        self.end_line();
    }

    fn call_name(&mut self, keyword: &str, name: &Name<'_>) {
        self.buf.push_str(keyword);
        self.buf.push('(');
        self.name(name);
        self.buf.push(')');
    }

    fn name_list(&mut self, keyword: &str, names: &[Name<'_>]) {
        self.buf.push_str(keyword);
        self.buf.push('(');
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                self.buf.push(' ');
            }
            self.name(n);
        }
        self.buf.push(')');
    }

    fn input_list(&mut self, keyword: &str, files: &[InputFile<'_>]) {
        self.buf.push_str(keyword);
        self.buf.push('(');
        self.input_files(files);
        self.buf.push(')');
    }

    fn input_files(&mut self, files: &[InputFile<'_>]) {
        for (i, file) in files.iter().enumerate() {
            if i > 0 {
                self.buf.push(' ');
            }
            match file {
                InputFile::Path(n) => self.name(n),
                InputFile::Library(n) => {
                    self.buf.push_str("-l");
                    self.buf.push_str(n.text);
                }
                InputFile::AsNeeded(inner) => {
                    self.buf.push_str("AS_NEEDED(");
                    self.input_files(inner);
                    self.buf.push(')');
                }
            }
        }
    }

    fn assignment(&mut self, a: &Assignment<'_>) {
        let wrapper = match a.visibility {
            AssignVisibility::Plain => None,
            AssignVisibility::Provide => Some("PROVIDE("),
            AssignVisibility::ProvideHidden => Some("PROVIDE_HIDDEN("),
            AssignVisibility::Hidden => Some("HIDDEN("),
        };
        if let Some(w) = wrapper {
            self.buf.push_str(w);
        }
        match &a.target {
            AssignTarget::Dot => self.buf.push('.'),
            AssignTarget::Symbol(n) => self.name(n),
        }
        self.buf.push(' ');
        self.buf.push_str(a.op.as_str());
        self.buf.push(' ');
        self.expr(&a.value);
        if wrapper.is_some() {
            self.buf.push(')');
        }
    }

    fn assert(&mut self, a: &Assert<'_>) {
        self.buf.push_str("ASSERT(");
        self.expr(&a.condition);
        self.buf.push_str(", ");
        self.name(&a.message);
        self.buf.push(')');
    }

    fn sections_item(&mut self, item: &SectionsItem<'_>, next: Option<&SectionsItem<'_>>) {
        self.start_line();
        match item {
            SectionsItem::Assignment(a) => {
                self.assignment(a);
                self.buf.push(';');
            }
            SectionsItem::OutputSection(s) => {
                self.output_section(s);
                if s.fill.is_some() && next.is_some_and(item_is_risky_after_fill) {
                    self.buf.push(',');
                }
            }
            SectionsItem::Overlay(o) => {
                self.overlay(o);
                if o.fill.is_some() && next.is_some_and(item_is_risky_after_fill) {
                    self.buf.push(',');
                }
            }
            SectionsItem::Assert(a) => self.assert(a),
            SectionsItem::Entry { symbol, .. } => self.call_name("ENTRY", symbol),
            SectionsItem::Include { file, .. } => {
                self.buf.push_str("INCLUDE ");
                self.name(file);
            }
        }
        self.end_line();
    }

    fn section_head(&mut self, s: &OutputSection<'_>) {
        self.name(&s.name);
        self.buf.push(' ');
        if let Some(address) = &s.address {
            self.expr(address);
            self.buf.push(' ');
        }
        if let Some(kind) = &s.kind {
            self.section_type(kind);
            self.buf.push(' ');
        }
        self.buf.push_str(": ");
        for (keyword, value) in [("AT", &s.lma), ("ALIGN", &s.align)] {
            if let Some(v) = value {
                self.buf.push_str(keyword);
                self.buf.push('(');
                self.expr(v);
                self.buf.push_str(") ");
            }
        }
        if s.align_with_input {
            self.buf.push_str("ALIGN_WITH_INPUT ");
        }
        if let Some(v) = &s.subalign {
            self.buf.push_str("SUBALIGN(");
            self.expr(v);
            self.buf.push_str(") ");
        }
        if let Some(c) = s.constraint {
            self.buf.push_str(match c {
                Constraint::OnlyIfRo => "ONLY_IF_RO ",
                Constraint::OnlyIfRw => "ONLY_IF_RW ",
                Constraint::Special => "SPECIAL ",
            });
        }
    }

    fn section_type(&mut self, kind: &OutputSectionType<'_>) {
        match kind {
            OutputSectionType::NoLoad => self.buf.push_str("(NOLOAD)"),
            OutputSectionType::DSect => self.buf.push_str("(DSECT)"),
            OutputSectionType::Copy => self.buf.push_str("(COPY)"),
            OutputSectionType::Info => self.buf.push_str("(INFO)"),
            OutputSectionType::Overlay => self.buf.push_str("(OVERLAY)"),
            OutputSectionType::ReadOnly => self.buf.push_str("(READONLY)"),
            OutputSectionType::Type { read_only, value } => {
                self.buf.push_str(if *read_only {
                    "(READONLY (TYPE = "
                } else {
                    "(TYPE = "
                });
                self.expr(value);
                self.buf.push_str(if *read_only { "))" } else { ")" });
            }
        }
    }

    fn section_tail(
        &mut self,
        region: Option<&Name<'_>>,
        lma_region: Option<&Name<'_>>,
        phdrs: &[Name<'_>],
        fill: Option<&Expr<'_>>,
    ) {
        if let Some(r) = region {
            self.buf.push_str(" > ");
            self.name(r);
        }
        if let Some(r) = lma_region {
            self.buf.push_str(" AT> ");
            self.name(r);
        }
        for p in phdrs {
            self.buf.push_str(" :");
            self.name(p);
        }
        if let Some(f) = fill {
            self.buf.push_str(" = ");
            self.expr(f);
        }
    }

    fn output_section(&mut self, s: &OutputSection<'_>) {
        self.section_head(s);
        self.body(&s.body);
        self.section_tail(
            s.region.as_ref(),
            s.lma_region.as_ref(),
            &s.phdrs,
            s.fill.as_ref(),
        );
    }

    fn body(&mut self, body: &[SectionStatement<'_>]) {
        self.buf.push('{');
        self.indent += 1;
        for statement in body {
            self.line();
            self.section_statement(statement);
        }
        self.indent -= 1;
        self.line();
        self.buf.push('}');
    }

    fn overlay(&mut self, o: &Overlay<'_>) {
        self.buf.push_str("OVERLAY ");
        if let Some(a) = &o.address {
            self.expr(a);
            self.buf.push(' ');
        }
        self.buf.push_str(": ");
        if o.no_cross_refs {
            self.buf.push_str("NOCROSSREFS ");
        }
        for (keyword, value) in [("AT", &o.lma), ("SUBALIGN", &o.subalign)] {
            if let Some(v) = value {
                self.buf.push_str(keyword);
                self.buf.push('(');
                self.expr(v);
                self.buf.push_str(") ");
            }
        }
        self.buf.push('{');
        self.indent += 1;
        for (i, section) in o.sections.iter().enumerate() {
            self.line();
            self.name(&section.name);
            self.buf.push(' ');
            self.body(&section.body);
            self.section_tail(None, None, &section.phdrs, section.fill.as_ref());
            let next_risky = o
                .sections
                .get(i + 1)
                .is_some_and(|n| name_is_risky_after_fill(&n.name));
            if section.fill.is_some() && next_risky {
                self.buf.push(',');
            }
        }
        self.indent -= 1;
        self.line();
        self.buf.push('}');
        self.section_tail(
            o.region.as_ref(),
            o.lma_region.as_ref(),
            &o.phdrs,
            o.fill.as_ref(),
        );
    }

    fn section_statement(&mut self, statement: &SectionStatement<'_>) {
        match statement {
            SectionStatement::Assignment(a) => {
                self.assignment(a);
                self.buf.push(';');
            }
            SectionStatement::Input(desc) => self.input_desc(desc),
            SectionStatement::Data { size, value, .. } => {
                self.buf.push_str(match size {
                    DataSize::Byte => "BYTE(",
                    DataSize::Short => "SHORT(",
                    DataSize::Long => "LONG(",
                    DataSize::Quad => "QUAD(",
                    DataSize::Squad => "SQUAD(",
                });
                self.expr(value);
                self.buf.push(')');
            }
            SectionStatement::Fill { value, .. } => {
                self.buf.push_str("FILL(");
                self.expr(value);
                self.buf.push(')');
            }
            SectionStatement::CreateObjectSymbols(_) => self.buf.push_str("CREATE_OBJECT_SYMBOLS"),
            SectionStatement::Constructors { sorted, .. } => self.buf.push_str(if *sorted {
                "SORT(CONSTRUCTORS)"
            } else {
                "CONSTRUCTORS"
            }),
            SectionStatement::Assert(a) => {
                self.assert(a);
                self.buf.push(';');
            }
            SectionStatement::Include { file, .. } => {
                self.buf.push_str("INCLUDE ");
                self.name(file);
            }
        }
    }

    fn input_desc(&mut self, desc: &InputSectionDesc<'_>) {
        if desc.keep {
            self.buf.push_str("KEEP(");
        }
        if !desc.flags.is_empty() {
            self.buf.push_str("INPUT_SECTION_FLAGS(");
            for (i, f) in desc.flags.iter().enumerate() {
                if i > 0 {
                    self.buf.push_str(" & ");
                }
                match (f.negated, f.flag.quoted) {
                    (true, true) => {
                        let _ = write!(self.buf, "\"!{}\"", f.flag.text);
                    }
                    (true, false) => {
                        self.buf.push('!');
                        self.buf.push_str(f.flag.text);
                    }
                    (false, _) => self.name(&f.flag),
                }
            }
            self.buf.push_str(") ");
        }
        let file = &desc.file;
        for key in &file.sort {
            self.buf.push_str(sort_keyword(*key));
            self.buf.push('(');
        }
        self.excluded_pattern(&file.exclude, &file.pattern);
        for _ in &file.sort {
            self.buf.push(')');
        }
        if !desc.sections.is_empty() {
            self.buf.push('(');
            for (i, spec) in desc.sections.iter().enumerate() {
                if i > 0 {
                    self.buf.push(' ');
                }
                for key in &spec.sort {
                    self.buf.push_str(sort_keyword(*key));
                    self.buf.push('(');
                }
                self.excluded_pattern(&spec.exclude, &spec.pattern);
                for _ in &spec.sort {
                    self.buf.push(')');
                }
            }
            self.buf.push(')');
        }
        if desc.keep {
            self.buf.push(')');
        }
    }

    fn excluded_pattern(&mut self, exclude: &[Pattern<'_>], pattern: &Pattern<'_>) {
        if !exclude.is_empty() {
            self.buf.push_str("EXCLUDE_FILE(");
            for (i, p) in exclude.iter().enumerate() {
                if i > 0 {
                    self.buf.push(' ');
                }
                self.pattern(p);
            }
            self.buf.push_str(") ");
        }
        self.pattern(pattern);
    }

    fn memory_region(&mut self, region: &MemoryRegion<'_>) {
        self.name(&region.name);
        if let Some(attributes) = region.attributes {
            self.buf.push_str(" (");
            self.buf.push_str(attributes);
            self.buf.push(')');
        }
        self.buf.push_str(" : ORIGIN = ");
        self.expr(&region.origin);
        self.buf.push_str(", LENGTH = ");
        self.expr(&region.length);
    }

    fn phdr(&mut self, phdr: &Phdr<'_>) {
        self.name(&phdr.name);
        self.buf.push(' ');
        match &phdr.kind {
            PhdrType::Named(n) => self.name(n),
            PhdrType::Value(v) => self.expr(v),
        }
        if phdr.file_header {
            self.buf.push_str(" FILEHDR");
        }
        if phdr.program_headers {
            self.buf.push_str(" PHDRS");
        }
        if let Some(at) = &phdr.at {
            self.buf.push_str(" AT(");
            self.expr(at);
            self.buf.push(')');
        }
        if let Some(flags) = &phdr.flags {
            self.buf.push_str(" FLAGS(");
            self.expr(flags);
            self.buf.push(')');
        }
        self.buf.push(';');
    }

    // ----- expressions -----

    fn expr(&mut self, e: &Expr<'_>) {
        match &e.kind {
            ExprKind::Number { text, .. } => self.buf.push_str(text),
            ExprKind::Symbol(n) => self.name(n),
            ExprKind::Dot => self.buf.push('.'),
            ExprKind::Unary(op, operand) => {
                self.buf.push_str(op.as_str());
                let wrap = strength(operand) < 11;
                let mut inner = Printer::default();
                inner.expr(operand);
                // `~` followed by a name character would join it into one name when the
                // expression starts an output section's address (lexed in command mode).
                if !wrap && *op == UnaryOp::BitNot && starts_like_name(&inner.buf) {
                    self.buf.push(' ');
                }
                self.wrapped(wrap, &inner.buf);
            }
            ExprKind::Binary(op, lhs, rhs) => {
                let p = op.precedence();
                self.operand(lhs, strength(lhs) < p);
                self.buf.push(' ');
                self.buf.push_str(op.as_str());
                self.buf.push(' ');
                self.operand(rhs, strength(rhs) <= p);
            }
            ExprKind::Conditional(c, then, otherwise) => {
                self.operand(c, strength(c) == 0);
                self.buf.push_str(" ? ");
                self.expr(then);
                self.buf.push_str(" : ");
                self.expr(otherwise);
            }
            ExprKind::SectionQuery(q, n) => {
                let keyword = match q {
                    SectionQuery::Addr => "ADDR",
                    SectionQuery::Sizeof => "SIZEOF",
                    SectionQuery::LoadAddr => "LOADADDR",
                    SectionQuery::AlignOf => "ALIGNOF",
                };
                self.call_name(keyword, n);
            }
            ExprKind::RegionQuery(q, n) => {
                let keyword = match q {
                    RegionQuery::Origin => "ORIGIN",
                    RegionQuery::Length => "LENGTH",
                };
                self.call_name(keyword, n);
            }
            ExprKind::Defined(n) => self.call_name("DEFINED", n),
            ExprKind::SizeofHeaders => self.buf.push_str("SIZEOF_HEADERS"),
            ExprKind::Constant(c) => self.buf.push_str(match c {
                ConstantName::MaxPageSize => "CONSTANT(MAXPAGESIZE)",
                ConstantName::CommonPageSize => "CONSTANT(COMMONPAGESIZE)",
            }),
            ExprKind::SegmentStart(segment, default) => {
                self.buf.push_str("SEGMENT_START(");
                self.name(segment);
                self.comma_after(segment);
                self.expr(default);
                self.buf.push(')');
            }
            ExprKind::Call(builtin, args) => {
                self.buf.push_str(builtin.as_str());
                self.buf.push('(');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        self.buf.push_str(", ");
                    }
                    self.expr(a);
                }
                self.buf.push(')');
            }
            ExprKind::Assert(a) => self.assert(a),
        }
    }

    fn operand(&mut self, e: &Expr<'_>, wrap: bool) {
        if wrap {
            self.buf.push('(');
            self.expr(e);
            self.buf.push(')');
        } else {
            self.expr(e);
        }
    }

    fn wrapped(&mut self, wrap: bool, text: &str) {
        if wrap {
            self.buf.push('(');
        }
        self.buf.push_str(text);
        if wrap {
            self.buf.push(')');
        }
    }
}

/// After a fill expression ld reads the next token in expression mode: an unquoted name that
/// starts with `/` (other than `/DISCARD/`) or `~` would read as an operator, so a comma must
/// end the fill first.
fn name_is_risky_after_fill(name: &Name<'_>) -> bool {
    !name.quoted && name.text != "/DISCARD/" && name.text.starts_with(['/', '~'])
}

fn item_is_risky_after_fill(item: &SectionsItem<'_>) -> bool {
    match item {
        SectionsItem::OutputSection(s) => name_is_risky_after_fill(&s.name),
        SectionsItem::Assignment(Assignment {
            target: AssignTarget::Symbol(n),
            visibility: AssignVisibility::Plain,
            ..
        }) => name_is_risky_after_fill(n),
        _ => false,
    }
}
