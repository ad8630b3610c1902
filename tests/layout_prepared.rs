//! A prepared link laid out again with its kallsyms object swapped for one with other tables
//! gives exactly what a full link of the new inputs gives; a swap that changes more than sizes
//! and values is refused.

mod common;

use ldcheck::analysis::passes::kallsyms_object;
use ldcheck::input::select::LinkSet;
use ldcheck::kallsyms::{Options, PtrWidth, RodataLayout, Version, build_tables, parse_symbol_map};
use ldcheck::layout::model::{InputFile, from_link_set};
use ldcheck::layout::{Layout, PreparedLink, link, prepare_inputs};
use ldcheck::simulate::{LinkSession, predicted_nm};
use ldcheck::target::ElfClass;

/// The tables of the build's real System.map.
fn real_tables(map: &[u8], ptr: PtrWidth) -> RodataLayout {
    let parsed = parse_symbol_map(map, Version::V6_12).expect("System.map");
    build_tables(&parsed, &Options::new(Version::V6_12))
        .expect("tables")
        .rodata_layout(ptr)
}

fn assert_same(a: &Layout, b: &Layout, e_machine: u16, what: &str) {
    assert_eq!(a.sections, b.sections, "{what}: sections");
    assert_eq!(a.removed, b.removed, "{what}: removed sections");
    assert_eq!(
        predicted_nm(a, e_machine),
        predicted_nm(b, e_machine),
        "{what}: nm -n"
    );
}

#[test]
fn swapped_kallsyms_object_lays_out_like_a_full_link() {
    let Some(builds) = common::builds_with_inputs() else {
        return;
    };
    for build in builds {
        let args = common::final_link_args(&build);
        let session = LinkSession::open(&args, &build.join("objtree")).expect("open session");
        let options = session.options().expect("options");
        let script = session.script().expect("script");
        let set = LinkSet::resolve(session.store(), session.items(), Some(session.target), &[])
            .expect("link set");
        let base = from_link_set(&set, &session.base);
        let ptr = match session.target.class {
            ElfClass::Elf64 => PtrWidth::Bits64,
            ElfClass::Elf32 => PtrWidth::Bits32,
        };
        let map = std::fs::read(build.join("System.map")).expect("System.map");
        let template = real_tables(&map, ptr);
        let real = template.size;
        let tables_of_size = |size: u64| RodataLayout {
            size,
            ..template.clone()
        };
        let with = |object: InputFile<'static>| {
            let mut files: Vec<InputFile<'_>> = base.clone();
            files.push(object);
            files
        };
        let mut first = with(kallsyms_object(
            &tables_of_size(real),
            ".tmp_vmlinux1.kallsyms.o",
            session.target,
        ));
        prepare_inputs(&mut first, &options);
        let prepared = PreparedLink::new(&script, &first, &options).expect("prepare");
        let index = first.len() - 1;
        // Sizes around the real one, including ones that cross the next page.
        for size in [
            real,
            real + 1,
            real + 0x7f,
            real + 0x1000,
            real.saturating_sub(0x40),
        ] {
            let object = kallsyms_object(
                &tables_of_size(size),
                ".tmp_vmlinux2.kallsyms.o",
                session.target,
            );
            let relaid = prepared
                .layout_with(index, object.clone())
                .expect("same shape")
                .expect("relayout");
            let full = link(&script, with(object), &options).expect("full link");
            assert_same(
                &relaid,
                &full,
                session.target.e_machine,
                &format!("{} tables of {size:#x} bytes", build.display()),
            );
        }
        // Another shape (an extra label) cannot reuse the prepared state.
        let mut other = kallsyms_object(&tables_of_size(real), "x.o", session.target);
        other.symbols = {
            let mut symbols = other.symbols.to_vec();
            let mut extra = symbols[1].clone();
            extra.index = symbols.len();
            extra.name = "kallsyms_extra_label";
            symbols.push(extra);
            symbols.into()
        };
        other.reloc_referenced.push(false);
        assert!(prepared.layout_with(index, other).is_none());
    }
}
