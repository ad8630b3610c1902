//! Unit tests of the linker-script parser: number forms, precedence, every command and
//! section-level statement, and ld 2.40's lexer quirks.

use ldcheck::script::ast::*;
use ldcheck::script::{parse_script, print_script};

fn parse(src: &str) -> Script<'_> {
    match parse_script(src) {
        Ok(s) => s,
        Err(e) => panic!("{src:?}: {:?}", miette::Report::new(e)),
    }
}

/// Parses, prints, re-parses and checks the trees agree.
fn round_trip(src: &str) -> Script<'_> {
    let tree = parse(src);
    let printed = print_script(&tree);
    let again = match parse_script(&printed) {
        Ok(t) => t,
        Err(e) => panic!("printed form of {src:?} fails:\n{printed}\n{e}"),
    };
    assert_eq!(tree, again, "round trip of {src:?} via\n{printed}");
    tree
}

/// The value of `x = <expr>;`.
fn expr(text: &str) -> Expr<'_> {
    let src: &'static str = Box::leak(format!("x = {text};").into_boxed_str());
    let script = parse(src);
    match script.commands.into_iter().next().map(|c| c.kind) {
        Some(CommandKind::Assignment(a)) => a.value,
        other => panic!("{text}: {other:?}"),
    }
}

fn number(text: &str) -> u64 {
    match expr(text).kind {
        ExprKind::Number { value, text: t } => {
            assert_eq!(t, text);
            value
        }
        other => panic!("{text} is not a number: {other:?}"),
    }
}

/// Fully parenthesised rendering, to make the tree shape visible.
fn shape(e: &Expr<'_>) -> String {
    match &e.kind {
        ExprKind::Number { text, .. } => (*text).to_owned(),
        ExprKind::Symbol(n) => n.text.to_owned(),
        ExprKind::Dot => ".".to_owned(),
        ExprKind::Unary(op, x) => format!("({}{})", op.as_str(), shape(x)),
        ExprKind::Binary(op, a, b) => format!("({} {} {})", shape(a), op.as_str(), shape(b)),
        ExprKind::Conditional(c, a, b) => format!("({} ? {} : {})", shape(c), shape(a), shape(b)),
        ExprKind::Call(f, args) => format!(
            "{}({})",
            f.as_str(),
            args.iter().map(shape).collect::<Vec<_>>().join(", ")
        ),
        other => format!("{other:?}"),
    }
}

fn sections<'a>(script: &Script<'a>) -> Vec<SectionsItem<'a>> {
    script
        .commands
        .iter()
        .find_map(|c| match &c.kind {
            CommandKind::Sections(items) => Some(items.clone()),
            _ => None,
        })
        .expect("a SECTIONS command")
}

fn output_section<'a>(items: &[SectionsItem<'a>], name: &str) -> OutputSection<'a> {
    items
        .iter()
        .find_map(|i| match i {
            SectionsItem::OutputSection(s) if s.name.text == name => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no output section {name}"))
}

fn input<'a>(statement: &SectionStatement<'a>) -> InputSectionDesc<'a> {
    match statement {
        SectionStatement::Input(d) => d.clone(),
        other => panic!("not an input description: {other:?}"),
    }
}

#[test]
fn number_forms() {
    let cases: &[(&str, u64)] = &[
        ("0", 0),
        ("42", 42),
        ("0x1F", 31),
        ("0X10", 16),
        ("010", 8),
        ("08", 0),
        ("0777", 511),
        ("4K", 4096),
        ("4k", 4096),
        ("2M", 2 << 20),
        ("2m", 2 << 20),
        ("0x10K", 16 << 10),
        ("010K", 8 << 10),
        ("$ff", 255),
        ("$10K", 16 << 10),
        ("10h", 16),
        ("ffH", 255),
        ("1fx", 31),
        ("17o", 15),
        ("17O", 15),
        ("101b", 5),
        ("101B", 5),
        ("99d", 99),
        ("12D", 12),
        ("1b", 1),
        ("0b", 0),
        ("1ad", 1),
        ("18446744073709551615", u64::MAX),
        ("99999999999999999999", u64::MAX),
        ("0xffffffffffffffff", u64::MAX),
        ("16777216M", 1 << 44),
    ];
    for (text, value) in cases {
        assert_eq!(number(text), *value, "{text}");
    }
}

