//! Malformed scripts: each gets exactly the expected message, and the rendered reports (file,
//! line and column, label, help) are kept as a reviewed snapshot.

use std::fmt::Write as _;

use ldcheck::script::parse_script;
use miette::{GraphicalReportHandler, GraphicalTheme};

/// (name, script, exact message)
const CASES: &[(&str, &str, &str)] = &[
    (
        "unterminated comment",
        "SECTIONS {\n  /* never closed\n}\n",
        "unterminated comment",
    ),
    (
        "unterminated string",
        "OUTPUT_FORMAT(\"elf64-x86-64)\n",
        "unterminated string",
    ),
    (
        "missing semicolon",
        "x = 1\ny = 2;\n",
        "expected `;` after assignment",
    ),
    (
        "unknown section type",
        "SECTIONS {\n  .data (FOO) : { *(.data) }\n}\n",
        "unknown output section type `FOO`",
    ),
    (
        "invalid character in script",
        "SECTIONS { }\n@\n",
        "invalid character `@` in script",
    ),
    (
        "invalid character in expression",
        "x = 1 @ 2;\n",
        "invalid character `@` in expression",
    ),
    (
        "NUL byte",
        "x = 1;\n\0\n",
        "invalid character `\\u{0}` in script",
    ),
    (
        "unclosed SECTIONS",
        "SECTIONS {\n  .text : { *(.text) }\n",
        "expected `}` to close SECTIONS",
    ),
    (
        "unclosed section body",
        "SECTIONS {\n  .text : {\n    *(.text)\n",
        "expected `}` to close the output section",
    ),
    ("missing expression", "x = ;\n", "expected an expression"),
    (
        "unclosed parenthesis",
        "x = (1 + 2;\n",
        "expected `)` to close `(`",
    ),
    (
        "unknown constant",
        "x = CONSTANT(PAGESIZE);\n",
        "unknown constant `PAGESIZE`",
    ),
    (
        "unknown phdr type",
        "PHDRS {\n  text PT_LAOD;\n}\n",
        "unknown phdr type `PT_LAOD`",
    ),
    (
        "unknown phdr qualifier",
        "PHDRS {\n  text PT_LOAD FLAG(5);\n}\n",
        "PHDRS syntax error at `FLAG`",
    ),
    (
        "FILEHDR with a value",
        "PHDRS {\n  text PT_LOAD FILEHDR(1);\n}\n",
        "`FILEHDR` takes no value",
    ),
    (
        "OUTPUT_FORMAT with two names",
        "OUTPUT_FORMAT(\"a\", \"b\")\n",
        "expected `,` between OUTPUT_FORMAT names",
    ),
    (
        "invalid sort nesting",
        "SECTIONS {\n  .t : { *(SORT_NONE(SORT_BY_NAME(.t.*))) }\n}\n",
        "invalid sort nesting `SORT_NONE(SORT_BY_NAME(…`",
    ),
    (
        "file sort by alignment",
        "SECTIONS {\n  .t : { SORT_BY_ALIGNMENT(*)(.t) }\n}\n",
        "`SORT_BY_ALIGNMENT` cannot sort input files",
    ),
    (
        "MEMORY without ORIGIN",
        "MEMORY {\n  ram : START = 0, LENGTH = 1K\n}\n",
        "expected `ORIGIN` (or `org`, `o`)",
    ),
    (
        "len without a comma",
        "MEMORY {\n  ram : ORIGIN = 0 len = 1K\n}\n",
        "expected `LENGTH` (or `len`, `l`)",
    ),
    (
        "VERSION",
        "VERSION { V1 { global: *; }; }\n",
        "ldcheck does not support `VERSION` commands",
    ),
    (
        "INSERT position",
        "INSERT INTO .text\n",
        "expected `AFTER` or `BEFORE` after `INSERT`",
    ),
    (
        "stray closing brace",
        "}\n",
        "expected a command or an assignment",
    ),
    (
        "ASSERT without separator in a section",
        "SECTIONS {\n  .t : { ASSERT(1, \"x\") *(.t) }\n}\n",
        "expected `;` after ASSERT inside an output section",
    ),
    (
        "semicolon after ASSERT in SECTIONS",
        "SECTIONS {\n  ASSERT(1, \"x\");\n}\n",
        "expected an output section, an assignment or `}`",
    ),
    (
        "empty INPUT",
        "INPUT()\n",
        "expected a file name, `-lNAME` or `AS_NEEDED`",
    ),
    (
        "PROVIDE with a compound operator",
        "PROVIDE(x += 1);\n",
        "expected `=` after the symbol in `PROVIDE(`",
    ),
    (
        "operator glued to a name",
        "x=1;\n",
        "expected an assignment operator such as `=`",
    ),
    (
        "output section without colon",
        "SECTIONS {\n  .text { *(.text) }\n}\n",
        "expected `:` after output section `.text`",
    ),
    (
        "AT( after the braces",
        "SECTIONS {\n  .t : { *(.t) } AT(0)\n}\n",
        "expected `>` after `AT` (an output section's load region is `AT> region`)",
    ),
    (
        "EXCLUDE_FILE without a pattern",
        "SECTIONS {\n  .t : { EXCLUDE_FILE(a.o) }\n}\n",
        "expected the pattern that EXCLUDE_FILE applies to",
    ),
    ("unknown command", "FOO(bar)\n", "unknown command `FOO`"),
    (
        "MAX with one argument",
        "x = MAX(1);\n",
        "expected `,` between the arguments of `MAX`",
    ),
    (
        "section radix number lexed in command mode",
        "SECTIONS {\n  .t 10h : { }\n}\n",
        "expected `:` after output section `.t`",
    ),
    ("expression too deep", "", "nesting deeper than 128 levels"),
];

