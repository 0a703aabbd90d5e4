//! What an Atoll program links with: the system calls as functions, the
//! entry point that runs the program's `main` and exits with its status,
//! and a panic handler that reports and exits.
//!
//! A program is a `no_std`, `no_main` binary that names its main function
//! with [`main!`]. The `unsafe` of user space lives here alone, in
//! [`syscall`]: the one instruction that enters the kernel.
#![no_std]

use core::fmt::{self, Write};

pub use atoll_abi::{Call, Error, MAX_WRITE, STACK_TOP};

/// Enters the kernel with system call `call` and up to two arguments;
/// what it answers in `rax`.
fn syscall(call: Call, first: u64, second: u64) -> u64 {
    call_raw(call as u64, first, second)
}

/// Enters the kernel with system call number `number`, which need not be
/// one (for programs that test the kernel's checks), and up to two
/// arguments; what it answers in `rax`.
pub fn call_raw(number: u64, first: u64, second: u64) -> u64 {
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
        bytes.as_ptr() as u64,
        bytes.len() as u64,
    ))
}

/// Ends the program with `status`.
pub fn exit(status: u64) -> ! {
    syscall(Call::Exit, status, 0);
    // The kernel does not return from `Exit`.
    loop {
        core::hint::spin_loop();
    }
}

/// A system call that does nothing, for measuring what one costs.
pub fn null() -> u64 {
    syscall(Call::Null, 0, 0)
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

/// Prints on the console, as `print!` would.
#[macro_export]
macro_rules! print {
    ($($argument:tt)*) => {{
        let _ = core::fmt::Write::write_fmt(&mut $crate::Console, format_args!($($argument)*));
    }};
}

/// Prints a line on the console.
#[macro_export]
macro_rules! println {
    ($($argument:tt)*) => {{
        $crate::print!($($argument)*);
        $crate::print!("\n");
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

/// The exit status of a program that panicked.
pub const PANIC_STATUS: u64 = 101;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("panic: {info}");
    exit(PANIC_STATUS)
}

/// Names the program's main function, `fn() -> u64`, whose result is its
/// exit status: it defines the entry point the kernel starts the program
/// at, which runs it and exits.
#[macro_export]
macro_rules! main {
    ($main:path) => {
        #[unsafe(no_mangle)]
        extern "C" fn _start() -> ! {
            let main: fn() -> u64 = $main;
            $crate::exit(main())
        }
    };
}
