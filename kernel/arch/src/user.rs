//! Running a program in ring 3 on this core, and the way back: the
//! `syscall` entry, a program's end (by a system call, or by a fault), its
//! registers when the kernel takes the core back, and reading and writing
//! its memory.
//!
//! [`run`] enters a program and returns when it has ended or the kernel
//! took the core back ([`Ended::Preempted`], with its [`Registers`], which
//! [`resume`] goes on from). Meanwhile its system calls go to the handler
//! the kernel set ([`set_syscall_handler`]), on the stack `run` was called
//! on, and return to it, end it, or switch it out; an exception it takes
//! ends it (the trap handler calls [`end_by_fault`]), and the timer's
//! interrupt switches it out (the trap handler calls [`preempt`]).
//! Interrupts are handled on the core's ring-0 stack (the TSS's).
//!
//! The kernel's GS base (the core-local block) is swapped out while the
//! program runs (`swapgs` on every way in and out), so nothing the program
//! does to its own GS reaches the kernel's. The block's first words after
//! its own address are this module's (`core_local::Switch`), at fixed
//! offsets the assembly uses.
//!
//! What a program may reach is its pages alone: the user range of the
//! core's tables maps the running program's address space only
//! (`PageTables::switch_user_space`), and SMEP and SMAP (when the
//! processor has them) keep the kernel from running or touching them but
//! through [`copy_from_user`] and [`copy_to_user`].

use core::arch::naked_asm;

use crate::paging::PageTables;

use x86_64::VirtAddr;
use x86_64::registers::control::{Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::structures::gdt::SegmentSelector;

/// The registers a system call came with, as the entry saved them, in the
/// trap frame's layout (`idt::TrapFrame`), so that a program its call
/// switches out goes on later like one an interrupt took the core from;
/// `rax` is the answer as it leaves.
#[repr(C)]
#[derive(Debug)]
pub struct SyscallFrame {
    r15: u64,
    r14: u64,
    r13: u64,
    r12: u64,
    r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    rcx: u64,
    rbx: u64,
    pub rax: u64,
    vector: u64,
    error_code: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

/// What a system call's handler decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Back to the program, with the answer in `frame.rax`.
    Program,
    /// The program has ended, with `status`: `run` returns.
    End { status: u64 },
    /// The program stops for now, with the answer in `frame.rax`: `run`
    /// returns [`Ended::Preempted`] with its registers (`yield`).
    Switch,
    /// The program waits: `run` returns [`Ended::Preempted`] with its
    /// registers as they were before the call, so that [`resume`] makes the
    /// same call again (`wait`, once what it waits for has happened).
    Block,
}

/// A program's registers, as the kernel saved them when it took the core
/// back (`idt::TrapFrame`'s 22 words): what [`resume`] goes on with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registers([u64; 22]);

/// Why [`run`] (or [`resume`]) returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Not ended: an interrupt (the timer, a wake-up) or a system call
    /// ([`Resume::Switch`], [`Resume::Block`]) took the core back from the
    /// program; [`resume`] goes on with it from these registers.
    Preempted(Registers),
    /// A system call ended it with `status` (its handler said
    /// [`Resume::End`]).
    ByCall { status: u64 },
    /// It took an exception: vector, error code, the instruction, and for
    /// a page fault the address.
    ByFault {
        vector: u64,
        error_code: u64,
        rip: u64,
        address: u64,
    },
}

/// The length of the `syscall` instruction, to make a call again.
const SYSCALL_LENGTH: u64 = 2;

/// What `syscall_dispatch` tells the entry when the program has ended
/// (0: back to the program).
const PROGRAM_ENDED: u64 = 1;

/// The kernel's handler of every system call; set once.
static SYSCALL_HANDLER: spin::Once<fn(&mut SyscallFrame) -> Resume> = spin::Once::new();

/// Makes `handler` the one every system call goes to.
pub fn set_syscall_handler(handler: fn(&mut SyscallFrame) -> Resume) {
    SYSCALL_HANDLER.call_once(|| handler);
}

const ENDED_KIND_CALL: u64 = 1;
const ENDED_KIND_FAULT: u64 = 2;
const ENDED_KIND_PREEMPTED: u64 = 3;

/// Records how the program on this core ended, for [`run`].
fn record(ended: Ended) {
    let words = match ended {
        Ended::Preempted(registers) => {
            crate::core_local::switch().preempted.set(registers.0);
            (ENDED_KIND_PREEMPTED, [0; 4])
        }
        Ended::ByCall { status } => (ENDED_KIND_CALL, [status, 0, 0, 0]),
        Ended::ByFault {
            vector,
            error_code,
            rip,
            address,
        } => (ENDED_KIND_FAULT, [vector, error_code, rip, address]),
    };
    crate::core_local::switch().ended.set(Some(words));
}

