//! What an Atoll program links with: the system calls as functions, the
//! entry point that runs the program's `main` and exits with its status,
//! a panic handler that reports and exits, a global allocator (`heap`),
//! futures and an executor for split-phase calls, and channels.
//!
//! A program is a `no_std`, `no_main` binary that names its main function
//! with [`main!`]. The `unsafe` of user space lives here alone: the one
//! instruction that enters the kernel ([`call_raw`]), the time-stamp
//! counter, the arguments the kernel placed ([`args`]), and a read of any
//! address for the programs that show what a bad one does.
#![no_std]

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};

pub use atoll_abi::{
    CAP_DISPATCHER, CAP_ENDPOINT, CAP_FRAME, CAP_PROCESS, CAP_SPACE, Call, EXITED, Error,
    ExitRecord, FAULTED, HANDED, KILLED, MAP_WRITABLE, MAX_ARGS, MAX_CAPS, MAX_DEPTH, MAX_NAME,
    MAX_QUERY, MAX_WRITE, NO_CAP, RIGHT_CONNECT, RIGHT_COPY, RIGHT_KILL, RIGHT_MAP, RIGHT_NOTIFY,
    RIGHT_READ, RIGHT_WAIT, RIGHT_WRITE, RIGHTS_ALL, SELF_DISPATCHER, SELF_PROCESS, SELF_SPACE,
    STACK_PAGES, STACK_TOP, USER_END, USER_START,
};

pub mod channel;
mod executor;
pub mod heap;
pub use atoll_urpc::{PAYLOAD_SIZE, Payload};
pub use executor::{Change, block_on, block_on_all, map, map_frame, map_in, protect, unmap};

/// A capability: the slot of one in this process's table (this
/// dispatcher's: each dispatcher of a process has its own). A process
/// starts with [`SELF_SPACE`], [`SELF_PROCESS`] and [`SELF_DISPATCHER`],
/// and [`HANDED`] if its spawner handed it one.
pub type Cap = u64;

/// Enters the kernel with system call `call` and up to four arguments;
/// what it answers in `rax`.
fn syscall(call: Call, [first, second, third, fourth]: [u64; 4]) -> u64 {
    enter(call as u64, [first, second, third, fourth, 0, 0])
}

/// Enters the kernel with system call number `number`, which need not be
/// one (for programs that test the kernel's checks), and six arguments
/// (`rdi`, `rsi`, `rdx`, `r10`, `r8`, `r9`); what it answers in `rax`.
pub fn call_raw(number: u64, arguments: [u64; 6]) -> u64 {
    enter(number, arguments)
}

/// The `syscall` instruction, with the number in `rax` and six arguments
/// (`rdi`, `rsi`, `rdx`, `r10`, `r8`, `r9`).
fn enter(number: u64, [first, second, third, fourth, fifth, sixth]: [u64; 6]) -> u64 {
    let result;
    // SAFETY: `syscall` transfers to the kernel, which saves and restores
    // every register but `rax` (the answer), `rcx` and `r11` (which the
    // instruction itself overwrites), as `atoll_abi` states; the arguments
    // are plain numbers (the kernel checks any address among them) and no
    // memory of this program is written by the kernel unless a call says so.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") number => result,
            in("rdi") first,
            in("rsi") second,
            in("rdx") third,
            in("r10") fourth,
            in("r8") fifth,
            in("r9") sixth,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    result
}

/// The answer of a call, as a value or its error.
fn answer(value: u64) -> Result<u64, Error> {
    match Error::from_return(value) {
        Some(error) => Err(error),
        None => Ok(value),
    }
}

/// Prints `bytes` on the console, as one piece; how many were printed.
pub fn console_write(bytes: &[u8]) -> Result<u64, Error> {
    answer(syscall(
        Call::ConsoleWrite,
        [bytes.as_ptr() as u64, bytes.len() as u64, 0, 0],
    ))
}

/// Ends the program with `status`.
pub fn exit(status: u64) -> ! {
    syscall(Call::Exit, [status, 0, 0, 0]);
    // The kernel does not return from `Exit`.
    loop {
        core::hint::spin_loop();
    }
}

/// A system call that does nothing, for measuring what one costs.
pub fn null() -> u64 {
    syscall(Call::Null, [0; 4])
}

/// Gives the core to the next process that is ready.
pub fn yield_now() {
    syscall(Call::Yield, [0; 4]);
}

/// This process's id (by its own capability, [`SELF_PROCESS`], which it
/// must keep).
pub fn pid() -> u32 {
    pid_of(SELF_PROCESS).expect("the process's own capability is in SELF_PROCESS")
}

