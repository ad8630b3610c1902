//! Returning to the caller before the kernel tears the process down.
//!
//! Freeing a check's memory at exit takes the kernel ~4 ms on a tinyconfig check (over a
//! tenth of it) and more at defconfig scale, after every result is out. As mold does, the
//! command forks once at start: the child does the work, and the parent, which the caller
//! waits for, only waits for the child's exit status and leaves with it. Once the child has
//! flushed its output and sent its status, the caller has everything; the child's teardown
//! then runs while the caller goes on.
//!
//! Nothing is lost on any path: a child that ends without sending a status (a panic, clap's
//! `exit` for `--help`, a signal) is waited for and its status passed on, a signal as the
//! same signal; the child dies with the parent until it has reported (a `timeout` or a
//! `kill` of the command stops the work); and the child gives up its standard output and
//! error before reporting, so a pipe reading them ends when the parent does.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;

/// The environment variable that keeps the work in the process the caller started (for a
/// debugger, or to measure the teardown).
const STAY_ATTACHED: &str = "LDCHECK_NO_DETACH";

/// Where the child sends its exit status; None when the process did not fork.
pub struct Detached(Option<OwnedFd>);

/// Forks, unless [`STAY_ATTACHED`] is set or the fork fails. In the parent this does not
/// return: it exits with the child's status. Must run before any thread starts (a forked
/// child holds only the calling thread).
pub fn fork_worker() -> Detached {
    if std::env::var_os(STAY_ATTACHED).is_some() {
        return Detached(None);
    }
    let mut ends = [0; 2];
    // SAFETY: `ends` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Detached(None);
    }
    // SAFETY: pipe2 succeeded, so both are open descriptors that nothing else owns.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the process has one thread (see above), so the child is a complete copy.
    match unsafe { libc::fork() } {
        -1 => Detached(None),
        0 => {
            drop(read_end);
            // SAFETY: prctl with integer arguments touches no memory of ours.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            // The parent may have died before the line above: then nobody waits for the work.
            // SAFETY: getppid has no preconditions.
            if unsafe { libc::getppid() } != parent {
                // SAFETY: _exit ends the process; nothing of ours needs running first.
                unsafe { libc::_exit(2) };
            }
            Detached(Some(write_end))
        }
        child => {
            drop(write_end);
            wait_for(child, read_end)
        }
    }
}

/// The parent's part: exits with the status the child sends, or with the status the child
/// ended with when it sends none.
fn wait_for(child: libc::pid_t, status_pipe: OwnedFd) -> ! {
    let mut byte = 0u8;
    let sent = loop {
        // SAFETY: reads at most one byte into `byte`, from a descriptor we own.
        let n = unsafe { libc::read(status_pipe.as_raw_fd(), (&raw mut byte).cast(), 1) };
        if n >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break n == 1;
        }
    };
    if sent {
        // SAFETY: _exit ends the process; the parent has nothing buffered or to clean up.
        unsafe { libc::_exit(i32::from(byte)) };
    }
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child, writing its status into `status`.
        let r = unsafe { libc::waitpid(child, &mut status, 0) };
        if r == child {
            break;
        }
        if r == -1 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // SAFETY: as above.
            unsafe { libc::_exit(2) };
        }
    }
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        // SAFETY: restores the default action of the signal the child died of and raises it,
        // so that the caller sees the same death; _exit covers a signal that does not kill.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
            libc::_exit(128 + signal);
        }
    }
    // SAFETY: as above.
    unsafe { libc::_exit(libc::WEXITSTATUS(status)) }
}

impl Detached {
    /// Sends `code` to the waiting parent once every output is written, and gives up the
    /// standard output and error so that their readers see them end with the parent.
    pub fn report(self, code: ExitCode) -> ExitCode {
        let Some(status_pipe) = self.0 else {
            return code;
        };
        use std::io::Write;
        // Everything printed so far must be out before the caller can go on.
        if std::io::stdout().flush().is_err() {
            return code;
        }
        let Some(byte) = (0..=u8::MAX).find(|&b| ExitCode::from(b) == code) else {
            return code;
        };
        if let Ok(null) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
        {
            // SAFETY: dup2 onto the standard descriptors, which Rust's std reopens for every
            // later write; nothing is buffered (flushed above, stderr has no buffer).
            unsafe {
                libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO);
                libc::dup2(null.as_raw_fd(), libc::STDERR_FILENO);
            }
        }
        // SAFETY: prctl with integer arguments; the child may now outlive the parent.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0) };
        // SAFETY: writes one byte from `byte`, to a descriptor we own.
        unsafe { libc::write(status_pipe.as_raw_fd(), (&raw const byte).cast(), 1) };
        code
    }
}
