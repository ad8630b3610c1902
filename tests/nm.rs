//! `ldcheck::input::nm` against the real `nm -n`, byte for byte.

use std::path::{Path, PathBuf};
use std::process::Command;

use ldcheck::input::nm::{self, NmSection};
use ldcheck::input::{Binding, SymbolKind};

fn have(tool: &str) -> bool {
    let ok = Command::new(tool).arg("--version").output().is_ok();
    if !ok {
        println!("{tool} not found, skipping");
    }
    ok
}

fn real_nm(tool: &str, file: &Path) -> Vec<u8> {
    let out = Command::new(tool)
        .env("LC_ALL", "C")
        .arg("-n")
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success() || out.stdout.is_empty(),
        "{tool} failed on {}",
        file.display()
    );
    out.stdout
}

/// Compares our output with the real tool's; returns a description of the first difference.
fn compare(tool: &str, file: &Path) -> Option<String> {
    let data = std::fs::read(file).unwrap();
    let ours = match nm::nm_numeric(&data) {
        Ok(o) => o,
        Err(e) => return Some(format!("{}: {e}", file.display())),
    };
    let theirs = real_nm(tool, file);
    if ours == theirs {
        return None;
    }
    let o = String::from_utf8_lossy(&ours);
    let t = String::from_utf8_lossy(&theirs);
    let line = o
        .lines()
        .zip(t.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(o.lines().count().min(t.lines().count()));
    Some(format!(
        "{}: line {}: ours {:?}, nm {:?}",
        file.display(),
        line + 1,
        o.lines().nth(line),
        t.lines().nth(line)
    ))
}

fn assemble(dir: &Path, as_tool: &str, name: &str, src: &str) -> PathBuf {
    let s = dir.join(format!("{name}.s"));
    std::fs::write(&s, src).unwrap();
    let o = dir.join(format!("{name}.o"));
    let st = Command::new(as_tool)
        .arg(&s)
        .arg("-o")
        .arg(&o)
        .status()
        .unwrap();
    assert!(st.success(), "{as_tool} {name}");
    o
}

/// Every letter rule and tie rule on hand-made objects.
const SHAPES: &str = r#"
.section .data.ro,"a"
.globl g1
g1: .byte 0
l1: .byte 0
.section code,"a"
.globl g2
g2: .byte 0
.section .comment2,""
.globl g3
g3: .byte 0
l3: .byte 0
.section .debug_bar,""
.globl g4
g4: .byte 0
.section .commentw,"w"
.globl g5
g5: .byte 0
.section .nobitsna,"",@nobits
.globl g6
g6: .byte 0
.section .tbss,"awT",@nobits
.globl g7
g7: .byte 0
.section .edata.x,"aw"
.globl g8
g8: .byte 0
.section .edatax,"aw"
.globl g9
g9: .byte 0
.section .idata$2,"a"
g10: .byte 0
.section .pdata,"aw"
.globl g11
g11: .byte 0
.data
.weak wobj, wfun, wund
.type wobj, @object
.type wfun, @function
wobj: .byte 0
wfun: .byte 0
same: .byte 0
.globl Same
Same:
.globl _same
_same:
.globl same2
same2:
.type uobj, @gnu_unique_object
uobj: .byte 0
.text
.type ifn, @gnu_indirect_function
.globl ifn
ifn: ret
.globl abs1
abs1 = 0x1234
labs = 0x55
.comm cm, 8, 16
.comm cm2, 8, 4
.local lcm
.comm lcm, 8, 16
.data
.long wund
.weak undobj
.type undobj, @object
.long undobj
.long und2
.long Aund
"#;

#[test]
fn hand_made_shapes_x86() {
    if !have("as") || !have("nm") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = assemble(dir.path(), "as", "shapes", SHAPES);
    assert_eq!(compare("nm", &o), None);
    let out = String::from_utf8(nm::nm_numeric(&std::fs::read(&o).unwrap()).unwrap()).unwrap();
    for expect in [
        " V wobj",
        " W wfun",
        " w wund",
        " v undobj",
        " u uobj",
        " i ifn",
        " A abs1",
        " C cm",
        " i g10",
        " E g8",
    ] {
        assert!(out.contains(expect), "missing {expect:?} in\n{out}");
    }
}

#[test]
fn hand_made_shapes_arm() {
    if !have("arm-linux-gnueabihf-as") || !have("arm-linux-gnueabihf-nm") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let thumb = "\n.syntax unified\n.thumb\n.text\n.globl tf\n.type tf, %function\n.thumb_func\ntf: bx lr\n";
    let src = SHAPES.replace("@", "%").replace("ifn: ret", "ifn: bx lr") + thumb;
    let o = assemble(dir.path(), "arm-linux-gnueabihf-as", "shapes", &src);
    assert_eq!(compare("arm-linux-gnueabihf-nm", &o), None);
}

#[test]
fn letters_without_a_file() {
    let sec = |name: &'static str, sh_type: u32, sh_flags: u64| NmSection::Section {
        name: name.as_bytes(),
        sh_type,
        sh_flags,
    };
    const PROGBITS: u32 = 1;
    const NOBITS: u32 = 8;
    const W: u64 = 1;
    const A: u64 = 2;
    const X: u64 = 4;
    let l = |b, k, s| nm::type_letter(b, k, s);
    assert_eq!(
        l(
            Binding::Global,
            SymbolKind::Func,
            sec(".text", PROGBITS, A | X)
        ),
        'T'
    );
    assert_eq!(
        l(
            Binding::Local,
            SymbolKind::NoType,
            sec(".rodata", PROGBITS, A)
        ),
        'r'
    );
    assert_eq!(
        l(
            Binding::Global,
            SymbolKind::Object,
            sec(".rodata", PROGBITS, A | W)
        ),
        'D'
    );
    assert_eq!(
        l(
            Binding::Local,
            SymbolKind::Object,
            sec(".bss", NOBITS, A | W)
        ),
        'b'
    );
    assert_eq!(
        l(Binding::Global, SymbolKind::NoType, NmSection::Absolute),
        'A'
    );
    assert_eq!(
        l(Binding::Local, SymbolKind::NoType, NmSection::Absolute),
        'a'
    );
    assert_eq!(
        l(
            Binding::Weak,
            SymbolKind::Object,
            sec(".data", PROGBITS, A | W)
        ),
        'V'
    );
    assert_eq!(
        l(Binding::Weak, SymbolKind::NoType, NmSection::Undefined),
        'w'
    );
    assert_eq!(
        l(Binding::Global, SymbolKind::NoType, NmSection::Undefined),
        'U'
    );
    assert_eq!(
        l(Binding::Global, SymbolKind::Object, NmSection::Common),
        'C'
    );
    assert_eq!(
        l(
            Binding::Local,
            SymbolKind::NoType,
            sec(".comment", PROGBITS, 0)
        ),
        'n'
    );
    assert_eq!(
        l(
            Binding::Local,
            SymbolKind::NoType,
            sec(".debug_info", PROGBITS, 0)
        ),
        'N'
    );
}

