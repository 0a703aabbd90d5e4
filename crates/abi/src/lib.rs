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
/// The most bytes of a program's name (`Spawn`).
pub const MAX_NAME: u64 = 32;
/// The most bytes of a program's arguments (`Spawn`, and the shell's).
pub const MAX_ARGS: u64 = 256;
/// The most bytes of a knowledge-base query (`SkbQuery`).
pub const MAX_QUERY: u64 = 256;

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
    /// `yield() -> 0`: gives the core to the next process that is ready,
    /// and goes on after it (at once if none is).
    Yield = 3,
    /// `spawn(name, name_length, args, args_length, core) -> pid`: starts
    /// the boot image's program `name` (at most [`MAX_NAME`] bytes) as a
    /// child of the caller, with `args` (at most [`MAX_ARGS`] bytes of
    /// UTF-8), on core `core - 1`, or on the caller's core when `core` is
    /// 0. On another core the call waits for that core's answer.
    Spawn = 4,
    /// `wait(pid, record) -> 0`: waits until the caller's child `pid` has
    /// ended, writes how at `record` (an [`ExitRecord`]) and forgets the
    /// child.
    Wait = 5,
    /// `pid() -> pid`: the caller's process id.
    Pid = 6,
    /// `map(address, flags) -> token`: asks for a fresh zeroed page at
    /// `address` (page-aligned, in the user range), writable if `flags`
    /// holds [`MAP_WRITABLE`] (never executable). Split-phase: the page is
    /// there once the token completes (`Poll`), agreed by every core the
    /// process's address space is on.
    Map = 7,
    /// `unmap(address) -> token`: asks for the page at `address` to be
    /// unmapped on every core of the process; once the token completes, no
    /// core's TLB holds it.
    Unmap = 8,
    /// `poll(token) -> 0`: whether the change of `token` has ended: 0 (it
    /// took effect, and the token is spent), `Refused` (it did not, and
    /// the token is spent), or `Pending`.
    Poll = 9,
    /// `wait_event() -> 0`: waits until one of the caller's changes has
    /// ended and is not yet polled (at once if one has).
    WaitEvent = 10,
    /// `dispatcher() -> index << 16 | count`: which of its process's
    /// dispatchers the caller is (0 on the process's home core), and how
    /// many the process has (one per core it spans).
    Dispatcher = 11,
    /// `space_hash() -> hash`: this core's replica of the caller's address
    /// space, hashed (its mappings, FNV-1a): equal on every core of the
    /// process when no change of it is under way.
    SpaceHash = 12,
    /// `channel_create(address) -> token`: a channel: a fresh zeroed page
    /// at `address` (as `Map` maps one) that one other process may
    /// connect to (`ChannelConnect`), named by the caller's id and
    /// `address`. Its first half is the ring from the creator to the
    /// other, its second the ring back. The page cannot be unmapped.
    ChannelCreate = 13,
    /// `channel_connect(pid, address, my_address) -> token`: maps process
    /// `pid`'s channel at its `address` at `my_address` of the caller, on
    /// any core; at most one process connects to a channel.
    ChannelConnect = 14,
    /// `notify(address) -> 0`: wakes the process at the other end of the
    /// caller's channel at `address` if it waits (`wait_notify`); call it
    /// only when the ring says the receiver sleeps.
    Notify = 15,
    /// `wait_notify() -> 0`: waits until a process the caller has a
    /// channel with notifies it (at once if one has since the last wait).
    WaitNotify = 16,
    /// `time() -> ns`: nanoseconds since the machine started, by this
    /// core's time-stamp counter.
    Time = 17,
    /// `core_info() -> core << 32 | cores`: the core the caller runs on, and
    /// how many cores its view holds.
    CoreInfo = 18,
    /// `skb_query(body, length, out, out_length) -> bytes`: evaluates the
    /// rule body `body` (at most [`MAX_QUERY`] bytes of UTF-8) against this
    /// core's replica of the knowledge base and writes its answers at `out`,
    /// a line each (`X = 1, Y = 2`, or `true`), as long as they fit in
    /// `out_length` bytes (`TooLong` otherwise, and nothing written).
    SkbQuery = 19,
    /// `kill(pid) -> 0`: kills the caller's child `pid`, on whichever core
    /// it runs (on another, the kill is under way when this returns); its
    /// end comes to `wait` as killed.
    Kill = 20,
    /// `channel_state(address) -> 0`: whether the caller's channel at
    /// `address` still has its other end (or may still get one): 0, or
    /// `NoSuchChannel` once the other end has ended (what it sent before
    /// stays in the ring).
    ChannelState = 21,
}

impl Call {
    pub const ALL: [Call; 22] = [
        Call::ConsoleWrite,
        Call::Exit,
        Call::Null,
        Call::Yield,
        Call::Spawn,
        Call::Wait,
        Call::Pid,
        Call::Map,
        Call::Unmap,
        Call::Poll,
        Call::WaitEvent,
        Call::Dispatcher,
        Call::SpaceHash,
        Call::ChannelCreate,
        Call::ChannelConnect,
        Call::Notify,
        Call::WaitNotify,
        Call::Time,
        Call::CoreInfo,
        Call::SkbQuery,
        Call::Kill,
        Call::ChannelState,
    ];

