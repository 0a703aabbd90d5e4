//! Bringing up one core's own kernel instance: its frame pool, core-local
//! block, heap, page tables, descriptor tables, local APIC and timer. Every
//! core runs [`init`] on itself, over the span of memory the boot core
//! carved for it, and never touches another core's pool or heap afterwards.
//! The kernel's own per-core state is handed to the block afterwards
//! ([`CoreLocal::set_os`]), as a value arch stores without knowing its type.

use core::alloc::{GlobalAlloc, Layout};
use core::any::Any;
use core::cell::{Cell, OnceCell, RefCell};
use core::ptr::null_mut;

use atoll_frames::{FRAME_SIZE, FramePool, RangeSet, budget};

use crate::apic::LocalApic;
use crate::core_local;
use crate::heap::Heap;
use crate::idt;
use crate::paging::{self, PageTables};
use crate::phys;
use crate::tables::{CpuTables, IST_STACK_SIZE};

/// The most ranges a core maps read-only besides the kernel image.
pub const MAX_READABLE: usize = 8;
/// Timer interrupts per second on every core.
pub const TIMER_HZ: u64 = 100;
/// The heap takes this share of a core's frames, or what the core count
/// needs (`atoll_frames::budget`) if that is more, within the bounds below.
const HEAP_SHARE: usize = 8;
const HEAP_MIN_FRAMES: usize = 64;
const HEAP_MAX_FRAMES: usize = 8192;

/// One core's kernel state, reachable only from that core.
pub struct CoreLocal {
    pub id: usize,
    pub apic_id: u32,
    pub lapic: LocalApic,
    pub(crate) heap: Heap,
    frames: RefCell<FramePool<'static>>,
    ticks: Cell<u64>,
    /// Wake-up IPIs taken, so that an IPI round trip can wait for the
    /// interrupt itself.
    wake_interrupts: Cell<u64>,
    page_tables: PageTables,
    /// Whether this core has taken its ends of the rings.
    pub(crate) channels_attached: Cell<bool>,
    /// Whether SMEP and SMAP are on here.
    user_protection: Cell<bool>,
    /// The kernel's state for this core, once it has handed it over.
    os: OnceCell<&'static dyn Any>,
}

impl CoreLocal {
    /// Counts one timer interrupt; returns the count.
    pub fn tick(&self) -> u64 {
        let ticks = self.ticks.get() + 1;
        self.ticks.set(ticks);
        ticks
    }

    /// Timer interrupts taken so far.
    pub fn ticks(&self) -> u64 {
        self.ticks.get()
    }

    /// Whether SMEP and SMAP keep the kernel from running and touching
    /// programs' pages on this core (the processor has them).
    pub fn user_protection(&self) -> bool {
        self.user_protection.get()
    }

    /// Gives `frame`, taken from this core's pool, back to it.
    pub fn free_frame(&self, frame: u64) {
        if let Err(error) = self.frames.borrow_mut().free(frame) {
            panic!("core {}: freeing frame {frame:#x}: {error:?}", self.id);
        }
    }

    pub fn page_tables(&self) -> &PageTables {
        &self.page_tables
    }

    /// One frame from this core's pool, for its own use (page tables).
    pub fn allocate_frame(&self) -> Option<u64> {
        self.frames.borrow_mut().allocate()
    }

    /// A fresh frame from this core's pool with every byte `byte`.
    pub fn allocate_filled_frame(&self, byte: u8) -> Option<u64> {
        let frame = self.allocate_frame()?;
        // SAFETY: a frame this core's pool just handed out, identity mapped
        // and used by nothing else.
        unsafe { phys::write(frame, &[byte; FRAME_SIZE as usize]) };
        Some(frame)
    }

    /// A fresh frame from this core's pool holding `bytes` (at most a
    /// page) at its start and zeros after.
    pub fn allocate_frame_holding(&self, bytes: &[u8]) -> Option<u64> {
        assert!(bytes.len() <= FRAME_SIZE as usize, "more than a frame");
        let frame = self.allocate_filled_frame(0)?;
        // SAFETY: a frame this core's pool just handed out, identity mapped
        // and used by nothing else.
        unsafe { phys::write(frame, bytes) };
        Some(frame)
    }

