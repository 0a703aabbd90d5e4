//! Finding this core's own data: each core's GS base points at a block in its
//! own memory that starts with the block's address, followed by the core's
//! data (`crate::percore::CoreLocal`, the one type ever installed). No table
//! indexed by core id is needed, and no core can reach another's block
//! through it.

#[repr(C)]
struct Block<T> {
    self_address: u64,
    switch: Switch,
    local: T,
}

/// What running a program needs of the block (`crate::user`): three words
/// at fixed offsets the assembly uses (`gs:[8]`, `gs:[16]`, `gs:[24]`),
/// then how the last program ended, as `user` records it (its kind and
/// four words).
#[repr(C)]
pub(crate) struct Switch {
    /// Where a system call's frame goes: just below what `run` saved.
    pub(crate) syscall_stack: u64,
    /// The program's stack pointer while its system call runs.
    pub(crate) user_rsp: u64,
    /// Where `run` saved the kernel's registers, to end the program.
    pub(crate) resume_rsp: u64,
    pub(crate) ended: core::cell::Cell<Option<(u64, [u64; 4])>>,
    /// The registers of a program the timer took the core back from, as
    /// the trap entry saved them (`idt::TrapFrame`), to go on with.
    pub(crate) preempted: core::cell::Cell<[u64; 22]>,
}

/// This core's [`Switch`], once [`install`] has run on it.
pub(crate) fn switch() -> &'static Switch {
    let addr = super::cpu::core_local_address();
    assert!(addr != 0, "this core has no core-local block yet");
    // SAFETY: a non-zero GS base was set only by `install`, which placed a
    // block starting with its address and then the `Switch`, whatever its
    // `T` (`repr(C)`), for the core's life; `Switch` is read through `Cell`.
    unsafe { &(*(addr as *const Block<()>)).switch }
}

/// Bytes the block for a `T` needs, for the caller to reserve frames.
pub const fn block_size<T>() -> usize {
    core::mem::size_of::<Block<T>>()
}

/// Places `local` at `addr` and makes it this core's.
///
/// # Safety
/// `[addr, addr + block_size::<T>())` must be identity-mapped memory owned
/// by this core alone, aligned to 4096, and never reused.
pub unsafe fn install<T>(addr: u64, local: T) -> &'static mut T {
    // SAFETY: the caller hands over exclusive, mapped, aligned memory.
    let block = unsafe {
        super::phys::place(
            addr,
            Block {
                self_address: addr,
                switch: Switch {
                    syscall_stack: 0,
                    user_rsp: 0,
                    resume_rsp: 0,
                    ended: core::cell::Cell::new(None),
                    preempted: core::cell::Cell::new([0; 22]),
                },
                local,
            },
        )
    };
    super::cpu::set_core_local_address(addr);
    &mut block.local
}

/// This core's data, once [`install`] has run on it.
///
/// # Safety
/// `T` must be the type every call of [`install`] placed.
pub unsafe fn current<T>() -> Option<&'static T> {
    let addr = super::cpu::core_local_address();
    // SAFETY: a non-zero GS base was set only by `install`, which placed a
    // `Block<T>` there (the caller's promise on `T`) that lives as long as
    // the core; only shared borrows are handed out after installation.
    (addr != 0).then(|| unsafe { &(*(addr as *const Block<T>)).local })
}
