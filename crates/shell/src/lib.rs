//! The serial shell's pure logic: a line editor fed one byte at a time from a
//! serial port, the command parser, and the reader for `atoll.exec=` scripts on
//! the kernel command line. It does no I/O of its own, so all of it is
//! host-testable; the kernel owns the UART and runs the commands.
//!
//! Depends only on `core` and `alloc` (the kernel has a heap by the time the
//! shell runs).

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod command;
mod line_editor;
mod script;

pub use command::{Command, Launch, ParseError, Victim, help_text, parse};
pub use line_editor::{HISTORY_LEN, Line, LineEditor};
pub use script::{cmdline_option, exec_script_from_cmdline, split_script};
