//! ldcheck's kallsyms against the real kernel builds in the corpus: byte-identical assembly,
//! label offsets equal to `nm` of the assembled objects, and `.rodata` sizes equal to what the
//! assembler produces.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use ldcheck::kallsyms::{Options, PtrWidth, Version, build_tables, parse_symbol_map};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus");

/// One kallsyms run of a corpus build: its input map and the files the build produced from it.
struct Case {
    syms: PathBuf,
    asm: PathBuf,
    object_nm: Option<PathBuf>,
    options: Options,
    ptr: PtrWidth,
}

fn config_has(config: &str, key: &str) -> bool {
    config.lines().any(|l| l == format!("{key}=y"))
}

/// Every `.tmp_vmlinux*.syms` of every 6.12 build, or `None` when the corpus is absent.
fn cases() -> Option<Vec<Case>> {
    let builds = Path::new(CORPUS).join("builds/6.12");
    if !builds.is_dir() {
        println!("corpus not found at {}, skipping", builds.display());
        return None;
    }
    let mut cases = Vec::new();
    let mut dirs: Vec<_> = fs::read_dir(&builds)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let config = fs::read_to_string(dir.join("config")).unwrap_or_default();
        let options = Options {
            version: Version::V6_12,
            all_symbols: config_has(&config, "CONFIG_KALLSYMS_ALL"),
            absolute_percpu: config_has(&config, "CONFIG_KALLSYMS_ABSOLUTE_PERCPU"),
            ..Options::default()
        };
        let ptr = if config_has(&config, "CONFIG_64BIT") {
            PtrWidth::Bits64
        } else {
            PtrWidth::Bits32
        };
        let mut push = |syms: &str, stem: &str, nm: bool| {
            let syms = dir.join(syms);
            if syms.is_file() {
                let object_nm = dir.join(format!("{stem}.kallsyms.o.sym"));
                cases.push(Case {
                    syms,
                    asm: dir.join(format!("{stem}.kallsyms.S")),
                    object_nm: (nm && object_nm.is_file()).then_some(object_nm),
                    options,
                    ptr,
                });
            }
        };
        push(".tmp_vmlinux.kallsyms0.syms", ".tmp_vmlinux0", false);
        for n in 1..=3 {
            push(
                &format!(".tmp_vmlinux{n}.syms"),
                &format!(".tmp_vmlinux{n}"),
                true,
            );
        }
    }
    assert!(
        !cases.is_empty(),
        "no .syms files under {}",
        builds.display()
    );
    Some(cases)
}

/// The stored assembly, gunzipped when only the `.gz` is present.
fn reference_asm(path: &Path) -> Vec<u8> {
    if path.is_file() {
        return fs::read(path).unwrap();
    }
    let gz = PathBuf::from(format!("{}.gz", path.display()));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(&gz).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn generate(case: &Case) -> Vec<u8> {
    let input = fs::read(&case.syms).unwrap();
    let map = parse_symbol_map(&input, case.options.version).unwrap();
    let tables = build_tables(&map, &case.options).unwrap();
    let mut out = Vec::new();
    tables.write_asm(&mut out).unwrap();
    out
}

#[test]
fn assembly_is_byte_identical() {
    let Some(cases) = cases() else { return };
    for case in &cases {
        let ours = generate(case);
        let theirs = reference_asm(&case.asm);
        if ours != theirs {
            let line = ours
                .split(|&c| c == b'\n')
                .zip(theirs.split(|&c| c == b'\n'))
                .position(|(a, b)| a != b)
                .map_or(0, |n| n + 1);
            panic!(
                "{}: output differs from {} (first at line {line}; {} vs {} bytes)",
                case.syms.display(),
                case.asm.display(),
                ours.len(),
                theirs.len()
            );
        }
    }
}

#[test]
fn layout_matches_nm_of_the_kallsyms_objects() {
    let Some(cases) = cases() else { return };
    let mut checked = 0;
    for case in cases.iter().filter(|c| c.object_nm.is_some()) {
        let nm = fs::read_to_string(case.object_nm.as_ref().unwrap()).unwrap();
        let input = fs::read(&case.syms).unwrap();
        let map = parse_symbol_map(&input, case.options.version).unwrap();
        let layout = build_tables(&map, &case.options)
            .unwrap()
            .rodata_layout(case.ptr);
        let from_nm: Vec<(u64, String)> = nm
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let addr = u64::from_str_radix(f.next()?, 16).ok()?;
                (f.next()? == "R").then(|| (addr, f.next().unwrap_or_default().to_string()))
            })
            .collect();
        let ours: Vec<(u64, String)> = layout
            .tables
            .iter()
            .map(|t| (t.offset, t.kind.label().to_string()))
            .collect();
        assert_eq!(ours, from_nm, "{}", case.syms.display());
        checked += 1;
    }
    assert!(checked > 0);
}

/// `.rodata` size of an object file.
fn rodata_size(object: &Path) -> u64 {
    use object::{Object, ObjectSection};
    let data = fs::read(object).unwrap();
    let file = object::File::parse(&*data).unwrap();
    file.section_by_name(".rodata").map_or(0, |s| s.size())
}

/// Assembles pass 0 and the last pass of every build (earlier passes have the same shape and
/// are covered by the `nm` comparison) and compares `.rodata` sizes.
#[test]
fn size_matches_the_assembler() {
    let Some(cases) = cases() else { return };
    if Command::new("gcc").arg("--version").output().is_err() {
        println!("gcc not found, skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let last_of_build = |i: usize| {
        let parent = cases[i].syms.parent();
        cases
            .get(i + 1)
            .is_none_or(|next| next.syms.parent() != parent)
    };
    let mut checked = 0;
    for (i, case) in cases.iter().enumerate() {
        if case.object_nm.is_some() && !last_of_build(i) {
            continue;
        }
        let bits = if case.ptr == PtrWidth::Bits64 { 64 } else { 32 };
        let include = dir.path().join(format!("include{bits}"));
        fs::create_dir_all(include.join("asm")).unwrap();
        fs::write(
            include.join("asm/bitsperlong.h"),
            format!("#define BITS_PER_LONG {bits}\n"),
        )
        .unwrap();
        let input = fs::read(&case.syms).unwrap();
        let map = parse_symbol_map(&input, case.options.version).unwrap();
        let tables = build_tables(&map, &case.options).unwrap();
        let source = dir.path().join("k.S");
        let object = dir.path().join("k.o");
        let mut asm = Vec::new();
        tables.write_asm(&mut asm).unwrap();
        fs::write(&source, asm).unwrap();
        let status = Command::new("gcc")
            .arg("-c")
            .arg("-I")
            .arg(&include)
            .arg("-o")
            .arg(&object)
            .arg(&source)
            .status()
            .unwrap();
        assert!(status.success(), "gcc failed on {}", case.syms.display());
        assert_eq!(
            tables.rodata_size(case.ptr),
            rodata_size(&object),
            "{}",
            case.syms.display()
        );
        assert_eq!(
            tables.rodata_size(case.ptr),
            tables.rodata_layout(case.ptr).size
        );
        checked += 1;
    }
    assert!(checked > 0);
}
