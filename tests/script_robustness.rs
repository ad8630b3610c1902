//! The parser never panics: truncated and mutated scripts, hostile nesting, odd bytes. Each
//! input must either parse (and then round-trip) or return an error located inside the text.

use ldcheck::script::{parse_script, print_script};

const CORPUS_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/corpus/lds/6.12/arm/multi_v7_defconfig/vmlinux.lds"
);

/// A script touching most of the grammar, used when the corpus is absent and as extra input.
const SAMPLE: &str = r#"OUTPUT_FORMAT("elf32-littlearm", "elf32-bigarm", "elf32-littlearm")
ENTRY(stext)
MEMORY { ram (rwx) : ORIGIN = 0x80000000, LENGTH = 64M }
PHDRS { text PT_LOAD FILEHDR FLAGS(5); note PT_NOTE; }
INPUT(a.o -lgcc AS_NEEDED(-lm))
SECTIONS {
  . = 0xC0000000 + 0x8000;
  .text ALIGN(4) (NOLOAD) : AT(ADDR(.text) - 0xC0000000) SUBALIGN(8) {
    KEEP(*(SORT_BY_NAME(SORT_BY_ALIGNMENT(.text.*))))
    EXCLUDE_FILE(*crtend.o) *(.ctors)
    INPUT_SECTION_FLAGS(SHF_ALLOC & !SHF_WRITE) *(.ro)
    LONG(0x12345678) FILL(0x90)
    PROVIDE(__x = . > 1 ? -1 : ~0x10h);
  } > ram :text = 0xcccccccc
  OVERLAY 0xffff0000 : NOCROSSREFS AT(0x1000) { .v1 { *(.v1) } .v2 { *(.v2) } }
  /DISCARD/ : { *(.discard) }
  ASSERT(SIZEOF(.text) < 4K, "too big")
}
"#;

fn check(text: &str) {
    match parse_script(text) {
        Ok(tree) => {
            let printed = print_script(&tree);
            let again = parse_script(&printed)
                .unwrap_or_else(|e| panic!("printed form fails to parse: {e}\n{printed}"));
            assert_eq!(tree, again, "round trip of\n{text}");
        }
        Err(e) => {
            let span = e.span();
            assert!(
                span.start() <= text.len() && span.end() <= text.len(),
                "span out of range"
            );
            assert!(e.line >= 1 && e.column >= 1);
        }
    }
}

/// A small deterministic generator, so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn inputs() -> Vec<String> {
    let mut texts = vec![SAMPLE.to_owned()];
    match std::fs::read_to_string(CORPUS_SCRIPT) {
        Ok(t) => texts.push(t),
        Err(_) => println!("corpus not found at {CORPUS_SCRIPT}, skipping"),
    }
    texts
}

#[test]
fn truncations_never_panic() {
    for text in inputs() {
        let mut cut = 0;
        while cut < text.len() {
            if text.is_char_boundary(cut) {
                check(&text[..cut]);
            }
            cut += 1 + cut / 40;
        }
    }
}

#[test]
fn mutations_never_panic() {
    const BYTES: &[u8] = b"(){};:,=+-*/<>!~?&|^\"#\0 \n.xK0$[]@\\";
    let mut rng = Lcg(0x5eed);
    for text in inputs() {
        for _ in 0..400 {
            let mut bytes = text.clone().into_bytes();
            for _ in 0..1 + rng.next() % 4 {
                let at = (rng.next() as usize) % bytes.len();
                match rng.next() % 3 {
                    0 => bytes[at] = BYTES[(rng.next() as usize) % BYTES.len()],
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, BYTES[(rng.next() as usize) % BYTES.len()]),
                }
            }
            if let Ok(mutated) = String::from_utf8(bytes) {
                check(&mutated);
            }
        }
    }
}

#[test]
fn hostile_nesting_is_an_error_not_a_crash() {
    for text in [
        format!("x = {};", "(".repeat(100_000)),
        format!("x = {}1;", "-".repeat(100_000)),
        format!("x = {}1;", "!~".repeat(50_000)),
        format!("x = 1{};", " ? 1 : 1".repeat(10_000)),
        format!(
            "INPUT({}a{})",
            "AS_NEEDED(".repeat(10_000),
            ")".repeat(10_000)
        ),
    ] {
        let e = parse_script(&text).expect_err("too deep");
        assert!(e.message.contains("nesting deeper than"), "{}", e.message);
    }
}

#[test]
fn odd_inputs() {
    for text in [
        "",
        " ",
        "\0",
        "/*",
        "/",
        "#",
        "\"",
        "SECTIONS",
        "SECTIONS {",
        "é",
        "x = 1;\u{feff}",
        "\r\n\t",
    ] {
        check(text);
    }
}
