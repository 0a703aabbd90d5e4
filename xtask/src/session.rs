//! A QEMU process whose serial output (QEMU's stdout) and diagnostics
//! (stderr) are captured as they arrive, optionally echoed to this terminal,
//! so that callers can wait for text, type into the shell, and read the
//! whole log afterwards. Every session has a deadline; past it QEMU is killed.

use std::io::{self, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::qemu::QemuExit;

/// What QEMU's stdin (the guest's serial input) is connected to.
#[derive(Clone, Copy)]
pub enum Input {
    Closed,
    Piped,
}

pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    logs: Arc<Logs>,
    readers: Vec<JoinHandle<()>>,
    timeout: Duration,
    deadline: Instant,
}

#[derive(Default)]
pub struct Logs {
    pub serial: Capture,
    pub stderr: Capture,
}

/// Bytes from one of QEMU's output pipes, shared with the thread that reads it.
#[derive(Default)]
pub struct Capture {
    state: Mutex<Captured>,
    grown: Condvar,
}

#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    /// The pipe reached end of file: QEMU exited.
    closed: bool,
}

enum WaitEnd {
    Closed,
    TimedOut,
}

impl Session {
    /// Starts `command` with its output captured. With `echo`, the output is
    /// also copied to this process's stdout and stderr as it arrives.
    pub fn start(
        mut command: Command,
        input: Input,
        echo: bool,
        timeout: Duration,
    ) -> io::Result<Session> {
        command
            .stdin(match input {
                Input::Closed => Stdio::null(),
                Input::Piped => Stdio::piped(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot start {}: {error}", command.get_program().display()),
            )
        })?;
        let logs = Arc::new(Logs::default());
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let readers = vec![
            spawn_reader(
                stdout,
                Arc::clone(&logs),
                |logs| &logs.serial,
                echo.then(stdout_echo),
            ),
            spawn_reader(
                stderr,
                Arc::clone(&logs),
                |logs| &logs.stderr,
                echo.then(stderr_echo),
            ),
        ];
        Ok(Session {
            stdin: child.stdin.take(),
            child,
            logs,
            readers,
            timeout,
            deadline: Instant::now() + timeout,
        })
    }

    pub fn logs(&self) -> Arc<Logs> {
        Arc::clone(&self.logs)
    }

    /// Waits until the serial output after byte `from` contains `text`, and
    /// returns the offset just past it.
    pub fn wait_for(&self, text: &str, from: usize) -> Result<usize, String> {
        self.logs
            .serial
            .wait_for(text.as_bytes(), from, self.deadline)
            .map_err(|end| match end {
                WaitEnd::Closed => format!("QEMU exited before printing {text:?}"),
                WaitEnd::TimedOut => format!(
                    "no {text:?} within the {} s timeout",
                    self.timeout.as_secs()
                ),
            })
    }

    /// Types `bytes` on the guest's serial port.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or("QEMU was started without serial input")?;
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .map_err(|error| format!("cannot write to QEMU's serial input: {error}"))
    }

    /// Closes the serial input, waits for QEMU to end (killing it at the
    /// deadline), and collects the rest of its output.
    pub fn finish(&mut self) -> Result<QemuExit, String> {
        drop(self.stdin.take());
        let exit = self
            .wait_until_deadline()
            .map_err(|error| format!("cannot wait for QEMU: {error}"))?;
        for reader in self.readers.drain(..) {
            reader
                .join()
                .map_err(|_| "an output reader thread panicked")?;
        }
        Ok(exit)
    }

    fn wait_until_deadline(&mut self) -> io::Result<QemuExit> {
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(QemuExit::from_status(status));
            }
            if Instant::now() >= self.deadline {
                self.child.kill()?;
                self.child.wait()?;
                return Ok(QemuExit::TimedOut(self.timeout));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A session abandoned half way (a failed assertion) must not leave QEMU running.
impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

type Echo = Box<dyn Write + Send>;

fn stdout_echo() -> Echo {
    Box::new(io::stdout())
}

fn stderr_echo() -> Echo {
    Box::new(io::stderr())
}

fn spawn_reader(
    source: impl Read + Send + 'static,
    logs: Arc<Logs>,
    capture: fn(&Logs) -> &Capture,
    echo: Option<Echo>,
) -> JoinHandle<()> {
    thread::spawn(move || capture(&logs).fill_from(source, echo))
}

impl Capture {
    fn fill_from(&self, mut source: impl Read, mut echo: Option<Echo>) {
        let mut buffer = [0; 4096];
        loop {
            let count = match source.read(&mut buffer) {
                Ok(0) => break,
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            if let Some(out) = echo.as_mut() {
                // The terminal going away must not stop the capture the verdict depends on.
                let _ = out.write_all(&buffer[..count]).and_then(|()| out.flush());
            }
            self.lock().bytes.extend_from_slice(&buffer[..count]);
            self.grown.notify_all();
        }
        self.lock().closed = true;
        self.grown.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, Captured> {
        // A reader that panicked leaves the bytes it had; they are still worth reading.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().bytes).into_owned()
    }

    /// The text of bytes `from..to`.
    pub fn text_between(&self, from: usize, to: usize) -> String {
        String::from_utf8_lossy(&self.lock().bytes[from..to]).into_owned()
    }

    fn wait_for(&self, needle: &[u8], from: usize, deadline: Instant) -> Result<usize, WaitEnd> {
        let mut captured = self.lock();
        loop {
            if let Some(at) = captured.bytes[from..]
                .windows(needle.len())
                .position(|window| window == needle)
            {
                return Ok(from + at + needle.len());
            }
            if captured.closed {
                return Err(WaitEnd::Closed);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(WaitEnd::TimedOut);
            }
            captured = self
                .grown
                .wait_timeout(captured, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str, input: Input, timeout: Duration) -> Session {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        Session::start(command, input, false, timeout).unwrap()
    }

    #[test]
    fn waits_for_prompts_and_types_lines() {
        let mut session = shell(
            r#"printf 'atoll> '; read line; echo "got $line"; echo oops >&2; printf 'atoll> '; exit 7"#,
            Input::Piped,
            Duration::from_secs(30),
        );
        let first = session.wait_for("atoll> ", 0).unwrap();
        session.send(b"cores\n").unwrap();
        let second = session.wait_for("atoll> ", first).unwrap();
        let logs = session.logs();
        assert_eq!(
            logs.serial.text_between(first, second),
            "got cores\natoll> "
        );
        assert_eq!(session.finish(), Ok(QemuExit::Status(7)));
        assert_eq!(logs.stderr.text(), "oops\n");
        assert_eq!(
            session.wait_for("never", second),
            Err("QEMU exited before printing \"never\"".to_owned())
        );
    }

    #[test]
    fn kills_the_process_at_the_deadline() {
        let limit = Duration::from_millis(300);
        let mut session = shell("printf 'atoll> '; exec sleep 30", Input::Closed, limit);
        let error = session.wait_for("atoll: 1 of 1 cores up", 0).unwrap_err();
        assert!(error.contains("within the 0 s timeout"), "{error}");
        assert_eq!(session.finish(), Ok(QemuExit::TimedOut(limit)));
        assert!(session.send(b"x").is_err());
    }
}
