//! Every real kernel link in the corpus, re-run with the real linker and compared with the
//! simulation: all allocated sections and the full `nm -n` output must match.

mod common;

use ldcheck::simulate::LinkSession;
use ldcheck::verify::compare;

fn verify_build(relinked: &common::Relinked) {
    let (build, root) = (&relinked.build, relinked.dir.path());
    for line in &relinked.lines {
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
    if common::corpus().is_none() {
        return;
    }
    let builds = common::relink_corpus_builds();
    assert!(!builds.is_empty(), "the corpus has builds with link inputs");
    for relinked in &builds {
        verify_build(relinked);
    }
}