    pub fn from_number(number: u64) -> Option<Call> {
        Call::ALL.into_iter().find(|call| *call as u64 == number)
    }
}

/// A channel's page: the ring from its creator to the other end in the
/// first half, the ring back in the second.
pub const CHANNEL_RING_BYTES: u64 = 2048;

/// `Map`'s flag for a writable page.
pub const MAP_WRITABLE: u64 = 1;

/// How a child ended, as `Wait` writes it: four words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct ExitRecord {
    /// [`EXITED`], [`FAULTED`] or [`KILLED`].
    pub kind: u64,
    /// For [`EXITED`], the status; for [`FAULTED`], the exception vector.
    pub value: u64,
    /// For [`FAULTED`], the instruction.
    pub rip: u64,
    /// For a page fault, the address.
    pub address: u64,
}

/// `ExitRecord::kind`: the child called `exit`.
pub const EXITED: u64 = 0;
/// It took an exception.
pub const FAULTED: u64 = 1;
/// It was killed.
pub const KILLED: u64 = 2;

impl ExitRecord {
    /// The record as the bytes `Wait` writes.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut bytes = [0; 32];
        for (chunk, word) in
            bytes
                .chunks_exact_mut(8)
                .zip([self.kind, self.value, self.rip, self.address])
        {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        bytes
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
    /// Text (a name, arguments) that is not UTF-8.
    NotText = 4,
    /// The boot image holds no program of that name.
    NoSuchProgram = 5,
    /// The program cannot be started: a bad image, or no memory for it.
    NotLoaded = 6,
    /// The core runs as many processes as it holds.
    TooManyProcesses = 7,
    /// No process has that id (or it ended and was waited for).
    NoSuchProcess = 8,
    /// The process is not the caller's child.
    NotAChild = 9,
    /// An argument outside what the call takes (flags it does not know).
    BadArgument = 10,
    /// No free frame on the caller's core.
    NoMemory = 11,
    /// The change was refused: the page is mapped already (a map), is not
    /// mapped (an unmap), or another change of it is under way.
    Refused = 12,
    /// The change has not ended yet.
    Pending = 13,
    /// No change of the caller has that token (or it was polled already);
    /// for `WaitEvent`, the caller has no change under way.
    NoSuchToken = 14,
    /// The caller has [`MAX_CHANGES`] changes not yet polled.
    TooManyChanges = 15,
    /// No channel at that address (of that process), or it has its other
    /// end already.
    NoSuchChannel = 16,
    /// The knowledge base refused the query (its syntax, an unknown
    /// predicate).
    BadQuery = 17,
    /// No running core has that number.
    NoSuchCore = 18,
}

/// The most changes (maps, unmaps) a process may have proposed and not yet
/// polled the end of.
pub const MAX_CHANGES: u64 = 64;

impl Error {
    pub const ALL: [Error; 18] = [
        Error::UnknownCall,
        Error::BadAddress,
        Error::TooLong,
        Error::NotText,
        Error::NoSuchProgram,
        Error::NotLoaded,
        Error::TooManyProcesses,
        Error::NoSuchProcess,
        Error::NotAChild,
        Error::BadArgument,
        Error::NoMemory,
        Error::Refused,
        Error::Pending,
        Error::NoSuchToken,
        Error::TooManyChanges,
        Error::NoSuchChannel,
        Error::BadQuery,
        Error::NoSuchCore,
    ];

    /// The value `rax` returns for this error.
    pub fn to_return(self) -> u64 {
        (self as u64).wrapping_neg()
    }

    /// The error `rax` holds, if it holds one.
    pub fn from_return(value: u64) -> Option<Error> {
        let code = value.wrapping_neg();
        Error::ALL.into_iter().find(|error| *error as u64 == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_errors_round_trip() {
        for (number, call) in Call::ALL.into_iter().enumerate() {
            assert_eq!(call as u64, number as u64, "numbers have no gaps");
            assert_eq!(Call::from_number(call as u64), Some(call));
        }
        assert_eq!(Call::from_number(Call::ALL.len() as u64), None);
        for (index, error) in Error::ALL.into_iter().enumerate() {
            assert_eq!(error as u64, index as u64 + 1, "codes have no gaps");
            assert_eq!(Error::from_return(error.to_return()), Some(error));
        }
        assert_eq!(Error::from_return(19u64.wrapping_neg()), None);
        assert_eq!(Error::from_return(5), None);
        assert_eq!(Error::from_return(0), None);
    }

    #[test]
    fn an_exit_record_is_four_little_endian_words() {
        let record = ExitRecord {
            kind: FAULTED,
            value: 14,
            rip: 0x8000_0000_1000,
            address: 0,
        };
        let bytes = record.to_bytes();
        assert_eq!(bytes[0], 1);
        assert_eq!(bytes[8], 14);
        assert_eq!(&bytes[16..24], &0x8000_0000_1000u64.to_le_bytes());
    }
}
