//! GNU ld semantics, each checked by linking for real: tiny inputs are assembled with `as`,
//! linked with `ld` under a small script, and the simulated layout must match the linked file
//! exactly (every allocated section and the full `nm -n` output).

mod common;

use std::path::Path;

use ldcheck::simulate::LinkSession;
use ldcheck::verify::compare;

const COMMON_ASM: &str = r#"
    .text
    .globl _start
_start:
    nop
    call helper
    .quad p_used, __start_mysec
    .section .rodata.str1.1,"aMS",@progbits,1
    .string "shared"
    .string "red"
"#;

/// An assembler (with its flags), a linker and the emulation the link names.
struct Tools {
    assembler: &'static str,
    as_flags: &'static [&'static str],
    linker: &'static str,
    emulation: &'static str,
}

/// The host's `as` and `ld`.
const fn host(as_flags: &'static [&'static str], emulation: &'static str) -> Tools {
    Tools {
        assembler: "as",
        as_flags,
        linker: "ld",
        emulation,
    }
}

const X86_64: Tools = host(&["--64"], "elf_x86_64");

/// `as -L` keeps assembler temporaries (`.L…`) in the object's symbol table.
const X86_64_KEEP_LABELS: Tools = host(&["--64", "-L"], "elf_x86_64");

const I386: Tools = host(&["--32"], "elf_i386");

/// The kernel's arm64 emulation.
const ARM64: Tools = Tools {
    assembler: "aarch64-linux-gnu-as",
    as_flags: &[],
    linker: "aarch64-linux-gnu-ld",
    emulation: "aarch64elf",
};

/// Assembles `sources`, links them with `script` (plus `extra` ld flags) and compares.
fn check(name: &str, sources: &[(&str, &str)], script: &str, extra: &[&str]) {
    check_for(&X86_64, name, sources, script, extra);
}