/// The id of the process the capability `process` names.
pub fn pid_of(process: Cap) -> Result<u32, Error> {
    answer(syscall(Call::Pid, [process, 0, 0, 0])).map(|pid| pid as u32)
}

/// Nanoseconds since the machine started.
pub fn time() -> u64 {
    syscall(Call::Time, [0; 4])
}

/// The core this dispatcher runs on, and how many cores its view holds.
pub fn core_info() -> (u32, u32) {
    let answer = syscall(Call::CoreInfo, [0; 4]);
    ((answer >> 32) as u32, answer as u32)
}

/// Evaluates the rule body `query` against this core's knowledge base;
/// its answers, a line each, in `out`; how many bytes they took.
pub fn skb_query<'a>(query: &str, out: &'a mut [u8]) -> Result<&'a str, Error> {
    let arguments = [
        query.as_ptr() as u64,
        query.len() as u64,
        out.as_mut_ptr() as u64,
        out.len() as u64,
    ];
    let length = answer(syscall(Call::SkbQuery, arguments))? as usize;
    core::str::from_utf8(&out[..length]).map_err(|_| Error::NotText)
}

/// This core's replica of the process's address space, hashed: equal on
/// every core of the process when no change of it is under way (by its
/// own capability, [`SELF_SPACE`]).
pub fn space_hash() -> u64 {
    syscall(Call::SpaceHash, [SELF_SPACE, 0, 0, 0])
}

/// As [`space_hash`], by the capability `space` (which needs
/// [`RIGHT_READ`]).
pub fn space_hash_of(space: Cap) -> Result<u64, Error> {
    answer(syscall(Call::SpaceHash, [space, 0, 0, 0]))
}

/// Which of its process's dispatchers the caller is (0 on the process's
/// home core), and how many the process has: one per core it spans (by its
/// own capability, [`SELF_DISPATCHER`], which it must keep).
pub fn dispatcher() -> (u16, u16) {
    let (_, index, count) = dispatcher_of(SELF_DISPATCHER)
        .expect("the dispatcher's own capability is in SELF_DISPATCHER");
    (index, count)
}

/// Adds a dispatcher on core `core` to this process (call it from the home
/// dispatcher, 0): maps the new dispatcher's stack, then asks the kernel,
/// which returns once every core of the process holds the new one. It
/// starts at the program's entry with the same arguments, as dispatcher
/// `count` (the count before); the capability for it.
pub fn span(core: u32) -> Result<Cap, Error> {
    let (_, count) = dispatcher();
    let top = STACK_TOP - u64::from(count) * (STACK_PAGES + 1) * 4096;
    let pages = (1..=STACK_PAGES).map(|page| top - page * 4096);
    for page in pages.clone() {
        block_on(map(page, true)?)?;
    }
    let spanned = answer(enter(Call::Span as u64, [u64::from(core), 0, 0, 0, 0, 0]));
    if spanned.is_err() {
        // The stack is no use now.
        for page in pages {
            if let Ok(change) = unmap(page) {
                let _ = block_on(change);
            }
        }
    }
    spanned
}

/// The dispatcher the capability `dispatcher` names: the core it runs on,
/// its index among its process's dispatchers, and how many it has.
pub fn dispatcher_of(dispatcher: Cap) -> Result<(u32, u16, u16), Error> {
    let answer = answer(syscall(Call::Dispatcher, [dispatcher, 0, 0, 0]))?;
    Ok(((answer >> 32) as u32, (answer >> 16) as u16, answer as u16))
}

/// Starts the boot image's program `name` on this core, as a child of this
/// process, with `args`; a capability for it (with [`RIGHT_WAIT`],
/// [`RIGHT_KILL`] and [`RIGHT_COPY`]).
pub fn spawn(name: &str, args: &str) -> Result<Cap, Error> {
    spawn_handing(name, args, None, NO_CAP)
}

/// Starts `name` with `args` as a child of this process on core `core`
/// (this one for `None`); a capability for it.
pub fn spawn_at(name: &str, args: &str, core: Option<u32>) -> Result<Cap, Error> {
    spawn_handing(name, args, core, NO_CAP)
}

/// As [`spawn_at`], and hands the child a copy of the capability `handed`
/// (which needs [`RIGHT_COPY`]), with its rights, which the child finds at
/// [`HANDED`]; [`NO_CAP`] hands nothing. To hand fewer rights, hand a
/// copy ([`cap_copy`]) with those and [`RIGHT_COPY`].
pub fn spawn_handing(name: &str, args: &str, core: Option<u32>, handed: Cap) -> Result<Cap, Error> {
    let arguments = [
        name.as_ptr() as u64,
        name.len() as u64,
        args.as_ptr() as u64,
        args.len() as u64,
        core.map_or(0, |core| u64::from(core) + 1),
        handed,
    ];
    answer(enter(Call::Spawn as u64, arguments))
}

