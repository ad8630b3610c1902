//! GNU ld command lines → LinkRequest.

use std::path::{Path, PathBuf};

use ldcheck::link_args::{
    BuildId, Discard, InputItem, LinkArgsError, LinkRequest, OrphanHandling, SortCommon,
    SortSection, Strip,
};

fn parse(line: &str) -> Result<LinkRequest, LinkArgsError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    LinkRequest::parse(&words)
}

fn file(p: &str) -> InputItem {
    InputItem::File(PathBuf::from(p))
}

#[test]
fn kbuild_x86_64_line() {
    let r = parse(
        "-m elf_x86_64 -z noexecstack --no-warn-rwx-segments -z max-page-size=0x200000 --build-id=sha1 \
         --orphan-handling=warn --script=./arch/x86/kernel/vmlinux.lds --strip-debug -o .tmp_vmlinux1 \
         --whole-archive vmlinux.a init/version-timestamp.o --no-whole-archive --start-group lib/lib.a \
         arch/x86/lib/lib.a --end-group .tmp_vmlinux0.kallsyms.o",
    )
    .unwrap();
    assert_eq!(r.emulation.as_deref(), Some("elf_x86_64"));
    assert_eq!(r.execstack, Some(false));
    assert_eq!(r.max_page_size, Some(0x200000));
    assert_eq!(r.build_id, Some(BuildId::Sha1));
    assert_eq!(r.orphan_handling, OrphanHandling::Warn);
    assert_eq!(r.scripts, [PathBuf::from("./arch/x86/kernel/vmlinux.lds")]);
    assert_eq!(r.strip, Strip::Debug);
    assert_eq!(r.output, Some(PathBuf::from(".tmp_vmlinux1")));
    assert_eq!(
        r.inputs,
        [
            InputItem::WholeArchive,
            file("vmlinux.a"),
            file("init/version-timestamp.o"),
            InputItem::NoWholeArchive,
            InputItem::StartGroup,
            file("lib/lib.a"),
            file("arch/x86/lib/lib.a"),
            InputItem::EndGroup,
            file(".tmp_vmlinux0.kallsyms.o"),
        ]
    );
    assert_eq!(r.ignored.len(), 1);
    assert_eq!(r.ignored[0].option, "--no-warn-rwx-segments");
    assert_eq!(r.z_keywords, ["noexecstack", "max-page-size=0x200000"]);
}

#[test]
fn kbuild_arm_line() {
    let r = parse(
        "-EL -z noexecstack --no-warn-rwx-segments --no-undefined -X --pic-veneer -z norelro --build-id=sha1 \
         --orphan-handling=warn --script=./arch/arm/kernel/vmlinux.lds -o vmlinux --whole-archive vmlinux.a \
         init/version-timestamp.o --no-whole-archive --start-group arch/arm/lib/lib.a lib/lib.a --end-group \
         .tmp_vmlinux2.kallsyms.o",
    )
    .unwrap();
    assert_eq!(r.little_endian, Some(true));
    assert_eq!(r.relro, Some(false));
    assert_eq!(r.discard, Discard::Locals);
    assert_eq!(r.strip, Strip::None);
    let ignored: Vec<&str> = r.ignored.iter().map(|i| i.option.as_str()).collect();
    assert_eq!(ignored, ["--no-warn-rwx-segments", "--no-undefined"]);
    assert!(r.pic_veneer);
    assert!(!r.no_merge_exidx_entries);
    assert_eq!(r.fix_cortex_a8, None);
    assert!(r.ignored.iter().all(|i| !i.note.is_empty()));
}