#[test]
fn hex_digit_words_are_numbers_in_expressions() {
    // ld's radix rule ties with the name rule and wins: `bad` is "ba" read in base 10.
    assert_eq!(number("bad"), 0);
    assert_eq!(number("add"), 0);
    assert_eq!(number("ffh"), 255);
    assert!(matches!(expr("deadbeef").kind, ExprKind::Symbol(n) if n.text == "deadbeef"));
    assert!(matches!(expr("\"bad\"").kind, ExprKind::Symbol(n) if n.quoted && n.text == "bad"));
}

#[test]
fn numbers_at_command_level_have_no_radix_suffix() {
    let script = round_trip("SECTIONS { .t 0x1000 : { } .u $20 : { } .v 4K : { } }");
    let items = sections(&script);
    let addr = |name| match output_section(&items, name).address.map(|a| a.kind) {
        Some(ExprKind::Number { value, .. }) => value,
        other => panic!("{other:?}"),
    };
    assert_eq!((addr(".t"), addr(".u"), addr(".v")), (0x1000, 0x20, 4096));
    assert!(parse_script("SECTIONS { .t 10h : { } }").is_err());
    assert!(parse_script("SECTIONS { .t (10h) : { } }").is_ok());
}

#[test]
fn precedence_and_associativity() {
    let cases: &[(&str, &str)] = &[
        ("1 + 2 * 3", "(1 + (2 * 3))"),
        ("a - b - c", "((a - b) - c)"),
        ("a % b / c", "((a % b) / c)"),
        ("a << 1 + 2", "(a << (1 + 2))"),
        ("a < b == c > d", "((a < b) == (c > d))"),
        ("a & b == c", "(a & (b == c))"),
        ("a | b ^ c & d", "(a | (b ^ (c & d)))"),
        ("a || b && c | d", "(a || (b && (c | d)))"),
        ("-a * b", "((-a) * b)"),
        ("!a == b", "((!a) == b)"),
        ("~a + +b", "((~a) + b)"),
        ("- - a", "(-(-a))"),
        ("a ? b : c ? d : e", "(a ? b : (c ? d : e))"),
        ("a ? b ? c : d : e", "(a ? (b ? c : d) : e)"),
        ("a || b ? c : d", "((a || b) ? c : d)"),
        ("a ? b : c || d", "(a ? b : (c || d))"),
        ("(1 + 2) * 3", "((1 + 2) * 3)"),
        ("a >= b != c <= d", "((a >= b) != (c <= d))"),
        ("a >> 2 << 3", "((a >> 2) << 3)"),
        ("MAX(a, b + 1) - ALIGN(8)", "(MAX(a, (b + 1)) - ALIGN(8))"),
    ];
    for (text, expected) in cases {
        assert_eq!(shape(&expr(text)), *expected, "{text}");
        round_trip(Box::leak(format!("x = {text};").into_boxed_str()));
    }
}

#[test]
fn names_in_expressions_follow_ld() {
    assert_eq!(shape(&expr("a-b")), "(a - b)");
    assert!(matches!(expr("a/b").kind, ExprKind::Symbol(n) if n.text == "a/b"));
    assert!(matches!(expr(".").kind, ExprKind::Dot));
    assert!(matches!(expr("\".\"").kind, ExprKind::Dot));
    assert!(matches!(expr("\"a-b\"").kind, ExprKind::Symbol(n) if n.text == "a-b"));
    assert!(matches!(expr("SORT").kind, ExprKind::Symbol(n) if n.text == "SORT"));
}

