//! What the boot core finds out about the machine before any other core
//! starts: the cores, memory, NUMA layout, clocks and power-off, frozen as
//! [`BootFacts`] and read by every core afterwards (`crate::shared::BOOT`).

use atoll_arch::power::AcpiPowerOff;
use atoll_firmware::{AcpiError, BootInfo, BootProtocol};
use atoll_frames::RangeSet;

/// The most cores the kernel runs on: as many as xAPIC can address.
pub const MAX_CORES: usize = atoll_arch::apic::MAX_CORES;
/// Disjoint usable ranges the boot core can track.
pub const MAX_USABLE_RANGES: usize = 128;
/// SRAT memory ranges the boot core can track.
pub const MAX_NUMA_RANGES: usize = 64;
/// SLIT localities (NUMA nodes) the boot core can keep distances for.
pub const MAX_NUMA_NODES: usize = 64;

#[derive(Clone, Copy, Default)]
pub struct CoreEntry {
    pub apic_id: u32,
    /// Top of the stack the core starts on (0 for the boot core, which
    /// keeps the boot stack).
    pub stack_top: u64,
    /// The memory the core's frame pool covers.
    pub span: (u64, u64),
    /// The rings other cores send this one (see `atoll_arch::channels`),
    /// just above the span.
    pub channels: (u64, u64),
    /// The NUMA node (SRAT proximity domain) the core is in; 0 on a
    /// machine without an SRAT.
    pub node: u32,
}

/// What the SRAT and the SLIT say about NUMA nodes, kept without a heap
/// because the boot core needs it to carve memory before it has one.
pub struct NumaFacts {
    /// Enabled SRAT memory ranges `(start, end, node)`, in table order.
    pub(crate) memory: [(u64, u64, u32); MAX_NUMA_RANGES],
    pub(crate) memory_count: usize,
    /// SLIT distances, row = from, column = to; `None` without a SLIT.
    pub(crate) distances: Option<[[u8; MAX_NUMA_NODES]; MAX_NUMA_NODES]>,
    pub(crate) localities: usize,
}

impl NumaFacts {
    pub fn memory(&self) -> &[(u64, u64, u32)] {
        &self.memory[..self.memory_count]
    }

    /// The SLIT's distance from node `from` to node `to`, or without a SLIT
    /// that covers both, ACPI's defaults: 10 within a node, 20 between.
    pub fn distance_or_default(&self, from: u32, to: u32) -> u8 {
        let (row, column) = (from as usize, to as usize);
        match &self.distances {
            Some(rows) if row < self.localities && column < self.localities => rows[row][column],
            _ if from == to => 10,
            _ => 20,
        }
    }
}

/// Facts about the machine, frozen before any other core starts.
pub struct BootFacts {
    pub info: BootInfo,
    pub cores: CoreTable,
    pub boot_core: usize,
    pub tsc_per_ms: u64,
    pub apic_timer_per_ms: u64,
    pub usable: RangeSet<MAX_USABLE_RANGES>,
    /// Usable bytes above the identity map, which this kernel does not use.
    pub ignored_high_memory: u64,
    pub trampoline_page: u64,
    pub power_off: Result<AcpiPowerOff, AcpiError>,
    pub numa: NumaFacts,
    /// Whether the frame pools (and so each core's channels, heap and page
    /// tables) were carved by NUMA node: each on its core's node, or the
    /// nearest node with memory for a core whose node has none.
    pub pools_node_local: bool,
}

/// The cores the MADT lists as enabled, in MADT order; the index is the core id.
pub struct CoreTable {
    pub(crate) entries: [CoreEntry; MAX_CORES],
    pub(crate) count: usize,
}

impl core::ops::Deref for CoreTable {
    type Target = [CoreEntry];
    fn deref(&self) -> &[CoreEntry] {
        &self.entries[..self.count]
    }
}

pub fn protocol_name(protocol: BootProtocol) -> &'static str {
    match protocol {
        BootProtocol::Pvh => "pvh",
        BootProtocol::Multiboot2 => "multiboot2",
    }
}