/// Readies this core for ring 3: the `syscall` instruction and its entry,
/// no-execute pages, and SMEP and SMAP where the processor has them. The
/// selectors are the GDT's, in the order `sysret` needs (kernel data right
/// after kernel code, user code right after user data). Returns whether
/// SMEP and SMAP are on.
pub(crate) fn init(
    kernel_code: SegmentSelector,
    kernel_data: SegmentSelector,
    user_data: SegmentSelector,
    user_code: SegmentSelector,
) -> bool {
    // SAFETY: turning on `syscall` and no-execute changes no mapping in use
    // (no page has the no-execute bit yet), and the entry is set before any
    // program can run `syscall`.
    unsafe {
        Efer::update(|flags| {
            flags.insert(EferFlags::SYSTEM_CALL_EXTENSIONS | EferFlags::NO_EXECUTE_ENABLE);
        });
    }
    Star::write(user_code, user_data, kernel_code, kernel_data)
        .expect("the GDT's segments are in the order sysret needs");
    LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
    SFMask::write(
        RFlags::INTERRUPT_FLAG
            | RFlags::DIRECTION_FLAG
            | RFlags::TRAP_FLAG
            | RFlags::ALIGNMENT_CHECK
            | RFlags::NESTED_TASK,
    );
    let features = core::arch::x86_64::__cpuid_count(7, 0).ebx;
    let (smep, smap) = (features & (1 << 7) != 0, features & (1 << 20) != 0);
    if smep && smap {
        // SAFETY: the kernel neither runs user pages nor touches them but
        // in `copy_from_user`, which allows it for the copy alone.
        unsafe {
            Cr4::update(|flags| {
                flags.insert(
                    Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION
                        | Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION,
                );
            });
        }
    }
    smep && smap
}

/// Runs the program whose pages the user range maps from `entry`, with
/// its stack at `stack_top` and `arguments` in its first two argument
/// registers (`rdi`, `rsi`), until it ends or the kernel takes the core
/// back. The caller must have checked that both lie in the program's
/// pages; interrupts are on again when this returns.
pub fn run(entry: u64, stack_top: u64, arguments: [u64; 2]) -> Ended {
    crate::core_local::switch().ended.set(None);
    // SAFETY: `enter_user` saves the callee-saved registers and this
    // stack pointer, and comes back here (through a system call's end, a
    // fault or a preemption) with them restored; the program runs in ring
    // 3, on its own pages, and cannot touch the kernel's.
    unsafe { enter_user(entry, stack_top, arguments[0], arguments[1]) };
    how_it_ended()
}

/// Goes on with a program [`run`] or [`resume`] returned
/// [`Ended::Preempted`] for, from its `registers`, with its address space
/// mapped again, until it ends or the kernel takes the core back again.
pub fn resume(registers: &Registers) -> Ended {
    crate::core_local::switch().ended.set(None);
    let registers = registers.0;
    // SAFETY: `registers` are a ring-3 trap frame saved by `preempt` or a
    // system call's switch (its CS and SS are the user selectors, its RIP
    // and RSP the program's), on this stack above what `resume_user` saves;
    // it comes back here as `enter_user` does.
    unsafe { resume_user(registers.as_ptr()) };
    how_it_ended()
}

/// What the way back recorded, once in the kernel again.
fn how_it_ended() -> Ended {
    crate::cpu::enable_interrupts();
    match crate::core_local::switch().ended.take() {
        Some((ENDED_KIND_CALL, [status, ..])) => Ended::ByCall { status },
        Some((ENDED_KIND_PREEMPTED, _)) => {
            Ended::Preempted(Registers(crate::core_local::switch().preempted.get()))
        }
        Some((_, [vector, error_code, rip, address])) => Ended::ByFault {
            vector,
            error_code,
            rip,
            address,
        },
        None => unreachable!("a program that ended has said how"),
    }
}

/// Takes the core back from the program an interrupt arrived in (its trap
/// frame `frame`, in ring 3): saves its registers for [`resume`] and
/// returns from [`run`] or [`resume`] with [`Ended::Preempted`]. Called by
/// the kernel's trap handler once it has handled the interrupt.
pub fn preempt(frame: &crate::idt::TrapFrame) -> ! {
    // SAFETY: `TrapFrame` is `repr(C)`, 22 words, every one a `u64`.
    let words = unsafe { &*(frame as *const crate::idt::TrapFrame as *const [u64; 22]) };
    record(Ended::Preempted(Registers(*words)));
    // SAFETY: a program was running on this core (the frame is ring 3's),
    // so `run` or `resume` saved the kernel's registers.
    unsafe { resume_kernel() }
}

