//! Helpers shared by the integration tests: corpus location, tool detection, real links.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `../shared/corpus`, or None (with a printed notice) when this checkout has no corpus beside it.
pub fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if p.is_dir() {
        Some(p)
    } else {
        println!("notice: corpus not found at {}, skipping", p.display());
        None
    }
}

/// Whether `tool` runs; prints a skip notice when it does not.
pub fn have_tool(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("notice: {tool} not found, skipping");
    }
    ok
}

/// Runs a command in `dir`, panicking with its stderr when it fails.
pub fn run(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Copies a directory tree (files and subdirectories).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

const SNAPSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots");

/// Every `vmlinux.lds` of the corpus with the snapshot directory (under `snapshots/<kind>`,
/// mirroring the corpus path) and snapshot name for it; None when the corpus is absent.
pub fn corpus_scripts(kind: &str) -> Option<Vec<(PathBuf, PathBuf, String)>> {
    let root = corpus()?;
    let mut found = Vec::new();
    collect_scripts(&root.join("lds"), &mut found);
    collect_scripts(&root.join("builds"), &mut found);
    let base = Path::new(SNAPSHOTS).join(kind);
    let mut scripts = Vec::new();
    for path in found {
        let Ok(rel) = path.strip_prefix(&root) else {
            continue;
        };
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let (dir, name) = match parts.first().map(String::as_str) {
            // lds/<version>/<arch>/<defconfig>/vmlinux.lds
            Some("lds") if parts.len() == 5 => (
                base.join("lds").join(&parts[1]).join(&parts[2]),
                parts[3].clone(),
            ),
            // builds/<version>/<build>/…/vmlinux.lds
            Some("builds") if parts.len() >= 4 => {
                (base.join("builds").join(&parts[1]), parts[2].clone())
            }
            _ => continue,
        };
        scripts.push((path, dir, name));
    }
    scripts.sort();
    Some(scripts)
}

fn collect_scripts(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_scripts(&path, out);
        } else if path.file_name().is_some_and(|n| n == "vmlinux.lds") {
            out.push(path);
        }
    }
}

/// The `ld` command lines of a build's link-commands.sh (program first).
pub fn link_lines(build: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(build.join("link-commands.sh")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty() && !l.starts_with("set "))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// A corpus build re-linked with the real linker in a temporary directory.
pub struct Relinked {
    pub build: PathBuf,
    pub dir: tempfile::TempDir,
    pub lines: Vec<Vec<String>>,
}

/// Every corpus build with link inputs whose linker is installed, copied to a temporary
/// directory and linked there with its link-commands.sh (the corpus stays read-only).
pub fn relink_corpus_builds() -> Vec<Relinked> {
    let Some(mut builds) = builds_with_inputs() else {
        return Vec::new();
    };
    builds.retain(|p| p.join("link-commands.sh").is_file());
    let mut out = Vec::new();
    for build in builds {
        let lines = link_lines(&build);
        let Some(linker) = lines.first().and_then(|l| l.first()).cloned() else {
            continue;
        };
        if !have_tool(&linker) {
            continue;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        copy_tree(&build.join("objtree"), dir.path());
        for line in &lines {
            let args: Vec<&str> = line[1..].iter().map(String::as_str).collect();
            run(dir.path(), &line[0], &args);
        }
        out.push(Relinked { build, dir, lines });
    }
    out
}

/// A corpus build's final link arguments (from `link-commands.sh`), without the program name
/// and the kallsyms object.
pub fn final_link_args(build: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(build.join("link-commands.sh")).expect("link-commands.sh");
    let line = text
        .lines()
        .rfind(|l| l.contains(" -o vmlinux "))
        .expect("the vmlinux link line");
    line.split_whitespace()
        .skip(1)
        .filter(|a| !a.ends_with(".kallsyms.o"))
        .map(str::to_string)
        .collect()
}

/// The 6.12 corpus builds that carry their final link's inputs, with a notice for each one
/// that does not; None (with a notice) without a corpus.
pub fn builds_with_inputs() -> Option<Vec<PathBuf>> {
    let corpus = corpus()?;
    let mut builds = Vec::new();
    for entry in std::fs::read_dir(corpus.join("builds/6.12")).expect("builds") {
        let build = entry.expect("entry").path();
        if build.join("objtree").is_dir() {
            builds.push(build);
        } else {
            println!("notice: {} has no link inputs, skipping", build.display());
        }
    }
    builds.sort();
    assert!(!builds.is_empty(), "no corpus build had link inputs");
    Some(builds)
}
