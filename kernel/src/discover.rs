//! What the boot core reads from the boot loader and the firmware, and how
//! it carves memory for every core, into [`BootFacts`]: the cores from the
//! MADT, NUMA nodes and distances from the SRAT and SLIT, the usable memory,
//! a stack, a frame pool and a channel region for each core, the clocks,
//! and the way to power off.

use atoll_arch::apic::LocalApic;
use atoll_arch::phys::{IDENTITY_MAPPED_END, IdentityMap};
use atoll_arch::power::AcpiPowerOff;
use atoll_arch::{boot, channels, cpu, pit};
use atoll_firmware::{
    AcpiError, AcpiTables, BootInfo, BootInfoError, MadtEntry, MemoryKind, Rsdp, SratEntry,
    s5_sleep_types,
};
use atoll_frames::{NumaSpan, RangeSet, RangeSetFull, carve, carve_numa};

use crate::facts::{
    BootFacts, CoreEntry, CoreTable, MAX_CORES, MAX_NUMA_NODES, MAX_NUMA_RANGES, MAX_USABLE_RANGES,
    NumaFacts,
};

pub const CORE_STACK_SIZE: u64 = 64 * 1024;
/// The first MiB holds the BIOS data, the trampoline and legacy devices.
const LOW_MEMORY_END: u64 = 1 << 20;
const CALIBRATION_MS: u64 = 10;

#[derive(Debug)]
pub enum BootError {
    BootInfo(BootInfoError),
    Acpi(AcpiError),
    NoCores,
    TooManyCores { listed: usize },
    BootCoreNotListed { apic_id: u32 },
    TooManyRanges(RangeSetFull),
    NoTrampolinePage,
    NoMemoryForStacks { cores: usize },
    NotEnoughMemory { cores: usize, pools: usize },
    NoMemoryForChannels { core: usize, bytes: u64 },
    NoPit,
    TooManyNumaRanges,
    TooManyLocalities { localities: u64 },
}

impl core::fmt::Display for BootError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BootInfo(error) => write!(f, "boot information: {error}"),
            Self::Acpi(error) => write!(f, "ACPI: {error}"),
            Self::NoCores => write!(f, "the MADT lists no enabled core"),
            Self::TooManyCores { listed } => write!(
                f,
                "the MADT lists {listed} cores; at most {MAX_CORES} supported"
            ),
            Self::BootCoreNotListed { apic_id } => {
                write!(f, "the boot core (apic {apic_id}) is not in the MADT")
            }
            Self::TooManyRanges(error) => write!(f, "memory map: {error}"),
            Self::NoTrampolinePage => {
                write!(f, "no usable page below 1 MiB for the start-up trampoline")
            }
            Self::NoMemoryForStacks { cores } => {
                write!(f, "no memory for the stacks of {cores} cores")
            }
            Self::NotEnoughMemory { cores, pools } => {
                write!(
                    f,
                    "usable memory splits into only {pools} frame pools for {cores} cores"
                )
            }
            Self::NoMemoryForChannels { core, bytes } => {
                write!(
                    f,
                    "core {core} has no {bytes} usable bytes at the top of its span for its channels"
                )
            }
            Self::NoPit => write!(f, "the PIT did not count down; cannot calibrate the clocks"),
            Self::TooManyNumaRanges => write!(
                f,
                "the SRAT lists more than {MAX_NUMA_RANGES} memory ranges"
            ),
            Self::TooManyLocalities { localities } => write!(
                f,
                "the SLIT has {localities} localities; at most {MAX_NUMA_NODES} supported"
            ),
        }
    }
}

impl From<AcpiError> for BootError {
    fn from(error: AcpiError) -> Self {
        Self::Acpi(error)
    }
}

impl From<RangeSetFull> for BootError {
    fn from(error: RangeSetFull) -> Self {
        Self::TooManyRanges(error)
    }
}

