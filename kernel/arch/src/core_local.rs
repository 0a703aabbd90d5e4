//! Finding this core's own data: each core's GS base points at a block in its
//! own memory that starts with the block's address, followed by the core's
//! data (`crate::percore::CoreLocal`, the one type ever installed). No table
//! indexed by core id is needed, and no core can reach another's block
//! through it.

#[repr(C)]
struct Block<T> {
    self_address: u64,
    local: T,
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