/// Ends the program that took an exception in ring 3: records the fault
/// and returns from [`run`]. Called by the kernel's trap handler (on the
/// ring-0 stack), which it never returns to.
pub fn end_by_fault(vector: u64, error_code: u64, rip: u64) -> ! {
    let address = match vector {
        14 => crate::cpu::page_fault_address(),
        _ => 0,
    };
    record(Ended::ByFault {
        vector,
        error_code,
        rip,
        address,
    });
    // SAFETY: `run` is under way on this core (a ring-3 exception means a
    // program ran), so `resume_rsp` holds its saved registers.
    unsafe { resume_kernel() }
}

/// Copies `buffer.len()` bytes of the running program's memory at
/// `address` into `buffer`, if every byte lies in its pages (user pages of
/// `tables`, the running core's); otherwise copies nothing and says so.
pub fn copy_from_user(
    tables: &PageTables,
    address: u64,
    buffer: &mut [u8],
) -> Result<(), BadAddress> {
    check_user_range(tables, address, buffer.len() as u64, false)?;
    // SAFETY: every page of the range is a user page of the core's tables
    // (checked above; the caller passes the running core's), mapped for the
    // running program, which cannot change them while its system call
    // runs; `stac` lets the kernel read them under SMAP for the copy alone.
    unsafe {
        core::arch::asm!("stac", options(nomem, nostack));
        core::ptr::copy_nonoverlapping(address as *const u8, buffer.as_mut_ptr(), buffer.len());
        core::arch::asm!("clac", options(nomem, nostack));
    }
    Ok(())
}

/// Copies `bytes` into the running program's memory at `address`, if
/// every byte lies in its writable pages (of `tables`, the running
/// core's); otherwise writes nothing and says so.
pub fn copy_to_user(tables: &PageTables, address: u64, bytes: &[u8]) -> Result<(), BadAddress> {
    check_user_range(tables, address, bytes.len() as u64, true)?;
    // SAFETY: every page of the range is a writable user page of the
    // running program (checked above), which cannot change its mappings
    // while its system call runs; `stac` lets the kernel write them under
    // SMAP for the copy alone.
    unsafe {
        core::arch::asm!("stac", options(nomem, nostack));
        core::ptr::copy_nonoverlapping(bytes.as_ptr(), address as *mut u8, bytes.len());
        core::arch::asm!("clac", options(nomem, nostack));
    }
    Ok(())
}

/// Whether every byte of `[address, address + len)` lies in the running
/// program's pages (writable ones if `write`).
fn check_user_range(
    tables: &PageTables,
    address: u64,
    len: u64,
    write: bool,
) -> Result<(), BadAddress> {
    let end = address.checked_add(len).ok_or(BadAddress)?;
    if len == 0 {
        // No byte to check (an empty slice's address may be anything).
        return Ok(());
    }
    let mut page = address & !0xFFF;
    while page < end {
        if !tables.is_user_page(page, write) {
            return Err(BadAddress);
        }
        page += 4096;
    }
    Ok(())
}

/// Some of an address range is not the running program's to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadAddress;

extern "C" fn syscall_dispatch(frame: &mut SyscallFrame) -> u64 {
    let handler = SYSCALL_HANDLER
        .get()
        .expect("the kernel sets the system-call handler before it runs a program");
    let number = frame.rax;
    match handler(frame) {
        Resume::Program => return 0,
        Resume::End { status } => record(Ended::ByCall { status }),
        Resume::Switch => switch_out(frame),
        Resume::Block => {
            frame.rax = number;
            frame.rip -= SYSCALL_LENGTH;
            switch_out(frame);
        }
    }
    PROGRAM_ENDED
}

/// Records the program whose system call `frame` is as preempted, with
/// the frame made one `iretq` goes back to ring 3 with.
fn switch_out(frame: &mut SyscallFrame) {
    // The selectors `sysret` loads, as `init` wrote them (no static holds
    // them: the kernel's statics are read-only once the cores run).
    let (code, data, _, _) = Star::read();
    frame.cs = u64::from(code.0);
    frame.ss = u64::from(data.0);
    // SAFETY: `SyscallFrame` is `repr(C)`, 22 words, every one a `u64`.
    let words = unsafe { &*(frame as *const SyscallFrame as *const [u64; 22]) };
    record(Ended::Preempted(Registers(*words)));
}

/// The way into ring 3's first half, for [`enter_user`] and
/// [`resume_user`]: saves the kernel's callee-saved registers, notes the
/// stack for the way back (`gs:[24]`) and for system calls (`gs:[8]`, just
/// below), and turns interrupts off until `sysret` or `iretq`.
macro_rules! save_kernel {
    () => {
        concat!(
            "push rbp\n",
            "push rbx\n",
            "push r12\n",
            "push r13\n",
            "push r14\n",
            "push r15\n",
            "mov gs:[24], rsp\n",
            "mov gs:[8], rsp\n",
            "cli\n",
        )
    };
}

