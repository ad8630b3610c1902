//! Reading objects and archives, errors, and ld's archive member selection checked against
//! the real linker's map.

use std::path::{Path, PathBuf};
use std::process::Command;

use ldcheck::input::select::{LinkSet, LoadedItem, ObjectRef};
use ldcheck::input::{
    Binding, FileStore, InputError, InputFile, InputObject, SymbolKind, SymbolSection, Visibility,
};
use ldcheck::link_args::LinkRequest;
use ldcheck::target::Target;

fn have(tool: &str) -> bool {
    let ok = Command::new(tool).arg("--version").output().is_ok();
    if !ok {
        println!("{tool} not found, skipping");
    }
    ok
}

fn run(dir: &Path, cmd: &[&str]) {
    let st = Command::new(cmd[0])
        .args(&cmd[1..])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "{cmd:?}");
}

fn asm(dir: &Path, name: &str, src: &str) {
    std::fs::write(dir.join(format!("{name}.s")), src).unwrap();
    run(
        dir,
        &["as", &format!("{name}.s"), "-o", &format!("{name}.o")],
    );
}

#[test]
fn object_sections_groups_symbols() {
    if !have("as") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    asm(
        d,
        "a",
        ".section .text.inl,\"axG\",@progbits,inl,comdat\n.globl inl\n.hidden inl\n.type inl,@function\n\
         inl: ret\n.size inl, 1\n.data\n.p2align 3\n.globl dv\n.type dv,@object\ndv: .quad 1\n.size dv, 8\n\
         .comm cm, 24, 32\n.weak wu\n.quad wu\n.bss\n.zero 64\n",
    );
    let mut store = FileStore::new();
    let id = store.load(&d.join("a.o")).unwrap();
    let x86 = Target::by_name("x86_64").unwrap().unwrap();
    let InputFile::Object(obj) = store.parse(id, Some(x86)).unwrap() else {
        panic!("not an object")
    };
    assert_eq!(obj.e_machine, 62);
    assert_eq!(obj.groups.len(), 1);
    let g = &obj.groups[0];
    assert!(g.comdat);
    assert_eq!(g.signature, "inl");
    let inl = obj.sections.iter().find(|s| s.name == ".text.inl").unwrap();
    assert_eq!(inl.group, Some(0));
    assert!(g.members.contains(&inl.index));
    assert_eq!(inl.size, 1);
    assert_eq!(inl.data, [0xc3]);
    let data = obj.sections.iter().find(|s| s.name == ".data").unwrap();
    assert_eq!(data.align, 8);
    let bss = obj.sections.iter().find(|s| s.name == ".bss").unwrap();
    assert_eq!((bss.size, bss.data.len()), (64, 0));
    let sym = |n: &str| obj.symbols.iter().find(|s| s.name == n).unwrap();
    assert_eq!(sym("inl").visibility, Visibility::Hidden);
    assert_eq!(sym("inl").kind, SymbolKind::Func);
    assert_eq!(sym("dv").section, SymbolSection::Section(data.index));
    assert_eq!((sym("dv").binding, sym("dv").size), (Binding::Global, 8));
    assert_eq!(sym("cm").section, SymbolSection::Common);
    assert_eq!((sym("cm").common_align(), sym("cm").size), (Some(32), 24));
    assert_eq!(
        (sym("wu").binding, sym("wu").section),
        (Binding::Weak, SymbolSection::Undefined)
    );

    // Wrong machine for the target.
    let arm = Target::by_name("arm").unwrap().unwrap();
    let err = store.parse(id, Some(arm)).unwrap_err();
    assert!(matches!(err, InputError::WrongClass { .. }), "{err}");
    let i386 = Target::by_name("i386").unwrap().unwrap();
    assert!(
        store
            .parse(id, Some(i386))
            .unwrap_err()
            .to_string()
            .contains("a.o")
    );
}