#[test]
fn builtins() {
    let kinds: Vec<ExprKind<'_>> = [
        "ABSOLUTE(x)",
        "ADDR(.text)",
        "ALIGN(8)",
        "ALIGN(., 8)",
        "ALIGNOF(.data..percpu)",
        "BLOCK(4)",
        "DATA_SEGMENT_ALIGN(0x1000, 0x200)",
        "DATA_SEGMENT_END(.)",
        "DATA_SEGMENT_RELRO_END(0, 8)",
        "DEFINED(sym)",
        "LENGTH(ram)",
        "LOADADDR(.data)",
        "LOG2CEIL(9)",
        "MAX(1, 2)",
        "MIN(1, 2)",
        "NEXT(0x100)",
        "ORIGIN(ram)",
        "SEGMENT_START(\"text-segment\", 0x400000)",
        "SIZEOF(.bss)",
        "SIZEOF_HEADERS",
        "CONSTANT(MAXPAGESIZE)",
        "CONSTANT(COMMONPAGESIZE)",
        "ASSERT(x, \"too big\")",
    ]
    .iter()
    .map(|t| expr(t).kind)
    .collect();
    assert!(matches!(kinds[0], ExprKind::Call(Builtin::Absolute, ref a) if a.len() == 1));
    assert!(matches!(kinds[1], ExprKind::SectionQuery(SectionQuery::Addr, n) if n.text == ".text"));
    assert!(matches!(kinds[2], ExprKind::Call(Builtin::Align, ref a) if a.len() == 1));
    assert!(matches!(kinds[3], ExprKind::Call(Builtin::Align, ref a) if a.len() == 2));
    assert!(
        matches!(kinds[4], ExprKind::SectionQuery(SectionQuery::AlignOf, n) if n.text == ".data..percpu")
    );
    assert!(matches!(kinds[5], ExprKind::Call(Builtin::Block, _)));
    assert!(matches!(kinds[6], ExprKind::Call(Builtin::DataSegmentAlign, ref a) if a.len() == 2));
    assert!(matches!(
        kinds[7],
        ExprKind::Call(Builtin::DataSegmentEnd, _)
    ));
    assert!(matches!(
        kinds[8],
        ExprKind::Call(Builtin::DataSegmentRelroEnd, _)
    ));
    assert!(matches!(kinds[9], ExprKind::Defined(n) if n.text == "sym"));
    assert!(matches!(kinds[10], ExprKind::RegionQuery(RegionQuery::Length, n) if n.text == "ram"));
    assert!(matches!(
        kinds[11],
        ExprKind::SectionQuery(SectionQuery::LoadAddr, _)
    ));
    assert!(matches!(kinds[12], ExprKind::Call(Builtin::Log2Ceil, _)));
    assert!(matches!(kinds[13], ExprKind::Call(Builtin::Max, _)));
    assert!(matches!(kinds[14], ExprKind::Call(Builtin::Min, _)));
    assert!(matches!(kinds[15], ExprKind::Call(Builtin::Next, _)));
    assert!(matches!(
        kinds[16],
        ExprKind::RegionQuery(RegionQuery::Origin, _)
    ));
    assert!(
        matches!(kinds[17], ExprKind::SegmentStart(n, _) if n.text == "text-segment" && n.quoted)
    );
    assert!(matches!(
        kinds[18],
        ExprKind::SectionQuery(SectionQuery::Sizeof, _)
    ));
    assert!(matches!(kinds[19], ExprKind::SizeofHeaders));
    assert!(matches!(
        kinds[20],
        ExprKind::Constant(ConstantName::MaxPageSize)
    ));
    assert!(matches!(
        kinds[21],
        ExprKind::Constant(ConstantName::CommonPageSize)
    ));
    assert!(matches!(&kinds[22], ExprKind::Assert(a) if a.message.text == "too big"));
    // Section and region names are read in command mode, so `-` stays in the name.
    assert!(matches!(expr("SIZEOF(.a-b)").kind, ExprKind::SectionQuery(_, n) if n.text == ".a-b"));
}

