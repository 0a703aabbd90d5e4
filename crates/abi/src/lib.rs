//! The system-call ABI between Atoll's kernel and its programs, shared by
//! both sides so that they cannot disagree.
//!
//! A program calls the kernel with `syscall`: the call's number in `rax`,
//! its arguments in `rdi`, `rsi`, `rdx`, `r10`, `r8` and `r9`. The kernel
//! answers in `rax`: a value (0 or more), or a negated [`Error`] code. It
//! keeps every other register but `rcx` and `r11`, which `syscall` itself
//! uses. `docs/userspace.md` describes each call.
//!
//! This crate holds numbers and types only: no code runs here.
#![no_std]
#![forbid(unsafe_code)]

/// Where a program's address space starts for it: the second 512 GiB slot
/// of the lower half (the first holds the kernel's identity map, which
/// programs cannot reach). Programs are linked here (`user/link.ld`).
pub const USER_START: u64 = 1 << 39;
/// Where it ends (the third slot is the kernel's test address space).
pub const USER_END: u64 = 2 << 39;
/// The top of a program's stack, which grows down from here.
pub const STACK_TOP: u64 = USER_END;
/// The pages of a program's stack.
pub const STACK_PAGES: u64 = 16;
/// The most bytes one `ConsoleWrite` takes.
pub const MAX_WRITE: u64 = 4096;

/// The system calls, by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Call {
    /// `console_write(address, length) -> length`: prints `length` bytes
    /// (at most [`MAX_WRITE`]) of the program's memory at `address` on the
    /// console, as one piece.
    ConsoleWrite = 0,
    /// `exit(status) -> !`: ends the program with `status`.
    Exit = 1,
    /// `null() -> 0`: does nothing; what a system call costs.
    Null = 2,
}

impl Call {
    pub fn from_number(number: u64) -> Option<Call> {
        match number {
            0 => Some(Call::ConsoleWrite),
            1 => Some(Call::Exit),
            2 => Some(Call::Null),
            _ => None,
        }
    }
}

/// Why a system call failed; `rax` holds its code negated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Error {
    /// No system call has this number.
    UnknownCall = 1,
    /// An address the program gave is not its to use: outside its space,
    /// not mapped, or not readable (or writable) as the call needs.
    BadAddress = 2,
    /// A length past what the call takes.
    TooLong = 3,
}

impl Error {
    /// The value `rax` returns for this error.
    pub fn to_return(self) -> u64 {
        (self as u64).wrapping_neg()
    }

    /// The error `rax` holds, if it holds one.
    pub fn from_return(value: u64) -> Option<Error> {
        match value.wrapping_neg() {
            1 => Some(Error::UnknownCall),
            2 => Some(Error::BadAddress),
            3 => Some(Error::TooLong),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_errors_round_trip() {
        for call in [Call::ConsoleWrite, Call::Exit, Call::Null] {
            assert_eq!(Call::from_number(call as u64), Some(call));
        }
        assert_eq!(Call::from_number(3), None);
        for error in [Error::UnknownCall, Error::BadAddress, Error::TooLong] {
            assert_eq!(Error::from_return(error.to_return()), Some(error));
        }
        assert_eq!(Error::from_return(5), None);
        assert_eq!(Error::from_return(0), None);
    }
}