/// `check` with the given tools.
fn check_for(tools: &Tools, name: &str, sources: &[(&str, &str)], script: &str, extra: &[&str]) {
    if !common::have_tool(tools.assembler) || !common::have_tool(tools.linker) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let mut objects = Vec::new();
    for (file, text) in sources {
        let src = format!("{file}.s");
        std::fs::write(root.join(&src), text).expect("write source");
        let obj = format!("{file}.o");
        let mut as_args = tools.as_flags.to_vec();
        as_args.extend(["-o", &obj, &src]);
        common::run(root, tools.assembler, &as_args);
        objects.push(obj);
    }
    std::fs::write(root.join("t.lds"), script).expect("write script");
    let mut args: Vec<String> = ["-m", tools.emulation, "-T", "t.lds", "-o", "out"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(objects);
    let ld_args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::run(root, tools.linker, &ld_args);
    let diffs = simulate_and_compare(root, &args);
    assert!(
        diffs.is_empty(),
        "{name}: {} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

fn simulate_and_compare(root: &Path, args: &[String]) -> Vec<String> {
    let session = LinkSession::open(args, root).unwrap_or_else(|e| panic!("open: {e:?}"));
    let layout = session.layout().unwrap_or_else(|e| panic!("layout: {e:?}"));
    let data = std::fs::read(root.join("out")).expect("read output");
    compare(&layout, &data)
        .expect("compare")
        .iter()
        .map(|d| d.to_string())
        .collect()
}

fn helper_asm(extra: &str) -> String {
    format!(
        r#"
    .text
    .globl helper
helper:
    ret
    .section mysec,"a"
    .long 1
    .data
    .globl dvar
dvar: .quad 7
    .section .rodata.str1.1,"aMS",@progbits,1
    .string "shared"
    .string "other"
{extra}
"#
    )
}

#[test]
fn location_counter_and_align() {
    check(
        "dot",
        &[("a", COMMON_ASM), ("b", &helper_asm(""))],
        r#"ENTRY(_start)
SECTIONS {
  . = 0x400000 + 0x1000;
  .text : { _stext = .; *(.text) . = ALIGN(64); _etext = .; }
  . = ALIGN(0x1000);
  top_sym = .;
  .rodata : { *(.rodata*) }
  . = . + 0x100;
  .data : { . = ALIGN(32); *(.data) }
  mysec : { *(mysec) }
  .bss : { *(.bss) }
  PROVIDE(p_used = .);
}"#,
        &[],
    );
}

#[test]
fn empty_sections_and_symbol_rehoming() {
    check(
        "empty",
        &[("a", COMMON_ASM), ("b", &helper_asm(""))],
        r#"ENTRY(_start)
SECTIONS {
  . = 0x400000 + 0x1000;
  .text : { *(.text) }
  .never : { *(.none) }
  .only_sym : { only_sym_start = .; *(.none) only_sym_end = .; }
  .aligned_sym ALIGN(0x100) : { aligned_sym = .; }
  .aligned_empty ALIGN(0x100) : { *(.none) }
  .kept : { kept_start = .; . = ALIGN(0x1000); kept_end = .; }
  .noop : { . = .; }
  .rodata : { *(.rodata*) }
  .between : { between = .; }
  .data : { *(.data) }
  mysec : { *(mysec) }
  .tail : { tail_sym = .; }
  PROVIDE(p_used = .);
}"#,
        &[],
    );
}

#[test]
fn align_subalign_at_and_lma_tracking() {
    check(
        "at",
        &[
            ("a", COMMON_ASM),
            (
                "b",
                &helper_asm(".section .data.x,\"aw\"\n.balign 16\n.quad 1\n"),
            ),
        ],
        r#"ENTRY(_start)
SECTIONS {
  . = 0xffffffff81000000;
  .text : AT(ADDR(.text) - 0xffffffff80000000) { *(.text) }
  .rodata ALIGN(0x100) : { *(.rodata*) }
  .data : SUBALIGN(4) { *(.data) *(.data.*) }
  mysec : AT(LOADADDR(.data) + SIZEOF(.data) + 0x20) { *(mysec) }
  .follow : { follow_sym = .; LONG(0) }
  .got : { *(.got) *(.igot.*) }
  .plt : { *(.plt) *(.iplt) }
  .rela.dyn : { *(.rela.*) }
  PROVIDE(p_used = LOADADDR(mysec));
}"#,
        &[],
    );
}

#[test]
fn memory_regions_and_at_region() {
    check(
        "memory",
        &[("a", COMMON_ASM), ("b", &helper_asm(""))],
        r#"ENTRY(_start)
MEMORY {
  rom (rx) : ORIGIN = 0x400000, LENGTH = 1M
  ram (rwx) : ORIGIN = 0x800000, l = 64K
}
SECTIONS {
  .text : { *(.text) } > rom
  .rodata : { *(.rodata*) } > rom
  .data : { data_start = .; *(.data) } > ram AT> rom
  mysec : { *(mysec) } > ram AT> rom
  rom_end = ORIGIN(rom) + LENGTH(rom);
  PROVIDE(p_used = LOADADDR(.data));
}"#,
        &[],
    );
}

#[test]
fn phdrs_and_build_id() {
    check(
        "phdrs",
        &[("a", COMMON_ASM), ("b", &helper_asm(""))],
        r#"ENTRY(_start)
PHDRS {
  text PT_LOAD FLAGS(5);
  data PT_LOAD FLAGS(6);
  note PT_NOTE FLAGS(0);
}
SECTIONS {
  . = 0x400000 + 0x1000;
  .text : { *(.text) } :text
  .notes : { __start_notes = .; KEEP(*(.note.*)) __stop_notes = .; } :text :note
  .rodata : { *(.rodata*) } :text
  . = ALIGN(0x1000);
  .data : { *(.data) } :data
  mysec : { *(mysec) }
  PROVIDE(p_used = .);
}"#,
        &["--build-id=sha1"],
    );
}

#[test]
fn provide_hidden_absolute_and_builtins() {
    check(
        "symbols",
        &[("a", COMMON_ASM), ("b", &helper_asm(""))],
        r#"ENTRY(_start)
SECTIONS {
  . = 0x400000 + 0x1000;
  num_top = 0x1234;
  .text : {
    *(.text)
    num_in = 0x10;
    abs_in = ABSOLUTE(.);
    rel_in = .;
    HIDDEN(hidden_in = .);
  }
  PROVIDE(p_unused = 1);
  PROVIDE(p_used = ADDR(.text) + 4);
  PROVIDE_HIDDEN(ph_unused = .);
  .rodata : { *(.rodata*) }
  sz = SIZEOF(.text);
  al = ALIGNOF(.rodata);
  mx = MAX(ADDR(.text), ADDR(.rodata));
  mn = MIN(ADDR(.text), ADDR(.rodata));
  df = DEFINED(num_top) ? 1 : 2;
  nd = DEFINED(nothing_here) ? 1 : 2;
  lg = LOG2CEIL(0x1001);
  .data : { *(.data) }
  mysec : { *(mysec) }
  copied = dvar;
  end_sym = .;
}"#,
        &[],
    );
}

/// Top-level assignments derived from `.` join the section `.` is in (`nm` shows its letter),
/// unless the value was made absolute on the way: `ABSOLUTE(…)`, or an operation on addresses in
/// two different sections (arm64's `__pecoff_data_size = ABSOLUTE(. - __initdata_begin)`).
/// An `AT()` section's `LOADADDR` is made absolute too; a plain section's is just absolute.
#[test]
fn dot_derived_top_level_symbols() {
    check(
        "dot_derived",
        &[("a", COMMON_ASM), ("b", &helper_asm(""))],
        r#"ENTRY(_start)
SECTIONS {
  . = 0x400000;
  .text : { start = .; *(.text) }
  .rodata : { *(.rodata*) }
  mysec : { *(mysec) }
  PROVIDE(p_used = 1);
  .data : AT(0x900000) { *(.data) }
  at_dot = .;
  dot_plus = . + 4;
  dot_mask = . & ~0xf;
  dot_align = ALIGN(16);
  dot_max = MAX(., 0x10);
  abs_dot = ABSOLUTE(.);
  abs_diff = ABSOLUTE(. - start);
  diff = . - start;
  diff_back = (. - start) + start;
  abs_plus = ABSOLUTE(.) + 0;
  sym_plus = start + 4;
  at_load = . > 0 ? LOADADDR(.data) : 0;
  plain_load = . > 0 ? LOADADDR(.rodata) : 0;
  addr_diff = ADDR(.data) - start;
  . = ALIGN(0x100);
  after_align = .;
  .bss : { *(.bss) }
}"#,
        &[],
    );
}

/// An undefined symbol (here weak ones, one named by a relocation) reaches the output's symbol
/// table only with `--emit-relocs`, whose kept relocations need it: 6.1's first kallsyms link
/// names the tables weakly and lists none of them.
#[test]
fn undefined_weak_symbols() {
    let asm = "
    .text
    .globl _start
_start:
    .weak weak_used, weak_unused
    .quad weak_used
";
    let script = "SECTIONS { . = 0x1000; .text : { *(.text) } }";
    for (name, extra) in [
        ("undefined_weak", &[][..]),
        ("undefined_weak_emit", &["--emit-relocs"]),
    ] {
        check(name, &[("a", asm)], script, extra);
    }
}

/// An output section named `.text` is never writable, whatever goes into it; any other name
/// is (arm64's `.idmap.text` is "awx").
#[test]
fn text_output_section_is_never_writable() {
    let asm = r#"
    .text
    .globl _start
_start:
    nop
    .section .idmap.text,"awx"
    nop
    .data
    .quad 1
"#;
    for (name, script) in [
        (
            "text_flags",
            "SECTIONS { . = 0x1000; .text : { *(.text) *(.idmap.text) } .other : { *(.data) } }",
        ),
        (
            "text_flags_data_only",
            "SECTIONS { . = 0x1000; .text : { *(.data) } .code : { *(.text) *(.idmap.text) } }",
        ),
    ] {
        check(name, &[("a", asm)], script, &[]);
    }
}

/// arm64's global offset table: one entry per symbol loaded through it (two weak undefined
/// ones, as 6.1's kallsyms.c reads its tables, a global and a local), the reserved entries,
/// `.got.plt`, and `_GLOBAL_OFFSET_TABLE_`; once placed by the script inside `.text` (6.1's
/// arm64 script) and once as orphans.
#[test]
fn arm64_global_offset_table() {
    let asm = r#"
    .text
    .globl _start
_start:
    .weak table_a, table_b
    adrp x0, :got:table_a
    ldr x0, [x0, :got_lo12:table_a]
    adrp x1, :got:table_b
    ldr x1, [x1, :got_lo12:table_b]
    adrp x2, :got:table_a
    ldr x2, [x2, :got_lo12:table_a]
    adrp x3, :got:defined
    ldr x3, [x3, :got_lo12:defined]
    adrp x4, :got:local
    ldr x4, [x4, :got_lo12:local]
    .data
    .globl defined
defined: .quad 1
local: .quad 2
"#;
    for (name, script) in [
        (
            "got_in_text",
            "SECTIONS { . = 0x10000; .text : { *(.text) . = ALIGN(16); *(.got) } \
             .got.plt : { *(.got.plt) } .data : { *(.data) } }",
        ),
        (
            "got_orphan",
            "SECTIONS { . = 0x10000; .text : { *(.text) } .data : { *(.data) } }",
        ),
    ] {
        check_for(&ARM64, name, &[("a", asm)], script, &[]);
    }
}

/// arm64's RELOCATABLE link (`-shared -Bsymbolic -z notext --no-apply-dynamic-relocs`): `.got`
/// and `.got.plt` always exist; each absolute address word in an allocated section becomes a
/// 24-byte dynamic relocation in `.rela.dyn` (against a global even in a discarded section,
/// against a local only in a kept one, never against a hidden undefined weak symbol), as does
/// each GOT entry; hidden globals, defined or only referenced hidden, become local.
#[test]
fn arm64_shared_link() {
    let a = r#"
    .text
    .globl _start
_start:
    adrp x0, :got:gvar
    ldr x0, [x0, :got_lo12:gvar]
    adrp x1, :got:lvar
    ldr x1, [x1, :got_lo12:lvar]
    adrp x2, :got:wundef
    ldr x2, [x2, :got_lo12:wundef]
    adrp x3, rela_start
    add x3, x3, :lo12:rela_start
    .globl hidden_fn
    .hidden hidden_fn
hidden_fn:
    ret
    .hidden rela_start
    .weak wundef, hundef
    .hidden hundef
    .data
lvar: .quad lvar, gvar, bvar, wundef, hundef, _start
    .section .discard.addr,"aw"
    .quad gvar, lvar
    .section .discard.more,"aw"
    .quad lvar
    .section .notes.nonalloc,""
    .quad gvar
"#;
    let b = r#"
    .data
    .globl gvar, bvar
gvar: .quad gvar, 0
bvar: .quad _start
"#;
    let script = "SECTIONS { . = 0xffff800080000000; _text = .; \
        .text : { *(.text) } \
        .got : { *(.got) } .got.plt : { *(.got.plt) } \
        .rela.dyn : ALIGN(8) { rela_start = .; *(.rela .rela*) rela_end = .; } \
        . = ALIGN(0x1000); .data : { *(.data) } \
        /DISCARD/ : { *(.interp .dynamic) *(.dynsym .dynstr .hash .gnu.hash) *(.discard.*) } }";
    let flags = [
        "-shared",
        "-Bsymbolic",
        "-z",
        "notext",
        "--no-apply-dynamic-relocs",
        "-X",
    ];
    check_for(&ARM64, "shared", &[("a", a), ("b", b)], script, &flags);
}

/// A section its data statement creates is read-only until a writable input joins it (arm64's
/// `.pecoff_edata_padding : { BYTE(0); . = ALIGN(…); }`, which makes the `_edata` after it
/// 'R'); one an assignment created first stays writable.
#[test]
fn data_statement_sections_start_read_only() {
    let asm = "    .text\n    .globl _start\n_start: ret\n    .data\n    .quad 1\n";
    for (name, body) in [
        ("data_first", "BYTE(0); . = ALIGN(16);"),
        ("assignment_first", ". = . + 0; BYTE(0);"),
        ("symbol_first", "pad_sym = .; BYTE(0);"),
        ("no_input", "BYTE(0); *(.nothing)"),
        ("writable_input_after", "BYTE(0); *(.data)"),
    ] {
        let script = format!(
            "SECTIONS {{ . = 0x400000; .text : {{ *(.text) }} .pad : {{ {body} }} \
             edata_sym = .; .data : {{ *(.data) }} }}"
        );
        check(name, &[("a", asm)], &script, &[]);
    }
}

/// An object with one function and a `.note.gnu.property` carrying `properties` (type,
/// 4-byte value), laid out as gcc and gas emit it for the ELF class.
fn property_object(name: &str, is_64: bool, properties: &[(u32, u32)]) -> String {
    let mut asm = format!("    .text\n    .globl f_{name}\nf_{name}: nop\n");
    if !properties.is_empty() {
        let (align, per) = if is_64 { (3, 16) } else { (2, 12) };
        asm += &format!(
            "    .section .note.gnu.property,\"a\"\n    .p2align {align}\n\
             \x20   .long 4, {}, 5\n    .asciz \"GNU\"\n",
            per * properties.len()
        );
        for (pr_type, value) in properties {
            asm += &format!("    .long {pr_type:#x}, 4, {value:#x}\n");
            if is_64 {
                asm += "    .long 0\n";
            }
        }
    }
    asm
}

/// A script that keeps every note, with symbols around them and a section after them whose
/// address moves with their size and alignment (6.1's NOTES).
const NOTES_SCRIPT: &str = "SECTIONS { . = 0x400000; .text : { *(.text) } \
    .notes : { __start_notes = .; KEEP(*(.note.*)) __stop_notes = .; } \
    .data : { *(.data) } /DISCARD/ : { *(.note.GNU-stack) } }";

/// Links the objects `files` describes (name, properties) and compares with ld.
fn check_property_merge(tools: &Tools, is_64: bool, case: &str, files: &[(&str, &[(u32, u32)])]) {
    let sources: Vec<(String, String)> = files
        .iter()
        .map(|(name, props)| (name.to_string(), property_object(name, is_64, props)))
        .collect();
    let sources: Vec<(&str, &str)> = sources
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    check_for(tools, case, &sources, NOTES_SCRIPT, &[]);
}

/// ld folds every input's GNU properties into the first input's note (x86 and arm64 feature
/// bits ANDed, the OR ranges ORed, x86's USED range kept only where every input has it), gives
/// that note the merged size or drops it when nothing survives, and drops every other note:
/// 6.1's NOTES keeps them, so this decides the address of everything after `.notes`.
#[test]
fn gnu_property_notes_are_merged() {
    const IBT_SHSTK: (u32, u32) = (0xc000_0002, 3);
    const IBT: (u32, u32) = (0xc000_0002, 1);
    const SHSTK: (u32, u32) = (0xc000_0002, 2);
    const NEEDED: (u32, u32) = (0xc000_8002, 1);
    const USED: (u32, u32) = (0xc001_0002, 4);
    const OR_GENERIC: (u32, u32) = (0xb000_8000, 1);
    const OR_GENERIC_ZERO: (u32, u32) = (0xb000_8000, 0);
    type Case<'a> = (&'a str, &'a [(&'a str, &'a [(u32, u32)])]);
    let x86_64: &[Case<'_>] = &[
        ("and_kept", &[("a", &[IBT_SHSTK]), ("b", &[IBT])]),
        ("and_zero", &[("a", &[IBT]), ("b", &[SHSTK])]),
        (
            "and_missing",
            &[("a", &[IBT_SHSTK]), ("b", &[IBT]), ("c", &[])],
        ),
        (
            "first_has_none",
            &[("c", &[]), ("a", &[NEEDED]), ("b", &[IBT])],
        ),
        (
            "or_survives",
            &[("a", &[IBT, NEEDED]), ("b", &[IBT]), ("c", &[])],
        ),
        ("or_zero", &[("a", &[OR_GENERIC_ZERO]), ("c", &[])]),
        (
            "or_from_later",
            &[("a", &[OR_GENERIC_ZERO]), ("c", &[]), ("b", &[OR_GENERIC])],
        ),
        (
            "used_everywhere",
            &[("a", &[IBT, USED]), ("b", &[IBT, (0xc001_0002, 1)])],
        ),
        ("used_missing", &[("a", &[USED, NEEDED]), ("b", &[NEEDED])]),
    ];
    for (case, files) in x86_64 {
        check_property_merge(&X86_64, true, case, files);
    }
    for (case, files) in [
        (
            "i386_kept",
            &[("a", &[IBT_SHSTK][..]), ("b", &[IBT][..])][..],
        ),
        ("i386_dropped", &[("a", &[IBT][..]), ("c", &[][..])][..]),
    ] {
        check_property_merge(&I386, false, case, files);
    }
    const BTI_PAC: (u32, u32) = (0xc000_0000, 3);
    const PAC: (u32, u32) = (0xc000_0000, 2);
    for (case, files) in [
        (
            "arm64_kept",
            &[("a", &[BTI_PAC][..]), ("b", &[PAC][..])][..],
        ),
        (
            "arm64_dropped",
            &[("c", &[][..]), ("a", &[BTI_PAC][..]), ("b", &[PAC][..])][..],
        ),
    ] {
        check_property_merge(&ARM64, true, case, files);
    }
}

/// A property note the merge does not model (a type ld 2.40 does not merge as a feature bit,
/// here an unknown arm64 type, whose note ld keeps as it is) is refused when the script keeps
/// it, with the file named, and laid out as ld does when the script discards it (6.12's NOTES).
#[test]
fn unmodelled_gnu_property_notes_are_refused() {
    if !common::have_tool(ARM64.assembler) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for (name, props) in [
        ("a", &[(0xc000_0000u32, 3u32)][..]),
        ("u", &[(0xc000_0005, 1)][..]),
    ] {
        let src = format!("{name}.s");
        std::fs::write(root.join(&src), property_object(name, true, props)).expect("write source");
        common::run(root, ARM64.assembler, &["-o", &format!("{name}.o"), &src]);
    }
    let discarding =
        NOTES_SCRIPT.replace(".notes :", "/DISCARD/ : { *(.note.gnu.property) } .notes :");
    for (script, kept) in [(NOTES_SCRIPT, true), (discarding.as_str(), false)] {
        std::fs::write(root.join("t.lds"), script).expect("write script");
        let args = [
            "-m",
            ARM64.emulation,
            "-T",
            "t.lds",
            "-o",
            "out",
            "a.o",
            "u.o",
        ];
        let session = LinkSession::open(&args, root).expect("open");
        match session.layout() {
            Err(e) => {
                let message = e.to_string();
                assert!(kept, "refused with the note discarded: {message}");
                assert!(
                    message.contains("u.o") && message.contains("0xc0000005"),
                    "{message}"
                );
            }
            Ok(_) => {
                assert!(!kept, "an unmodelled property note was laid out");
                common::run(root, ARM64.linker, &args);
                let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                let diffs = simulate_and_compare(root, &args);
                assert!(diffs.is_empty(), "{}", diffs.join("\n"));
            }
        }
    }
}

/// `-shared` is modelled only as arm64's kernels use it: with `-Bsymbolic`, and with a script
/// that discards the dynamic loader's sections (whose sizes are not modelled); anything else is
/// refused with the reason rather than laid out wrong.
#[test]
fn unmodelled_shared_links_are_refused() {
    if !common::have_tool(ARM64.assembler) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::write(
        root.join("a.s"),
        "    .text\n_start:\n    ret\n    .data\n    .quad _start\n",
    )
    .expect("write source");
    common::run(root, ARM64.assembler, &["-o", "a.o", "a.s"]);
    std::fs::write(
        root.join("keeps.lds"),
        "SECTIONS { .text : { *(.text) } .data : { *(.data) } }",
    )
    .expect("write script");
    let args = |extra: &[&str]| -> Vec<String> {
        ["-m", ARM64.emulation, "-T", "keeps.lds", "-o", "out", "a.o"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let unsymbolic = LinkSession::open(&args(&["-shared"]), root)
        .err()
        .expect("refused");
    assert!(format!("{unsymbolic}").contains("-shared"), "{unsymbolic}");
    let session = LinkSession::open(&args(&["-shared", "-Bsymbolic"]), root).expect("open");
    let kept = session.layout().expect_err("refused");
    assert!(
        format!("{kept:?}").contains("dynamic-loader sections"),
        "{kept:?}"
    );
    if common::have_tool("as") {
        common::run(root, "as", &["--64", "-o", "x.o", "a.s"]);
        let x86 = [
            "-m",
            "elf_x86_64",
            "-T",
            "keeps.lds",
            "-o",
            "out",
            "-shared",
            "-Bsymbolic",
        ];
        let mut x86: Vec<&str> = x86.to_vec();
        x86.push("x.o");
        let refused = LinkSession::open(&x86, root).err().expect("refused");
        assert!(format!("{refused}").contains("-shared"), "{refused}");
    }
}

/// `adrp x1, target` at page offset `slot` (0xff8 or 0xffc) of a two-page block of code,
/// followed by `rest` (the erratum's later instructions, or not).
fn erratum_block(slot: u32, rest: &[&str]) -> String {
    let mut text = format!(
        "    .rept {}\n    nop\n    .endr\n    adrp x1, target\n",
        slot / 4
    );
    for insn in rest {
        text.push_str(&format!("    {insn}\n"));
    }
    let used = slot / 4 + 1 + rest.len() as u32;
    text.push_str(&format!("    .rept {}\n    nop\n    .endr\n", 2048 - used));
    text
}

/// `--fix-cortex-a53-843419` against ld 2.40: which sequences ld veneers (every load/store
/// class as the second instruction, loads and stores as the third or fourth, based on the
/// ADRP's register or not, with data stretches skipped), and the stub sections it adds after
/// each input section with sites (a branch, 8 bytes per veneer, rounded to 4 KiB), with the
/// veneers' `e843419@BFD_SECTION_OFFSET` names in ld's hash order.
#[test]
fn arm64_erratum_843419_veneers() {
    let second = [
        "ldr w0, [x0, #4]",
        "str w0, [x0, #4]",
        "ldur w0, [x0, #3]",
        "ldr w3, [x0], #4",
        "ldr w3, [x0, #4]!",
        "ldr w0, [x0, x2]",
        "ldtr w0, [x0]",
        "ldp w0, w2, [x0]",
        "stp w0, w2, [x0]",
        "ldnp w0, w2, [x0]",
        "stnp w0, w2, [x0]",
        "ldp x0, x2, [x3], #16",
        "stp x0, x2, [x3, #-16]!",
        "ldxr w0, [x0]",
        "stxr w3, w0, [x0]",
        "ldxp w0, w2, [x0]",
        "stxp w3, w0, w2, [x0]",
        "ldr w0, .",
        "ld1 {v0.16b}, [x0]",
        "ld1 {v0.b}[0], [x0]",
        "st1 {v0.16b}, [x0], #16",
        "ldadd w0, w2, [x0]",
        "ldar w0, [x0]",
        "casa w0, w2, [x0]",
        "prfm pldl1keep, [x0]",
        "ldapr w0, [x0]",
        "ldp q0, q1, [x0]",
        "add x0, x0, #1",
        "b .+4",
    ];
    let third = [
        "ldr x3, [x1, #8]",
        "str x3, [x1, #8]",
        "ldr q0, [x1, #16]",
        "prfm pldl1keep, [x1, #8]",
        "ldrb w3, [x1, #1]",
        "ldur x3, [x1, #1]",
        "ldr x3, [x2, #8]",
        "ldr x3, [x1, x2]",
        "ldr x3, [x1], #8",
    ];
    let mut code =
        String::from("    .arch armv8.4-a+lse+rcpc\n    .text\n    .globl _start\n_start:\n");
    let mut blocks = 0;
    for (k, insn) in second.iter().enumerate() {
        // Alternate the ADRP between the page's last two words.
        let slot = if k % 2 == 0 { 0xff8 } else { 0xffc };
        for last in &third[..2] {
            code += &erratum_block(slot, &[insn, last]);
            blocks += 1;
        }
    }
    for last in &third {
        code += &erratum_block(0xff8, &["ldr w0, [x0, #4]", last]);
        code += &erratum_block(0xffc, &["ldr w0, [x0, #4]", "mov x1, x2", last]);
        code += &erratum_block(0xff8, &["ldp w0, w2, [x0]", "nop", last]);
        blocks += 3;
    }
    // A data stretch: the same words as `.word`s are not scanned.
    code += "    .rept 1022\n    nop\n    .endr\n    .word 0x90000001, 0xb9400400, 0xf9400423\n";
    code += "    .rept 1023\n    nop\n    .endr\n";
    assert!(blocks > 80);
    let data = "    .data\n    .balign 8\n    .globl target\ntarget: .quad 1\n";
    let other = format!(
        "    .text\n    .globl bfun\nbfun:\n{}",
        erratum_block(0xffc, &["str w0, [x0]", "ldr x1, [x1, #8]"])
    );
    let script = "SECTIONS { . = 0x400000; .text : { *(.text) } \
        . = 0x10000000; .data : { *(.data) } }";
    let fix = ["--fix-cortex-a53-843419"];
    check_for(
        &ARM64,
        "veneers",
        &[("a", &format!("{code}{data}")), ("b", &other)],
        script,
        &fix,
    );
    // Without sites the option changes nothing.
    check_for(
        &ARM64,
        "no_sites",
        &[(
            "a",
            &format!(
                "    .text\n_start:\n{}{data}",
                erratum_block(0xff0, &["ldr w0, [x0]", "ldr x1, [x1, #8]"])
            ),
        )],
        script,
        &fix,
    );
}

/// The veneer names count bfds and sections in ld's loading order: an archive takes an id
/// when ld reaches it (members only when linked), and a shared link creates its dynamic
/// sections after the first object's.
#[test]
fn arm64_erratum_843419_veneer_names() {
    if !common::have_tool(ARM64.assembler) || !common::have_tool(ARM64.linker) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let sources = [
        (
            "first",
            "    .text\n    .globl first\nfirst:\n    bl bfun\n    .data\n    .quad first\n"
                .to_string(),
        ),
        (
            "unused",
            "    .text\n    .globl unused\nunused:\n    ret\n".to_string(),
        ),
        (
            "a",
            format!(
                "    .text\n    .balign 4096\n    .globl _start\n_start:\n{}    .data\n    .balign 8\n    .globl target\ntarget: .quad 1\n",
                erratum_block(0xff8, &["ldr w0, [x0]", "ldr x1, [x1, #8]"])
            ),
        ),
        (
            "b",
            format!(
                "    .text\n    .balign 4096\n    .globl bfun\nbfun:\n{}",
                erratum_block(0xffc, &["str w0, [x0]", "ldr x1, [x1, #8]"])
            ),
        ),
    ];
    for (name, text) in &sources {
        std::fs::write(root.join(format!("{name}.s")), text).expect("write source");
        common::run(
            root,
            ARM64.assembler,
            &["-o", &format!("{name}.o"), &format!("{name}.s")],
        );
    }
    common::run(root, "ar", &["rc", "libunused.a", "unused.o"]);
    common::run(root, "ar", &["rcT", "libb.a", "b.o"]);
    std::fs::write(
        root.join("t.lds"),
        "SECTIONS { . = 0x400000; .text : { *(.text) } .got : { *(.got) } \
         .got.plt : { *(.got.plt) } .rela.dyn : { *(.rela .rela*) } \
         . = 0x10000000; .data : { *(.data) } \
         /DISCARD/ : { *(.interp .dynamic) *(.dynsym .dynstr .hash .gnu.hash) } }",
    )
    .expect("write script");
    for extra in [
        &["first.o", "libunused.a", "a.o", "libb.a"][..],
        &[
            "libunused.a",
            "--whole-archive",
            "libb.a",
            "--no-whole-archive",
            "first.o",
            "a.o",
        ],
        &[
            "-shared",
            "-Bsymbolic",
            "first.o",
            "libunused.a",
            "a.o",
            "libb.a",
        ],
    ] {
        let mut args: Vec<String> = ["-m", ARM64.emulation, "-T", "t.lds", "-o", "out"]
            .iter()
            .chain(["--fix-cortex-a53-843419"].iter())
            .chain(extra.iter())
            .map(|s| s.to_string())
            .collect();
        let ld_args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::run(root, ARM64.linker, &ld_args);
        let nm = std::process::Command::new("aarch64-linux-gnu-nm")
            .arg(root.join("out"))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        assert_eq!(nm.matches("e843419@").count(), 2, "{nm}");
        let diffs = simulate_and_compare(root, &args);
        assert!(diffs.is_empty(), "{extra:?}: {}", diffs.join("\n"));
        args.clear();
    }
}

/// Which assembler temporaries the output keeps: ld's default drops those in mergeable
/// sections only, `-X` all of them, `-x` every local, `--discard-none` none, and
/// `--emit-relocs` keeps any that a kept relocation names (x86_64 defconfig links with
/// `--emit-relocs --discard-none`).
#[test]
fn local_label_discarding() {
    let asm = r#"
    .text
    .globl _start
_start:
    leaq .LC0(%rip), %rax
    call .Lfn
.Lfn:
    ret
.Lunused:
    nop
    .section .rodata.str1.1,"aMS",@progbits,1
.LC0:
    .string "hello"
.LCunused:
    .string "lo"
    .data
.Ldata:
    .quad 1
"#;
    let script = "SECTIONS { . = 0x1000; .text : { *(.text) } .rodata : { *(.rodata*) } }";
    for extra in [
        &[][..],
        &["-X"],
        &["-x"],
        &["--discard-none"],
        &["--emit-relocs"],
        &["--emit-relocs", "-X"],
        &["--emit-relocs", "-x"],
    ] {
        check_for(
            &X86_64_KEEP_LABELS,
            "local_labels",
            &[("a", asm)],
            script,
            extra,
        );
    }
}

/// OVERLAY members after the first load right after the previous one, except an empty one,
/// whose LOADADDR stays at its address (no-MMU ARM's `.vectors.bhb.*`); an empty section with
/// AT() keeps that load address, one without keeps its address.
#[test]
fn empty_overlay_member_load_address() {
    let asm = r#"
    .text
    .globl _start
_start:
    nop
    .section .ov1,"ax"
    .byte 1
"#;
    check(
        "empty_overlay_member",
        &[("a", asm)],
        r#"SECTIONS {
  . = 0x1000;
  .text : { *(.text) }
  lma0 = .;
  OVERLAY 0x8000 : AT(lma0) { .ov1 { KEEP(*(.ov1)) } .ov2 { KEEP(*(.ov2)) } .ov3 { KEEP(*(.ov3)) } }
  ov1_load = LOADADDR(.ov1);
  ov2_load = LOADADDR(.ov2);
  ov2_addr = ADDR(.ov2);
  ov3_load = LOADADDR(.ov3);
  . = lma0 + SIZEOF(.ov1);
  .empty_at : AT(0x5000) { *(.nothing) }
  empty_at_load = LOADADDR(.empty_at);
  .empty : { *(.nothing) }
  empty_load = LOADADDR(.empty);
}"#,
        &[],
    );
}

#[test]
fn keep_sort_and_exclude_file() {
    let a = r#"
    .text
    .globl _start
_start: nop
    .quad p_used, __start_mysec
    .section .s.c,"a"
    .balign 4
    .long 3
    .section .s.a,"a"
    .balign 16
    .long 1
    .section .s.b,"a"
    .balign 8
    .long 2
    .section .init_array.00200,"aw"
    .quad 2
    .section .init_array.00100,"aw"
    .quad 1
"#;
    let b = r#"
    .text
    .globl helper
helper: ret
    .section .s.b,"a"
    .balign 2
    .long 22
    .section .s.a,"a"
    .long 11
    .section .t.x,"ax"
    nop
    .section .t.y,"ax"
    nop
    .section mysec,"a"
    .long 9
"#;
    check(
        "sort",
        &[("a", a), ("b", b)],
        r#"ENTRY(_start)
SECTIONS {
  . = 0x400000 + 0x1000;
  .text : { *(.text) EXCLUDE_FILE(b.o) *(.t.*) }
  .tb : { *(.t.x) }
  .tc : { *(EXCLUDE_FILE(a.o) .t.*) }
  .byname : { KEEP(*(SORT_BY_NAME(.s.*))) }
  .init_array : { KEEP(*(SORT_BY_INIT_PRIORITY(.init_array.*))) }
  mysec : { *(SORT_BY_ALIGNMENT(mysec)) }
  /DISCARD/ : { *(.note.GNU-stack) }
  PROVIDE(p_used = .);
}"#,
        &[],
    );
    check(
        "sort2",
        &[("a", a), ("b", b)],
        r#"ENTRY(_start)
SECTIONS {
  . = 0x400000 + 0x1000;
  .text : { *(.text) *(.t.*) }
  .byalign : { *(SORT_BY_ALIGNMENT(SORT_BY_NAME(.s.*))) }
  .ia : { *(SORT_NONE(.init_array.*)) }
  mysec : { *(mysec) }
  PROVIDE(p_used = .);
}"#,
        &[],
    );
}

#[test]
fn orphans_and_discard() {
    let a = r#"
    .text
    .globl _start
_start: nop
    .quad p_used, __start_mysec
    .section .orph_ro,"a"
    .long 1
    .section .orph_rw,"aw"
    .long 2
    .section .orph_bss,"aw",@nobits
    .zero 16
    .section .orph_x,"ax"
    nop
    .section .orph_info,""
    .long 3
    .section .gone,"a"
    .long 4
"#;
    check(
        "orphans",
        &[("a", a), ("b", &helper_asm(""))],
        r#"ENTRY(_start)
SECTIONS {
  . = 0x400000 + 0x1000;
  .text : { *(.text) }
  . = ALIGN(0x1000);
  .rodata : { *(.rodata*) }
  . = ALIGN(0x1000);
  .data : { *(.data) }
  .bss : { *(.bss) }
  /DISCARD/ : { *(.gone) }
  PROVIDE(p_used = .);
}"#,
        &[],
    );
}

#[test]
fn zero_based_percpu_section() {
    let pc = r#"
    .text
    .globl _start
_start: nop
    .quad p_used, __start_mysec
    .section .data..percpu,"aw"
    .globl pcvar
pcvar: .quad 1
    .section .data..percpu..first,"aw"
    .globl first_var
first_var: .quad 2
"#;
    check(
        "percpu",
        &[("a", pc), ("b", &helper_asm(""))],
        r#"ENTRY(_start)
SECTIONS {
  . = 0xffffffff81000000;
  .text : AT(ADDR(.text) - 0xffffffff80000000) { *(.text) }
  .data : AT(ADDR(.data) - 0xffffffff80000000) { *(.data) }
  . = ALIGN(0x1000);
  __per_cpu_load = .;
  .data..percpu 0 : AT(__per_cpu_load - 0xffffffff80000000) {
    __per_cpu_start = .;
    *(.data..percpu..first)
    . = ALIGN(0x1000);
    *(.data..percpu)
    __per_cpu_end = .;
  }
  . = __per_cpu_load + SIZEOF(.data..percpu);
  mysec : AT(ADDR(mysec) - 0xffffffff80000000) { *(mysec) }
  .rodata : AT(ADDR(.rodata) - 0xffffffff80000000) { *(.rodata*) }
  PROVIDE(p_used = .);
}"#,
        &[],
    );
}

/// The shape behind ARM's "Inconsistent kallsyms data": an empty page-aligned per-cpu section
/// just before an 8 KiB boundary, with symbols that re-home when it is removed.
#[test]
fn kernel_like_init_end_boundary() {
    for pad in [0x10, 0x1010, 0x1ff0] {
        let a = format!(
            r#"
    .text
    .globl _start
_start: nop
    .quad p_used, __start_mysec
    .section .init.data,"aw"
    .zero {pad}
"#
        );
        check(
            "init_end",
            &[("a", &a), ("b", &helper_asm(""))],
            r#"ENTRY(_start)
SECTIONS {
  . = 0xc0008000;
  .text : { _stext = .; *(.text) _etext = .; }
  .rodata : { *(.rodata*) }
  . = ALIGN(4096);
  __init_begin = .;
  .init.data : { *(.init.data) }
  . = ALIGN(4096);
  .data..percpu : { __per_cpu_load = .; __per_cpu_start = .; *(.data..percpu) __per_cpu_end = .; }
  __init_end = .;
  . = ALIGN(8192);
  __data_loc = .;
  .data : AT(__data_loc) { _data = .; *(.data) }
  mysec : { *(mysec) }
  PROVIDE(p_used = .);
}"#,
            &[],
        );
    }
}

#[test]
fn failed_assert_is_reported() {
    if !common::have_tool("as") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::write(root.join("a.s"), ".text\n.globl _start\n_start: nop\n").expect("write");
    common::run(root, "as", &["--64", "-o", "a.o", "a.s"]);
    std::fs::write(
        root.join("t.lds"),
        "SECTIONS { .text 0x401000 : { *(.text) } ASSERT(SIZEOF(.text) == 0, \"text must be empty\") }",
    )
    .expect("write");
    let args: Vec<String> = ["-m", "elf_x86_64", "-T", "t.lds", "a.o", "-o", "out"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let layout = LinkSession::open(&args, root)
        .expect("open")
        .layout()
        .expect("layout");
    assert_eq!(
        layout.failed_asserts,
        vec!["text must be empty".to_string()]
    );
}

#[test]
fn common_symbols() {
    let a = format!("{COMMON_ASM}\n.comm shared_common,16,8\n.comm only_a,4,4\n");
    let b = helper_asm(".comm shared_common,64,32\n");
    check(
        "common",
        &[("a", &a), ("b", &b)],
        r#"ENTRY(_start)
SECTIONS {
  . = 0x400000 + 0x1000;
  .text : { *(.text) }
  .rodata : { *(.rodata*) }
  .data : { *(.data) }
  mysec : { *(mysec) }
  .bss : { __bss_start = .; *(.bss) *(COMMON) __bss_end = .; }
  PROVIDE(p_used = .);
}"#,
        &[],
    );
}

#[test]
fn only_if_ro_and_rw() {
    let a =
        format!("{COMMON_ASM}\n.section .ro_only,\"a\"\n.long 1\n.section .mixed,\"a\"\n.long 2\n");
    let b = helper_asm(".section .mixed,\"aw\"\n.long 3\n");
    check(
        "constraints",
        &[("a", &a), ("b", &b)],
        r#"ENTRY(_start)
SECTIONS {
  . = 0x400000 + 0x1000;
  .text : { *(.text) }
  .c1 : ONLY_IF_RO { *(.ro_only) }
  .c1 : ONLY_IF_RW { *(.ro_only) }
  .c2 : ONLY_IF_RO { *(.mixed) }
  .c2 : ONLY_IF_RW { rw_start = .; *(.mixed) }
  .rodata : { *(.rodata*) }
  .data : { *(.data) }
  mysec : { *(mysec) }
  PROVIDE(p_used = .);
}"#,
        &[],
    );
}

/// The same rules on a 32-bit target: addresses, `nm` width and section flags for i386.
#[test]
fn i386_link() {
    let a = r#"
    .text
    .globl _start
_start:
    nop
    call helper
    .long p_used, __start_mysec
    .section .rodata.str1.1,"aMS",@progbits,1
    .string "shared"
"#;
    let b = r#"
    .text
    .globl helper
helper: ret
    .section mysec,"a"
    .long 1
    .data
    .globl dvar
dvar: .long 7
    .bss
    .globl bvar
bvar: .zero 12
"#;
    check_for(
        &I386,
        "i386",
        &[("a", a), ("b", b)],
        r#"ENTRY(_start)
SECTIONS {
  . = 0xc0100000;
  .text : AT(ADDR(.text) - 0xc0000000) { _text = .; *(.text) _etext = .; }
  . = ALIGN(0x1000);
  .rodata : AT(ADDR(.rodata) - 0xc0000000) { *(.rodata*) }
  .data : AT(ADDR(.data) - 0xc0000000) { *(.data) }
  mysec : { *(mysec) }
  .empty : { empty_sym = .; }
  . = ALIGN(0x2000);
  .bss : { __bss_start = .; *(.bss) __bss_stop = .; }
  _end = .;
  PROVIDE(p_used = .);
}"#,
        &[],
    );
}