#[test]
fn every_top_level_command() {
    let src = r#"
        OUTPUT_FORMAT("elf64-x86-64")
        OUTPUT_FORMAT("elf32-littlearm", "elf32-bigarm", "elf32-littlearm")
        OUTPUT_ARCH(i386:x86-64)
        ENTRY(_start)
        OUTPUT(vmlinux)
        INPUT(a.o "b c.o" -lgcc AS_NEEDED(-lm libz.so), =/lib/crt1.o)
        GROUP(libc.a, libgcc.a)
        SEARCH_DIR(/usr/lib)
        INCLUDE other.lds
        STARTUP(crt0.o)
        TARGET(elf64-x86-64)
        EXTERN(a b, c)
        FORCE_COMMON_ALLOCATION
        FORCE_GROUP_ALLOCATION
        INHIBIT_COMMON_ALLOCATION
        NOCROSSREFS(.text .data)
        NOCROSSREFS_TO(.text .data)
        REGION_ALIAS("alias", ram)
        MAP(out.map)
        LD_FEATURE("SANE_EXPR")
        ASSERT(1, "ok")
        a = 1; b += 2; c -= 3; d *= 4; e /= 5; f <<= 6; g >>= 7; h &= 8; i |= 9; j ^= 10,
        PROVIDE(k = 1); PROVIDE_HIDDEN(l2 = 2); HIDDEN(m = 3);
        INSERT AFTER .text
        INSERT BEFORE .data
        ;
    "#;
    let script = round_trip(src);
    let kinds: Vec<&CommandKind<'_>> = script.commands.iter().map(|c| &c.kind).collect();
    assert!(
        matches!(kinds[0], CommandKind::OutputFormat { default, big: None, .. } if default.text == "elf64-x86-64")
    );
    assert!(
        matches!(kinds[1], CommandKind::OutputFormat { big: Some(b), little: Some(_), .. } if b.text == "elf32-bigarm")
    );
    assert!(matches!(kinds[2], CommandKind::OutputArch(n) if n.text == "i386:x86-64"));
    assert!(matches!(kinds[3], CommandKind::Entry(n) if n.text == "_start"));
    assert!(matches!(kinds[4], CommandKind::Output(_)));
    let CommandKind::Input(files) = kinds[5] else {
        panic!("{:?}", kinds[5]);
    };
    assert_eq!(files.len(), 5);
    assert!(matches!(&files[1], InputFile::Path(n) if n.quoted && n.text == "b c.o"));
    assert!(matches!(&files[2], InputFile::Library(n) if n.text == "gcc"));
    assert!(matches!(&files[3], InputFile::AsNeeded(inner) if inner.len() == 2));
    assert!(matches!(&files[4], InputFile::Path(n) if n.text == "=/lib/crt1.o"));
    // In an input list `libc.a,` is one name: the comma is a name character there.
    assert!(
        matches!(kinds[6], CommandKind::Group(f) if matches!(&f[0], InputFile::Path(n) if n.text == "libc.a,"))
    );
    assert!(matches!(kinds[7], CommandKind::SearchDir(n) if n.text == "/usr/lib"));
    assert!(matches!(kinds[8], CommandKind::Include(n) if n.text == "other.lds"));
    assert!(matches!(kinds[9], CommandKind::Startup(_)));
    assert!(matches!(kinds[10], CommandKind::Target(_)));
    assert!(matches!(kinds[11], CommandKind::Extern(n) if n.len() == 3));
    assert!(matches!(kinds[12], CommandKind::ForceCommonAllocation));
    assert!(matches!(kinds[13], CommandKind::ForceGroupAllocation));
    assert!(matches!(kinds[14], CommandKind::InhibitCommonAllocation));
    assert!(matches!(kinds[15], CommandKind::NoCrossRefs(n) if n.len() == 2));
    assert!(matches!(kinds[16], CommandKind::NoCrossRefsTo(n) if n.len() == 2));
    assert!(
        matches!(kinds[17], CommandKind::RegionAlias { alias, region } if alias.text == "alias" && region.text == "ram")
    );
    assert!(matches!(kinds[18], CommandKind::Map(_)));
    assert!(matches!(kinds[19], CommandKind::LdFeature(n) if n.text == "SANE_EXPR"));
    assert!(matches!(kinds[20], CommandKind::Assert(_)));
    let ops: Vec<AssignOp> = kinds[21..31]
        .iter()
        .map(|k| match k {
            CommandKind::Assignment(a) => a.op,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        ops,
        [
            AssignOp::Set,
            AssignOp::Add,
            AssignOp::Sub,
            AssignOp::Mul,
            AssignOp::Div,
            AssignOp::Shl,
            AssignOp::Shr,
            AssignOp::And,
            AssignOp::Or,
            AssignOp::Xor
        ]
    );
    let visibility: Vec<AssignVisibility> = kinds[31..34]
        .iter()
        .map(|k| match k {
            CommandKind::Assignment(a) => a.visibility,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        visibility,
        [
            AssignVisibility::Provide,
            AssignVisibility::ProvideHidden,
            AssignVisibility::Hidden
        ]
    );
    assert!(
        matches!(kinds[34], CommandKind::Insert { position: InsertPosition::After, section } if section.text == ".text")
    );
    assert!(matches!(
        kinds[35],
        CommandKind::Insert {
            position: InsertPosition::Before,
            ..
        }
    ));
    assert_eq!(kinds.len(), 36);
}

#[test]
fn command_level_names_keep_ld_characters() {
    // In command mode a name holds `,`: ld then sees one format, not three.
    let script = parse("OUTPUT_FORMAT(elf32-a,elf32-b,elf32-c)");
    assert!(
        matches!(&script.commands[0].kind, CommandKind::OutputFormat { default, big: None, .. } if default.text == "elf32-a,elf32-b,elf32-c")
    );
    // `x=1` is one name at command level.
    assert!(parse_script("x=1;").is_err());
    // `o`, `org`, `l`, `len` are keywords there.
    assert!(parse_script("ENTRY(o)").is_err());
}

#[test]
fn output_section_attributes() {
    let src = "SECTIONS {
        .a 0x1000 (NOLOAD) : AT(0x2000) ALIGN(16) ALIGN_WITH_INPUT SUBALIGN(4) ONLY_IF_RO { *(.a) } > ram AT> rom :text :note = 0x90
        .b (DSECT) : { } .c (COPY) : { } .d (INFO) : { } .e (OVERLAY) : { } .f (READONLY) : { }
        .g (TYPE = 1) : { } .h (READONLY (TYPE = 7)) : { } .i () : { } .j : ONLY_IF_RW { }
        .k : SPECIAL { }
        .l (ADDR(.a) + 4) : { }
        /DISCARD/ : { *(.discard) }
        __ksymtab_gpl : { } .data..percpu : { }
    }";
    let script = round_trip(src);
    let items = sections(&script);
    let a = output_section(&items, ".a");
    assert!(matches!(
        a.address.as_ref().map(|e| &e.kind),
        Some(ExprKind::Number { value: 0x1000, .. })
    ));
    assert_eq!(a.kind, Some(OutputSectionType::NoLoad));
    assert!(a.lma.is_some() && a.align.is_some() && a.align_with_input && a.subalign.is_some());
    assert_eq!(a.constraint, Some(Constraint::OnlyIfRo));
    assert_eq!(a.region.map(|r| r.text), Some("ram"));
    assert_eq!(a.lma_region.map(|r| r.text), Some("rom"));
    assert_eq!(
        a.phdrs.iter().map(|p| p.text).collect::<Vec<_>>(),
        ["text", "note"]
    );
    assert!(a.fill.is_some());
    assert_eq!(
        output_section(&items, ".b").kind,
        Some(OutputSectionType::DSect)
    );
    assert_eq!(
        output_section(&items, ".c").kind,
        Some(OutputSectionType::Copy)
    );
    assert_eq!(
        output_section(&items, ".d").kind,
        Some(OutputSectionType::Info)
    );
    assert_eq!(
        output_section(&items, ".e").kind,
        Some(OutputSectionType::Overlay)
    );
    assert_eq!(
        output_section(&items, ".f").kind,
        Some(OutputSectionType::ReadOnly)
    );
    assert!(matches!(
        output_section(&items, ".g").kind,
        Some(OutputSectionType::Type {
            read_only: false,
            ..
        })
    ));
    assert!(matches!(
        output_section(&items, ".h").kind,
        Some(OutputSectionType::Type {
            read_only: true,
            ..
        })
    ));
    assert_eq!(output_section(&items, ".i").kind, None);
    assert_eq!(
        output_section(&items, ".j").constraint,
        Some(Constraint::OnlyIfRw)
    );
    // A constraint before the colon is an expression position, where it cannot appear.
    assert!(parse_script("SECTIONS { .j ONLY_IF_RW : { } }").is_err());
    assert_eq!(
        output_section(&items, ".k").constraint,
        Some(Constraint::Special)
    );
    assert!(output_section(&items, ".l").address.is_some());
    assert!(output_section(&items, "/DISCARD/").is_discard());
    output_section(&items, "__ksymtab_gpl");
    output_section(&items, ".data..percpu");
}

#[test]
fn every_section_statement() {
    let src = r#"SECTIONS {
        .a : {
            . = ALIGN(8);
            sym = .;
            PROVIDE(p = .);
            PROVIDE_HIDDEN(ph = .);
            HIDDEN(h = .);
            *(.text .text.*)
            KEEP(*(.init))
            crt0.o
            archive.a:member.o(.data)
            *crtbegin?.o(.ctors)
            BYTE(1) SHORT(2) LONG(3) QUAD(4) SQUAD(5)
            FILL(0x90)
            CREATE_OBJECT_SYMBOLS
            CONSTRUCTORS
            SORT(CONSTRUCTORS)
            ASSERT(. > 0, "empty");
            INCLUDE part.lds
            *(COMMON)
            ;
        }
    }"#;
    let script = round_trip(src);
    let body = output_section(&sections(&script), ".a").body;
    assert!(matches!(&body[0], SectionStatement::Assignment(a) if a.target == AssignTarget::Dot));
    assert!(
        matches!(&body[1], SectionStatement::Assignment(a) if matches!(a.target, AssignTarget::Symbol(n) if n.text == "sym"))
    );
    assert!(
        matches!(&body[2], SectionStatement::Assignment(a) if a.visibility == AssignVisibility::Provide)
    );
    assert!(
        matches!(&body[3], SectionStatement::Assignment(a) if a.visibility == AssignVisibility::ProvideHidden)
    );
    assert!(
        matches!(&body[4], SectionStatement::Assignment(a) if a.visibility == AssignVisibility::Hidden)
    );
    let text = input(&body[5]);
    assert_eq!(text.file.pattern.text, "*");
    assert_eq!(
        text.sections
            .iter()
            .map(|s| s.pattern.text)
            .collect::<Vec<_>>(),
        [".text", ".text.*"]
    );
    assert!(input(&body[6]).keep);
    let bare = input(&body[7]);
    assert_eq!((bare.file.pattern.text, bare.sections.len()), ("crt0.o", 0));
    assert_eq!(input(&body[8]).file.pattern.text, "archive.a:member.o");
    assert!(input(&body[9]).file.pattern.has_wildcard());
    let sizes: Vec<DataSize> = body[10..15]
        .iter()
        .map(|s| match s {
            SectionStatement::Data { size, .. } => *size,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        sizes,
        [
            DataSize::Byte,
            DataSize::Short,
            DataSize::Long,
            DataSize::Quad,
            DataSize::Squad
        ]
    );
    assert!(matches!(body[15], SectionStatement::Fill { .. }));
    assert!(matches!(body[16], SectionStatement::CreateObjectSymbols(_)));
    assert!(matches!(
        body[17],
        SectionStatement::Constructors { sorted: false, .. }
    ));
    assert!(matches!(
        body[18],
        SectionStatement::Constructors { sorted: true, .. }
    ));
    assert!(matches!(&body[19], SectionStatement::Assert(a) if a.message.text == "empty"));
    assert!(matches!(&body[20], SectionStatement::Include { file, .. } if file.text == "part.lds"));
    assert_eq!(input(&body[21]).sections[0].pattern.text, "COMMON");
    assert_eq!(body.len(), 22);
}

#[test]
fn section_body_lexing_quirks() {
    // Inside braces `.=ALIGN(8)` is an input description, exactly as ld 2.40 reads it.
    let script = round_trip("SECTIONS { .a : { .=ALIGN(8); } }");
    let body = output_section(&sections(&script), ".a").body;
    let d = input(&body[0]);
    assert_eq!(
        (d.file.pattern.text, d.sections[0].pattern.text),
        (".=ALIGN", "8")
    );
    // A comma is part of the pattern before it.
    let script = round_trip("SECTIONS { .a : { *(.x, .y) } }");
    let d = input(&output_section(&sections(&script), ".a").body[0]);
    assert_eq!(
        d.sections
            .iter()
            .map(|s| s.pattern.text)
            .collect::<Vec<_>>(),
        [".x,", ".y"]
    );
    // `+=4` glued is a name; with a space it is an assignment.
    assert!(
        matches!(&output_section(&sections(&parse("SECTIONS { .a : { . += 4; } }")), ".a").body[0], SectionStatement::Assignment(a) if a.op == AssignOp::Add)
    );
}

#[test]
fn exclude_file_in_both_positions() {
    let script = round_trip(
        "SECTIONS { .a : { EXCLUDE_FILE(*crtend.o *otherfile.o) *(.ctors) *(EXCLUDE_FILE(*crtend.o) .dtors .x) } }",
    );
    let body = output_section(&sections(&script), ".a").body;
    let outer = input(&body[0]);
    assert_eq!(
        outer
            .file
            .exclude
            .iter()
            .map(|p| p.text)
            .collect::<Vec<_>>(),
        ["*crtend.o", "*otherfile.o"]
    );
    assert!(outer.sections[0].exclude.is_empty());
    let inner = input(&body[1]);
    assert!(inner.file.exclude.is_empty());
    assert_eq!(
        inner.sections[0]
            .exclude
            .iter()
            .map(|p| p.text)
            .collect::<Vec<_>>(),
        ["*crtend.o"]
    );
    assert_eq!(inner.sections[0].pattern.text, ".dtors");
    assert!(inner.sections[1].exclude.is_empty());
}

#[test]
fn sorts_and_nesting() {
    let src = "SECTIONS { .a : {
        *(SORT(.a*)) *(SORT_BY_NAME(.b*)) *(SORT_BY_ALIGNMENT(.c*)) *(SORT_BY_INIT_PRIORITY(.d*))
        *(SORT_NONE(.e*)) *(SORT_BY_NAME(SORT_BY_ALIGNMENT(.f*))) *(SORT_BY_ALIGNMENT(SORT_BY_NAME(.g*)))
        *(SORT_BY_NAME(SORT_BY_NAME(.h*))) *(SORT_BY_ALIGNMENT(SORT_BY_ALIGNMENT(.i*)))
        *(REVERSE(.j*)) *(SORT_BY_NAME(REVERSE(.k*)))
        SORT(*)(.l) SORT_NONE(*.o)(.m) KEEP(*(SORT_BY_NAME(EXCLUDE_FILE(x.o) .n*)))
    } }";
    let script = round_trip(src);
    let body = output_section(&sections(&script), ".a").body;
    let sorts: Vec<Vec<SortKey>> = body[..11]
        .iter()
        .map(|s| input(s).sections[0].sort.clone())
        .collect();
    use SortKey::*;
    assert_eq!(
        sorts,
        vec![
            vec![Name],
            vec![Name],
            vec![Alignment],
            vec![InitPriority],
            vec![None],
            vec![Name, Alignment],
            vec![Alignment, Name],
            vec![Name, Name],
            vec![Alignment, Alignment],
            vec![Reverse],
            vec![Name, Reverse],
        ]
    );
    assert_eq!(input(&body[11]).file.sort, vec![Name]);
    assert_eq!(input(&body[12]).file.sort, vec![None]);
    let last = input(&body[13]);
    assert!(
        last.keep && last.sections[0].exclude.len() == 1 && last.sections[0].sort == vec![Name]
    );
    for bad in [
        "SORT_NONE(SORT_BY_NAME(.x))",
        "SORT_BY_INIT_PRIORITY(SORT_BY_NAME(.x))",
        "SORT_BY_NAME(SORT_BY_ALIGNMENT(SORT_BY_NAME(.x)))",
    ] {
        let src = format!("SECTIONS {{ .a : {{ *({bad}) }} }}");
        assert!(parse_script(&src).is_err(), "{bad} should be rejected");
    }
}

