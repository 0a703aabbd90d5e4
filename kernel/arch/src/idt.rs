//! Interrupt and exception entry: a naked stub per vector pushes the vector
//! (and a zero where the CPU pushes no error code), then one common stub
//! saves the registers and calls the handler the kernel registered
//! ([`set_handler`]) with the frame.

use core::arch::naked_asm;

pub const NMI: u8 = 2;
pub const DOUBLE_FAULT: u8 = 8;
pub const PAGE_FAULT: u8 = 14;
pub const MACHINE_CHECK: u8 = 18;
/// The first vector after the exceptions.
pub const FIRST_INTERRUPT: u8 = 32;
/// The local APIC timer.
pub const TIMER: u8 = 0x20;
/// "Look at your rings", and answer the IPI pings in your board record.
pub const WAKE: u8 = 0x40;
/// The IPI-broadcast TLB shootdown that `bench shootdown` measures as the
/// baseline: the handler invalidates and bumps the initiator's counter.
pub const SHOOTDOWN: u8 = 0x41;
/// "Stop answering": the handler turns interrupts off and halts for good,
/// the silent failure the `hang` shell command injects.
pub const HANG: u8 = 0x42;
pub const SPURIOUS: u8 = 0xFF;

/// The state the stubs save, lowest address first.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

pub fn exception_name(vector: u64) -> &'static str {
    const NAMES: [&str; 32] = [
        "divide error",
        "debug",
        "NMI",
        "breakpoint",
        "overflow",
        "bound range",
        "invalid opcode",
        "device not available",
        "double fault",
        "coprocessor overrun",
        "invalid TSS",
        "segment not present",
        "stack fault",
        "general protection",
        "page fault",
        "reserved",
        "x87 floating point",
        "alignment check",
        "machine check",
        "SIMD floating point",
        "virtualization",
        "control protection",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "hypervisor injection",
        "VMM communication",
        "security",
        "reserved",
    ];
    NAMES.get(vector as usize).copied().unwrap_or("interrupt")
}

/// The general registers, pushed in the order [`TrapFrame`] reads them
/// (its first field last).
macro_rules! push_registers {
    () => {
        concat!(
            "push rax\n",
            "push rbx\n",
            "push rcx\n",
            "push rdx\n",
            "push rsi\n",
            "push rdi\n",
            "push rbp\n",
            "push r8\n",
            "push r9\n",
            "push r10\n",
            "push r11\n",
            "push r12\n",
            "push r13\n",
            "push r14\n",
            "push r15\n",
        )
    };
}

/// The general registers back from a [`TrapFrame`].
macro_rules! pop_registers {
    () => {
        concat!(
            "pop r15\n",
            "pop r14\n",
            "pop r13\n",
            "pop r12\n",
            "pop r11\n",
            "pop r10\n",
            "pop r9\n",
            "pop r8\n",
            "pop rbp\n",
            "pop rdi\n",
            "pop rsi\n",
            "pop rdx\n",
            "pop rcx\n",
            "pop rbx\n",
            "pop rax\n",
        )
    };
}

#[unsafe(naked)]
extern "C" fn trap_common() {
    naked_asm!(
        // The NMI and the machine check decide by the GS base itself.
        "cmp qword ptr [rsp], 2",
        "je {paranoid}",
        "cmp qword ptr [rsp], 18",
        "je {paranoid}",
        // From ring 3 (the saved CS's low bits), take the kernel's GS base
        // back from the program (`crate::user`), and give it back on the
        // way out.
        "test qword ptr [rsp + 24], 3",
        "jz 2f",
        "swapgs",
        "2:",
        push_registers!(),
        // The CPU aligned rsp to 16 before pushing its 5 words; with the two
        // words the stub pushed and these 15 it is aligned again for the call.
        "mov rdi, rsp",
        "cld",
        "call {dispatch}",
        pop_registers!(),
        "add rsp, 16",
        "test qword ptr [rsp + 8], 3",
        "jz 3f",
        "swapgs",
        "3:",
        "iretq",
        dispatch = sym dispatch,
        paranoid = sym trap_paranoid,
    )
}