    /// Whether `frame` is one of this core's pool's (so its to free).
    pub fn owns_frame(&self, frame: u64) -> bool {
        self.frames.borrow().contains(frame)
    }

    /// Frames left in this core's pool.
    pub fn free_frames(&self) -> usize {
        self.frames.borrow().free_frames()
    }

    pub fn count_wake_interrupt(&self) {
        self.wake_interrupts.set(self.wake_interrupts.get() + 1);
    }

    pub fn wake_interrupts(&self) -> u64 {
        self.wake_interrupts.get()
    }

    /// Hands this core's kernel state to its block, once.
    pub fn set_os<T: Any>(&self, state: &'static T) {
        if self.os.set(state).is_err() {
            panic!("core {}: its kernel state is set twice", self.id);
        }
    }

    /// This core's kernel state, if it was handed over and is a `T`.
    pub fn os<T: Any>(&self) -> Option<&'static T> {
        let state: &'static dyn Any = *self.os.get()?;
        state.downcast_ref()
    }

    /// Contiguous frames from this core's pool.
    fn allocate_frames(&self, count: usize) -> Result<u64, InitError> {
        self.frames
            .borrow_mut()
            .allocate_contiguous(count)
            .ok_or(InitError::OutOfFrames { wanted: count })
    }
}

/// This core's block, once [`init`] has run on it.
pub fn try_current() -> Option<&'static CoreLocal> {
    // SAFETY: `init` is the one caller of `core_local::install`, and it
    // installs a `CoreLocal`.
    unsafe { core_local::current::<CoreLocal>() }
}

struct PerCoreAllocator;

// SAFETY: allocation goes to the running core's heap, which only this core
// uses, with interrupts off so that a handler cannot re-enter it.
unsafe impl GlobalAlloc for PerCoreAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        try_current().map_or(null_mut(), |local| local.heap.allocate(layout))
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        if let Some(local) = try_current() {
            local.heap.deallocate(pointer, layout, local.id);
        }
    }
}

#[global_allocator]
static ALLOCATOR: PerCoreAllocator = PerCoreAllocator;

pub fn current() -> &'static CoreLocal {
    try_current().expect("this core has set up its core-local block")
}

#[derive(Debug)]
pub enum InitError {
    Pool(atoll_frames::PoolError),
    BitmapOutsideUsableMemory { start: u64, end: u64 },
    OutOfFrames { wanted: usize },
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Pool(error) => write!(f, "frame pool: {error}"),
            Self::BitmapOutsideUsableMemory { start, end } => {
                write!(
                    f,
                    "frame bitmap {start:#x}-{end:#x} does not lie in usable memory"
                )
            }
            Self::OutOfFrames { wanted } => {
                write!(f, "no {wanted} contiguous free frames in the pool")
            }
        }
    }
}

fn frames_for(bytes: usize) -> usize {
    bytes.div_ceil(FRAME_SIZE as usize)
}

/// What a core needs to set itself up.
pub struct CoreSetup<'a, const RANGES: usize> {
    pub id: usize,
    pub apic_id: u32,
    /// The memory its frame pool covers: carved for this core alone.
    pub span: (u64, u64),
    /// The machine's usable memory; the pool takes only what lies in it.
    pub usable: &'a RangeSet<RANGES>,
    /// Local APIC timer counts between two timer interrupts.
    pub timer_count: u32,
    /// How many cores the machine has (the heap grows with them).
    pub cores: usize,
    /// What else of the first 4 GiB this core may write besides its span:
    /// its stack, the kernel's statics, the channel regions, the local
    /// APIC. Everything else but the kernel's code and constants, and
    /// `readable`, stays unmapped on it ([`paging::Reach`]).
    pub writable: &'a [(u64, u64)],
    /// What else it may read: what the boot loader loaded beside the
    /// kernel (the programs' archive).
    pub readable: &'a [(u64, u64)],
}

