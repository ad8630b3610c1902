//! Every real kernel link in the corpus, re-run with the real linker and compared with the
//! simulation: all allocated sections and the full `nm -n` output must match.

mod common;

use std::path::Path;

use ldcheck::simulate::LinkSession;
use ldcheck::verify::compare;

/// The `ld` command lines of a build's link-commands.sh (program first).
fn link_lines(build: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(build.join("link-commands.sh")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty() && !l.starts_with("set "))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn verify_build(build: &Path) {
    let lines = link_lines(build);
    let Some(linker) = lines.first().and_then(|l| l.first()).cloned() else {
        println!("notice: {} has no link commands, skipping", build.display());
        return;
    };
    if !common::have_tool(&linker) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    common::copy_tree(&build.join("objtree"), root);
    for line in &lines {
        let args: Vec<&str> = line[1..].iter().map(String::as_str).collect();
        common::run(root, &line[0], &args);
        let output = line
            .iter()
            .position(|a| a == "-o")
            .and_then(|i| line.get(i + 1))
            .expect("link line names its output");
        let session = LinkSession::open(&line[1..], root)
            .unwrap_or_else(|e| panic!("{}: {e:?}", build.display()));
        let layout = session
            .layout()
            .unwrap_or_else(|e| panic!("{}: {e:?}", build.display()));
        let data = std::fs::read(root.join(output)).expect("read linked file");
        let diffs = compare(&layout, &data).expect("compare");
        let shown: Vec<String> = diffs.iter().take(30).map(|d| d.to_string()).collect();
        assert!(
            diffs.is_empty(),
            "{} {output}: {} differences:\n{}",
            build.display(),
            diffs.len(),
            shown.join("\n")
        );
        println!(
            "{} {output}: {} symbols match",
            build.display(),
            layout.symbols.len()
        );
    }
}

#[test]
fn corpus_links_match_real_ld() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut builds: Vec<_> = std::fs::read_dir(corpus.join("builds/6.12"))
        .expect("builds dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("objtree").is_dir() && p.join("link-commands.sh").is_file())
        .collect();
    builds.sort();
    assert!(!builds.is_empty(), "the corpus has builds with link inputs");
    for build in builds {
        verify_build(&build);
    }
}
