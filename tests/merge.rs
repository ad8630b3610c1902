//! `layout::merge` against the real GNU ld: assemble small inputs, link them with a tiny script,
//! then compare predicted output-section sizes, bytes and symbol addresses with what ld wrote.
//! The corpus tests do the same for every string and `.comment` section of the tiny kernels.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use ldcheck::layout::merge::{MergeInput, Outcome, Unmerged, merge};
use object::elf;
use object::read::elf::{FileHeader, SectionHeader, Sym};

const SHF_MERGE: u64 = elf::SHF_MERGE as u64;
const SHF_STRINGS: u64 = elf::SHF_STRINGS as u64;

/// One section header of an object or of the linked output.
struct Sec {
    name: String,
    data: Vec<u8>,
    flags: u64,
    entsize: u64,
    align: u64,
    addr: u64,
    relocated: bool,
}

struct Symbol {
    name: String,
    shndx: usize,
    value: u64,
    global: bool,
}

struct Obj {
    sections: Vec<Sec>,
    symbols: Vec<Symbol>,
}

fn read_obj(path: &Path) -> Obj {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    match object::FileKind::parse(&*data) {
        Ok(object::FileKind::Elf32) => read_elf::<elf::FileHeader32<object::Endianness>>(&data),
        Ok(object::FileKind::Elf64) => read_elf::<elf::FileHeader64<object::Endianness>>(&data),
        other => panic!("{} is not ELF: {other:?}", path.display()),
    }
}

fn read_elf<H: FileHeader<Endian = object::Endianness>>(data: &[u8]) -> Obj {
    let header = H::parse(data).expect("ELF header");
    let endian = header.endian().expect("endianness");
    let table = header.sections(endian, data).expect("section table");
    let mut sections: Vec<Sec> = table
        .iter()
        .map(|sh| Sec {
            name: String::from_utf8_lossy(table.section_name(endian, sh).expect("name")).into(),
            data: sh.data(endian, data).expect("section data").to_vec(),
            flags: sh.sh_flags(endian).into(),
            entsize: sh.sh_entsize(endian).into(),
            align: sh.sh_addralign(endian).into(),
            addr: sh.sh_addr(endian).into(),
            relocated: false,
        })
        .collect();
    for sh in table.iter() {
        let kind = sh.sh_type(endian);
        if kind == elf::SHT_RELA || kind == elf::SHT_REL {
            let target = sh.sh_info(endian) as usize;
            if let Some(s) = sections.get_mut(target) {
                s.relocated = true;
            }
        }
    }
    let symtab = table
        .symbols(endian, data, elf::SHT_SYMTAB)
        .expect("symbol table");
    let symbols = symtab
        .iter()
        .filter(|s| {
            let t = s.st_type();
            t != elf::STT_SECTION && t != elf::STT_FILE && s.st_shndx(endian) != 0
        })
        .filter(|s| usize::from(s.st_shndx(endian)) < elf::SHN_LORESERVE as usize)
        .map(|s| Symbol {
            name: String::from_utf8_lossy(symtab.symbol_name(endian, s).expect("name")).into(),
            shndx: usize::from(s.st_shndx(endian)),
            value: s.st_value(endian).into(),
            global: s.st_bind() != elf::STB_LOCAL,
        })
        .collect();
    Obj { sections, symbols }
}

/// `file(section)` or `*(section)` inside an output section statement.
struct Rule {
    file: Option<&'static str>,
    section: &'static str,
}

fn any(section: &'static str) -> Rule {
    Rule {
        file: None,
        section,
    }
}

fn from(file: &'static str, section: &'static str) -> Rule {
    Rule {
        file: Some(file),
        section,
    }
}

struct Out {
    name: &'static str,
    rules: Vec<Rule>,
}

fn out(name: &'static str, rules: Vec<Rule>) -> Out {
    Out { name, rules }
}

