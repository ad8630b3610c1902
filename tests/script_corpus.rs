//! Every kernel linker script of the corpus parses, round-trips through the printer, and
//! matches its reviewed summary snapshot (output sections with attributes and the symbols
//! each assigns).

use std::fmt::Write as _;

use ldcheck::script::ast::*;
use ldcheck::script::print::print_section_header;
use ldcheck::script::{parse_script, print_expr, print_script};

mod common;

use common::corpus_scripts;

#[test]
fn corpus_has_the_expected_scripts() {
    let Some(scripts) = corpus_scripts("") else {
        return;
    };
    assert!(
        scripts.len() >= 19,
        "expected the 16 lds/ scripts and 3 build scripts, found {}",
        scripts.len()
    );
}

#[test]
fn every_corpus_script_parses_and_round_trips() {
    let Some(scripts) = corpus_scripts("") else {
        return;
    };
    for (path, _, _) in &scripts {
        let text = std::fs::read_to_string(path).expect("readable corpus script");
        let tree = match parse_script(&text) {
            Ok(tree) => tree,
            Err(e) => panic!("{}: {:?}", path.display(), miette::Report::new(e)),
        };
        assert!(
            tree.commands
                .iter()
                .any(|c| matches!(c.kind, CommandKind::Sections(_))),
            "{}: no SECTIONS",
            path.display()
        );
        let printed = print_script(&tree);
        let reparsed = match parse_script(&printed) {
            Ok(t) => t,
            Err(e) => panic!(
                "{}: printed form does not parse: {:?}",
                path.display(),
                miette::Report::new(e)
            ),
        };
        assert_eq!(
            tree,
            reparsed,
            "{}: round trip changed the tree",
            path.display()
        );
        assert_eq!(
            printed,
            print_script(&reparsed),
            "{}: printing is not idempotent",
            path.display()
        );
    }
}

#[test]
fn corpus_summaries_match_snapshots() {
    let Some(scripts) = corpus_scripts("") else {
        return;
    };
    for (path, dir, name) in &scripts {
        let text = std::fs::read_to_string(path).expect("readable corpus script");
        let tree = parse_script(&text).expect("corpus script parses");
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(dir);
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        let corpus = common::corpus().unwrap_or_default();
        let rel = path.strip_prefix(&corpus).unwrap_or(path);
        settings.set_description(format!("summary of corpus/{}", rel.display()));
        settings.bind(|| insta::assert_snapshot!(name.as_str(), summary(&tree)));
    }
}

/// Output sections in order with their attributes and the symbols each assigns; symbols
/// assigned between sections are listed on `=` lines where they occur.
fn summary(script: &Script<'_>) -> String {
    let mut out = String::new();
    for command in &script.commands {
        match &command.kind {
            CommandKind::Sections(items) => {
                let sections = items
                    .iter()
                    .filter(|i| matches!(i, SectionsItem::OutputSection(_)))
                    .count();
                let _ = writeln!(out, "SECTIONS: {sections} output sections");
                let mut between = Vec::new();
                for item in items {
                    match item {
                        SectionsItem::OutputSection(s) => {
                            flush(&mut out, &mut between);
                            let _ = writeln!(out, "{}", print_section_header(s));
                            symbols(&mut out, "    ", &s.body);
                        }
                        SectionsItem::Overlay(o) => {
                            flush(&mut out, &mut between);
                            let _ = writeln!(out, "{}", overlay_header(o));
                            for s in &o.sections {
                                let _ = writeln!(out, "  {}", s.name.text);
                                symbols(&mut out, "    ", &s.body);
                            }
                        }
                        SectionsItem::Assignment(a) => {
                            if let Some(n) = assigned(a) {
                                between.push(n);
                            }
                        }
                        _ => {}
                    }
                }
                flush(&mut out, &mut between);
            }
            _ => {
                let single = Script {
                    commands: vec![command.clone()],
                    line_markers: Vec::new(),
                };
                out.push_str(&print_script(&single));
            }
        }
    }
    out
}

fn overlay_header(o: &Overlay<'_>) -> String {
    let mut line = String::from("OVERLAY ");
    if let Some(a) = &o.address {
        line.push_str(&print_expr(a));
        line.push(' ');
    }
    line.push(':');
    if o.no_cross_refs {
        line.push_str(" NOCROSSREFS");
    }
    for (keyword, value) in [("AT", &o.lma), ("SUBALIGN", &o.subalign)] {
        if let Some(v) = value {
            let _ = write!(line, " {keyword}({})", print_expr(v));
        }
    }
    for (prefix, region) in [(" > ", &o.region), (" AT> ", &o.lma_region)] {
        if let Some(r) = region {
            line.push_str(prefix);
            line.push_str(r.text);
        }
    }
    for p in &o.phdrs {
        let _ = write!(line, " :{}", p.text);
    }
    if let Some(f) = &o.fill {
        let _ = write!(line, " = {}", print_expr(f));
    }
    line
}

fn assigned(a: &Assignment<'_>) -> Option<String> {
    let AssignTarget::Symbol(n) = &a.target else {
        return None;
    };
    Some(match a.visibility {
        AssignVisibility::Plain => n.text.to_owned(),
        AssignVisibility::Provide => format!("PROVIDE({})", n.text),
        AssignVisibility::ProvideHidden => format!("PROVIDE_HIDDEN({})", n.text),
        AssignVisibility::Hidden => format!("HIDDEN({})", n.text),
    })
}

fn symbols(out: &mut String, indent: &str, body: &[SectionStatement<'_>]) {
    let names: Vec<String> = body
        .iter()
        .filter_map(|s| match s {
            SectionStatement::Assignment(a) => assigned(a),
            _ => None,
        })
        .collect();
    wrap(out, indent, &names);
}

fn flush(out: &mut String, between: &mut Vec<String>) {
    if !between.is_empty() {
        out.push_str("= ");
        let names = std::mem::take(between);
        let mut line = String::new();
        wrap(&mut line, "  ", &names);
        out.push_str(line.trim_start());
    }
}

fn wrap(out: &mut String, indent: &str, names: &[String]) {
    let mut line = String::new();
    for n in names {
        if !line.is_empty() && line.len() + n.len() + 1 > 96 {
            let _ = writeln!(out, "{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(n);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
}
