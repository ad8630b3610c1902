//! Differential test: ldcheck's kallsyms against the kernel's own `scripts/kallsyms.c`,
//! compiled from the installed Debian source tarballs, on generated symbol maps.
//!
//! The maps are random but reproducible (a small PRNG seeded per case): names of all lengths
//! (including over-long ones), every `nm` type letter, duplicate addresses, symbols on the
//! `_etext`/`_einittext` boundaries, per-cpu ranges, names the 6.1 tool ignores, `.llvm.`
//! suffixes, non-ASCII bytes, out-of-range addresses, empty maps and malformed lines. Each map
//! runs under every option combination of its version; stdout and exit status must agree.
//!
//! Names of exactly 511 bytes are kept out of 6.1 maps: its `compare_names` expands them into
//! a 512-byte stack buffer and writes one byte past it, so its name order is undefined there.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use ldcheck::kallsyms::{Options, Version, build_tables, parse_symbol_map};

#[path = "support/kernel_tool.rs"]
mod support;

const MAPS_PER_VERSION: u64 = 200;

/// splitmix64: tiny, deterministic, good enough to spread test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
const WORDS: &[&str] = &[
    "init", "read", "write", "_", "__", "dev", "net", "ops", "lock", "page", ".", "cpu", "irq",
];
const SPECIAL: &[&str] = &[
    "_text",
    "_stext",
    "_etext",
    "_sinittext",
    "_einittext",
    "__per_cpu_start",
    "__per_cpu_end",
    "__start_sec",
    "__stop_sec",
    "__end_of_x",
    "__bss_start",
    "__init_end",
    "kallsyms_names",
    "kallsyms_offsets",
    "__efistub_foo",
    "__kvm_nvhe_$x",
    "foo_from_arm",
    "bar_veneer",
    "x.long_branch.y",
    "__kcfi_typeid_f",
    "_SDA_BASE_",
    "__gp",
    "__kernel_sigtramp",
    "__ARMV7PILongThunk_z",
    "__crc_q",
];
const KINDS: &[u8] = b"TTTTttttttDDdddddBbRrrWwVvAaUuNn?";

fn random_name(rng: &mut Rng, exotic: bool) -> Vec<u8> {
    let roll = rng.below(100);
    if roll < 8 {
        return rng.pick(SPECIAL).as_bytes().to_vec();
    }
    let target = if roll < 12 {
        // Long names, around and above the 512-byte limit.
        *rng.pick(&[200u64, 300, 500, 510, 512, 513, 700])
    } else {
        1 + rng.below(28)
    };
    let mut name = Vec::new();
    if rng.chance(20) {
        name.resize(1 + rng.below(3) as usize, b'_');
    }
    while (name.len() as u64) < target {
        if exotic && rng.chance(30) {
            // Any byte but whitespace and NUL (the 6.1 tool splits on whitespace).
            let b = 0x21 + rng.below(0xff - 0x21) as u8;
            name.push(b);
        } else if rng.chance(40) {
            name.extend_from_slice(rng.pick(WORDS).as_bytes());
        } else {
            name.push(*rng.pick(LETTERS));
        }
    }
    if rng.chance(5) {
        name.extend_from_slice(format!(".llvm.{}", rng.below(1000)).as_bytes());
    }
    if rng.chance(4) {
        name.extend_from_slice(rng.pick(&["_start", "_end"]).as_bytes());
    }
    name
}

