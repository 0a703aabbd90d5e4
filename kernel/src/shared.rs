//! Everything that more than one core can reach, in one place.
//!
//! Atoll's cores share no kernel data (design.md §2.1). The exceptions are
//! exactly those listed below; a `static` elsewhere that two cores can mutate
//! is a bug.
//!
//! 1. [`BOOT`]: facts about the machine, written once by the boot core and
//!    frozen before any other core starts; read-only afterwards.
//! 2. [`AP_START`] and [`AP_BOOT_STACK_TOP`]: the start-up mailbox. The boot
//!    core fills it before each start-up IPI; the starting core reads it once
//!    and says it is alive. One core starts at a time.
//! 3. [`BOARD`]: one cache-line-aligned record per core. Its owner publishes
//!    its state, timer ticks and free frames there; other cores only read
//!    those. The ping bits in it carry IPI round trips (`ipi`, `urpc bench`):
//!    a core sets a bit in the other's record and wakes it with an IPI, whose
//!    handler answers the same way; `fault_request` asks the core to fault.
//!    The shootdown fields are the shared-memory baseline `bench shootdown`
//!    compares with. Messages between cores go over the rings (6).
//! 4. [`CONSOLE`]: the debug console and its lock.
//! 5. The page `BootFacts::fig3_page`: the structure `bench fig3` updates
//!    under a lock from several cores, as the shared-memory side of the
//!    paper's Figure 3 (see `crate::fig3`); nothing else uses it.
//! 6. The channel regions (`crate::channels`): the URPC rings, each with
//!    one sending and one receiving core.

use crate::arch::serial::Console;
use crate::boot::BootFacts;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

/// xAPIC ids are 8 bits, and 0xFF is the broadcast id.
pub const MAX_CORES: usize = 255;

pub static BOOT: spin::Once<BootFacts> = spin::Once::new();

/// The frozen boot facts. Every core starts after they are frozen.
pub fn boot_facts() -> &'static BootFacts {
    BOOT.get()
        .expect("boot facts are frozen before any core uses them")
}

pub struct ApStart {
    /// The core id the starting core takes.
    pub core: AtomicUsize,
    /// Set by the starting core as soon as it runs Rust code.
    pub alive: AtomicBool,
}

pub static AP_START: ApStart = ApStart {
    core: AtomicUsize::new(0),
    alive: AtomicBool::new(false),
};

/// The stack the starting core switches to; read by `ap_entry64` in assembly.
#[unsafe(no_mangle)]
pub static AP_BOOT_STACK_TOP: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CoreState {
    /// Never started, or it did not answer its start-up IPIs.
    Offline = 0,
    Starting = 1,
    Running = 2,
    /// Took a fault or panicked, and halted.
    Stopped = 3,
}

impl CoreState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Offline => "offline",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopped => "stopped",
        }
    }
}

/// A set of core ids, one bit each, that many cores may add to and the
/// owner drains.
pub struct CoreSet([AtomicU64; MAX_CORES.div_ceil(64)]);

impl CoreSet {
    const fn new() -> Self {
        Self([const { AtomicU64::new(0) }; MAX_CORES.div_ceil(64)])
    }

    pub fn insert(&self, core: usize) {
        self.0[core / 64].fetch_or(1 << (core % 64), Ordering::AcqRel);
    }

    /// Removes `core`; whether it was there.
    pub fn take(&self, core: usize) -> bool {
        let bit = 1 << (core % 64);
        self.0[core / 64].fetch_and(!bit, Ordering::AcqRel) & bit != 0
    }

    /// Empties the set, calling `f` with each core that was in it.
    pub fn drain(&self, mut f: impl FnMut(usize)) {
        for (word_index, word) in self.0.iter().enumerate() {
            let mut bits = word.swap(0, Ordering::AcqRel);
            while bits != 0 {
                f(word_index * 64 + bits.trailing_zeros() as usize);
                bits &= bits - 1;
            }
        }
    }
}

#[repr(align(64))]
pub struct CoreRecord {
    state: AtomicU8,
    pub ticks: AtomicU64,
    pub free_frames: AtomicU64,
    /// Cores waiting for this one to answer a ping.
    pub ping_requests: CoreSet,
    /// Cores that have answered this one's pings.
    pub ping_replies: CoreSet,
    /// Asks this core to take a page fault (the `fault` shell command).
    pub fault_request: AtomicBool,
    /// The baseline shootdown of `bench shootdown`, the way a shared-memory
    /// kernel does it: the initiator writes the page and its own id here and
    /// sends an IPI; the handler invalidates the page and increments the
    /// initiator's `shootdown_acks`, one counter all targets write.
    pub shootdown_page: AtomicU64,
    pub shootdown_from: AtomicUsize,
    pub shootdown_acks: AtomicU64,
}

impl CoreRecord {
    const fn new() -> Self {
        Self {
            state: AtomicU8::new(CoreState::Offline as u8),
            ticks: AtomicU64::new(0),
            free_frames: AtomicU64::new(0),
            ping_requests: CoreSet::new(),
            ping_replies: CoreSet::new(),
            fault_request: AtomicBool::new(false),
            shootdown_page: AtomicU64::new(0),
            shootdown_from: AtomicUsize::new(0),
            shootdown_acks: AtomicU64::new(0),
        }
    }

    pub fn state(&self) -> CoreState {
        match self.state.load(Ordering::Acquire) {
            1 => CoreState::Starting,
            2 => CoreState::Running,
            3 => CoreState::Stopped,
            _ => CoreState::Offline,
        }
    }

    pub fn set_state(&self, state: CoreState) {
        self.state.store(state as u8, Ordering::Release);
    }
}

pub struct Board([CoreRecord; MAX_CORES]);

impl Board {
    pub fn core(&self, core: usize) -> &CoreRecord {
        &self.0[core]
    }
}

pub static BOARD: Board = Board([const { CoreRecord::new() }; MAX_CORES]);

/// The ids of the cores running now, by their board records.
pub fn running_cores() -> impl Iterator<Item = usize> {
    (0..boot_facts().cores.len()).filter(|&core| BOARD.core(core).state() == CoreState::Running)
}

pub static CONSOLE: Console = Console::new();
