//! The way in: boot headers, the 32-bit entry shared by PVH and multiboot2,
//! the switch to long mode, and the real-mode trampoline that brings the
//! other cores up through the same switch.
//!
//! Both boot protocols enter `boot_entry32` in 32-bit protected mode with
//! paging off: multiboot2 with its magic in eax and the information in ebx,
//! PVH with the start-info address in ebx. The entry keeps both registers and
//! passes them to `kernel_main`, which the kernel defines with
//! [`entry!`](crate::entry) and which tells the protocols apart.
//!
//! The boot page tables identity-map the first 4 GiB with 2 MiB pages (RAM,
//! the kernel, the local APIC and the ACPI tables all lie there on the
//! machines Atoll targets). They are written once by the boot core before any
//! other core starts and are read-only afterwards; every core uses them.

use core::arch::global_asm;

/// Kernel stack of the boot core (the APs get theirs from the carved memory).
/// The boot facts, tens of KiB in fixed-size tables because they are built
/// before any heap, pass through it by value more than once.
pub const BOOT_STACK_SIZE: usize = 256 * 1024;

/// Selectors of the boot GDT, which the trampoline and the long-mode switch use
/// until each core loads its own GDT.
pub const BOOT_CODE64: u16 = 0x08;
pub const BOOT_DATA: u16 = 0x10;

global_asm!(
    r#"
    .set MB2_MAGIC, 0xe85250d6
    .set MB2_LENGTH, mb2_header_end - mb2_header_start

    .section .multiboot2, "a"
    .balign 8
mb2_header_start:
    .long MB2_MAGIC
    .long 0                                   # architecture: i386 protected mode
    .long MB2_LENGTH
    .long 0x100000000 - (MB2_MAGIC + MB2_LENGTH)
    .short 0                                  # end tag
    .short 0
    .long 8
mb2_header_end:

    # PVH: XEN_ELFNOTE_PHYS32_ENTRY (type 18) with the 32-bit entry address.
    .section .note.Xen, "a"
    .balign 4
    .long 4
    .long 8
    .long 18
    .asciz "Xen"
    .balign 4
    .quad boot_entry32

    .section .boot32, "ax"
    .code32
    .global boot_entry32
boot_entry32:
    cli
    cld
    mov %eax, %edi                            # boot protocol magic (multiboot2)
    mov %ebx, %esi                            # boot information address
    mov $boot_stack_top, %esp

    # PML4[0] -> PDPT; PDPT[0..4] -> four page directories; 2048 2 MiB pages.
    mov $boot_pdpt, %eax
    or $0x3, %eax
    mov %eax, boot_pml4
    mov $boot_pd, %eax
    or $0x3, %eax
    mov $boot_pdpt, %ebx
    mov $4, %ecx
1:  mov %eax, (%ebx)
    add $0x1000, %eax
    add $8, %ebx
    loop 1b
    mov $boot_pd, %ebx
    xor %eax, %eax
    mov $2048, %ecx
2:  mov %eax, %edx
    or $0x83, %edx                            # present, writable, 2 MiB page
    mov %edx, (%ebx)
    movl $0, 4(%ebx)
    add $0x200000, %eax
    add $8, %ebx
    loop 2b

    mov $boot_entry64, %ebp
    jmp enter_long_mode

    # The APs arrive here from the trampoline, in protected mode with the boot GDT.
    .global ap_entry32
ap_entry32:
    mov ${data}, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov AP_BOOT_STACK_TOP, %esp               # below 4 GiB, like all of memory in use
    mov $ap_entry64, %ebp
    # fall through

    # Turns on PAE, the boot page tables, long mode and paging, then jumps to
    # the 64-bit address in ebp (rdmsr takes edx).
enter_long_mode:
    mov %cr4, %eax
    or $(1 << 5), %eax                        # PAE
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx                     # IA32_EFER
    rdmsr
    or $(1 << 8), %eax                        # LME
    wrmsr
    mov %cr0, %eax
    or $0x80010001, %eax                      # PG | WP | PE
    mov %eax, %cr0
    lgdt boot_gdt_pointer
    push ${code64}
    push %ebp
    lret

    .code64
boot_entry64:
    mov ${data}, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    mov $boot_stack_top, %rsp
    mov %edi, %edi                            # zero-extend both arguments
    mov %esi, %esi
    call kernel_main
3:  cli
    hlt
    jmp 3b

ap_entry64:
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    mov AP_BOOT_STACK_TOP(%rip), %rsp
    call ap_main
4:  cli
    hlt
    jmp 4b

    # Real-mode start of an AP. It is copied to a page below 1 MiB, where the
    # SIPI vector points, and runs with cs = that page and ip = 0.
    .code16
    .global ap_trampoline_start
    .global ap_trampoline_end
ap_trampoline_start:
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    lgdtl ap_trampoline_gdt_pointer - ap_trampoline_start
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x18, $ap_entry32
    .balign 8
ap_trampoline_gdt_pointer:
    .short boot_gdt_end - boot_gdt - 1
    .long boot_gdt
ap_trampoline_end:
    .code64

    .section .rodata.boot_gdt, "a"
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF                  # 0x08: 64-bit code
    .quad 0x00CF92000000FFFF                  # 0x10: data
    .quad 0x00CF9A000000FFFF                  # 0x18: 32-bit code (trampoline)
boot_gdt_end:
boot_gdt_pointer:
    .short boot_gdt_end - boot_gdt - 1
    .quad boot_gdt

    .section .bss.boot_tables, "aw", @nobits
    .balign 4096
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4096 * 4

    .section .boot_stack, "aw", @nobits
    .balign 4096
boot_stack_bottom:
    .skip {stack_size}
boot_stack_top:

    .text
    "#,
    code64 = const BOOT_CODE64,
    data = const BOOT_DATA,
    stack_size = const BOOT_STACK_SIZE,
    options(att_syntax)
);