/// One generated `nm -n`-style map for `version`'s tool.
fn random_map(rng: &mut Rng, version: Version) -> Vec<u8> {
    let exotic = rng.chance(50);
    let count = match rng.below(10) {
        0 => rng.below(3),
        1..=6 => 5 + rng.below(60),
        _ => 60 + rng.below(200),
    };
    let wide = rng.chance(50);
    let base: u64 = if wide {
        0xffff_ffff_8100_0000
    } else {
        0xc000_8000
    };
    let width = if wide { 16 } else { 8 };
    let mut addr = base;
    let mut lines: Vec<(u64, u8, Vec<u8>)> = Vec::new();
    // Region boundaries, placed at fractions of the list.
    let cut = |f: u64| (count * f / 10) as usize;
    let (text_end, init_start, init_end, pcpu_start, pcpu_end) =
        (cut(4), cut(5), cut(7), cut(8), cut(9));
    let mut etext = None;
    let mut einit = None;
    for i in 0..count as usize {
        addr = addr.wrapping_add(match rng.below(10) {
            0..=2 => 0,
            3..=7 => 1 + rng.below(64),
            _ => 1 + rng.below(0x4000),
        });
        let mut kind = *rng.pick(KINDS);
        let mut name = random_name(rng, exotic);
        if version == Version::V6_1 && name.len() == 511 {
            name.pop();
        }
        let mut at = addr;
        if i == 0 {
            name = b"_stext".to_vec();
            if rng.chance(70) {
                lines.push((at, b'T', b"_text".to_vec()));
            }
        } else if i == text_end {
            name = b"_etext".to_vec();
            kind = b'T';
            etext = Some(at);
        } else if i == init_start {
            name = b"_sinittext".to_vec();
        } else if i == init_end {
            name = b"_einittext".to_vec();
            einit = Some(at);
        } else if i == pcpu_start && rng.chance(60) {
            name = b"__per_cpu_start".to_vec();
            if wide && rng.chance(50) {
                // x86-64 style: per-cpu variables at small absolute addresses.
                at = 0;
            }
        } else if i == pcpu_end && rng.chance(60) {
            name = b"__per_cpu_end".to_vec();
        } else if let Some(end) = [etext, einit].into_iter().flatten().next()
            && rng.chance(15)
        {
            // Symbols that coincide with a text range end.
            at = end;
        }
        lines.push((at, kind, name));
    }
    if rng.chance(5) && !lines.is_empty() {
        // Far away: out of range for 32-bit offsets on 64-bit maps.
        let far = if wide { 0x1_0000_0000 } else { 0x1000 };
        lines.push((base.wrapping_add(far * 0x20), b'T', b"far_away".to_vec()));
    }
    if rng.chance(10) && lines.len() > 2 {
        // nm sorts by address, but the tool must not rely on it.
        let a = rng.below(lines.len() as u64) as usize;
        let b = rng.below(lines.len() as u64) as usize;
        lines.swap(a, b);
    }
    let mut out = Vec::new();
    for (at, kind, name) in &lines {
        out.extend_from_slice(format!("{at:0width$x} {} ", *kind as char).as_bytes());
        out.extend_from_slice(name);
        out.push(b'\n');
    }
    if rng.chance(6) {
        let junk = *rng.pick(&[
            "\n",
            "zz T bad\n",
            "1234\n",
            "1234 T\n",
            "  42 t spaced\n",
            "0x10 T hexpref\n",
            "99 T two words\n",
        ]);
        let at = rng.below(out.len() as u64 + 1) as usize;
        let at = out[..at]
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |p| p + 1);
        out.splice(at..at, junk.bytes());
    }
    out
}

/// ldcheck's answer: the assembly, or `None` where the tool exits with status 1.
fn ours(input: &[u8], options: &Options) -> Option<Vec<u8>> {
    let map = parse_symbol_map(input, options.version).ok()?;
    let tables = build_tables(&map, options).ok()?;
    let mut out = Vec::new();
    tables.write_asm(&mut out).ok()?;
    Some(out)
}