#[test]
fn errors_name_file_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut store = FileStore::new();
    let e = store.load(&d.join("missing.o")).unwrap_err();
    assert!(matches!(e, InputError::Io { .. }) && e.to_string().contains("missing.o"));
    assert!(matches!(store.load(d), Err(InputError::Directory(_))));

    std::fs::write(d.join("text.o"), b"hello, this is not ELF").unwrap();
    let id = store.load(&d.join("text.o")).unwrap();
    let e = store.parse(id, None).unwrap_err();
    assert!(
        matches!(e, InputError::Foreign { .. }) && e.to_string().contains("text.o"),
        "{e}"
    );

    std::fs::write(d.join("empty.o"), b"").unwrap();
    let id = store.load(&d.join("empty.o")).unwrap();
    assert!(matches!(
        store.parse(id, None),
        Err(InputError::Foreign { .. })
    ));

    let hdr = truncated_elf();
    std::fs::write(d.join("trunc.o"), &hdr).unwrap();
    let id = store.load(&d.join("trunc.o")).unwrap();
    let e = store.parse(id, None).unwrap_err();
    assert!(
        matches!(e, InputError::Malformed { .. }) && e.to_string().contains("trunc.o"),
        "{e}"
    );

    std::fs::write(d.join("bad.a"), b"!<arch>\nshort").unwrap();
    let id = store.load(&d.join("bad.a")).unwrap();
    let e = store.parse(id, None).unwrap_err();
    assert!(
        matches!(e, InputError::BadArchive { .. }) && e.to_string().contains("bad.a"),
        "{e}"
    );

    std::fs::write(d.join("thin.a"), b"!<thin>\n").unwrap();
    std::fs::write(d.join("thin.a"), thin_archive(&[("gone.o", 10)])).unwrap();
    let e = store.load(&d.join("thin.a")).unwrap_err();
    assert!(e.to_string().contains("gone.o"), "{e}");
}

/// The first 40 bytes of a 64-bit little-endian ELF header, the rest cut off.
fn truncated_elf() -> Vec<u8> {
    let mut hdr = b"\x7fELF\x02\x01\x01".to_vec();
    hdr.resize(40, 0);
    hdr
}

/// A thin archive listing `members` (name, size), without a symbol index.
fn thin_archive(members: &[(&str, usize)]) -> Vec<u8> {
    let mut thin = b"!<thin>\n".to_vec();
    for (name, size) in members {
        let header = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            format!("{name}/"),
            0,
            0,
            0,
            644,
            size
        );
        thin.extend_from_slice(header.as_bytes());
    }
    thin
}

/// Thin members are mapped and parsed on several threads; whichever finishes first, the
/// error reported is the one of the first bad member in archive order, as ld reports it.
#[test]
fn first_bad_thin_member_in_archive_order_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let truncated = truncated_elf();
    let names: Vec<String> = (0..64).map(|i| format!("m{i:02}.o")).collect();
    for name in &names {
        std::fs::write(d.join(name), &truncated).unwrap();
    }
    let listed: Vec<(&str, usize)> = names.iter().map(|n| (n.as_str(), 40)).collect();

    // Missing files: the first one missing is named, not a later one.
    let mut missing = listed.clone();
    missing.insert(17, ("gone17.o", 40));
    missing.insert(50, ("gone50.o", 40));
    std::fs::write(d.join("missing.a"), thin_archive(&missing)).unwrap();
    for _ in 0..8 {
        let e = FileStore::new().load(&d.join("missing.a")).unwrap_err();
        assert!(e.to_string().contains("gone17.o"), "{e}");
    }

    // Every member is malformed: the first member's error is the one reported.
    std::fs::write(d.join("bad.a"), thin_archive(&listed)).unwrap();
    for _ in 0..8 {
        let mut store = FileStore::new();
        let id = store.load(&d.join("bad.a")).unwrap();
        let e = store.parse(id, None).unwrap_err();
        assert!(
            matches!(e, InputError::Malformed { .. }) && e.to_string().contains("m00.o"),
            "{e}"
        );
    }
}

