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
    /// `spawn(name, name_length, args, args_length, core, handed) -> cap`:
    /// starts the boot image's program `name` (at most [`MAX_NAME`] bytes)
    /// as a child of the caller, with `args` (at most [`MAX_ARGS`] bytes
    /// of UTF-8), on core `core - 1`, or on the caller's core when `core`
    /// is 0; hands the child a copy of the caller's capability `handed`
    /// (its slot [`HANDED`]), or none when `handed` is [`NO_CAP`]. Answers
    /// the slot of a capability for the child (a [`CAP_PROCESS`] with
    /// [`RIGHT_WAIT`], [`RIGHT_KILL`] and [`RIGHT_COPY`]). On another core
    /// the call waits for that core's answer.
    Spawn = 4,
    /// `wait(process, record) -> 0`: waits until the caller's child that
    /// the capability `process` names (with [`RIGHT_WAIT`]) has ended,
    /// writes how at `record` (an [`ExitRecord`]) and forgets the child;
    /// the slot `process` is emptied (a copy made before names a child
    /// that is gone: `NoSuchProcess`).
    Wait = 5,
    /// `pid(process) -> pid`: the id of the process the capability
    /// `process` names ([`SELF_PROCESS`]: the caller's own).
    Pid = 6,
    /// `map(space, address, flags, frame) -> token`: asks for a page at
    /// `address` (page-aligned, in the user range) of the address space
    /// `space` (the caller's own, with [`RIGHT_MAP`]), writable if `flags`
    /// holds [`MAP_WRITABLE`] (never executable): a fresh zeroed frame when
    /// `frame` is [`NO_CAP`], or the frame the capability `frame` names
    /// (with [`RIGHT_MAP`], and [`RIGHT_WRITE`] to map it writable), which
    /// other processes may map too. Split-phase: the page is there once the
    /// token completes (`Poll`), agreed by every core the process's address
    /// space is on.
    Map = 7,
    /// `unmap(space, address) -> token`: asks for the page at `address` to
    /// be unmapped on every core of the process (`space` as for `Map`);
    /// once the token completes, no core's TLB holds it.
    Unmap = 8,
    /// `poll(token) -> value`: whether the change of `token` has ended:
    /// its value (0 for a map or unmap; the slot of the caller's new
    /// endpoint for a channel's create or connect) once it took effect,
    /// and the token is spent; `Refused` (it did not, and the token is
    /// spent), or `Pending`.
    Poll = 9,
    /// `wait_event() -> 0`: waits until one of the caller's changes has
    /// ended and is not yet polled, or a process it has a channel with
    /// notifies it (at once if either has happened); `NoSuchToken` if it
    /// has no change under way and no channel. An executor sleeps here for
    /// all its futures.
    WaitEvent = 10,
    /// `dispatcher(dispatcher) -> core << 32 | index << 16 | count`: which
    /// of its process's dispatchers the capability `dispatcher` names (0
    /// on the process's home core), the core it runs on, and how many the
    /// process has (one per core it spans; for the caller's own process,
    /// as many as it has now). [`SELF_DISPATCHER`] names the caller's.
    Dispatcher = 11,
    /// `space_hash(space) -> hash`: this core's replica of the address
    /// space `space` (the caller's own, with [`RIGHT_READ`]), hashed (its
    /// mappings, FNV-1a): equal on every core of the process when no
    /// change of it is under way.
    SpaceHash = 12,
    /// `channel_create(address) -> token`: a channel: a fresh zeroed page
    /// at `address` (as `Map` maps one) that one other process may
    /// connect to (`ChannelConnect`). Its first half is the ring from the
    /// creator to the other, its second the ring back. The page cannot be
    /// unmapped. Once the token completes, `Poll` answers the slot of the
    /// caller's endpoint (a [`CAP_ENDPOINT`] with every right).
    ChannelCreate = 13,
    /// `channel_connect(endpoint, my_address) -> token`: maps the channel
    /// of the capability `endpoint` (its creator's end, with
    /// [`RIGHT_CONNECT`]) at `my_address` of the caller, on any core; at
    /// most one process connects to a channel. Once the token completes,
    /// `Poll` answers the slot of the caller's own endpoint.
    ChannelConnect = 14,
    /// `notify(endpoint) -> 0`: wakes the process at the other end of the
    /// caller's channel (`endpoint`: the caller's own end, with
    /// [`RIGHT_NOTIFY`]) if it waits (`wait_notify`); call it only when the
    /// ring says the receiver sleeps.
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
    /// `kill(process) -> 0`: kills the process the capability `process`
    /// names (with [`RIGHT_KILL`]), on whichever core it runs (on another,
    /// the kill is under way when this returns); a child's end comes to
    /// `wait` as killed.
    Kill = 20,
    /// `channel_state(endpoint) -> 0`: whether the caller's channel
    /// (`endpoint`: its own end) still has its other end (or may still get
    /// one): 0, or `NoSuchChannel` once the other end has ended (what it
    /// sent before stays in the ring).
    ChannelState = 21,
    /// `cap_copy(cap, rights) -> cap`: a copy of the caller's capability
    /// `cap` (which needs [`RIGHT_COPY`]) with `rights`, no more than it
    /// has, in a free slot of the caller's table; the slot.
    CapCopy = 22,
    /// `cap_grant(endpoint, cap, rights) -> 0`: gives the process at the
    /// other end of the caller's channel `endpoint` a copy of `cap` (which
    /// needs [`RIGHT_COPY`]) with `rights`, no more than it has; it takes
    /// it with `CapReceive`. A grant the other end cannot take (its table
    /// full, or it ended) is dropped; the caller keeps its own.
    CapGrant = 23,
    /// `cap_receive() -> cap`: the slot of the oldest capability granted
    /// to the caller that it has not received, or `Pending`.
    CapReceive = 24,
    /// `cap_revoke(cap) -> count`: deletes every capability derived from
    /// `cap` (its copies and grants, and theirs) in every process on every
    /// core, and answers how many. It returns once every running core
    /// has answered that it holds none (a core that leaves the view
    /// meanwhile is passed over). `cap` itself stays.
    CapRevoke = 25,
    /// `cap_delete(cap) -> 0`: empties the slot `cap` of the caller's
    /// table.
    CapDelete = 26,
    /// `cap_info(cap) -> type << 32 | rights`: what the capability `cap`
    /// of the caller is (`CAP_*`) and its rights (`RIGHT_*`).
    CapInfo = 27,
    /// `protect(space, address, flags) -> token`: asks for the mapped page
    /// at `address` (`space` as for `Map`) to be writable if `flags` holds
    /// [`MAP_WRITABLE`], read-only if not, keeping its frame. Split-phase
    /// as `Map`; once the token completes, no core's TLB holds the old
    /// rights. A program's code and a channel's page keep theirs
    /// (`BadArgument`).
    Protect = 28,
    /// `frame_alloc() -> cap`: a fresh zeroed frame of the caller's core,
    /// named by a new capability ([`CAP_FRAME`], with [`RIGHT_MAP`],
    /// [`RIGHT_WRITE`] and [`RIGHT_COPY`]) that `Map` maps. The frame goes
    /// back to its core's pool once no capability names it and no page
    /// maps it. Frame capabilities stay on their core: they may be copied,
    /// granted and handed to processes there only.
    FrameAlloc = 29,
    /// `span(core) -> cap`: adds a dispatcher on core `core` to the
    /// caller's process (from its home dispatcher, 0; a process with
    /// channels is refused: `BadArgument`). The new one is dispatcher
    /// `count` (the count before), and starts at the program's entry with
    /// its arguments, on the stack of that index, which the caller has
    /// mapped (at least its top page, writable: `BadAddress` if not;
    /// libatoll's `span` maps it). Every change of the space waits
    /// meanwhile; the call returns once the core has joined and every core
    /// of the process holds it, with the slot of a capability for the new
    /// dispatcher. `NoSuchCore`: no running core of that number, or one the
    /// process spans already.
    Span = 30,
}

