//! Access to physical memory through the boot identity map (the first 4 GiB).

use atoll_firmware::{MemError, PhysMem};

/// The top of the identity map built by the boot code.
pub const IDENTITY_MAPPED_END: u64 = 4 << 30;

fn mapped(addr: u64, len: usize) -> bool {
    addr.checked_add(len as u64)
        .is_some_and(|end| end <= IDENTITY_MAPPED_END)
        && addr != 0
}

/// Firmware tables and boot-loader data, read through the identity map.
pub struct IdentityMap;

impl PhysMem for IdentityMap {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        if !mapped(addr, buf.len()) {
            return Err(MemError {
                addr,
                len: buf.len(),
            });
        }
        // SAFETY: the range is identity mapped (checked above) and reading
        // firmware memory has no side effects; `buf` cannot overlap it in a
        // way that matters because we only read the source.
        unsafe { core::ptr::copy_nonoverlapping(addr as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
}

/// The bytes of a boot module, a file the boot loader left at `start` to
/// `end`; `None` if the range is empty, outside the identity map, or
/// overlaps the kernel image. The kernel takes every boot module out of
/// the memory it hands to frame pools before any pool exists, and every
/// core maps it read-only (`CoreSetup::readable`), so nothing writes it for
/// the kernel's life.
pub fn boot_module(start: u64, end: u64) -> Option<&'static [u8]> {
    let (image_start, image_end) = crate::boot::kernel_image();
    let len = usize::try_from(end.checked_sub(start)?).ok()?;
    if len == 0 || !mapped(start, len) || (start < image_end && image_start < end) {
        return None;
    }
    // SAFETY: identity mapped (checked), outside the kernel image, and
    // never written again, as above; bytes need no alignment.
    Some(unsafe { core::slice::from_raw_parts(start as *const u8, len) })
}

/// Copies `bytes` to physical address `addr`.
///
/// # Safety
/// The range must be identity mapped memory that nothing else uses.
pub(crate) unsafe fn write(addr: u64, bytes: &[u8]) {
    debug_assert!(mapped(addr, bytes.len()));
    // SAFETY: the caller owns the destination range.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
}

/// Memory this core owns from now on, as a `'static` slice of `T`.
///
/// # Safety
/// The range `[addr, addr + count * size_of::<T>())` must be identity mapped,
/// aligned for `T`, handed to this core alone and never handed out again.
/// Its contents need not be initialised: the slice is zeroed first.
pub(crate) unsafe fn claim_zeroed<T: zerocopy::FromZeros>(
    addr: u64,
    count: usize,
) -> &'static mut [T] {
    let pointer = addr as *mut T;
    // SAFETY: the caller guarantees exclusive, mapped, aligned memory, and an
    // all-zero bit pattern is a valid `T` (the `FromZeros` bound).
    unsafe {
        core::ptr::write_bytes(pointer, 0, count);
        core::slice::from_raw_parts_mut(pointer, count)
    }
}

/// Moves `value` to physical address `addr` and hands it out for good.
///
/// # Safety
/// As for [`claim_zeroed`]: mapped, aligned for `T`, owned by this core
/// alone and never reused.
pub(crate) unsafe fn place<T>(addr: u64, value: T) -> &'static mut T {
    let pointer = addr as *mut T;
    // SAFETY: the caller hands over exclusive, mapped, aligned memory.
    unsafe {
        pointer.write(value);
        &mut *pointer
    }
}