/// A member that is itself an archive is refused, and named, even when malformed members
/// follow it: the check runs where the members are parsed, on several threads.
#[test]
fn nested_archive_member_is_reported_in_archive_order() {
    if !have("as") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    asm(d, "good", ".text\nf: ret\n");
    std::fs::write(d.join("inner.a"), b"!<arch>\n").unwrap();
    let truncated = truncated_elf();
    let good = std::fs::metadata(d.join("good.o")).unwrap().len() as usize;
    let mut listed = vec![("good.o".to_string(), good), ("inner.a".to_string(), 8)];
    for i in 0..32 {
        let name = format!("t{i:02}.o");
        std::fs::write(d.join(&name), &truncated).unwrap();
        listed.push((name, 40));
    }
    let members: Vec<(&str, usize)> = listed.iter().map(|(n, l)| (n.as_str(), *l)).collect();
    std::fs::write(d.join("nested.a"), thin_archive(&members)).unwrap();
    for _ in 0..8 {
        let mut store = FileStore::new();
        let id = store.load(&d.join("nested.a")).unwrap();
        let e = store.parse(id, None).unwrap_err();
        assert!(
            matches!(e, InputError::BadArchive { .. })
                && e.to_string().contains("inner.a is itself an archive"),
            "{e}"
        );
    }
}

/// Every truncation of a real object is rejected with an error, never a panic.
#[test]
fn truncated_objects_never_panic() {
    if !have("as") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    asm(dir.path(), "t", ".text\n.globl f\nf: ret\n.data\n.quad f\n");
    let full = std::fs::read(dir.path().join("t.o")).unwrap();
    for len in 0..full.len() {
        let origin = ldcheck::input::Origin {
            file: Path::new("t.o"),
            member: None,
        };
        let _ = ldcheck::input::InputObject::parse(&full[..len], origin, None);
        let _ = ldcheck::input::nm::nm_numeric(&full[..len]);
    }
}

