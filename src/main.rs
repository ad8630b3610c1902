//! The `ldcheck` command line: parses flags, calls the library, renders reports, sets exit codes.

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// mimalloc: the link model allocates many small values (AST nodes, symbols, names) and
/// frees them in bulk; measured 10-20% faster than glibc's malloc on parse, layout and
/// kallsyms. Version 2: version 3 keeps freed memory longer, which took a 200k-symbol
/// check's peak RSS from 243 to 315 MiB (version 2: 268 MiB).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tells mimalloc never to give freed memory back to the system. A check lays a 200k-symbol
/// link out a dozen times, freeing and reallocating tens of MiB each time; returned memory
/// came back as fresh pages the kernel zeroes again (system time 0.3-0.6 s against 0.07 s when
/// kept), while the peak RSS stays the same (the process is short-lived and reuses what it
/// frees).
fn keep_freed_memory() {
    /// `mi_option_purge_delay` in the mimalloc v2 sources libmimalloc-sys builds (its
    /// `mimalloc.h`); its default is 10 ms, -1 never purges.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    const DEFAULT_DELAY_MS: std::ffi::c_long = 10;
    // SAFETY: called first thing in `main`, before any other thread exists (mimalloc's
    // option functions are not thread safe). The default check leaves the option alone when
    // index 15 is not the purge delay (another mimalloc version) or MIMALLOC_PURGE_DELAY set it.
    unsafe {
        if libmimalloc_sys::mi_option_get(PURGE_DELAY) == DEFAULT_DELAY_MS {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
        }
    }
}

/// Make Linux kernel links predictable.
///
/// `ldcheck vmlinux.lds [-- LD-ARGS…]` is `ldcheck check`: the hazard analysis of a kernel
/// linker script, and with the link command, the simulation of link-vmlinux.sh's passes.
#[derive(Parser)]
#[command(
    name = "ldcheck",
    version,
    after_help = "Exit status: 0 nothing wrong; 1 the command's finding (a hazard, a failing link, \
                  stale objects, differences: each command's --help says which); 2 usage or \
                  input error.\nShell completions: `ldcheck completions bash` (zsh, fish, …)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find layout hazards in a linker script; with the link command, predict the passes.
    Check(cli::check::Args),
    /// Propose verified script edits that remove build-breaking hazards; show or apply the best.
    Fix(cli::fix::Args),
    /// Check a linker script's syntax; optionally print it canonically or dump its AST.
    Parse(cli::parse::Args),
    /// Simulate a GNU ld link and print its layout (sections, script symbols, or nm -n).
    Layout(cli::layout::LayoutArgs),
    /// Simulate a link and compare it with the file the real linker produced.
    Verify(cli::layout::VerifyArgs),
    /// Generate the kernel's kallsyms tables (drop-in for scripts/kallsyms), or their size.
    Kallsyms(cli::kallsyms::Args),
    /// Explain why two link passes give different kallsyms tables (exit 1 when they disagree).
    KallsymsDiff(cli::kallsyms_diff::Args),
    /// Replay link-vmlinux.sh's kallsyms passes in simulation and predict the verdict.
    Passes(cli::passes::Args),
    /// Find objects a CONFIG_TRIM_UNUSED_KSYMS build failed to rebuild (stale exports, stamp races).
    Ksyms(cli::ksyms::Args),
    /// Predict before the first link whether link-vmlinux.sh will succeed on a Kbuild tree.
    Kbuild(cli::kbuild::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(cli::completions::Args),
}

/// `ldcheck vmlinux.lds …` means `ldcheck check vmlinux.lds …`: a first argument that is
/// neither an option nor a subcommand name selects `check`.
fn with_default_command(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let Some(first) = args.get(1).and_then(|a| a.to_str()) else {
        return args;
    };
    let known = Cli::command()
        .get_subcommands()
        .any(|c| c.get_name() == first || c.get_all_aliases().any(|a| a == first))
        || first == "help";
    if !known && !first.starts_with('-') {
        args.insert(1, "check".into());
    }
    args
}

/// Stops transparent huge pages for this process. mimalloc is built without its request for
/// them (libmimalloc-sys's `no_thp`), which covers hosts that grant them only on request;
/// this covers hosts that grant them to every process, from the first allocation after it. On
/// a busy host a huge-page fault can stall for memory compaction: with them, 15 interleaved
/// runs of the x86_64 tinyconfig check took 39-223 ms (median 126) against 51-73 ms (median
/// 59) without, and `ldcheck kallsyms` on a 200k-symbol map 101-602 ms against 144-194 ms.
/// On a quiet host huge pages saved up to a fifth, never the worst case.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        let (on, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
        // SAFETY: PR_SET_THP_DISABLE takes integer arguments and touches no memory of ours;
        // a kernel without it returns an error, which changes nothing.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, on, unused, unused, unused);
        }
    }
}

/// Makes the main thread one of rayon's workers. Otherwise the pool starts one worker per core
/// beside it, and every parallel step is handed from the main thread to the pool while it
/// waits: three threads for two cores, with idle workers spinning. Measured on the tinyconfig
/// checks: 190–740 context switches per run down to ~20, and 4–6% less time.
fn main_thread_joins_the_pool() {
    // An error means the pool already exists, which can only be the default one: no harm.
    let _ = rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global();
}

/// A closed output (`ldcheck verify … | head`) ends the process quietly, as it ends other Unix
/// tools, instead of a failed print panicking: Rust starts programs with SIGPIPE ignored.
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: restores the signal's default disposition; no handler of ours is replaced and
    // no thread has started yet.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    default_sigpipe();
    keep_freed_memory();
    // Before the pool's worker starts: its first allocation would otherwise still be a huge page.
    no_transparent_huge_pages();
    main_thread_joins_the_pool();
    // Paths and symbol names in messages must stay whole: no wrapping at hyphens or widths.
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
    }));
    let cli = Cli::parse_from(with_default_command(std::env::args_os().collect()));
    match cli.command {
        Command::Check(args) => cli::check::run(args),
        Command::Fix(args) => cli::fix::run(args),
        Command::Parse(args) => cli::parse::run(args),
        Command::Layout(args) => cli::layout::run_layout(args),
        Command::Verify(args) => cli::layout::run_verify(args),
        Command::Kallsyms(args) => cli::kallsyms::run(args),
        Command::KallsymsDiff(args) => cli::kallsyms_diff::run(args),
        Command::Passes(args) => cli::passes::run(args),
        Command::Ksyms(args) => cli::ksyms::run(args),
        Command::Kbuild(args) => cli::kbuild::run(args),
        Command::Completions(args) => cli::completions::run(args, Cli::command()),
    }
}