/// Sets up the core that runs it, over the memory of `setup`.
pub fn init<const RANGES: usize>(
    setup: &CoreSetup<'_, RANGES>,
) -> Result<&'static CoreLocal, InitError> {
    let (start, end) = setup.span;

    // The pool's bitmap sits at the start of the span, which carving keeps on
    // usable memory; check that all of it is.
    let words = FramePool::bitmap_words(end - start);
    let bitmap_end = start + (words * 8) as u64;
    if !setup.usable.contains(start, bitmap_end) {
        return Err(InitError::BitmapOutsideUsableMemory {
            start,
            end: bitmap_end,
        });
    }
    // SAFETY: the range is usable RAM inside this core's span, which the
    // boot core carved for this core alone; u64 needs 8-byte alignment and
    // spans start on a frame.
    let bitmap = unsafe { phys::claim_zeroed::<u64>(start, words) };
    let mut pool = FramePool::new(start, end, bitmap).map_err(InitError::Pool)?;
    for (usable_start, usable_end) in setup.usable.iter() {
        pool.add_usable(usable_start, usable_end);
    }
    pool.reserve(start, bitmap_end);

    let block = pool
        .allocate_contiguous(frames_for(core_local::block_size::<CoreLocal>()))
        .ok_or(InitError::OutOfFrames {
            wanted: frames_for(core_local::block_size::<CoreLocal>()),
        })?;
    let needed = budget::heap_bytes(setup.cores as u64).div_ceil(FRAME_SIZE) as usize;
    let heap_frames = (pool.free_frames() / HEAP_SHARE)
        .max(needed)
        .clamp(HEAP_MIN_FRAMES, HEAP_MAX_FRAMES);
    let heap_start = pool
        .allocate_contiguous(heap_frames)
        .ok_or(InitError::OutOfFrames {
            wanted: heap_frames,
        })?;
    let heap_end = heap_start + heap_frames as u64 * FRAME_SIZE;

    let pml4 = pool
        .allocate()
        .ok_or(InitError::OutOfFrames { wanted: 1 })?;
    let [code, statics] = crate::boot::kernel_read_only();
    let mut read_only = [(0, 0); 2 + MAX_READABLE];
    read_only[0] = code;
    read_only[1] = statics;
    let extra = setup.readable.len();
    assert!(
        extra <= MAX_READABLE,
        "{extra} read-only ranges, at most {MAX_READABLE}"
    );
    read_only[2..2 + extra].copy_from_slice(setup.readable);
    let reach = paging::Reach {
        read_only: &read_only[..2 + extra],
        writable: setup.writable,
        own: setup.span,
    };
    let page_tables = PageTables::install(pml4, &reach, &mut || pool.allocate())
        .map_err(|_| InitError::OutOfFrames { wanted: 1 })?;

    let lapic = LocalApic::current();
    let local = CoreLocal {
        id: setup.id,
        apic_id: setup.apic_id,
        lapic,
        // SAFETY: the heap frames were just taken from this core's pool.
        heap: unsafe { Heap::new(heap_start, heap_end) },
        frames: RefCell::new(pool),
        ticks: Cell::new(0),
        wake_interrupts: Cell::new(0),
        page_tables,
        channels_attached: Cell::new(false),
        user_protection: Cell::new(false),
        os: OnceCell::new(),
    };
    // SAFETY: `block` is fresh, frame-aligned memory from this core's pool.
    let local: &'static CoreLocal = unsafe { core_local::install(block, local) };

    let ist_frames = frames_for(IST_STACK_SIZE);
    let mut ist_tops = [0; 3];
    for top in &mut ist_tops {
        *top = local.allocate_frames(ist_frames)? + (ist_frames as u64) * FRAME_SIZE;
    }
    let tables_frames = frames_for(core::mem::size_of::<CpuTables>());
    // SAFETY: fresh frames from this core's pool, kept for the core's life.
    let tables = unsafe { phys::place(local.allocate_frames(tables_frames)?, CpuTables::new()) };
    let ring0_stack = local.allocate_frames(ist_frames)? + (ist_frames as u64) * FRAME_SIZE;
    local
        .user_protection
        .set(tables.load(ist_tops, ring0_stack));

    lapic.enable(idt::SPURIOUS);
    lapic.start_periodic_timer(idt::TIMER, setup.timer_count);
    Ok(local)
}
