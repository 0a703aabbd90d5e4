//! Everything that more than one core can reach, in one place.
//!
//! Atoll's cores share no kernel data. The exceptions are exactly those
//! listed here (and in `docs/architecture.md`); a `static` elsewhere that
//! two cores can mutate is a bug.
//!
//! 1. [`BOOT`]: facts about the machine, written once by the boot core and
//!    frozen before any other core starts; read-only afterwards. The kernel
//!    image and the boot page tables (arch) are read-only too.
//! 2. The start-up mailbox (`atoll_arch::smp`): the boot core fills it
//!    before each start-up IPI; the starting core reads it once and says it
//!    is alive. One core starts at a time.
//! 3. [`BOARD`]: one record per core, for the shell's `cores` table and
//!    the boot core's bring-up (membership is the monitors' views, agreed
//!    by message). A record's owner publishes its state,
//!    timer ticks and free frames on a line of their own (the boot core
//!    writes the state of a core it starts); other cores only read it. Each of the other fields is on a line of its own too, written by
//!    other cores: the ping bits of IPI round trips (`ipi`, `urpc bench`:
//!    a core sets a bit in the other's record and wakes it with an IPI,
//!    whose handler answers the same way). Messages between cores go over
//!    the rings (6).
//! 4. The debug console and its lock (`atoll_arch::serial::CONSOLE`).
//! 5. The shared-memory baselines of the benchmarks (`crate::measure`):
//!    the structure `bench fig3` updates under a lock, and the slots of
//!    `bench shootdown`'s IPI broadcast. Only benchmarks touch them.
//! 6. The channel regions (`atoll_arch::channels`): the URPC rings, each
//!    with one sending and one receiving core, and after each ring the
//!    spare line `urpc bench` measures its floor on.

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::facts::{BootFacts, MAX_CORES};

pub static BOOT: spin::Once<BootFacts> = spin::Once::new();

/// The frozen boot facts. Every core starts after they are frozen.
pub fn boot_facts() -> &'static BootFacts {
    BOOT.get()
        .expect("boot facts are frozen before any core uses them")
}

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

/// A value alone on its cache line, so that writes to it do not move the
/// lines around it.
#[repr(align(64))]
pub struct Line<T>(pub T);

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

/// What a core publishes about itself; only it writes here.
pub struct Published {
    state: AtomicU8,
    pub ticks: AtomicU64,
    pub free_frames: AtomicU64,
}

/// One core's record. The owner's line and each line other cores write are
/// apart, so that neither side's writes evict what the other reads.
pub struct CoreRecord {
    pub published: Line<Published>,
    /// Cores waiting for this one to answer a ping.
    pub ping_requests: Line<CoreSet>,
    /// Cores that have answered this one's pings.
    pub ping_replies: Line<CoreSet>,
}

impl CoreRecord {
    const fn new() -> Self {
        Self {
            published: Line(Published {
                state: AtomicU8::new(CoreState::Offline as u8),
                ticks: AtomicU64::new(0),
                free_frames: AtomicU64::new(0),
            }),
            ping_requests: Line(CoreSet::new()),
            ping_replies: Line(CoreSet::new()),
        }
    }

    pub fn state(&self) -> CoreState {
        match self.published.0.state.load(Ordering::Acquire) {
            1 => CoreState::Starting,
            2 => CoreState::Running,
            3 => CoreState::Stopped,
            _ => CoreState::Offline,
        }
    }
}

pub struct Board {
    cores: [CoreRecord; MAX_CORES],
}

impl Board {
    pub fn core(&self, core: usize) -> &CoreRecord {
        &self.cores[core]
    }

    /// Sets `core`'s state; the core itself, or the boot core while it
    /// starts it.
    pub fn set_state(&self, core: usize, state: CoreState) {
        self.cores[core]
            .published
            .0
            .state
            .store(state as u8, Ordering::Release);
    }
}

pub static BOARD: Board = Board {
    cores: [const { CoreRecord::new() }; MAX_CORES],
};