pub fn discover(info: BootInfo) -> Result<BootFacts, BootError> {
    let (rsdp, _) = Rsdp::locate(&IdentityMap, info.rsdp.as_ref())?;
    let tables = AcpiTables::new(&IdentityMap, &rsdp)?;
    let madt = tables.madt()?;
    let mut cores = CoreTable {
        entries: [CoreEntry::default(); MAX_CORES],
        count: 0,
    };
    let mut listed = 0;
    for entry in madt.entries() {
        if let MadtEntry::LocalApic {
            apic_id,
            enabled: true,
            ..
        } = entry?
        {
            listed += 1;
            if let Some(slot) = cores.entries.get_mut(cores.count) {
                slot.apic_id = apic_id;
                cores.count += 1;
            }
        }
    }
    if listed == 0 {
        return Err(BootError::NoCores);
    }
    if listed > MAX_CORES {
        return Err(BootError::TooManyCores { listed });
    }
    let lapic = LocalApic::current();
    let boot_apic_id = lapic.id();
    let numa = read_numa(&tables, &mut cores.entries[..cores.count]);
    let boot_core = cores
        .iter()
        .position(|core| core.apic_id == boot_apic_id)
        .ok_or(BootError::BootCoreNotListed {
            apic_id: boot_apic_id,
        })?;

    let power_off = tables.fadt().and_then(|fadt| {
        Ok(AcpiPowerOff {
            registers: fadt.sleep_registers()?,
            sleep_types: s5_sleep_types(&IdentityMap, fadt.dsdt.ok_or(AcpiError::NoDsdt)?)?,
        })
    });

    let mut usable = RangeSet::<MAX_USABLE_RANGES>::new();
    let mut ignored_high_memory = 0;
    for region in info
        .memory()
        .iter()
        .filter(|region| region.kind == MemoryKind::Usable)
    {
        let end = region.base.saturating_add(region.len);
        ignored_high_memory += end.saturating_sub(region.base.max(IDENTITY_MAPPED_END));
        usable.insert(region.base, end.min(IDENTITY_MAPPED_END))?;
    }
    // Boot loaders may hand over overlapping regions: a byte is usable only
    // if no other kind of region claims it too.
    for region in info
        .memory()
        .iter()
        .filter(|region| region.kind != MemoryKind::Usable)
    {
        usable.remove(region.base, region.base.saturating_add(region.len))?;
    }
    let trampoline_page = usable
        .iter()
        .map(|(start, end)| (start.max(0x1000), end.min(LOW_MEMORY_END)))
        .find(|(start, end)| end > start)
        .map(|(start, _)| start)
        .ok_or(BootError::NoTrampolinePage)?;
    usable.remove(0, LOW_MEMORY_END)?;
    let (image_start, image_end) = boot::kernel_image();
    usable.remove(image_start, image_end)?;
    // The boot modules (the programs' archive) stay where the boot loader
    // put them, read-only on every core.
    for module in info.modules() {
        usable.remove(module.start, module.end)?;
    }
    for (id, core) in cores.entries[..cores.count].iter_mut().enumerate() {
        if id != boot_core {
            let bottom = usable
                .take_from_top(CORE_STACK_SIZE)
                .ok_or(BootError::NoMemoryForStacks { cores: listed })?;
            core.stack_top = bottom + CORE_STACK_SIZE;
        }
    }
    let pools_node_local = carve_on_nodes(&usable, &numa, &mut cores.entries[..cores.count]);
    if !pools_node_local {
        let mut pools = 0;
        for (core, span) in cores.entries[..cores.count]
            .iter_mut()
            .zip(carve(&usable, listed))
        {
            core.span = span;
            pools += 1;
        }
        if pools < listed {
            return Err(BootError::NotEnoughMemory {
                cores: listed,
                pools,
            });
        }
    }
    let channel_bytes = channels::region_bytes(listed);
    for (id, core) in cores.entries[..cores.count].iter_mut().enumerate() {
        // The highest part of its span that usable memory holds whole (a
        // span's top may be a sliver between reserved pages: what lies
        // above the region is left out of the pool).
        let (start, end) = core.span;
        let top = usable
            .iter()
            .map(|(s, e)| (s.max(start), e.min(end)))
            .filter(|&(bottom, top)| top >= bottom + channel_bytes)
            .map(|(_, top)| top)
            .last();
        let Some(top) = top.filter(|&top| top - channel_bytes > start) else {
            return Err(BootError::NoMemoryForChannels {
                core: id,
                bytes: channel_bytes,
            });
        };
        core.span.1 = top - channel_bytes;
        core.channels = (top - channel_bytes, top);
    }

    let tsc_per_ms = pit::tsc_cycles_per_ms().ok_or(BootError::NoPit)?;
    lapic.start_timer_count();
    let deadline = cpu::rdtsc() + CALIBRATION_MS * tsc_per_ms;
    while cpu::rdtsc() < deadline {
        core::hint::spin_loop();
    }
    let apic_timer_per_ms = u64::from(lapic.timer_elapsed()) / CALIBRATION_MS;

    Ok(BootFacts {
        info,
        cores,
        boot_core,
        tsc_per_ms,
        apic_timer_per_ms,
        usable,
        ignored_high_memory,
        trampoline_page,
        power_off,
        numa,
        pools_node_local,
    })
}