fn run_version(version: Version, seed: u64) {
    let tool = match support::kernel_tool(version.as_str(), Path::new(env!("CARGO_TARGET_TMPDIR")))
    {
        Ok(tool) => tool,
        Err(notice) => {
            println!("{notice}");
            return;
        }
    };
    let flags: &[&str] = match version {
        Version::V6_12 => &["--all-symbols", "--absolute-percpu"],
        Version::V6_1 => &[
            "--all-symbols",
            "--absolute-percpu",
            "--base-relative",
            "--lto-clang",
        ],
    };
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(seed);
    let (mut agreed_ok, mut agreed_err) = (0, 0);
    for case in 0..MAPS_PER_VERSION {
        let map = random_map(&mut rng, version);
        let path = dir.path().join(format!("map{case}"));
        fs::write(&path, &map).unwrap();
        let combos: Vec<Vec<&str>> = (0..1u32 << flags.len())
            .map(|combo| {
                (0..flags.len())
                    .filter(|&f| combo & 1 << f != 0)
                    .map(|f| flags[f])
                    .collect()
            })
            .collect();
        // All combinations of one map run at once; each kernel run is a short process.
        let children: Vec<_> = combos
            .iter()
            .map(|chosen| {
                Command::new(&tool)
                    .args(chosen)
                    .arg(&path)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for (chosen, child) in combos.iter().zip(children) {
            let kernel = child.wait_with_output().unwrap();
            let options = Options {
                version,
                all_symbols: chosen.contains(&"--all-symbols"),
                absolute_percpu: chosen.contains(&"--absolute-percpu"),
                base_relative: chosen.contains(&"--base-relative"),
                lto_clang: chosen.contains(&"--lto-clang"),
                stable: None,
            };
            let mine = ours(&map, &options);
            let context = || {
                format!(
                    "{version} case {case} with {chosen:?}; map kept at {}",
                    keep(&path, &map)
                )
            };
            match (&mine, kernel.status.success()) {
                (Some(text), true) => {
                    if *text != kernel.stdout {
                        panic!("output differs: {}", context());
                    }
                    agreed_ok += 1;
                }
                (None, false) => {
                    assert_eq!(kernel.status.code(), Some(1), "{}", context());
                    agreed_err += 1;
                }
                (Some(_), false) => panic!(
                    "kernel tool failed ({}) but ldcheck succeeded: {}",
                    String::from_utf8_lossy(&kernel.stderr),
                    context()
                ),
                (None, true) => panic!(
                    "ldcheck failed but the kernel tool succeeded: {}",
                    context()
                ),
            }
        }
    }
    println!("{version}: {agreed_ok} identical outputs, {agreed_err} agreed failures");
    assert!(agreed_ok > agreed_err);
}

/// Copies a failing map next to the test binary's temp dir so it survives the tempdir.
fn keep(path: &Path, map: &[u8]) -> String {
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join(path.file_name().unwrap_or_default());
    fs::write(&kept, map).unwrap();
    kept.display().to_string()
}

#[test]
fn matches_kernel_6_12() {
    run_version(Version::V6_12, 0x6_12);
}

#[test]
fn matches_kernel_6_1() {
    run_version(Version::V6_1, 0x6_01);
}

/// The pass simulator asks only for the tables' layout, through a compression cache shared by
/// every link; on random maps (each read three times under different options, so the cache
/// hits and misses) it must equal the layout of the tables `build_tables` makes, and fail
/// where they fail.
#[test]
fn cached_layout_matches_full_tables() {
    use ldcheck::kallsyms::{CompressCache, PtrWidth, StableOptions, rodata_layout_cached};
    for version in [Version::V6_12, Version::V6_1] {
        let mut rng = Rng(0x1a70 + version as u64);
        let cache = CompressCache::default();
        let (mut compared, mut failed) = (0, 0);
        for case in 0..60 {
            let map_text = random_map(&mut rng, version);
            let Ok(map) = parse_symbol_map(&map_text, version) else {
                continue;
            };
            for (round, all_symbols) in [(0, false), (1, true), (2, false)] {
                let options = Options {
                    version,
                    all_symbols,
                    absolute_percpu: rng.chance(30),
                    base_relative: version == Version::V6_1 && rng.chance(50),
                    lto_clang: false,
                    stable: rng.chance(20).then_some(StableOptions { reserve: 64 }),
                };
                let ptr = if rng.chance(50) {
                    PtrWidth::Bits64
                } else {
                    PtrWidth::Bits32
                };
                let expected = build_tables(&map, &options).map(|t| t.rodata_layout(ptr));
                let cached = rodata_layout_cached(&map, &options, ptr, &cache);
                match (&expected, &cached) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "{version} case {case} round {round}"),
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                    _ => panic!("{version} case {case}: {expected:?} against {cached:?}"),
                }
                compared += 1;
                failed += usize::from(expected.is_err());
            }
        }
        assert!(
            compared > 100 && failed < compared / 2,
            "{compared} {failed}"
        );
    }
}

