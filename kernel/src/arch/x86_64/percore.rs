//! Bringing up one core's own kernel instance: its frame pool, core-local
//! block, heap, descriptor tables, local APIC and timer. Every core runs this
//! on itself, over the span of memory the boot core carved for it, and never
//! touches another core's pool or heap afterwards.

use super::paging::PageTables;
use crate::arch::apic::LocalApic;
use crate::arch::core_local;
use crate::arch::heap::Heap;
use crate::arch::idt;
use crate::arch::phys;
use crate::arch::tables::{CpuTables, IST_STACK_SIZE};
use crate::node::NodeState;
use crate::shared::{BOARD, CoreState, boot_facts};
use crate::vm::Vm;
use atoll_frames::{FRAME_SIZE, FramePool};
use core::cell::{Cell, OnceCell, RefCell};
use core::sync::atomic::Ordering;

/// Timer interrupts per second on every core.
pub const TIMER_HZ: u64 = 100;
/// The heap takes this share of a core's frames, within the bounds below.
const HEAP_SHARE: usize = 8;
const HEAP_MIN_FRAMES: usize = 64;
const HEAP_MAX_FRAMES: usize = 4096;

/// One core's kernel state, reachable only from that core.
pub struct CoreLocal {
    pub id: usize,
    pub apic_id: u32,
    pub lapic: LocalApic,
    pub heap: Heap,
    frames: RefCell<FramePool<'static>>,
    ticks: Cell<u64>,
    /// Wake-up IPIs taken, so that an IPI round trip can wait for the
    /// interrupt itself.
    wake_interrupts: Cell<u64>,
    page_tables: PageTables,
    /// The OS node's state; set once the heap exists.
    node: OnceCell<RefCell<NodeState>>,
}

impl CoreLocal {
    /// Counts one timer interrupt and publishes the count.
    pub fn tick(&self) {
        let ticks = self.ticks.get() + 1;
        self.ticks.set(ticks);
        BOARD.core(self.id).ticks.store(ticks, Ordering::Relaxed);
    }

    pub fn ticks(&self) -> u64 {
        self.ticks.get()
    }

    pub fn node(&self) -> &RefCell<NodeState> {
        self.node
            .get()
            .expect("the node state is set up during core start-up")
    }

    pub fn page_tables(&self) -> &PageTables {
        &self.page_tables
    }

    /// One frame from this core's pool, for its own use (page tables).
    pub fn allocate_frame(&self) -> Option<u64> {
        self.allocate_frames(1).ok()
    }

    pub fn count_wake_interrupt(&self) {
        self.wake_interrupts.set(self.wake_interrupts.get() + 1);
    }

    pub fn wake_interrupts(&self) -> u64 {
        self.wake_interrupts.get()
    }

    /// Frames from this core's pool; the free count is published for `cores`.
    fn allocate_frames(&self, count: usize) -> Result<u64, InitError> {
        let mut pool = self.frames.borrow_mut();
        let start = pool
            .allocate_contiguous(count)
            .ok_or(InitError::OutOfFrames { wanted: count })?;
        BOARD
            .core(self.id)
            .free_frames
            .store(pool.free_frames() as u64, Ordering::Relaxed);
        Ok(start)
    }
}

/// This core's block, once [`init`] has run on it.
pub fn try_current() -> Option<&'static CoreLocal> {
    core_local::current()
}

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

/// Sets up core `id` on the core that runs it.
pub fn init(id: usize) -> Result<&'static CoreLocal, InitError> {
    let facts = boot_facts();
    let core = &facts.cores[id];
    let (start, end) = core.span;

    // The pool's bitmap sits at the start of the span, which carving keeps on
    // usable memory; check that all of it is.
    let words = FramePool::bitmap_words(end - start);
    let bitmap_end = start + (words * 8) as u64;
    if !facts.usable.contains(start, bitmap_end) {
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
    for (usable_start, usable_end) in facts.usable.iter() {
        pool.add_usable(usable_start, usable_end);
    }
    pool.reserve(start, bitmap_end);

    let block = pool
        .allocate_contiguous(frames_for(core_local::BLOCK_SIZE))
        .ok_or(InitError::OutOfFrames {
            wanted: frames_for(core_local::BLOCK_SIZE),
        })?;
    let heap_frames = (pool.free_frames() / HEAP_SHARE).clamp(HEAP_MIN_FRAMES, HEAP_MAX_FRAMES);
    let heap_start = pool
        .allocate_contiguous(heap_frames)
        .ok_or(InitError::OutOfFrames {
            wanted: heap_frames,
        })?;
    let heap_end = heap_start + heap_frames as u64 * FRAME_SIZE;

    let pml4 = pool
        .allocate()
        .ok_or(InitError::OutOfFrames { wanted: 1 })?;
    let page_tables = PageTables::install(pml4);
    let test_frame = pool
        .allocate()
        .ok_or(InitError::OutOfFrames { wanted: 1 })?;
    // SAFETY: a fresh frame from this core's pool, for the test space alone.
    unsafe { phys::write(test_frame, &[id as u8; FRAME_SIZE as usize]) };

    let lapic = LocalApic::current();
    let local = CoreLocal {
        id,
        apic_id: core.apic_id,
        lapic,
        // SAFETY: the heap frames were just taken from this core's pool.
        heap: unsafe { Heap::new(heap_start, heap_end) },
        frames: RefCell::new(pool),
        ticks: Cell::new(0),
        wake_interrupts: Cell::new(0),
        page_tables,
        node: OnceCell::new(),
    };
    // SAFETY: `block` is fresh, frame-aligned memory from this core's pool.
    let local: &'static CoreLocal = unsafe { core_local::install(block, local) };
    BOARD.core(id).free_frames.store(
        local.frames.borrow().free_frames() as u64,
        Ordering::Relaxed,
    );

    // SAFETY: once, on this core, after the boot core reset the channel
    // regions (before it started any core).
    let channels = unsafe { super::channels::attach(facts, id) };
    let vm = Vm::new(id, test_frame);
    let skb = crate::skb::Replica::new(id);
    if local
        .node
        .set(RefCell::new(NodeState::new(channels, vm, skb)))
        .is_err()
    {
        unreachable!("each core sets up its node state once");
    }

    let ist_frames = frames_for(IST_STACK_SIZE);
    let mut ist_tops = [0; 3];
    for top in &mut ist_tops {
        *top = local.allocate_frames(ist_frames)? + (ist_frames as u64) * FRAME_SIZE;
    }
    let tables_frames = frames_for(core::mem::size_of::<CpuTables>());
    // SAFETY: fresh frames from this core's pool, kept for the core's life.
    let tables = unsafe { phys::place(local.allocate_frames(tables_frames)?, CpuTables::new()) };
    tables.load(ist_tops);

    lapic.enable(idt::SPURIOUS);
    lapic.start_periodic_timer(
        idt::TIMER,
        (facts.apic_timer_per_ms * 1000 / TIMER_HZ) as u32,
    );
    BOARD.core(id).set_state(CoreState::Running);
    Ok(local)
}
