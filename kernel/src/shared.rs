//! Everything that more than one core can reach, in one place.
//!
//! Atoll's cores share no kernel data. The exceptions are exactly those
//! listed here (and in `docs/architecture.md` §7), and the page tables
//! hold the kernel to them: the kernel's statics (`.data`, `.bss`) are
//! mapped read-only on every core once the other cores start, and only the
//! shared region (statics declared with `atoll_arch::shared!`) is mapped
//! writable on all of them.
//!
//! 1. [`BOOT`]: facts about the machine, written once by the boot core and
//!    frozen before any other core starts; read-only afterwards, with the
//!    rest of the statics (the kernel image, the boot page tables, the
//!    channel regions' table, the entry points arch calls).
//! 2. The start-up mailbox (`atoll_arch::smp`, shared region): the boot
//!    core fills it before each start-up IPI; the starting core reads it
//!    once and says it is alive. One core starts at a time. Beside it, the
//!    flags that say which cores the boot core holds in INIT (`core on`).
//! 3. The debug console and its lock (`atoll_arch::serial::CONSOLE`, shared
//!    region).
//! 4. The shared-memory baselines of the benchmarks (`crate::measure`,
//!    shared region): the structure `bench fig3` updates under a lock, the
//!    slots of `bench shootdown`'s IPI broadcast, and the flags of IPI round
//!    trips (`ipi`, `urpc bench`). Only measurements touch them.
//! 5. The channel regions (`atoll_arch::channels`): the URPC rings, each
//!    with one sending and one receiving core, and after each ring the
//!    spare line `urpc bench` measures its floor on.
//!
//! What a core is (running, stopped), its timer ticks and its free frames
//! are not here: the view says who runs, and a core tells its ticks and
//! frames by message (`CoreReport`).

use core::sync::atomic::{AtomicU64, Ordering};

use crate::facts::{BootFacts, MAX_CORES};

pub static BOOT: spin::Once<BootFacts> = spin::Once::new();

/// The frozen boot facts. Every core starts after they are frozen.
pub fn boot_facts() -> &'static BootFacts {
    BOOT.get()
        .expect("boot facts are frozen before any core uses them")
}

/// `ms` on this machine: a replica holds facts, and derives trees, for
/// every pair of cores, and its protocols' rounds reach every core, so past
/// 64 cores the waits grow as the square (`atoll_monitor::square_growth`).
pub fn scaled(ms: u64) -> u64 {
    ms * atoll_monitor::square_growth(boot_facts().cores.len() as u64)
}

/// A value alone on its cache line, so that writes to it do not move the
/// lines around it.
#[repr(align(64))]
pub struct Line<T>(pub T);

/// A set of core ids, one bit each, that many cores may add to and the
/// owner drains.
pub struct CoreSet([AtomicU64; MAX_CORES.div_ceil(64)]);

impl CoreSet {
    pub const fn new() -> Self {
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