#[test]
fn input_section_flags() {
    let script = round_trip(
        "SECTIONS { .a : { INPUT_SECTION_FLAGS(SHF_ALLOC & !SHF_WRITE) *(.x) KEEP(INPUT_SECTION_FLAGS(SHF_EXECINSTR) *(.y)) INPUT_SECTION_FLAGS(\"!SHF_TLS\") z.o } }",
    );
    let body = output_section(&sections(&script), ".a").body;
    let a = input(&body[0]);
    assert_eq!(
        a.flags
            .iter()
            .map(|f| (f.negated, f.flag.text))
            .collect::<Vec<_>>(),
        [(false, "SHF_ALLOC"), (true, "SHF_WRITE")]
    );
    let b = input(&body[1]);
    assert!(b.keep && b.flags.len() == 1);
    let c = input(&body[2]);
    assert!(c.flags[0].negated && c.flags[0].flag.quoted && c.sections.is_empty());
}

#[test]
fn overlay() {
    let src = "SECTIONS {
        OVERLAY 0x1000 : NOCROSSREFS AT(0x4000) SUBALIGN(4) {
            .ov1 { *(.ov1) } :p1 = 0x1,
            .ov2 { *(.ov2) }
        } > ram AT> rom :p2 = 0x90
        OVERLAY : { .ov3 { } }
    }";
    let script = round_trip(src);
    let items = sections(&script);
    let overlays: Vec<&Overlay<'_>> = items
        .iter()
        .filter_map(|i| match i {
            SectionsItem::Overlay(o) => Some(o),
            _ => None,
        })
        .collect();
    let o = overlays[0];
    assert!(o.address.is_some() && o.no_cross_refs && o.lma.is_some() && o.subalign.is_some());
    assert_eq!(
        o.sections.iter().map(|s| s.name.text).collect::<Vec<_>>(),
        [".ov1", ".ov2"]
    );
    assert_eq!(o.sections[0].phdrs[0].text, "p1");
    assert!(o.sections[0].fill.is_some() && o.sections[1].fill.is_none());
    assert_eq!(
        (o.region.map(|r| r.text), o.lma_region.map(|r| r.text)),
        (Some("ram"), Some("rom"))
    );
    assert_eq!(o.phdrs[0].text, "p2");
    assert!(o.fill.is_some());
    let bare = overlays[1];
    assert!(bare.address.is_none() && !bare.no_cross_refs && bare.sections.len() == 1);
}