#[test]
fn value_forms_match_getopt_long_only() {
    let a =
        parse("-T a.lds -melf_i386 -ofoo -zmax-page-size=4096 -e start -L dir -lc x.o").unwrap();
    let b = parse("--script a.lds -m elf_i386 --output=foo -z max-page-size=4096 --entry=start -Ldir -l c x.o")
        .unwrap();
    let c = parse("-script=a.lds -m elf_i386 -output foo -z max-page-size=010000 -entry start --library-path=dir --library=c x.o")
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(b.max_page_size, Some(4096));
    assert_eq!(c.max_page_size, Some(4096));
    assert_eq!(a.scripts, c.scripts);
    assert_eq!(a.inputs, c.inputs);
    assert_eq!(a.inputs, [InputItem::Library("c".into()), file("x.o")]);
    assert_eq!(c.library_paths, [PathBuf::from("dir")]);
    assert_eq!(parse("-Ta.lds").unwrap().scripts, [PathBuf::from("a.lds")]);
}

#[test]
fn layout_options_recorded() {
    let r = parse(
        "--defsym foo=0x10 --defsym=bar=foo+4 --sort-section=alignment --sort-common -N -x --emit-relocs \
         --gc-sections -( a.a -) --build-id -Ttext=0x1000 --section-start=.foo=2000 -z common-page-size=0x2000 \
         -z separate-code -u need",
    )
    .unwrap();
    assert_eq!(
        r.defsyms,
        [
            ("foo".into(), "0x10".into()),
            ("bar".into(), "foo+4".into())
        ]
    );
    assert_eq!(r.sort_section, Some(SortSection::Alignment));
    assert_eq!(r.sort_common, Some(SortCommon::Descending));
    assert!(r.omagic && r.emit_relocs && r.gc_sections);
    assert_eq!(r.discard, Discard::All);
    assert_eq!(
        r.inputs,
        [InputItem::StartGroup, file("a.a"), InputItem::EndGroup]
    );
    assert_eq!(r.build_id, Some(BuildId::Sha1));
    assert_eq!(
        r.section_starts,
        [(".text".into(), 0x1000), (".foo".into(), 0x2000)]
    );
    assert_eq!(r.common_page_size, Some(0x2000));
    assert_eq!(r.separate_code, Some(true));
    assert_eq!(r.undefined, ["need"]);

    let r = parse(
        "-n -S --discard-none --sort-common=ascending --build-id=0x0102abcd --sort-section name",
    )
    .unwrap();
    assert!(r.nmagic);
    assert_eq!(r.strip, Strip::Debug);
    assert_eq!(r.discard, Discard::None);
    assert_eq!(r.sort_common, Some(SortCommon::Ascending));
    assert_eq!(r.build_id, Some(BuildId::Hex(vec![1, 2, 0xab, 0xcd])));
    assert_eq!(r.build_id.as_ref().map(BuildId::len), Some(4));
    assert_eq!(r.sort_section, Some(SortSection::Name));
    assert_eq!(
        parse("--build-id=md5").unwrap().build_id.map(|b| b.len()),
        Some(16)
    );
    assert!(
        parse("--build-id=none")
            .unwrap()
            .build_id
            .unwrap()
            .is_empty()
    );
    assert_eq!(parse("-Sx").unwrap().discard, Discard::All);
}

#[test]
fn errors_name_the_problem() {
    let e = parse("-r -o x.o a.o").unwrap_err();
    assert!(matches!(e, LinkArgsError::Relocatable(_)));
    assert!(e.to_string().contains("-r"));
    assert!(matches!(
        parse("--relocatable a.o"),
        Err(LinkArgsError::Relocatable(_))
    ));
    let e = parse("--frobnicate -Q a.o --also-bad=1").unwrap_err();
    assert_eq!(
        e,
        LinkArgsError::Unknown(vec![
            "--frobnicate".into(),
            "-Q".into(),
            "--also-bad=1".into()
        ])
    );
    assert!(e.to_string().contains("--frobnicate"));
    assert_eq!(
        parse("a.o -o").unwrap_err(),
        LinkArgsError::MissingValue("-o".into())
    );
    assert!(matches!(
        parse("--sort-section=size"),
        Err(LinkArgsError::BadValue { .. })
    ));
    assert!(matches!(
        parse("-z max-page-size=big"),
        Err(LinkArgsError::BadValue { .. })
    ));
    assert!(matches!(
        parse("--defsym foo"),
        Err(LinkArgsError::BadValue { .. })
    ));
    assert!(matches!(
        parse("--orphan-handling=maybe"),
        Err(LinkArgsError::BadValue { .. })
    ));
    assert!(matches!(
        parse("--build-id=0xé1"),
        Err(LinkArgsError::BadValue { .. })
    ));
    assert!(matches!(
        parse("--whole-archive=1"),
        Err(LinkArgsError::BadValue { .. })
    ));
}