fn script(outs: &[Out]) -> String {
    let mut text = String::from("SECTIONS {\n  . = 0x10000;\n");
    for o in outs {
        let rules: Vec<String> = o
            .rules
            .iter()
            .map(|r| format!("{}({})", r.file.unwrap_or("*"), r.section))
            .collect();
        text += &format!("  {} : {{ {} }}\n", o.name, rules.join(" "));
    }
    text + "  /DISCARD/ : { *(*) }\n}\n"
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

fn run(cmd: &mut Command) {
    let output = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let shown: String = format!("{cmd:?}").chars().take(300).collect();
    assert!(
        output.status.success(),
        "{shown} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[derive(Debug, Default)]
struct Tally {
    merge_sections: usize,
    excluded: usize,
    unmerged: usize,
    bytes: u64,
    symbols: usize,
    dropped_locals: usize,
}

/// Predicts the layout of `outs` for `inputs` (in link order) with `layout::merge`, and checks
/// every output section's size and bytes and every uniquely named symbol against `linked`.
fn compare(inputs: &[(String, Obj)], outs: &[Out], linked: &Obj) -> Tally {
    // Where ld's script puts each input section: the first matching rule wins.
    let mut placed: Vec<Vec<(usize, usize)>> = vec![Vec::new(); outs.len()];
    let mut home: HashMap<(usize, usize), usize> = HashMap::new();
    for (o, spec) in outs.iter().enumerate() {
        for rule in &spec.rules {
            for (f, (name, obj)) in inputs.iter().enumerate() {
                if rule.file.is_some_and(|want| want != name) {
                    continue;
                }
                for (s, sec) in obj.sections.iter().enumerate() {
                    if sec.name == rule.section && !home.contains_key(&(f, s)) {
                        home.insert((f, s), o);
                        placed[o].push((f, s));
                    }
                }
            }
        }
    }

    // Merge candidates in ld's registration order: files in link order, then header order.
    let mut keys: Vec<(usize, usize)> = Vec::new();
    let mut merge_inputs: Vec<MergeInput<'_>> = Vec::new();
    for (f, (_, obj)) in inputs.iter().enumerate() {
        for (s, sec) in obj.sections.iter().enumerate() {
            if let Some(&o) = home.get(&(f, s))
                && sec.flags & SHF_MERGE != 0
            {
                merge_inputs.push(MergeInput {
                    id: keys.len(),
                    group: o,
                    data: &sec.data,
                    entsize: sec.entsize,
                    align: sec.align,
                    strings: sec.flags & SHF_STRINGS != 0,
                    has_relocations: sec.relocated,
                });
                keys.push((f, s));
            }
        }
    }
    let id_of: HashMap<(usize, usize), usize> =
        keys.iter().enumerate().map(|(id, &k)| (k, id)).collect();
    let merged = merge(&merge_inputs).expect("merge");

    let mut tally = Tally::default();
    for (_, outcome) in merged.outcomes() {
        tally.merge_sections += 1;
        match outcome {
            Outcome::Excluded => tally.excluded += 1,
            Outcome::Unmerged(_) => tally.unmerged += 1,
            Outcome::Kept { .. } => {}
        }
    }

    // Place input sections as ld does: excluded sections take no space and no alignment.
    let mut offset_of: HashMap<(usize, usize), u64> = HashMap::new();
    let mut base_of: Vec<u64> = Vec::new();
    for (o, spec) in outs.iter().enumerate() {
        let out_sec = linked
            .sections
            .iter()
            .find(|s| s.name == spec.name)
            .unwrap_or_else(|| panic!("{} missing from the output", spec.name));
        base_of.push(out_sec.addr);
        let mut bytes: Vec<u8> = Vec::new();
        for &(f, s) in &placed[o] {
            let sec = &inputs[f].1.sections[s];
            let contents = match id_of.get(&(f, s)) {
                Some(&id) if merged.outcome(id) == Some(Outcome::Excluded) => continue,
                Some(&id) => merged.contents(id).expect("contents"),
                None => sec.data.clone(),
            };
            bytes.resize(bytes.len().next_multiple_of(sec.align.max(1) as usize), 0);
            offset_of.insert((f, s), bytes.len() as u64);
            // Relocated sections are never merged; take ld's bytes for their patched contents.
            let range = bytes.len()..bytes.len() + contents.len();
            match out_sec.data.get(range) {
                Some(patched) if sec.relocated => bytes.extend_from_slice(patched),
                _ => bytes.extend_from_slice(&contents),
            }
        }
        assert_eq!(
            bytes.len() as u64,
            out_sec.data.len() as u64,
            "size of {}",
            spec.name
        );
        assert!(bytes == out_sec.data, "contents of {} differ", spec.name);
        tally.bytes += bytes.len() as u64;
    }

    // Symbols: every name defined exactly once across the inputs and present in the output.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (_, obj) in inputs {
        for sym in &obj.symbols {
            *seen.entry(sym.name.as_str()).or_default() += 1;
        }
    }
    let linked_syms: HashMap<&str, u64> = linked
        .symbols
        .iter()
        .map(|s| (s.name.as_str(), s.value))
        .collect();
    // ld writes an input file's local symbols only while copying one of its sections into the
    // output; a file whose placed sections were all excluded by merging loses its locals.
    let mut written: HashSet<usize> = HashSet::new();
    for &(f, s) in placed.iter().flatten() {
        let excluded = id_of
            .get(&(f, s))
            .is_some_and(|&id| merged.outcome(id) == Some(Outcome::Excluded));
        if !excluded {
            written.insert(f);
        }
    }
    let mut wrong = Vec::new();
    for (f, (file, obj)) in inputs.iter().enumerate() {
        for sym in &obj.symbols {
            let Some(&o) = home.get(&(f, sym.shndx)) else {
                continue;
            };
            if seen[sym.name.as_str()] != 1 {
                continue;
            }
            let id = id_of.get(&(f, sym.shndx)).copied();
            let actual = linked_syms.get(sym.name.as_str()).copied();
            if !sym.global && !written.contains(&f) {
                assert_eq!(actual, None, "{file}:{} should be dropped", sym.name);
                tally.dropped_locals += 1;
                continue;
            }
            let Some(actual) = actual else {
                panic!("{file}:{} missing from the output", sym.name);
            };
            let predicted = match id {
                Some(id) => {
                    let t = merged.map_offset(id, sym.value).expect("known id");
                    let key = keys[t.id];
                    base_of[home[&key]] + offset_of.get(&key).copied().unwrap_or(0) + t.offset
                }
                None => base_of[o] + offset_of[&(f, sym.shndx)] + sym.value,
            };
            tally.symbols += 1;
            if predicted != actual {
                wrong.push(format!(
                    "{file}:{} predicted {predicted:#x}, ld {actual:#x}",
                    sym.name
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "symbol addresses differ:\n{}",
        wrong.join("\n")
    );
    tally
}

/// Assembles `files` (name without `.o`, source), links them in order with the script for `outs`,
/// and compares; `None` when `as` or `ld` is missing.
fn link_and_compare(files: &[(&'static str, &str)], outs: &[Out]) -> Option<Tally> {
    for tool in ["as", "ld"] {
        if !have(tool) {
            eprintln!("{tool} not found, skipping");
            return None;
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut objs = Vec::new();
    for (name, source) in files {
        let src = dir.path().join(format!("{name}.s"));
        std::fs::write(&src, source).expect("write source");
        let obj = format!("{name}.o");
        run(Command::new("as")
            .current_dir(dir.path())
            .arg(&src)
            .arg("-o")
            .arg(&obj));
        objs.push(obj);
    }
    std::fs::write(dir.path().join("t.lds"), script(outs)).expect("write script");
    run(Command::new("ld")
        .current_dir(dir.path())
        .args(["-T", "t.lds", "-e", "0", "-o", "out"])
        .args(&objs));
    let inputs: Vec<(String, Obj)> = objs
        .iter()
        .map(|o| (o.clone(), read_obj(&dir.path().join(o))))
        .collect();
    let linked = read_obj(&dir.path().join("out"));
    Some(compare(&inputs, outs, &linked))
}

const STR1: &str = r#".section .rodata.str1.1,"aMS",@progbits,1"#;
const STR8: &str = r#".section .rodata.str1.8,"aMS",@progbits,1"#;

#[test]
fn duplicates_and_suffixes_across_files() {
    let c = format!("{STR1}\nc_foo: .asciz \"foo\"\nc_bar: .asciz \"bar\"\nc_oo: .asciz \"oo\"\n");
    let d = format!(
        "{STR1}\nd_bar: .asciz \"bar\"\nd_foobar: .asciz \"foobar\"\nd_x: .asciz \"x\"\n.set d_mid, d_foobar + 2\n"
    );
    let e =
        format!("{STR1}\ne_foo: .asciz \"foo\"\ne_oobar: .asciz \"oobar\"\ne_r: .asciz \"r\"\n");
    // The script places d.o first; ld still registers c.o first (input order).
    let outs = [out(
        ".rodata",
        vec![from("d.o", ".rodata.str1.1"), any(".rodata.str1.1")],
    )];
    let Some(t) = link_and_compare(&[("c", &c), ("d", &d), ("e", &e)], &outs) else {
        return;
    };
    assert_eq!(t.merge_sections, 3);
    assert_eq!(t.excluded, 1, "e.o owns nothing of its own");
    assert_eq!((t.symbols, t.dropped_locals), (7, 3));
}

#[test]
fn alignment_from_input_offset() {
    // "ab" first at an odd offset, later at offset 0 of an 8-aligned section: the later,
    // more aligned copy wins and moves to b.o.
    let a = format!(
        "{STR8}\n.balign 8\na_xy: .asciz \"xy\"\na_ab: .asciz \"ab\"\na_cd: .asciz \"cd\"\na_long: .asciz \"a longer string\"\n"
    );
    let b = format!(
        "{STR8}\n.balign 8\nb_ab: .asciz \"ab\"\n{STR1}\nb1_xy: .asciz \"xy\"\nb1_ab: .asciz \"ab\"\n"
    );
    // A str1.1 section raised to 8-byte alignment by .balign joins the str1.8 unit.
    let c = format!(
        "{STR1}\nc_q: .asciz \"q\"\n.balign 8\nc_long: .asciz \"a longer string\"\nc_cd: .asciz \"cd\"\n"
    );
    let outs = [out(
        ".rodata",
        vec![any(".rodata.str1.1"), any(".rodata.str1.8")],
    )];
    let Some(t) = link_and_compare(&[("a", &a), ("b", &b), ("c", &c)], &outs) else {
        return;
    };
    assert_eq!(t.merge_sections, 4);
    assert_eq!(t.symbols, 10);
}

#[test]
fn empty_strings_and_nul_padding() {
    // Leading NULs, explicit empty strings, runs of NULs and labels inside padding. In n1 a
    // padding NUL sits on a 4-aligned offset (an empty string is recorded); n2 has none, so a
    // label in its padding maps to the terminator of the unit's first string.
    let n1 = format!(
        "{STR1}\n.balign 4\nn1_z: .byte 0, 0, 0\nn1_e: .asciz \"\"\nn1_abc: .asciz \"abc\"\nn1_pad: .zero 5\nn1_de: .asciz \"de\"\n.set n1_mid, n1_de + 1\n.balign 4\n"
    );
    let n2 = format!(
        "{STR1}\n.balign 4\nn2_abc: .asciz \"abc\"\nn2_de: .asciz \"de\"\nn2_pad: .byte 0\nn2_k: .asciz \"fgh\"\n"
    );
    let n3 =
        format!("{STR1}\n.balign 4\nn3_k: .asciz \"k\"\nn3_pad: .byte 0, 0\nn3_q: .asciz \"qq\"\n");
    let outs = [
        out(".ra", vec![from("n1.o", ".rodata.str1.1")]),
        out(".rb", vec![any(".rodata.str1.1")]),
    ];
    let Some(t) = link_and_compare(&[("n1", &n1), ("n2", &n2), ("n3", &n3)], &outs) else {
        return;
    };
    assert_eq!(t.symbols, 13);
}

#[test]
fn fixed_size_constants() {
    let cst = |tag: &str| {
        format!(
            ".section .rodata.cst4,\"aM\",@progbits,4\n.balign 4\n{tag}_f1: .long 1\n{tag}_f2: .long 2\n\
             .section .rodata.cst8,\"aM\",@progbits,8\n.balign 8\n{tag}_d1: .quad 7\n{tag}_d2: .quad 9\n.set {tag}_d2b, {tag}_d2 + 4\n\
             .section .rodata.cst16,\"aM\",@progbits,16\n.balign 16\n{tag}_x: .quad 1, 2\n"
        )
    };
    let k1 = cst("k1");
    let k2 = format!(
        "{}\n.section .rodata.cst8,\"aM\",@progbits,8\nk2_d3: .quad 11\n",
        cst("k2")
    );
    // gas pads this to two entries and leaves it unaligned; it still merges.
    let odd = ".section .rodata.cst8,\"aM\",@progbits,8\nodd_p: .long 1, 2, 3\n".to_string();
    // Left alone: relocations, and an entity size that disagrees with the alignment.
    let rel = ".section .rodata.cst8,\"aM\",@progbits,8\n.balign 8\nrel_q: .quad rel_q\n\
               .section .rodata.e3,\"aM\",@progbits,3\n.balign 4\nrel_e: .byte 1, 2, 3, 1, 2, 3\n"
        .to_string();
    let outs = [out(
        ".rodata",
        vec![
            any(".rodata.cst16"),
            any(".rodata.cst8"),
            any(".rodata.cst4"),
            any(".rodata.e3"),
        ],
    )];
    let Some(t) = link_and_compare(
        &[("k1", &k1), ("k2", &k2), ("odd", &odd), ("rel", &rel)],
        &outs,
    ) else {
        return;
    };
    assert_eq!(t.unmerged, 2);
    assert!(t.excluded >= 2, "k2's cst4 and cst16 duplicate k1's");
}

#[test]
fn separate_output_sections_do_not_merge() {
    let p = format!("{STR1}\np_s: .asciz \"shared\"\np_t: .asciz \"tail\"\n");
    let q = format!("{STR1}\nq_s: .asciz \"shared\"\nq_u: .asciz \"ail\"\n");
    let r = format!("{STR1}\nr_s: .asciz \"shared\"\nr_t: .asciz \"detail\"\n");
    let outs = [
        out(".rodata", vec![from("p.o", ".rodata.str1.1")]),
        out(".rodata2", vec![any(".rodata.str1.1")]),
    ];
    let Some(t) = link_and_compare(&[("p", &p), ("q", &q), ("r", &r)], &outs) else {
        return;
    };
    assert_eq!(t.excluded, 0);
    assert_eq!(t.symbols, 6);
}

#[test]
fn unterminated_last_string() {
    let u = format!("{STR1}\nu_s: .asciz \"zz\"\nu_abc: .ascii \"abc\"\n");
    let v = format!("{STR1}\nv_abc: .asciz \"abc\"\nv_xabc: .asciz \"xabc\"\n");
    let w = format!("{STR1}\nw_open: .ascii \"open\"\n");
    let outs = [out(".rodata", vec![any(".rodata.str1.1")])];
    let Some(t) = link_and_compare(&[("u", &u), ("v", &v), ("w", &w)], &outs) else {
        return;
    };
    assert_eq!(t.unmerged, 0);
    assert_eq!(t.symbols, 5);
}

#[test]
fn wide_strings() {
    let w2 = |tag: &str| {
        format!(
            ".section .rodata.str2.2,\"aMS\",@progbits,2\n{tag}_a: .2byte 0x41, 0x42, 0\n{tag}_b: .2byte 0x42, 0\n\
             {tag}_z: .2byte 0, 0\n{tag}_c: .2byte 0x4300, 0x43, 0\n.set {tag}_odd, {tag}_c + 3\n\
             .section .rodata.str4.4,\"aMS\",@progbits,4\n.balign 4\n{tag}_w: .4byte 0x1f600, 0x1f601, 0\n{tag}_v: .4byte 0x1f601, 0\n"
        )
    };
    let (x, y) = (w2("x"), w2("y"));
    let outs = [out(
        ".rodata",
        vec![any(".rodata.str2.2"), any(".rodata.str4.4")],
    )];
    let Some(t) = link_and_compare(&[("x", &x), ("y", &y)], &outs) else {
        return;
    };
    assert_eq!(t.merge_sections, 4);
    assert_eq!(t.excluded, 2, "y.o's sections duplicate x.o's");
}

#[test]
fn trailing_padding_goes_to_the_owner_of_the_last_entry() {
    // All sizes are multiples of 4, so ld pads the section owning the last entry. In .ra that is
    // b.o, whose only string folds into a.o's: the padding is lost and a.o stays 7 bytes long.
    let a = format!("{STR1}\n.balign 4\na_s: .asciz \"foobar\"\n.balign 4\n");
    let b = format!("{STR1}\n.balign 4\nb_s: .asciz \"ar\"\n.balign 4\n");
    let c = format!("{STR1}\n.balign 4\nc_s: .asciz \"xyz\"\nc_t: .asciz \"qqqqq\"\n.balign 4\n");
    let outs = [
        out(
            ".ra",
            vec![from("a.o", ".rodata.str1.1"), from("b.o", ".rodata.str1.1")],
        ),
        out(".rb", vec![from("c.o", ".rodata.str1.1")]),
    ];
    let Some(t) = link_and_compare(&[("a", &a), ("b", &b), ("c", &c)], &outs) else {
        return;
    };
    assert_eq!(t.excluded, 1);
}

/// A kernel build's final-link objects: vmlinux.a members in archive order, then
/// init/version-timestamp.o. Links them keeping only string and `.comment` sections.
fn corpus_link(build: &str, ld: &str) -> Option<Tally> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus"));
    let objtree = root.join("builds/6.12").join(build).join("objtree");
    if !objtree.is_dir() {
        eprintln!("corpus not found at {}, skipping", objtree.display());
        return None;
    }
    if !have(ld) {
        eprintln!("{ld} not found, skipping");
        return None;
    }
    let mut members = archive_members(&objtree, "vmlinux.a");
    members.push("init/version-timestamp.o".into());

    let outs = [
        out(
            ".rodata",
            vec![
                any(".rodata.str1.1"),
                any(".rodata.str1.4"),
                any(".rodata.str1.8"),
            ],
        ),
        out(".comment", vec![any(".comment")]),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let lds = dir.path().join("t.lds");
    std::fs::write(&lds, script(&outs)).expect("write script");
    let output = dir.path().join("out");
    run(Command::new(ld)
        .current_dir(&objtree)
        .arg("-T")
        .arg(&lds)
        // -s: the symbol table would need definitions of protected `__start_*` symbols.
        .args(["-e", "0", "-s", "--unresolved-symbols=ignore-all", "-o"])
        .arg(&output)
        .args(&members));

    let inputs: Vec<(String, Obj)> = members
        .iter()
        .map(|m| (m.clone(), read_obj(&objtree.join(m))))
        .collect();
    let linked = read_obj(&output);
    let started = std::time::Instant::now();
    let tally = compare(&inputs, &outs, &linked);
    eprintln!(
        "{build}: {} objects, {} merge sections ({} excluded), {} output bytes equal, {} symbols; compare took {:?}",
        inputs.len(),
        tally.merge_sections,
        tally.excluded,
        tally.bytes,
        tally.symbols,
        started.elapsed()
    );
    Some(tally)
}

#[test]
fn corpus_x86_64_tinyconfig_strings() {
    if let Some(t) = corpus_link("x86_64-tinyconfig", "ld") {
        assert!(
            t.merge_sections > 500,
            "expected hundreds of merge sections"
        );
    }
}

#[test]
fn corpus_arm_tinyconfig_strings() {
    if let Some(t) = corpus_link("arm-tinyconfig", "arm-linux-gnueabihf-ld") {
        assert!(
            t.merge_sections > 400,
            "expected hundreds of merge sections"
        );
    }
}

#[test]
fn sections_ld_leaves_alone_keep_size_and_offsets() {
    let section = |id: usize, data: &'static [u8], entsize: u64, align: u64| MergeInput {
        id,
        group: 0,
        data,
        entsize,
        align,
        strings: false,
        has_relocations: false,
    };
    let cases = [
        (section(0, b"", 4, 4), Unmerged::Empty),
        (section(1, b"abcd", 0, 4), Unmerged::ZeroEntsize),
        (section(2, b"abcdef", 4, 4), Unmerged::PartialEntry),
        (section(3, b"abcdef", 3, 4), Unmerged::EntsizeAlignMismatch),
        (
            section(4, b"abcdefgh", 4, 1 << 40),
            Unmerged::AlignmentTooLarge,
        ),
    ];
    let inputs: Vec<MergeInput<'_>> = cases.iter().map(|(input, _)| *input).collect();
    let merged = merge(&inputs).expect("merge");
    for (input, reason) in cases {
        assert_eq!(merged.outcome(input.id), Some(Outcome::Unmerged(reason)));
        assert_eq!(merged.size(input.id), Some(input.data.len() as u64));
        assert_eq!(merged.contents(input.id).as_deref(), Some(input.data));
        let mapped = merged.map_offset(input.id, 2).expect("known id");
        assert_eq!((mapped.id, mapped.offset), (input.id, 2));
    }
}

#[test]
fn duplicate_ids_are_an_error() {
    let data = b"a\0";
    let one = MergeInput {
        id: 7,
        group: 0,
        data,
        entsize: 1,
        align: 1,
        strings: true,
        has_relocations: false,
    };
    assert!(merge(&[one, one]).is_err());
    let names: HashSet<usize> = merge(&[one])
        .expect("merge")
        .outcomes()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(names, HashSet::from([7]));
}

/// Member paths of a thin archive, relative to the directory `archive` is relative to (thin
/// archives store them relative to the archive's own directory).
fn archive_members(root: &Path, archive: &str) -> Vec<String> {
    let path = root.join(archive);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let parsed = object::read::archive::ArchiveFile::parse(&*bytes).expect("parse archive");
    let dir = Path::new(archive).parent().unwrap_or(Path::new(""));
    parsed
        .members()
        .map(|m| {
            let name = String::from_utf8_lossy(m.expect("member").name()).into_owned();
            dir.join(name).display().to_string()
        })
        .collect()
}

/// An input section named in a map: (file, section name, occurrence of that name in the file).
type MapKey = (String, String, usize);

/// One input-section line of an ld map: its output section, address and size.
struct MapLine {
    output: String,
    addr: u64,
    size: u64,
}

fn hex(token: &str) -> Option<u64> {
    u64::from_str_radix(token.strip_prefix("0x")?, 16).ok()
}

/// Parses an ld map: archive members in load order, and every input section listed under
/// "Linker script and memory map", keyed by (file, section name, occurrence in that file).
fn parse_map(text: &str) -> (Vec<String>, HashMap<MapKey, MapLine>) {
    let mut loaded = Vec::new();
    let mut sections = HashMap::new();
    let mut part = "";
    let mut output = String::new();
    let mut pending: Option<String> = None;
    let mut occurrences: HashMap<(String, String), usize> = HashMap::new();
    for line in text.lines() {
        if line.starts_with("Archive member included") {
            part = "archive";
            continue;
        }
        if line.starts_with("Discarded input sections") || line.starts_with("Memory Configuration")
        {
            part = "";
            continue;
        }
        if line.starts_with("Linker script and memory map") {
            part = "map";
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        match part {
            "archive" if !line.starts_with(' ') && !tokens.is_empty() => {
                loaded.push(tokens[0].to_string());
            }
            "map" if !line.starts_with(' ') && !tokens.is_empty() => {
                output = tokens[0].to_string();
                pending = None;
            }
            "map" if line.starts_with(' ') && !line.starts_with("  ") && !tokens.is_empty() => {
                let name = tokens[0].to_string();
                if let [_, addr, size, file] = tokens[..] {
                    record_map_line(
                        &mut sections,
                        &mut occurrences,
                        &output,
                        name,
                        addr,
                        size,
                        file,
                    );
                } else if tokens.len() == 1 {
                    pending = Some(name);
                }
            }
            "map" => {
                if let (Some(name), [addr, size, file]) = (pending.take(), &tokens[..]) {
                    record_map_line(
                        &mut sections,
                        &mut occurrences,
                        &output,
                        name,
                        addr,
                        size,
                        file,
                    );
                }
            }
            _ => {}
        }
    }
    (loaded, sections)
}

fn record_map_line(
    sections: &mut HashMap<MapKey, MapLine>,
    occurrences: &mut HashMap<(String, String), usize>,
    output: &str,
    name: String,
    addr: &str,
    size: &str,
    file: &str,
) {
    let (Some(addr), Some(size)) = (hex(addr), hex(size)) else {
        return;
    };
    let nth = occurrences
        .entry((file.to_string(), name.clone()))
        .or_default();
    sections.insert(
        (file.to_string(), name, *nth),
        MapLine {
            output: output.to_string(),
            addr,
            size,
        },
    );
    *nth += 1;
}

/// The real first kallsyms-pass link of the tiny x86_64 kernel with `-Map`: input order from the
/// command line and the map's archive-member list, output sections from the map. Every merge
/// section ld kept must have the predicted size and bytes at the address ld gave it.
#[test]
fn corpus_x86_64_tinyconfig_real_link() {
    let build = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/builds/6.12/x86_64-tinyconfig"
    ));
    let objtree = build.join("objtree");
    if !objtree.is_dir() {
        eprintln!("corpus not found at {}, skipping", objtree.display());
        return;
    }
    if !have("ld") {
        eprintln!("ld not found, skipping");
        return;
    }
    let commands = std::fs::read_to_string(build.join("link-commands.sh")).expect("commands");
    let first = commands
        .lines()
        .find(|l| l.starts_with("ld "))
        .expect("an ld command");
    let dir = tempfile::tempdir().expect("tempdir");
    let (image, map) = (dir.path().join("image"), dir.path().join("map"));
    let mut args: Vec<String> = first.split_whitespace().skip(1).map(String::from).collect();
    let out_at = args.iter().position(|a| a == "-o").expect("-o") + 1;
    args[out_at] = image.display().to_string();
    run(Command::new("ld")
        .current_dir(&objtree)
        .args(&args)
        .arg("-Map")
        .arg(&map));
    let (loaded, listed) = parse_map(&std::fs::read_to_string(&map).expect("read map"));

    // Input order: plain objects where they stand; each archive (or --start-group of archives)
    // contributes the members ld loaded from it, in load order.
    let mut order: Vec<String> = Vec::new();
    let mut next = 0;
    let mut group: Vec<String> = Vec::new();
    let mut in_group = false;
    let mut take_members = |archives: &[String], order: &mut Vec<String>| {
        let members: HashSet<String> = archives
            .iter()
            .flat_map(|a| archive_members(&objtree, a))
            .collect();
        while next < loaded.len() && members.contains(&loaded[next]) {
            order.push(loaded[next].clone());
            next += 1;
        }
    };
    for arg in &args {
        match arg.as_str() {
            "--start-group" => in_group = true,
            "--end-group" => {
                take_members(&group, &mut order);
                group.clear();
                in_group = false;
            }
            a if a.ends_with(".a") && in_group => group.push(a.to_string()),
            a if a.ends_with(".a") => take_members(&[a.to_string()], &mut order),
            a if a.ends_with(".o") => order.push(a.to_string()),
            _ => {}
        }
    }
    assert_eq!(
        next,
        loaded.len(),
        "every loaded archive member has a place"
    );

    let objs: Vec<Obj> = order.iter().map(|f| read_obj(&objtree.join(f))).collect();
    let mut outputs: Vec<String> = Vec::new();
    let mut keys = Vec::new();
    let mut inputs = Vec::new();
    for (f, obj) in objs.iter().enumerate() {
        let mut nth: HashMap<&str, usize> = HashMap::new();
        for sec in &obj.sections {
            let n = nth.entry(sec.name.as_str()).or_default();
            let key = (order[f].clone(), sec.name.clone(), *n);
            *n += 1;
            let Some(line) = listed.get(&key) else {
                continue;
            };
            if sec.flags & SHF_MERGE == 0 {
                continue;
            }
            let group = outputs
                .iter()
                .position(|o| *o == line.output)
                .unwrap_or_else(|| {
                    outputs.push(line.output.clone());
                    outputs.len() - 1
                });
            inputs.push(MergeInput {
                id: keys.len(),
                group,
                data: &sec.data,
                entsize: sec.entsize,
                align: sec.align,
                strings: sec.flags & SHF_STRINGS != 0,
                has_relocations: sec.relocated,
            });
            keys.push(key);
        }
    }
    let merged = merge(&inputs).expect("merge");

    let linked = read_obj(&image);
    let (mut kept, mut excluded, mut bytes) = (0, 0, 0u64);
    for (id, key) in keys.iter().enumerate() {
        let line = &listed[key];
        match merged.outcome(id).expect("known id") {
            Outcome::Kept { size } => {
                assert_eq!(line.size, size, "merged size of {key:?}");
                let out = linked
                    .sections
                    .iter()
                    .find(|s| s.name == line.output)
                    .expect("output section");
                let at = (line.addr - out.addr) as usize;
                let actual = out.data.get(at..at + size as usize).expect("in range");
                assert!(
                    merged.contents(id).as_deref() == Some(actual),
                    "bytes of {key:?}"
                );
                kept += 1;
                bytes += size;
            }
            Outcome::Excluded => {
                assert_eq!(line.size, inputs[id].data.len() as u64, "{key:?}");
                excluded += 1;
            }
            Outcome::Unmerged(_) => assert_eq!(line.size, inputs[id].data.len() as u64),
        }
    }
    eprintln!(
        "real link: {} inputs, {} merge sections: {kept} kept ({bytes} bytes equal), {excluded} excluded",
        order.len(),
        keys.len()
    );
    assert!(kept > 100);
}