impl Call {
    pub const ALL: [Call; 31] = [
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
        Call::CapCopy,
        Call::CapGrant,
        Call::CapReceive,
        Call::CapRevoke,
        Call::CapDelete,
        Call::CapInfo,
        Call::Protect,
        Call::FrameAlloc,
        Call::Span,
    ];

    pub fn from_number(number: u64) -> Option<Call> {
        Call::ALL.into_iter().find(|call| *call as u64 == number)
    }
}

/// The slots of a process's capability table: 0 to `MAX_CAPS - 1`.
pub const MAX_CAPS: u64 = 64;
/// The slot of the capability for the caller's own address space
/// ([`CAP_SPACE`], with [`RIGHT_MAP`], [`RIGHT_READ`], [`RIGHT_COPY`]),
/// as a process starts.
pub const SELF_SPACE: u64 = 0;
/// The slot of its own process ([`CAP_PROCESS`], with [`RIGHT_KILL`] and
/// [`RIGHT_COPY`]).
pub const SELF_PROCESS: u64 = 1;
/// The slot of its own dispatcher on the core it runs on
/// ([`CAP_DISPATCHER`], with [`RIGHT_COPY`]).
pub const SELF_DISPATCHER: u64 = 2;
/// The slot of the capability its spawner handed it, if any.
pub const HANDED: u64 = 3;
/// `Spawn`'s `handed` when it hands nothing.
pub const NO_CAP: u64 = u64::MAX;