#[test]
fn memory() {
    let src = "MEMORY {
        rom (rx) : ORIGIN = 0, LENGTH = 256K
        ram (!rx) : org = 0x20000000, l = 64K,
        \"flash bank\" : o = ORIGIN(rom) + LENGTH(rom), len = 1M
        tiny : ORIGIN = 0 LENGTH = 4
    }";
    let script = round_trip(src);
    let CommandKind::Memory(regions) = &script.commands[0].kind else {
        panic!("not MEMORY");
    };
    assert_eq!(regions.len(), 4);
    assert_eq!(regions[0].attributes, Some("rx"));
    assert_eq!(regions[1].attributes, Some("!rx"));
    assert!(regions[2].name.quoted && regions[2].attributes.is_none());
    assert!(matches!(
        regions[0].length.kind,
        ExprKind::Number { value: 262_144, .. }
    ));
    assert!(matches!(
        regions[3].length.kind,
        ExprKind::Number { value: 4, .. }
    ));
    assert!(parse_script("MEMORY { r : ORIGIN = 0 len = 4 }").is_err());
}

#[test]
fn phdrs() {
    let src = "PHDRS {
        headers PT_PHDR PHDRS;
        text PT_LOAD FILEHDR PHDRS AT(0x1000) FLAGS(5);
        data PT_LOAD FLAGS(6) FLAGS(7);
        custom 0x6474e551;
        note PT_NOTE;
    }";
    let script = round_trip(src);
    let CommandKind::Phdrs(phdrs) = &script.commands[0].kind else {
        panic!("not PHDRS");
    };
    assert!(phdrs[0].program_headers && !phdrs[0].file_header);
    assert!(phdrs[1].file_header && phdrs[1].program_headers && phdrs[1].at.is_some());
    assert!(matches!(&phdrs[1].kind, PhdrType::Named(n) if n.text == "PT_LOAD"));
    // The first FLAGS written wins, as in ld.
    assert!(matches!(
        phdrs[2].flags.as_ref().map(|f| &f.kind),
        Some(ExprKind::Number { value: 6, .. })
    ));
    assert!(matches!(&phdrs[3].kind, PhdrType::Value(_)));
    assert_eq!(phdrs.len(), 5);
}

