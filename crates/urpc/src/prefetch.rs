//! Asking the cache for a line before the code needs it.

/// Fetches the line `slot` starts in (a ring's slot) into this core's cache
/// with ownership, as a store would, without storing: the store that
/// follows then finds the line here. A hint only: it changes no memory,
/// cannot fault, and on a machine without one it does nothing.
#[inline(always)]
pub(crate) fn prefetch_for_write<T>(slot: &T) {
    // `PREFETCHW` itself, not `_mm_prefetch`: the kernel's target has SSE
    // turned off. CPUs without it (Intel before Broadwell) decode it as a
    // no-op. Miri cannot run inline assembly, and has no caches to warm.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: PREFETCHW reads and writes no memory that Rust can see, does
    // not fault even on an unmapped address, and touches no register but
    // its operand, no flag and no stack.
    unsafe {
        core::arch::asm!(
            "prefetchw [{line}]",
            line = in(reg) core::ptr::from_ref(slot),
            options(nostack, preserves_flags, readonly),
        );
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = slot;
}