/// Kills the process the capability `process` names (it needs
/// [`RIGHT_KILL`]), on whichever core it runs; its parent's `wait` then
/// finds it killed.
pub fn kill(process: Cap) -> Result<(), Error> {
    answer(syscall(Call::Kill, [process, 0, 0, 0])).map(|_| ())
}

/// Waits until one of this process's changes has ended and is not yet
/// polled; `NoSuchToken` if none is under way.
pub fn wait_event() -> Result<(), Error> {
    answer(syscall(Call::WaitEvent, [0; 4])).map(|_| ())
}

/// Whether the change of `token` has ended: `Ok` with its value once it
/// took effect (0 for a map or an unmap, the slot of this process's new
/// endpoint for a channel's create or connect), `Refused`, or `Pending`.
pub fn poll(token: u64) -> Result<u64, Error> {
    answer(syscall(Call::Poll, [token, 0, 0, 0]))
}

/// Waits until this process's child that the capability `process` names
/// (with [`RIGHT_WAIT`]) has ended; how it ended.
pub fn wait(process: Cap) -> Result<ExitRecord, Error> {
    let mut record = ExitRecord::default();
    let address = &mut record as *mut ExitRecord as u64;
    answer(syscall(Call::Wait, [process, address, 0, 0]))?;
    Ok(record)
}

/// A fresh zeroed frame of this core, named by a new capability (map,
/// write, copy) that [`map_frame`] maps; other processes of this core may
/// map it too, given a copy.
pub fn frame_alloc() -> Result<Cap, Error> {
    answer(syscall(Call::FrameAlloc, [0; 4]))
}

/// A copy of the capability `cap` (which needs [`RIGHT_COPY`]) with
/// `rights` (`RIGHT_*`, no more than it has), in a free slot.
pub fn cap_copy(cap: Cap, rights: u64) -> Result<Cap, Error> {
    answer(syscall(Call::CapCopy, [cap, rights, 0, 0]))
}

/// Gives the process at the other end of the channel of this process's
/// endpoint `endpoint` a copy of `cap` (which needs [`RIGHT_COPY`]) with
/// `rights`; it takes it with [`cap_receive`]. A grant the other end
/// cannot take is dropped.
pub fn cap_grant(endpoint: Cap, cap: Cap, rights: u64) -> Result<(), Error> {
    answer(syscall(Call::CapGrant, [endpoint, cap, rights, 0])).map(|_| ())
}

/// The oldest capability granted to this process and not yet received, or
/// `Pending` (a grant from another core may still be on its way).
pub fn cap_receive() -> Result<Cap, Error> {
    answer(syscall(Call::CapReceive, [0; 4]))
}

/// As [`cap_receive`], but waits (giving the core to others) while none
/// has arrived, until the time `deadline` (ns since the machine started,
/// as [`time`] says); `Pending` then. A grant travels apart from what is
/// sent on a channel: a receiver told over a channel that a grant was made
/// may have to wait a moment for it.
pub fn cap_receive_before(deadline: u64) -> Result<Cap, Error> {
    loop {
        match cap_receive() {
            Err(Error::Pending) if time() < deadline => yield_now(),
            other => return other,
        }
    }
}

/// Deletes every capability made from `cap` (its copies and grants, and
/// theirs), in every process on every core, and says how many; `cap`
/// stays. Returns once every core has answered.
pub fn cap_revoke(cap: Cap) -> Result<u64, Error> {
    answer(syscall(Call::CapRevoke, [cap, 0, 0, 0]))
}

/// Empties the slot `cap`.
pub fn cap_delete(cap: Cap) -> Result<(), Error> {
    answer(syscall(Call::CapDelete, [cap, 0, 0, 0])).map(|_| ())
}

/// What the capability `cap` is: its type (`CAP_*`) and its rights
/// (`RIGHT_*`).
pub fn cap_info(cap: Cap) -> Result<(u64, u64), Error> {
    answer(syscall(Call::CapInfo, [cap, 0, 0, 0]))
        .map(|info| (info >> 32, info & u64::from(u32::MAX)))
}

/// Where the kernel placed the program's arguments, and their length
/// ([`main!`]'s entry point records them).
static ARGS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// Records the arguments the kernel passed the entry point; for [`main!`].
#[doc(hidden)]
pub fn set_args(address: u64, length: u64) {
    ARGS[0].store(address, Ordering::Relaxed);
    ARGS[1].store(length, Ordering::Relaxed);
}

