//! Memory that a process shares with the children it forks: an anonymous
//! `MAP_SHARED` mapping, page-aligned (so cache-line-aligned) and zero-filled;
//! and a channel's memory laid out in one ([`ChannelMemory`]).

use std::io;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use atoll_urpc::Slot;

/// An anonymous shared mapping, unmapped on drop. A child forked while it
/// exists sees the same pages, not a copy.
#[derive(Debug)]
pub struct SharedMemory {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; what lives in it
// is reached only through `words` (atomics) or `ChannelMemory::parts`, which
// hands out references whose types carry their own Send/Sync.
unsafe impl Send for SharedMemory {}
// SAFETY: as above; `&SharedMemory` gives access only to atomics.
unsafe impl Sync for SharedMemory {}

impl SharedMemory {
    /// Maps `len` bytes (rounded up to whole pages by the kernel), all zero.
    pub fn new(len: usize) -> io::Result<SharedMemory> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an empty mapping",
            ));
        }
        // SAFETY: a fresh anonymous mapping at an address the kernel picks
        // overlaps nothing that Rust owns.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base =
            NonNull::new(base.cast()).expect("mmap returns MAP_FAILED, never null, on failure");
        Ok(SharedMemory { base, len })
    }

    /// The start of the mapping: page-aligned.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// The mapping as 64-bit atomic words (for flags and counters that two
    /// threads or processes share); word `8 * n` starts cache line `n`.
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is page-aligned, at least `len` bytes long and
        // lives as long as `self`; zero bytes are a valid AtomicU64, and all
        // access through the slice is atomic.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().cast(), self.len / 8) }
    }
}

/// A channel's memory in a shared mapping, in cache lines: its control
/// block `C` (the channel's header and doorbells), then `depth` slots.
#[derive(Debug)]
pub(crate) struct ChannelMemory<C> {
    memory: SharedMemory,
    depth: usize,
    control: PhantomData<C>,
}

impl<C: Default> ChannelMemory<C> {
    /// Maps the memory of a `kind` (a ring, a call channel) of `depth` slots.
    pub(crate) fn new(depth: usize, kind: &str) -> io::Result<Self> {
        const {
            assert!(size_of::<C>().is_multiple_of(align_of::<Slot>()));
            assert!(align_of::<C>() == 64 && align_of::<Slot>() == 64);
        }
        if depth == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a {kind} needs at least one slot"),
            ));
        }
        let memory = SharedMemory::new(size_of::<C>() + depth * size_of::<Slot>())?;
        Ok(ChannelMemory {
            memory,
            depth,
            control: PhantomData,
        })
    }

    /// The control block, reset to its default, and the slots, as the last
    /// user left them (zeros in a fresh mapping), for the channel to reset.
    pub(crate) fn parts(&mut self) -> (&mut C, &mut [Slot]) {
        let control = self.memory.as_ptr().cast::<C>();
        // SAFETY: the mapping is page-aligned and holds a `C` followed by
        // `depth` slots (see `new`, whose assertions keep both aligned). The
        // control block is written whole before it is referenced; any bytes
        // are valid slots (atomics and plain bytes). `&mut self` makes these
        // the only references until those returned are dropped.
        unsafe {
            control.write(C::default());
            let slots = control.add(1).cast::<Slot>();
            (
                &mut *control,
                std::slice::from_raw_parts_mut(slots, self.depth),
            )
        }
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are exactly what mmap returned and was
        // given; nothing borrowed from `self` outlives it.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn a_mapping_is_zeroed_and_page_aligned() {
        let memory = SharedMemory::new(100).unwrap();
        assert_eq!(memory.as_ptr() as usize % 4096, 0);
        assert_eq!(memory.words().len(), 12);
        assert!(
            memory
                .words()
                .iter()
                .all(|word| word.load(Ordering::Relaxed) == 0)
        );
    }

    #[test]
    fn an_empty_mapping_is_refused() {
        assert!(SharedMemory::new(0).is_err());
    }
}