#[test]
fn response_files_expand_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("inner.rsp");
    std::fs::write(&inner, "--start-group 'a b.a' --end-group").unwrap();
    let outer = dir.path().join("outer.rsp");
    std::fs::write(
        &outer,
        format!("-m elf_i386 \"x y.o\" z\\ w.o @{}\n", inner.display()),
    )
    .unwrap();
    let arg = format!("@{}", outer.display());
    let r = LinkRequest::parse(&["-o", "out", arg.as_str(), "last.o"]).unwrap();
    assert_eq!(r.emulation.as_deref(), Some("elf_i386"));
    assert_eq!(
        r.inputs,
        [
            file("x y.o"),
            file("z w.o"),
            InputItem::StartGroup,
            file("a b.a"),
            InputItem::EndGroup,
            file("last.o")
        ]
    );
    let missing = format!("@{}", dir.path().join("nope").display());
    assert!(matches!(
        LinkRequest::parse(&[missing]),
        Err(LinkArgsError::ResponseFile { .. })
    ));
    let looping = dir.path().join("loop.rsp");
    std::fs::write(&looping, format!("@{}", looping.display())).unwrap();
    let arg = format!("@{}", looping.display());
    assert!(matches!(
        LinkRequest::parse(&[arg]),
        Err(LinkArgsError::ResponseFile { .. })
    ));
}

#[test]
fn find_library_searches_l_dirs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d2")).unwrap();
    std::fs::write(dir.path().join("d2/libfoo.a"), b"!<arch>\n").unwrap();
    let r = parse("-L d1 -L d2 -lfoo").unwrap();
    assert_eq!(
        r.find_library("foo", dir.path()).unwrap(),
        dir.path().join("d2/libfoo.a")
    );
    assert!(matches!(
        r.find_library("bar", dir.path()),
        Err(LinkArgsError::LibraryNotFound(_))
    ));
}

/// Every link line of every corpus build parses, with the inputs in the order written.
#[test]
fn corpus_link_commands_parse() {
    let builds = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/builds/6.12"
    ));
    if !builds.is_dir() {
        println!("corpus not found at {}, skipping", builds.display());
        return;
    }
    let mut lines = 0;
    for entry in std::fs::read_dir(builds).unwrap() {
        let script = entry.unwrap().path().join("link-commands.sh");
        let Ok(text) = std::fs::read_to_string(&script) else {
            continue;
        };
        for line in text
            .lines()
            .filter(|l| l.starts_with("ld ") || l.contains("-ld "))
        {
            let words: Vec<&str> = line.split_whitespace().skip(1).collect();
            let r =
                LinkRequest::parse(&words).unwrap_or_else(|e| panic!("{}: {e}", script.display()));
            assert_eq!(r.scripts.len(), 1);
            assert!(r.output.is_some());
            let files = words
                .iter()
                .filter(|w| w.ends_with(".o") || w.ends_with(".a"))
                .count();
            let parsed = r
                .inputs
                .iter()
                .filter(|i| matches!(i, InputItem::File(_)))
                .count();
            assert_eq!(files, parsed, "{line}");
            lines += 1;
        }
    }
    assert!(lines >= 6, "found {lines} link lines");
}