/// Reads the SRAT (each core's node, the memory ranges' nodes) and the SLIT.
/// A table that cannot be read or is too large is reported and ignored, as
/// if the firmware had left it out: NUMA only tunes placement and routing,
/// so it is no reason to stop the machine.
fn read_numa(tables: &AcpiTables<'_, IdentityMap>, cores: &mut [CoreEntry]) -> NumaFacts {
    let mut numa = NumaFacts {
        memory: [(0, 0, 0); MAX_NUMA_RANGES],
        memory_count: 0,
        distances: None,
        localities: 0,
    };
    if let Err(error) = read_srat(tables, cores, &mut numa) {
        println!("atoll: ignoring the SRAT: {error}; every core is taken as NUMA node 0");
        cores.iter_mut().for_each(|core| core.node = 0);
        numa.memory_count = 0;
    }
    if let Err(error) = read_slit(tables, &mut numa) {
        println!(
            "atoll: ignoring the SLIT: {error}; distances default to 10 within and 20 between nodes"
        );
        numa.distances = None;
        numa.localities = 0;
    }
    numa
}

/// A core the SRAT does not place is taken to be on node 0, and said so.
fn read_srat(
    tables: &AcpiTables<'_, IdentityMap>,
    cores: &mut [CoreEntry],
    numa: &mut NumaFacts,
) -> Result<(), BootError> {
    let Some(srat) = tables.srat()? else {
        return Ok(());
    };
    let mut placed = [false; MAX_CORES];
    for entry in srat.entries() {
        match entry? {
            SratEntry::ProcessorAffinity {
                apic_id,
                domain,
                enabled: true,
            } => {
                for (id, core) in cores.iter_mut().enumerate() {
                    if core.apic_id == apic_id {
                        core.node = domain;
                        placed[id] = true;
                    }
                }
            }
            SratEntry::MemoryAffinity {
                domain,
                base,
                length,
                enabled: true,
                ..
            } => {
                let slot = numa
                    .memory
                    .get_mut(numa.memory_count)
                    .ok_or(BootError::TooManyNumaRanges)?;
                *slot = (base, base.saturating_add(length), domain);
                numa.memory_count += 1;
            }
            _ => {}
        }
    }
    for (id, core) in cores.iter().enumerate().filter(|&(id, _)| !placed[id]) {
        println!(
            "atoll: the SRAT gives core {id} (apic {}) no NUMA node; taken as node 0",
            core.apic_id
        );
    }
    Ok(())
}

fn read_slit(tables: &AcpiTables<'_, IdentityMap>, numa: &mut NumaFacts) -> Result<(), BootError> {
    let Some(slit) = tables.slit()? else {
        return Ok(());
    };
    let localities = slit.localities();
    if localities > MAX_NUMA_NODES as u64 {
        return Err(BootError::TooManyLocalities { localities });
    }
    let mut rows = [[0; MAX_NUMA_NODES]; MAX_NUMA_NODES];
    for (from, row) in rows.iter_mut().enumerate().take(localities as usize) {
        for (to, distance) in row.iter_mut().enumerate().take(localities as usize) {
            *distance = slit.distance(from as u64, to as u64)?;
        }
    }
    numa.distances = Some(rows);
    numa.localities = localities as usize;
    Ok(())
}

/// Gives each core a span of the usable memory on its own NUMA node, so that
/// what it reads most (its rings, heap, page tables and the frames of its
/// address spaces) is local; a core whose node has no memory of its own gets
/// a span on the nearest node that has, by the SLIT's distances. Returns
/// false, and the caller carves without regard to nodes, when there is no
/// SRAT memory map or the layout cannot be carved that way.
fn carve_on_nodes(
    usable: &RangeSet<MAX_USABLE_RANGES>,
    numa: &NumaFacts,
    cores: &mut [CoreEntry],
) -> bool {
    let mut nodes = [0; MAX_CORES];
    let mut pools = [NumaSpan::default(); MAX_CORES];
    let (nodes, pools) = (&mut nodes[..cores.len()], &mut pools[..cores.len()]);
    for (node, core) in nodes.iter_mut().zip(cores.iter()) {
        *node = core.node;
    }
    let distance = |from, to| numa.distance_or_default(from, to);
    if let Err(error) = carve_numa(usable, numa.memory(), nodes, distance, pools) {
        if !numa.memory().is_empty() {
            println!("atoll: {error}; frame pools ignore the NUMA layout");
        }
        return false;
    }
    for (id, (core, pool)) in cores.iter_mut().zip(pools.iter()).enumerate() {
        core.span = pool.span;
        if pool.memory_node != core.node {
            println!(
                "atoll: core {id} is on NUMA node {}, which has too little memory; its frame pool is on node {}, the nearest",
                core.node, pool.memory_node
            );
        }
    }
    true
}
