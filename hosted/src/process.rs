//! A peer process: a child forked to run one end of a channel, so that two
//! address spaces share only the mappings made with
//! [`SharedMemory`](crate::SharedMemory) (rings included).

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A forked child running a peer; it is killed and reaped if dropped
/// before [`wait`](Peer::wait).
#[derive(Debug)]
#[must_use = "a peer that is never waited for is killed on drop"]
pub struct Peer {
    pid: Option<libc::pid_t>,
}

/// Forks. The child runs `peer` and exits with status 0 if it returned
/// `true`, 1 if it returned `false` or panicked; it never returns into the
/// caller's code. The parent gets the child's handle and drops its own copy
/// of `peer` unrun. Endpoints moved into `peer` must live in shared memory:
/// the child's copy of anything else is its own.
///
/// # Safety
/// If the calling process has other threads, `peer` may only do what is
/// async-signal-safe after `fork`: no allocation, no locks (including
/// printing), only atomics and system calls. A single-threaded caller has no
/// such limit.
pub unsafe fn fork_peer(peer: impl FnOnce() -> bool) -> io::Result<Peer> {
    // SAFETY: fork itself is sound; what the child may do is the caller's
    // promise above, and the child leaves through _exit, never returning.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let succeeded = catch_unwind(AssertUnwindSafe(peer)).unwrap_or(false);
            // SAFETY: _exit ends the child without running the parent's
            // atexit handlers or flushing buffers that the parent owns.
            unsafe { libc::_exit(if succeeded { 0 } else { 1 }) }
        }
        pid => Ok(Peer { pid: Some(pid) }),
    }
}

impl Peer {
    /// Waits for the child to exit; `true` if its peer function returned `true`.
    pub fn wait(mut self) -> io::Result<bool> {
        let pid = self.pid.take().expect("a peer is waited for once");
        let status = reap(pid)?;
        Ok(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            // SAFETY: `pid` is our child, not yet reaped, so the id is still ours.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = reap(pid);
        }
    }
}

fn reap(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a writable c_int; `pid` is our unreaped child.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            return Ok(status);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}