/// What the boot loader left in `eax` and `ebx` for the boot core: the
/// multiboot2 magic and information address, or the PVH start-info address
/// in `ebx`.
#[derive(Debug, Clone, Copy)]
pub struct BootRegisters {
    pub eax: u32,
    pub ebx: u32,
}

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
    static __kernel_start: u8;
    static __shared_start: u8;
    static __shared_end: u8;
    static __data_start: u8;
    static __boot_stack_start: u8;
    static __boot_stack_end: u8;
    static __kernel_end: u8;
}

/// The kernel image's text and read-only data, and its statics (`.data`
/// and `.bss`), which only the boot core writes, and only before any other
/// core starts: every core maps them read-only on its own page tables.
pub fn kernel_read_only() -> [(u64, u64); 2] {
    [
        (
            &raw const __kernel_start as u64,
            &raw const __shared_start as u64,
        ),
        (
            &raw const __data_start as u64,
            &raw const __boot_stack_start as u64,
        ),
    ]
}

/// The pages of what cores write after boot: the statics declared with
/// [`shared!`](crate::shared) (and arch's own: the console, the start-up
/// mailbox), mapped writable on every core.
pub fn shared_region() -> (u64, u64) {
    (
        &raw const __shared_start as u64,
        &raw const __shared_end as u64,
    )
}

/// The boot core's stack, which it runs on from the entry on.
pub fn boot_stack() -> (u64, u64) {
    (
        &raw const __boot_stack_start as u64,
        &raw const __boot_stack_end as u64,
    )
}

/// Where the kernel image lies in physical memory, from the linker script.
pub fn kernel_image() -> (u64, u64) {
    (
        &raw const __kernel_start as u64,
        &raw const __kernel_end as u64,
    )
}

/// The real-mode trampoline's code, to be copied to the SIPI page.
pub fn trampoline_code() -> &'static [u8] {
    let start = &raw const ap_trampoline_start;
    let end = &raw const ap_trampoline_end;
    // SAFETY: both symbols bound the trampoline bytes in the kernel image,
    // which is mapped and never written.
    unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) }
}