/// The layout a compression cache warmed on `first` gives for `second` is the full tool's
/// (or fails as the tool fails).
fn assert_warm_cache_gives_full_layout(
    first: &ldcheck::kallsyms::SymbolMap<'_>,
    second: &ldcheck::kallsyms::SymbolMap<'_>,
    options: &Options,
    case: usize,
) {
    use ldcheck::kallsyms::{CompressCache, PtrWidth, rodata_layout_cached};
    let version = options.version;
    let cache = CompressCache::default();
    let _ = rodata_layout_cached(first, options, PtrWidth::Bits64, &cache);
    let expected = build_tables(second, options).map(|t| t.rodata_layout(PtrWidth::Bits64));
    let cached = rodata_layout_cached(second, options, PtrWidth::Bits64, &cache);
    match (&expected, &cached) {
        (Ok(x), Ok(y)) => assert_eq!(x, y, "{version} case {case}"),
        (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string()),
        _ => panic!("{version} case {case}: {expected:?} against {cached:?}"),
    }
}

/// Another link can list symbols at equal addresses in another order (the kallsyms tables
/// grew between passes), which reorders the names but not their compression: the cache,
/// warmed on one order, must give the full tool's layout for the other.
#[test]
fn cached_layout_ignores_the_order_of_names_at_equal_addresses() {
    let address = |line: &[u8]| line.split(|&b| b == b' ').next().map(<[u8]>::to_vec);
    for version in [Version::V6_12, Version::V6_1] {
        let mut rng = Rng(0x0bde + version as u64);
        let mut reordered_cases = 0;
        for case in 0..60 {
            let text = random_map(&mut rng, version);
            let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
            let reversed_runs: Vec<u8> = lines
                .chunk_by(|a, b| address(a) == address(b))
                .flat_map(|run| run.iter().rev().flat_map(|l| l.iter().copied()))
                .collect();
            if reversed_runs == text {
                continue;
            }
            let options = Options {
                version,
                all_symbols: rng.chance(50),
                ..Options::default()
            };
            let (Ok(first), Ok(second)) = (
                parse_symbol_map(&text, version),
                parse_symbol_map(&reversed_runs, version),
            ) else {
                continue;
            };
            assert_warm_cache_gives_full_layout(&first, &second, &options, case);
            reordered_cases += 1;
        }
        assert!(reordered_cases > 20, "{reordered_cases}");
    }
}

/// A map one symbol apart from a cached one takes the cache's resumed compression (when the
/// rounds allow it); its layout must still be the full tool's.
#[test]
fn cached_layout_one_symbol_apart_matches_full_tables() {
    for version in [Version::V6_12, Version::V6_1] {
        let mut rng = Rng(0x0a9a + version as u64);
        let mut compared = 0;
        for case in 0..40 {
            let text = random_map(&mut rng, version);
            let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
            if lines.len() < 2 {
                continue;
            }
            let gone = rng.below(lines.len() as u64) as usize;
            let fewer: Vec<u8> = lines
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != gone)
                .flat_map(|(_, l)| l.iter().copied())
                .collect();
            let options = Options {
                version,
                all_symbols: rng.chance(50),
                ..Options::default()
            };
            // Both directions: one symbol removed from the cached set, and one added.
            for (first, second) in [(&text, &fewer), (&fewer, &text)] {
                let (Ok(a), Ok(b)) = (
                    parse_symbol_map(first, version),
                    parse_symbol_map(second, version),
                ) else {
                    continue;
                };
                assert_warm_cache_gives_full_layout(&a, &b, &options, case);
                compared += 1;
            }
        }
        assert!(compared > 40, "{compared}");
    }
}