/// The way back to the kernel, for [`resume_kernel`] and a system call
/// that ends the program: the stack and registers [`save_kernel`] saved,
/// and a return from the function that entered ring 3.
macro_rules! back_to_kernel {
    () => {
        concat!(
            "mov rsp, gs:[24]\n",
            "pop r15\n",
            "pop r14\n",
            "pop r13\n",
            "pop r12\n",
            "pop rbx\n",
            "pop rbp\n",
            "ret\n",
        )
    };
}

/// Saves the kernel's callee-saved registers and stack, and enters ring 3
/// at `entry` (`rdi`) with the stack `stack_top` (`rsi`), `first` and
/// `second` (`rdx`, `rcx`) as its `rdi` and `rsi`, and every other register
/// cleared. Returns (through `resume_kernel` or a system call that
/// ends the program) once the program has ended; how is in the block.
///
/// # Safety
/// `entry` and `stack_top` must lie in the program's pages, and the block
/// must have its `Switch`.
#[unsafe(naked)]
unsafe extern "C" fn enter_user(entry: u64, stack_top: u64, first: u64, second: u64) {
    naked_asm!(
        save_kernel!(),
        "mov r8, rcx",
        "mov rcx, rdi",
        "mov rsp, rsi",
        "mov rdi, rdx",
        "mov rsi, r8",
        // Interrupts on in ring 3, nothing else.
        "mov r11, 0x202",
        "xor eax, eax",
        "xor ebx, ebx",
        "xor edx, edx",
        "xor ebp, ebp",
        "xor r8d, r8d",
        "xor r9d, r9d",
        "xor r10d, r10d",
        "xor r12d, r12d",
        "xor r13d, r13d",
        "xor r14d, r14d",
        "xor r15d, r15d",
        "swapgs",
        "sysretq",
    )
}

/// Saves the kernel's callee-saved registers and stack as [`enter_user`]
/// does, and goes back to ring 3 with the trap frame at `registers`
/// (`idt::TrapFrame`'s 22 words): the program goes on where an interrupt
/// took the core from it.
///
/// # Safety
/// `registers` must be a ring-3 trap frame of the program whose pages are
/// mapped, above this function's own stack.
#[unsafe(naked)]
unsafe extern "C" fn resume_user(registers: *const u64) {
    naked_asm!(
        save_kernel!(),
        "mov rsp, rdi",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop r11",
        "pop r10",
        "pop r9",
        "pop r8",
        "pop rbp",
        "pop rdi",
        "pop rsi",
        "pop rdx",
        "pop rcx",
        "pop rbx",
        "pop rax",
        // The vector and error code the trap entry pushed.
        "add rsp, 16",
        "swapgs",
        "iretq",
    )
}

/// Back to where [`enter_user`] (or [`resume_user`]) was called, which
/// returns; how the program ended is in the block (`record`).
///
/// # Safety
/// A program must be running (or have just trapped) on this core, with
/// the kernel's GS base in place.
#[unsafe(naked)]
unsafe extern "C" fn resume_kernel() -> ! {
    naked_asm!(back_to_kernel!())
}

/// The `syscall` instruction's entry: interrupts are off (`SFMask`), the
/// program's return address is in `rcx` and its flags in `r11`. It saves
/// every register in the trap frame's layout ([`SyscallFrame`]): the
/// selectors, vector and error code as zeros (`switch_out` fills the
/// selectors when they are needed).
#[unsafe(naked)]
extern "C" fn syscall_entry() {
    naked_asm!(
        "swapgs",
        "mov gs:[16], rsp",
        "mov rsp, gs:[8]",
        "push 0",
        "push qword ptr gs:[16]",
        "push r11",
        "push 0",
        "push rcx",
        "push 0",
        "push 0",
        "push rax", "push rbx", "push rcx", "push rdx", "push rsi", "push rdi", "push rbp",
        "push r8", "push r9", "push r10", "push r11", "push r12", "push r13", "push r14",
        "push r15",
        "mov rdi, rsp",
        // 22 words on a stack that was 8 off 16: 8 more align the call.
        "sub rsp, 8",
        "cld",
        "call {dispatch}",
        "add rsp, 8",
        "test rax, rax",
        "jnz 2f",
        "pop r15", "pop r14", "pop r13", "pop r12", "pop r11", "pop r10", "pop r9", "pop r8",
        "pop rbp", "pop rdi", "pop rsi", "pop rdx", "pop rcx", "pop rbx", "pop rax",
        // The vector and error code; then the return address and flags for
        // `sysret`, past the code selector, and the program's stack.
        "add rsp, 16",
        "pop rcx",
        "add rsp, 8",
        "pop r11",
        "pop rsp",
        "swapgs",
        "sysretq",
        "2:",
        back_to_kernel!(),
        dispatch = sym syscall_dispatch,
    )
}
