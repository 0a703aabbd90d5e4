//! The boot core's path from the 32-bit entry to the shell: read what the
//! boot loader and firmware hand over, freeze it as [`BootFacts`], set up
//! this core, start the others, and hand over to the shell.

use crate::arch::apic::LocalApic;
use crate::arch::phys::{IDENTITY_MAPPED_END, IdentityMap};
use crate::arch::{boot, cpu, pit};
use crate::channels;
use crate::shared::{BOOT, MAX_CORES};
use atoll_firmware::{
    AcpiError, AcpiTables, BootInfo, BootInfoError, BootProtocol, MadtEntry, MemoryKind, Rsdp,
    parse_boot_info, s5_sleep_types,
};
use atoll_frames::{FRAME_SIZE, RangeSet, RangeSetFull, carve};

/// Disjoint usable ranges the boot core can track.
pub const MAX_USABLE_RANGES: usize = 128;
/// Stack of each core other than the boot core.
const CORE_STACK_SIZE: u64 = 64 * 1024;
/// The first MiB holds the BIOS data, the trampoline and legacy devices.
const LOW_MEMORY_END: u64 = 1 << 20;
const CALIBRATION_MS: u64 = 10;

#[derive(Clone, Copy, Default)]
pub struct CoreEntry {
    pub apic_id: u32,
    /// Top of the stack the core starts on (0 for the boot core, which
    /// keeps the boot stack).
    pub stack_top: u64,
    /// The memory the core's frame pool covers.
    pub span: (u64, u64),
    /// The rings other cores send this one (see `crate::channels`), just
    /// above the span.
    pub channels: (u64, u64),
    /// The package (socket) the core is in, from its APIC id and CPUID's
    /// topology: the domain of topology-aware multicast trees.
    pub package: u32,
}

/// ACPI's way to power off: write SLP_TYP with SLP_EN to PM1 control.
#[derive(Clone, Copy)]
pub struct AcpiPowerOff {
    pub pm1a_control: u16,
    pub pm1b_control: Option<u16>,
    pub sleep_types: (u8, u8),
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
    /// One page that `bench fig3` shares between cores on purpose: the
    /// structure its shared-memory method updates under a lock.
    pub fig3_page: u64,
    pub power_off: Result<AcpiPowerOff, AcpiError>,
}

/// The cores the MADT lists as enabled, in MADT order; the index is the core id.
pub struct CoreTable {
    entries: [CoreEntry; MAX_CORES],
    count: usize,
}

impl core::ops::Deref for CoreTable {
    type Target = [CoreEntry];
    fn deref(&self) -> &[CoreEntry] {
        &self.entries[..self.count]
    }
}

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
    NoFig3Page,
    NotEnoughMemory { cores: usize, pools: usize },
    NoMemoryForChannels { core: usize, bytes: u64 },
    NoPit,
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
            Self::NoFig3Page => write!(f, "no page for bench fig3's shared structure"),
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

pub fn protocol_name(protocol: BootProtocol) -> &'static str {
    match protocol {
        BootProtocol::Pvh => "pvh",
        BootProtocol::Multiboot2 => "multiboot2",
    }
}

fn discover(info: BootInfo) -> Result<BootFacts, BootError> {
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
    let package_shift = cpu::package_shift();
    for core in cores.entries[..cores.count].iter_mut() {
        core.package = core.apic_id >> package_shift;
    }
    let boot_core = cores
        .iter()
        .position(|core| core.apic_id == boot_apic_id)
        .ok_or(BootError::BootCoreNotListed {
            apic_id: boot_apic_id,
        })?;

    let power_off = tables.fadt().and_then(|fadt| {
        Ok(AcpiPowerOff {
            pm1a_control: fadt.pm1a_control,
            pm1b_control: fadt.pm1b_control,
            sleep_types: s5_sleep_types(&IdentityMap, fadt.dsdt)?,
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
    for (id, core) in cores.entries[..cores.count].iter_mut().enumerate() {
        if id != boot_core {
            let bottom = usable
                .take_from_top(CORE_STACK_SIZE)
                .ok_or(BootError::NoMemoryForStacks { cores: listed })?;
            core.stack_top = bottom + CORE_STACK_SIZE;
        }
    }
    let fig3_page = usable
        .take_from_top(FRAME_SIZE)
        .ok_or(BootError::NoFig3Page)?;
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
    let channel_bytes = channels::region_bytes(listed);
    for (id, core) in cores.entries[..cores.count].iter_mut().enumerate() {
        let (start, end) = core.span;
        let channels_start = end.saturating_sub(channel_bytes);
        if channels_start <= start || !usable.iter().any(|(s, e)| s <= channels_start && end <= e) {
            return Err(BootError::NoMemoryForChannels {
                core: id,
                bytes: channel_bytes,
            });
        }
        core.span.1 = channels_start;
        core.channels = (channels_start, end);
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
        fig3_page,
        power_off,
    })
}

fn fail(reason: impl core::fmt::Display) -> ! {
    println!("atoll: cannot boot: {reason}");
    crate::arch::power::exit_qemu(crate::arch::power::ExitStatus::Panic);
    cpu::halt_forever()
}

/// Where the boot core lands from `boot_entry64`, with the registers the
/// boot loader left in eax and ebx.
#[unsafe(no_mangle)]
extern "C" fn kernel_main(eax: u32, ebx: u32) -> ! {
    crate::shared::CONSOLE.init();
    let info = parse_boot_info(&IdentityMap, eax, ebx)
        .unwrap_or_else(|error| fail(BootError::BootInfo(error)));
    println!("atoll: booted via {}", protocol_name(info.protocol));
    let facts = discover(info).unwrap_or_else(|error| fail(error));
    let facts = BOOT.call_once(|| facts);
    crate::arch::channels::reset_shared_memory(facts);
    let local = crate::arch::percore::init(facts.boot_core).unwrap_or_else(|error| fail(error));
    println!("atoll: core {} up (apic {})", local.id, local.apic_id);
    cpu::enable_interrupts();
    let running = crate::arch::smp::start_other_cores(local);
    println!("atoll: {running} of {} cores up", facts.cores.len());
    crate::shell::run(local)
}
