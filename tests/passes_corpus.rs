//! link-vmlinux.sh replayed in simulation for every corpus build with link inputs: the
//! predicted System.map must be byte-identical to the real one, and each pass's kallsyms object
//! must have the table offsets the real object had.

mod common;

use std::path::Path;

use ldcheck::analysis::passes::{PassOptions, Verdict, simulate};
use ldcheck::kallsyms::{Options, Version};
use ldcheck::simulate::LinkSession;

fn config_enabled(config: &str, name: &str) -> bool {
    config.lines().any(|l| l == format!("CONFIG_{name}=y"))
}

/// `nm -n` of a real kallsyms object, as stored beside the build: (label, offset) pairs.
fn real_table_offsets(path: &Path) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(path).expect("kallsyms .o.sym");
    let mut out: Vec<(String, u64)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (value, letter, name) = (f.next()?, f.next()?, f.next()?);
            (letter != "U").then(|| {
                (
                    name.to_string(),
                    u64::from_str_radix(value, 16).unwrap_or(u64::MAX),
                )
            })
        })
        .collect();
    out.sort();
    out
}

/// The build's final link, and the pass options its configuration implies.
fn open_build(build: &Path) -> (LinkSession, PassOptions) {
    let config = std::fs::read_to_string(build.join("config")).expect("config");
    let mut kallsyms = Options::new(Version::V6_12);
    kallsyms.all_symbols = config_enabled(&config, "KALLSYMS_ALL");
    kallsyms.absolute_percpu = config_enabled(&config, "KALLSYMS_ABSOLUTE_PERCPU");
    let args = common::final_link_args(build);
    let session = LinkSession::open(&args, &build.join("objtree")).expect("open session");
    let options = PassOptions {
        kallsyms,
        extra_pass: false,
    };
    (session, options)
}

#[test]
fn predicted_system_map_matches_real_builds() {
    let Some(builds) = common::builds_with_inputs() else {
        return;
    };
    for build in builds {
        let (session, options) = open_build(&build);
        let report = simulate(&session, &options).expect("simulate");
        let real = std::fs::read(build.join("System.map")).expect("System.map");
        assert!(
            *report.system_map == real,
            "{}: predicted System.map differs from the real one",
            build.display()
        );
        assert!(
            matches!(report.verdict, Verdict::Converges { .. }),
            "{}: {:?}",
            build.display(),
            report.verdict
        );
        for (n, pass) in report.passes.iter().enumerate() {
            let Some(tables) = &pass.tables else { continue };
            let sym = build.join(format!(".tmp_vmlinux{}.kallsyms.o.sym", n + 1));
            if !sym.is_file() {
                continue;
            }
            let mut predicted = tables.offsets.clone();
            predicted.sort();
            assert_eq!(
                predicted,
                real_table_offsets(&sym),
                "{} pass {}",
                build.display(),
                n + 1
            );
        }
    }
}

/// The passes read each link's System.map straight from its symbols; on the real builds that
/// must be exactly what printing `nm -n`, filtering it with mksysmap and parsing the text gives,
/// and 6.12's reading needs no text.
#[test]
fn system_map_read_from_symbols_matches_the_text_round_trip() {
    use ldcheck::analysis::{mksysmap, system_map};
    use ldcheck::kallsyms::parse_symbol_map;
    use ldcheck::simulate::{nm_symbols, nm_width, predicted_nm};

    let Some(builds) = common::builds_with_inputs() else {
        return;
    };
    for build in builds {
        let args = common::final_link_args(&build);
        let session = LinkSession::open(&args, &build.join("objtree")).expect("open session");
        let layout = session.layout().expect("layout");
        let e_machine = session.target.e_machine;
        let symbols = nm_symbols(&layout, e_machine);
        for version in [Version::V6_1, Version::V6_12] {
            let text = mksysmap::filter(&predicted_nm(&layout, e_machine), version);
            assert!(
                system_map::print(&symbols, nm_width(&layout), version) == text,
                "{}: System.map text",
                build.display()
            );
            let expected = parse_symbol_map(&text, version).expect("map reads");
            match system_map::read_directly(&symbols, version) {
                Some(direct) => assert_eq!(direct, expected, "{}: kallsyms input", build.display()),
                // ARM's unnamed local symbols: 6.1's fscanf reads on into the next line.
                None => assert_eq!(version, Version::V6_1, "{}: text path", build.display()),
            }
            assert!(!expected.symbols.is_empty());
        }
    }
}

/// The margin search probes its two directions side by side; on one thread it must find the
/// same margins, flips and number of layouts, and the passes the same maps.
#[test]
fn margins_do_not_depend_on_the_number_of_threads() {
    use ldcheck::analysis::hazards::analyze;
    use ldcheck::analysis::margin::simulate_with_margins;

    let Some(builds) = common::builds_with_inputs() else {
        return;
    };
    for build in builds {
        let (session, options) = open_build(&build);
        let script = session.script().expect("script");
        let hazards = analyze(&script);
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool")
                .install(|| simulate_with_margins(&session, &options, &hazards))
                .expect("simulate")
        };
        let (one_report, one) = on(1);
        let (two_report, two) = on(2);
        assert_eq!(one, two, "{}", build.display());
        assert!(one.probes > 0, "{}: no margin probe", build.display());
        assert!(
            one_report.system_map == two_report.system_map,
            "{}: System.map",
            build.display()
        );
    }
}