/// Capability types (`CapInfo`): an address space.
pub const CAP_SPACE: u64 = 1;
/// A process.
pub const CAP_PROCESS: u64 = 2;
/// A dispatcher: a process's part on one core.
pub const CAP_DISPATCHER: u64 = 3;
/// One end of a channel.
pub const CAP_ENDPOINT: u64 = 4;
/// A frame of memory of one core's pool.
pub const CAP_FRAME: u64 = 5;

/// Rights: the capability may be copied and granted.
pub const RIGHT_COPY: u64 = 1;
/// An address space's pages may be mapped and unmapped; a frame may be
/// mapped.
pub const RIGHT_MAP: u64 = 2;
/// An address space may be read (`SpaceHash`).
pub const RIGHT_READ: u64 = 4;
/// A process may be killed.
pub const RIGHT_KILL: u64 = 8;
/// A child's end may be waited for.
pub const RIGHT_WAIT: u64 = 16;
/// A channel's creator end may be connected to.
pub const RIGHT_CONNECT: u64 = 32;
/// An endpoint may notify, grant, and be asked its state.
pub const RIGHT_NOTIFY: u64 = 64;
/// A frame may be mapped writable.
pub const RIGHT_WRITE: u64 = 128;
/// Every right.
pub const RIGHTS_ALL: u64 = 255;
/// How many times a capability may be copied or granted onward from the
/// one a process got first (a copy of a copy ...).
pub const MAX_DEPTH: u64 = 8;

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
    /// The caller's table has no capability in that slot.
    NoSuchCapability = 19,
    /// The capability is not of the type the call takes, or names an
    /// object the caller cannot use it on (another process's space, the
    /// other end's endpoint).
    WrongCapability = 20,
    /// The capability lacks a right the call needs (or a copy asks for a
    /// right it does not have).
    NoRight = 21,
    /// The caller's table has no free slot.
    TableFull = 22,
    /// The copy would be more than [`MAX_DEPTH`] copies from the first.
    TooDeep = 23,
}

/// The most changes (maps, unmaps) a process may have proposed and not yet
/// polled the end of.
pub const MAX_CHANGES: u64 = 64;

impl Error {
    pub const ALL: [Error; 23] = [
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
        Error::NoSuchCapability,
        Error::WrongCapability,
        Error::NoRight,
        Error::TableFull,
        Error::TooDeep,
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
        assert_eq!(Error::from_return(24u64.wrapping_neg()), None);
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