/// Objects a, b, c with a chain of references, in regular and thin archives, linked with
/// the real ld; our selection must match the members ld's map lists, in the same order.
#[test]
fn archive_selection_matches_ld() {
    if !have("as") || !have("ld") || !have("ar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("sub")).unwrap();
    asm(
        d,
        "main",
        ".text\n.globl _start\n_start: call x1\n.comm shared, 8, 8\n",
    );
    asm(d, "sub/a1", ".text\n.globl x1\nx1: call y1\n");
    asm(d, "sub/a2", ".text\n.globl x2\nx2: ret\n");
    asm(d, "sub/a3", ".text\n.globl unused\nunused: ret\n");
    asm(d, "sub/a4", ".data\n.globl shared\nshared: .quad 1\n");
    asm(
        d,
        "sub/a5",
        ".text\n.weak y1\ncall x9\n.globl x9\nx9: ret\n",
    );
    asm(
        d,
        "b1",
        ".text\n.globl y1\ny1: call x2\n.weak maybe\ncall maybe\n",
    );
    asm(d, "b2", ".text\n.globl maybe\nmaybe: ret\n");
    run(
        d,
        &[
            "ar", "rcs", "A.a", "sub/a1.o", "sub/a2.o", "sub/a3.o", "sub/a4.o", "sub/a5.o",
        ],
    );
    run(d, &["ar", "rcsT", "B.a", "b1.o", "b2.o"]);
    run(d, &["ar", "rcsT", "W.a", "sub/a3.o", "b2.o"]);

    let lines = [
        "main.o --start-group A.a B.a --end-group -o out",
        "main.o A.a B.a A.a -o out",
        "main.o --whole-archive W.a --no-whole-archive --start-group B.a A.a --end-group -o out",
        "-u x2 main.o -( B.a A.a -) -o out",
    ];
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let out = Command::new("ld")
            .args(&words)
            .arg("-M")
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ld {line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let map = String::from_utf8(out.stdout).unwrap();
        let expected = map_members(&map);

        let req = LinkRequest::parse(&words).unwrap();
        let mut store = FileStore::new();
        let items = store.load_items(&req.inputs, d, |_| None).unwrap();
        let undefined: Vec<&str> = req.undefined.iter().map(String::as_str).collect();
        let set = LinkSet::resolve(&store, &items, None, &undefined).unwrap();
        let ours: Vec<String> = set
            .objects()
            .filter(|(r, _)| r.member.is_some())
            .map(|(r, o)| map_name(&set, r, o, d))
            .collect();
        assert_eq!(ours, expected, "ld {line}");
        assert!(set.undefined().is_empty(), "{:?}", set.undefined());
        assert!(items.iter().any(|i| matches!(i, LoadedItem::File(_))));
    }

    // Without the archives: `-u` names and strong references nothing defines stay undefined
    // (b1's weak `maybe` does not count, main's common `shared` is provided).
    let words = ["-u", "nowhere", "main.o", "b1.o", "-o", "out"];
    let req = LinkRequest::parse(&words).unwrap();
    let mut store = FileStore::new();
    let items = store.load_items(&req.inputs, d, |_| None).unwrap();
    let undefined: Vec<&str> = req.undefined.iter().map(String::as_str).collect();
    let set = LinkSet::resolve(&store, &items, None, &undefined).unwrap();
    assert_eq!(set.undefined(), ["nowhere", "x1", "x2"]);
}

/// How ld's map names an archive member: `archive(member)`, or the member's own path for
/// thin archives.
fn map_name(set: &LinkSet<'_>, r: ObjectRef, o: &InputObject<'_>, base: &Path) -> String {
    let archive = o.origin.file.strip_prefix(base).unwrap();
    let member = o.origin.member.unwrap();
    match &set.files[r.file] {
        InputFile::Archive(a) if a.thin => {
            archive.parent().unwrap().join(member).display().to_string()
        }
        _ => format!("{}({member})", archive.display()),
    }
}

/// The archive members an `ld -M` map says were included, in order.
fn map_members(map: &str) -> Vec<String> {
    let Some(start) = map.find("Archive member included") else {
        return Vec::new();
    };
    map[start..]
        .lines()
        .skip(2)
        .take_while(|l| {
            !l.trim().is_empty() && !l.starts_with("Discarded") && !l.starts_with("Allocating")
        })
        .filter(|l| !l.starts_with(' '))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// The corpus links: our member selection and order equal ld's map, for each build.
#[test]
fn corpus_selection_matches_ld_map() {
    let root = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/builds/6.12"
    ));
    if !root.is_dir() {
        println!("corpus not found at {}, skipping", root.display());
        return;
    }
    for build in ["x86_64-tinyconfig", "arm-tinyconfig"] {
        let objtree: PathBuf = root.join(build).join("objtree");
        let Ok(cmds) = std::fs::read_to_string(root.join(build).join("link-commands.sh")) else {
            continue;
        };
        let Some(line) = cmds.lines().find(|l| l.contains("-o vmlinux ")) else {
            continue;
        };
        let mut words: Vec<&str> = line.split_whitespace().collect();
        let ld = words.remove(0);
        if !have(ld) {
            continue;
        }
        let out = Command::new(ld)
            .args(&words)
            .args(["-o", "/dev/null", "-M"])
            .current_dir(&objtree)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{build}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = map_members(&String::from_utf8_lossy(&out.stdout));

        let req = LinkRequest::parse(&words).unwrap();
        let mut store = FileStore::new();
        let items = store.load_items(&req.inputs, &objtree, |_| None).unwrap();
        let target = Target::resolve(
            req.emulation.as_deref(),
            None,
            None,
            &[(if build.starts_with("arm") { 40 } else { 62 }, "vmlinux.o")],
        )
        .unwrap();
        let set = LinkSet::resolve(&store, &items, Some(target), &[]).unwrap();
        let ours: Vec<String> = set
            .objects()
            .filter(|(r, _)| r.member.is_some())
            .map(|(r, o)| map_name(&set, r, o, &objtree))
            .collect();
        assert_eq!(ours.len(), expected.len(), "{build}");
        assert_eq!(ours, expected, "{build}");
        println!("{build}: {} archive members in ld's order", ours.len());
    }
}
