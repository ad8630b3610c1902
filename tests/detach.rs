//! The command returns before its teardown (a forked worker does the work): its caller must
//! still get every byte of output, the worker's exit status or signal, and no worker left
//! running when the command is killed.
#![cfg(target_os = "linux")]

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STAY_ATTACHED: &str = "LDCHECK_NO_DETACH";

fn ldcheck() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ldcheck"));
    command.env_remove(STAY_ATTACHED);
    command
}

/// A System.map of `n` text symbols: its kallsyms assembly is far larger than a pipe holds.
fn write_map(dir: &Path, n: usize) -> std::path::PathBuf {
    let mut map = String::from("c0008000 T _stext\n");
    for i in 0..n {
        map.push_str(&format!(
            "{:08x} t function_number_{i}\n",
            0xc000_8010 + 16 * i
        ));
    }
    map.push_str(&format!("{:08x} T _etext\n", 0xc000_8010 + 16 * n));
    let path = dir.join("System.map");
    std::fs::write(&path, map).unwrap();
    path
}

/// Polls `done` every 10 ms for up to ten seconds.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn output_and_status_are_those_of_an_attached_run() {
    let dir = tempfile::tempdir().unwrap();
    let map = write_map(dir.path(), 3000);
    let detached = ldcheck().arg("kallsyms").arg(&map).output().unwrap();
    let attached = ldcheck()
        .env(STAY_ATTACHED, "1")
        .arg("kallsyms")
        .arg(&map)
        .output()
        .unwrap();
    assert_eq!(detached.status.code(), Some(0));
    assert_eq!(detached.status.code(), attached.status.code());
    assert!(detached.stdout.len() > 1 << 17, "{}", detached.stdout.len());
    assert_eq!(detached.stdout, attached.stdout);
    assert_eq!(detached.stderr, attached.stderr);

    // Exit statuses the worker sends, and those it leaves by exiting on its own (clap).
    let missing = ldcheck()
        .args(["check", "/nonexistent/vmlinux.lds"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/vmlinux.lds"));
    let help = ldcheck().arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage"));
    let bad_flag = ldcheck().arg("--no-such-flag").output().unwrap();
    assert_eq!(bad_flag.status.code(), Some(2));
}

#[test]
fn a_worker_killed_by_a_signal_kills_the_command_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let map = write_map(dir.path(), 3000);
    for attached in [false, true] {
        let mut command = ldcheck();
        if attached {
            command.env(STAY_ATTACHED, "1");
        }
        let mut child = command
            .arg("kallsyms")
            .arg(&map)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Nobody reads the output: the first write past the pipe's buffer raises SIGPIPE.
        drop(child.stdout.take());
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGPIPE), "attached: {attached}");
    }
}

/// The state letter of process `pid` (None once it is gone).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

#[test]
fn killing_the_command_stops_its_worker() {
    // The worker reads its map from a pipe this test never closes, so it waits for as long as
    // the test needs it to.
    let mut child = ldcheck()
        .args(["kallsyms", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Held open to the end: waiting for the command would otherwise close it first.
    let _input = child.stdin.take();
    let pid = child.id();
    let children = format!("/proc/{pid}/task/{pid}/children");
    let mut worker = None;
    assert!(
        eventually(|| {
            worker = std::fs::read_to_string(&children)
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok());
            worker.is_some()
        }),
        "no worker process appeared"
    );
    let worker = worker.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        eventually(|| matches!(state(worker), None | Some('Z'))),
        "the worker outlived the command"
    );
    let mut rest = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}