/// The program's arguments, as its spawner gave them (empty if there were
/// none, or if they are not UTF-8).
pub fn args() -> &'static str {
    let (address, length) = (
        ARGS[0].load(Ordering::Relaxed),
        ARGS[1].load(Ordering::Relaxed),
    );
    if length == 0 || length > MAX_ARGS {
        return "";
    }
    // SAFETY: the kernel placed `length` bytes at `address`, at the top of
    // the stack's top page, above where the stack starts: nothing writes
    // them while the program runs, and they stay mapped until it ends.
    let bytes = unsafe { core::slice::from_raw_parts(address as *const u8, length as usize) };
    core::str::from_utf8(bytes).unwrap_or("")
}

/// The time-stamp counter: cycles since the processor started.
pub fn cycles() -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: `rdtsc` reads a counter into two registers and touches no
    // memory; ring 3 may run it (the kernel leaves CR4.TSD off).
    unsafe {
        core::arch::asm!("rdtsc", out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags));
    }
    (u64::from(high) << 32) | u64::from(low)
}

/// The console, for `write!`: each piece of text is one write.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for piece in text.as_bytes().chunks(atoll_abi::MAX_WRITE as usize) {
            console_write(piece).map_err(|_| fmt::Error)?;
        }
        Ok(())
    }
}

/// Text gathered on the stack and written in as few writes as it fits in,
/// so that a line is one write and other cores' lines do not cut into it.
pub struct Gathered {
    bytes: [u8; 512],
    length: usize,
}

impl Gathered {
    pub const fn new() -> Self {
        Self {
            bytes: [0; 512],
            length: 0,
        }
    }

    /// Writes what is gathered.
    pub fn flush(&mut self) -> fmt::Result {
        let gathered = &self.bytes[..self.length];
        self.length = 0;
        match gathered.is_empty() {
            true => Ok(()),
            false => console_write(gathered).map(|_| ()).map_err(|_| fmt::Error),
        }
    }
}

impl Default for Gathered {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Gathered {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if self.length + text.len() > self.bytes.len() {
            self.flush()?;
        }
        if text.len() > self.bytes.len() {
            return Console.write_str(text);
        }
        self.bytes[self.length..self.length + text.len()].copy_from_slice(text.as_bytes());
        self.length += text.len();
        Ok(())
    }
}

/// Prints on the console, as `print!` would: one write while it fits.
#[macro_export]
macro_rules! print {
    ($($argument:tt)*) => {{
        let mut gathered = $crate::Gathered::new();
        let _ = core::fmt::Write::write_fmt(&mut gathered, format_args!($($argument)*));
        let _ = gathered.flush();
    }};
}

/// Prints a line on the console: one write while it fits.
#[macro_export]
macro_rules! println {
    ($($argument:tt)*) => {{
        $crate::print!("{}\n", format_args!($($argument)*));
    }};
}

/// Reads the word at `address`, whatever it is: for programs that show
/// what a bad read does (the kernel ends the program that makes it).
pub fn read_address(address: u64) -> u64 {
    // SAFETY: none in general, and on purpose: the read is the fault a
    // buggy program makes, and the kernel must end this program for it
    // (or, at a readable address of the program's own, it reads a word).
    unsafe { core::ptr::read_volatile(address as *const u64) }
}

/// Writes `value` as the word at `address`, a page this process mapped
/// writable (`map`); at any other address the kernel ends the process, as
/// for any bad write.
pub fn write_address(address: u64, value: u64) {
    // SAFETY: none in general, as for `read_address`: the write touches
    // only this process's memory (the kernel ends it for anything else),
    // and no Rust object lives in pages `map` gave it.
    unsafe { core::ptr::write_volatile(address as *mut u64, value) }
}

/// Runs `ud2`, the undefined instruction: for the program that shows what
/// an illegal instruction does (the kernel ends the program).
pub fn undefined_instruction() -> ! {
    // SAFETY: `ud2` raises the invalid-opcode exception and touches nothing;
    // the kernel ends the program there, so it never returns.
    unsafe { core::arch::asm!("ud2", options(nomem, nostack, noreturn)) }
}

/// The exit status of a program that panicked.
pub const PANIC_STATUS: u64 = 101;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("panic: {info}");
    exit(PANIC_STATUS)
}

/// Names the program's main function, `fn() -> u64`, whose result is its
/// exit status: it defines the entry point the kernel starts the program
/// at (with its arguments' place and length), which runs it and exits.
#[macro_export]
macro_rules! main {
    ($main:path) => {
        #[unsafe(no_mangle)]
        extern "C" fn _start(args: u64, length: u64) -> ! {
            $crate::set_args(args, length);
            let main: fn() -> u64 = $main;
            $crate::exit(main())
        }
    };
}