#[test]
fn fill_then_next_section_is_reread_in_command_mode() {
    let script = round_trip("SECTIONS { .a : { } =0x90 /DISCARD/ : { } .b : { } = 1 .c-d : { } }");
    let items = sections(&script);
    assert!(output_section(&items, ".a").fill.is_some());
    output_section(&items, "/DISCARD/");
    output_section(&items, ".c-d");
    // A section named `/x` after a fill needs a comma; the printer adds it.
    round_trip("SECTIONS { .a : { } = 0x90, /x : { } }");
}

#[test]
fn line_markers_are_recorded() {
    let src = "# 1 \"arch/x86/kernel/vmlinux.lds.S\"\n# 1 \"<built-in>\"\nSECTIONS {\n# 12 \"include/asm-generic/vmlinux.lds.h\" 1\n .text : { *(.text) }\n}\n";
    let script = parse(src);
    assert_eq!(
        script
            .line_markers
            .iter()
            .map(|m| (m.line, m.file))
            .collect::<Vec<_>>(),
        [
            (1, "arch/x86/kernel/vmlinux.lds.S"),
            (1, "<built-in>"),
            (12, "include/asm-generic/vmlinux.lds.h")
        ]
    );
    assert_eq!(&src[script.line_markers[2].offset..][..6], " .text");
}

#[test]
fn spans_cover_their_text() {
    let src = "SECTIONS {\n  .text : { *(.text) }\n}\nfoo = bar + 1;\n";
    let script = parse(src);
    let section = output_section(&sections(&script), ".text");
    assert_eq!(
        &src[section.span.start()..section.span.end()],
        ".text : { *(.text) }"
    );
    assert_eq!(
        &src[section.name.span.start()..section.name.span.end()],
        ".text"
    );
    let CommandKind::Assignment(a) = &script.commands[1].kind else {
        panic!("not an assignment");
    };
    assert_eq!(&src[a.span.start()..a.span.end()], "foo = bar + 1");
    assert_eq!(&src[a.value.span.start()..a.value.span.end()], "bar + 1");
}

#[test]
fn comments_anywhere() {
    let src = "/* c */ SECTIONS /* c */ { /* c */ .a /* c */ : /* c */ { /* c */ *(.a) /* c */ } # trailing\n x = 1 /* c */ + 2; }";
    let script = round_trip(src);
    assert_eq!(sections(&script).len(), 2);
}