fn script_for(name: &str, script: &str) -> String {
    if name == "expression too deep" {
        format!("x = {}1{};\n", "(".repeat(300), ")".repeat(300))
    } else {
        script.to_owned()
    }
}

#[test]
fn malformed_scripts_get_exact_messages() {
    assert!(CASES.len() >= 25);
    for (name, script, expected) in CASES {
        let text = script_for(name, script);
        match parse_script(&text) {
            Ok(_) => panic!("{name}: parsed, expected error {expected:?}"),
            Err(e) => assert_eq!(e.message, *expected, "{name}"),
        }
    }
}

#[test]
fn errors_locate_the_offending_text() {
    let e = parse_script("x = 1;\ny = 2\nz = 3;\n").expect_err("missing `;`");
    assert_eq!((e.line, e.column), (3, 1));
    assert_eq!(e.span().start(), "x = 1;\ny = 2\n".len());
    let e = parse_script("SECTIONS {\n  .data (FOO) : { }\n}\n").expect_err("bad type");
    assert_eq!((e.line, e.column), (2, 10));
    assert_eq!(e.span().len(), 3);
    assert_eq!(e.file_name(), "<script>");
    assert_eq!(e.with_file_name("vmlinux.lds").file_name(), "vmlinux.lds");
}

#[test]
fn rendered_reports() {
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(80)
        .with_links(false);
    let mut all = String::new();
    // The NUL byte case stays out: a raw NUL in the snapshot file would make it binary.
    for (name, script, _) in CASES.iter().filter(|c| c.0 != "NUL byte") {
        let text = script_for(name, script);
        let Err(e) = parse_script(&text) else {
            panic!("{name}: parsed");
        };
        let e = e.with_file_name(format!("{}.lds", name.replace(' ', "-")));
        let mut report = String::new();
        handler
            .render_report(&mut report, &e)
            .expect("rendering into a String");
        let _ = writeln!(all, "=== {name}\n{report}");
    }
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots/errors"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("reports", all));
}
