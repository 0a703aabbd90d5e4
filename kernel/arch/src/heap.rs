//! Each core's kernel heap: a `talc` allocator over frames from that core's
//! own pool. The global allocator (`crate::percore`) forwards to the heap of
//! the core it runs on, so a core never touches another core's allocator;
//! memory freed on the wrong core is caught and reported instead of
//! corrupting a foreign heap.

use core::alloc::Layout;
use core::cell::RefCell;
use core::ptr::{NonNull, null_mut};
use talc::DefaultBinning;
use talc::base::Talc;
use talc::source::Manual;

pub struct Heap {
    talc: RefCell<Talc<Manual, DefaultBinning>>,
    start: u64,
    end: u64,
}

impl Heap {
    /// A heap over `[start, end)`.
    ///
    /// # Safety
    /// The range must be identity-mapped memory owned by this core alone for
    /// as long as the heap lives.
    pub unsafe fn new(start: u64, end: u64) -> Self {
        let mut talc = Talc::new(Manual);
        // SAFETY: the caller hands the range to this allocator alone.
        unsafe { talc.claim(start as *mut u8, (end - start) as usize) };
        Self {
            talc: RefCell::new(talc),
            start,
            end,
        }
    }

    pub fn allocate(&self, layout: Layout) -> *mut u8 {
        super::cpu::without_interrupts(|| {
            // SAFETY: the layout comes from the global allocator contract.
            unsafe { self.talc.borrow_mut().allocate(layout) }.map_or(null_mut(), NonNull::as_ptr)
        })
    }

    pub fn deallocate(&self, pointer: *mut u8, layout: Layout, core: usize) {
        let address = pointer as u64;
        if !(self.start..self.end).contains(&address) {
            panic!(
                "core {core} freed {address:#x}, which is not in its heap: memory crossed cores"
            );
        }
        super::cpu::without_interrupts(|| {
            // SAFETY: the pointer lies in this heap and came from `allocate`
            // with this layout (the global allocator contract).
            unsafe { self.talc.borrow_mut().deallocate(pointer, layout) }
        });
    }
}
