//! The static hazard report (`ldcheck check --format json` findings) of every corpus script,
//! as reviewed snapshots under `snapshots/check/`, so a change in findings shows up in review.

mod common;

use ldcheck::analysis::hazards::analyze;
use ldcheck::script::parse_script;

#[test]
fn corpus_hazard_reports_match_snapshots() {
    let Some(scripts) = common::corpus_scripts("check") else {
        return;
    };
    assert!(!scripts.is_empty(), "the corpus has linker scripts");
    for (path, dir, name) in scripts {
        let text = std::fs::read_to_string(&path).expect("read script");
        let script = parse_script(&text).expect("corpus scripts parse");
        let findings: Vec<_> = analyze(&script)
            .iter()
            .map(|h| h.to_finding(false))
            .collect();
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(dir);
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| insta::assert_json_snapshot!(name.as_str(), findings));
    }
}