fn elf_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            elf_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "o") {
            out.push(p);
        }
    }
}

fn corpus_builds() -> Option<Vec<PathBuf>> {
    let root = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/builds/6.12"
    ));
    if !root.is_dir() {
        println!("corpus not found at {}, skipping", root.display());
        return None;
    }
    let mut builds: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("objtree").is_dir())
        .collect();
    builds.sort();
    Some(builds)
}

fn nm_tool(build: &Path) -> &'static str {
    if build.to_string_lossy().contains("/arm-") {
        "arm-linux-gnueabihf-nm"
    } else {
        "nm"
    }
}

/// Every object of the corpus builds (the thin archives' members, the kallsyms objects).
/// One `nm` run per build lists all objects; its per-file sections are split on the
/// `\nFILE:\n` headers nm prints when given several files.
#[test]
fn corpus_objects_match_nm() {
    let Some(builds) = corpus_builds() else {
        return;
    };
    let mut checked = 0;
    let mut failures = Vec::new();
    for build in builds {
        let tool = nm_tool(&build);
        if !have(tool) {
            continue;
        }
        let mut files = Vec::new();
        elf_files(&build.join("objtree"), &mut files);
        files.sort();
        let out = Command::new(tool)
            .env("LC_ALL", "C")
            .arg("-n")
            .args(&files)
            .output()
            .unwrap();
        let all = out.stdout;
        // Header positions, searched in order (nm lists files in command-line order).
        let mut spans = Vec::with_capacity(files.len());
        let mut cursor = 0;
        for f in &files {
            let h = format!("\n{}:\n", f.display());
            let at = all[cursor..]
                .windows(h.len())
                .position(|w| w == h.as_bytes())
                .map(|p| cursor + p);
            if let Some(at) = at {
                cursor = at + h.len();
            }
            spans.push(at.map(|at| (at, at + h.len())));
        }
        for (i, f) in files.iter().enumerate() {
            checked += 1;
            let Some((_, start)) = spans[i] else {
                failures.push(format!("{}: no section in nm output", f.display()));
                continue;
            };
            let end = spans[i + 1..]
                .iter()
                .flatten()
                .map(|&(at, _)| at)
                .next()
                .unwrap_or(all.len());
            let ours = nm::nm_numeric(&std::fs::read(f).unwrap()).unwrap();
            if ours != all[start..end] {
                failures
                    .push(compare(tool, f).unwrap_or_else(|| format!("{}: differs", f.display())));
            }
        }
    }
    println!("compared {checked} objects, {} differ", failures.len());
    assert!(
        checked == 0 || checked > 900,
        "expected the whole corpus, got {checked}"
    );
    assert!(
        failures.is_empty(),
        "{} differ, e.g.\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );
}

/// The images the corpus link lines produce, relinked into a temporary directory.
#[test]
fn corpus_linked_images_match_nm() {
    let Some(builds) = corpus_builds() else {
        return;
    };
    for build in builds {
        let tool = nm_tool(&build);
        let ld = if tool.starts_with("arm-") {
            "arm-linux-gnueabihf-ld"
        } else {
            "ld"
        };
        if !have(tool) || !have(ld) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("cp")
            .arg("-rs")
            .arg(build.join("objtree").join("."))
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success());
        let st = Command::new("sh")
            .arg(build.join("link-commands.sh"))
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "relinking {}", build.display());
        for image in [".tmp_vmlinux1", ".tmp_vmlinux2", "vmlinux"] {
            assert_eq!(compare(tool, &dir.path().join(image)), None);
        }
    }
}