/// The entry of the NMI and the machine check, which can arrive even in
/// the few instructions of a system call's way in and out where the
/// program's GS base is loaded in ring 0 (interrupts are off there, but
/// these two cannot be held off). So the saved CS cannot tell whose GS
/// base is loaded: the GS base itself does. A program's is always 0 (it
/// cannot write the register; loading a selector in 64-bit mode gives
/// base 0), the kernel's never once the core has its block; the swap is
/// undone on the way out if it was made.
#[unsafe(naked)]
extern "C" fn trap_paranoid() {
    naked_asm!(
        push_registers!(),
        "mov ecx, 0xC0000101",
        "rdmsr",
        "xor r12d, r12d",
        "or eax, edx",
        "jnz 2f",
        "swapgs",
        "mov r12d, 1",
        "2:",
        "mov rdi, rsp",
        "cld",
        "call {dispatch}",
        // `r12` is callee-saved: it still says whether to swap back.
        "test r12d, r12d",
        "jz 3f",
        "swapgs",
        "3:",
        pop_registers!(),
        "add rsp, 16",
        "iretq",
        dispatch = sym dispatch,
    )
}

/// The kernel's handler of every vector; set once, before interrupts are
/// enabled.
static HANDLER: spin::Once<fn(&mut TrapFrame)> = spin::Once::new();

/// Makes `handler` the one every interrupt and exception goes to.
pub fn set_handler(handler: fn(&mut TrapFrame)) {
    HANDLER.call_once(|| handler);
}

extern "C" fn dispatch(frame: &mut TrapFrame) {
    match HANDLER.get() {
        Some(handler) => handler(frame),
        None => {
            crate::serial::print(format_args!(
                "atoll: boot: exception {} ({}) rip {:#x} before a trap handler was set; stopped\n",
                frame.vector,
                exception_name(frame.vector),
                frame.rip
            ));
            crate::cpu::halt_forever()
        }
    }
}

/// Defines one stub per listed vector, and `TrapStubs::all()` listing them.
/// `error_code` marks the exceptions for which the CPU pushes an error code.
macro_rules! trap_stubs {
    ($( $vector:literal $name:ident $($error_code:ident)? ),* $(,)?) => {
        $(
            #[unsafe(naked)]
            extern "C" fn $name() {
                naked_asm!(
                    trap_stubs!(@zero $($error_code)?),
                    "push {vector}",
                    "jmp {common}",
                    vector = const $vector,
                    common = sym trap_common,
                )
            }
        )*

        pub struct TrapStubs;

        impl TrapStubs {
            /// (vector, stub address) for every vector with a stub.
            pub fn all() -> impl Iterator<Item = (u8, u64)> {
                [$( ($vector, $name as extern "C" fn() as usize as u64) ),*].into_iter()
            }
        }
    };
    (@zero error_code) => { "" };
    (@zero) => { "push 0" };
}

trap_stubs!(
    0 vector_0, 1 vector_1, 2 vector_2, 3 vector_3, 4 vector_4, 5 vector_5, 6 vector_6, 7 vector_7,
    8 vector_8 error_code, 9 vector_9, 10 vector_10 error_code, 11 vector_11 error_code,
    12 vector_12 error_code, 13 vector_13 error_code, 14 vector_14 error_code, 15 vector_15,
    16 vector_16, 17 vector_17 error_code, 18 vector_18, 19 vector_19, 20 vector_20,
    21 vector_21 error_code, 22 vector_22, 23 vector_23, 24 vector_24, 25 vector_25,
    26 vector_26, 27 vector_27, 28 vector_28, 29 vector_29 error_code, 30 vector_30 error_code,
    31 vector_31, 0x20 vector_timer, 0x40 vector_wake, 0x41 vector_shootdown, 0x42 vector_hang,
    0xFF vector_spurious,
);
