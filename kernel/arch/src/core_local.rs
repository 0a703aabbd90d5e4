//! Finding this core's own data: each core's GS base points at a block in its
//! own memory that starts with the block's address, followed by the core's
//! [`CoreLocal`]. No table indexed by core id is needed, and no core can reach
//! another's block through it.

use crate::percore::CoreLocal;

#[repr(C)]
struct Block {
    self_address: u64,
    local: CoreLocal,
}

/// Bytes the block needs, for the caller to reserve frames.
pub const BLOCK_SIZE: usize = core::mem::size_of::<Block>();

/// Places `local` at `addr` and makes it this core's.
///
/// # Safety
/// `[addr, addr + BLOCK_SIZE)` must be identity-mapped memory owned by this
/// core alone, aligned to 4096, and never reused.
pub unsafe fn install(addr: u64, local: CoreLocal) -> &'static mut CoreLocal {
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

/// This core's block, once [`install`] has run on it.
pub fn current() -> Option<&'static CoreLocal> {
    let addr = super::cpu::core_local_address();
    // SAFETY: a non-zero GS base was set only by `install`, which placed a
    // `Block` there that lives as long as the core; only shared borrows are
    // handed out after installation.
    (addr != 0).then(|| unsafe { &(*(addr as *const Block)).local })
}
