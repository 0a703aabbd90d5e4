//! What CPUID tells a core about itself: who made it, where it sits in the
//! package topology, and its caches with how many logical processors share
//! each. Every core asks on its own behalf, so that a machine whose cores
//! differ is described as it is.

use alloc::vec::Vec;
use core::arch::x86_64::__cpuid_count;

/// The processor's make and revision, from leaves 0 and 1.
pub struct Identity {
    /// "GenuineIntel", "AuthenticAMD", ...
    pub vendor: [u8; 12],
    /// Family, model and stepping with the extended fields folded in, as the
    /// vendors' manuals define the displayed values.
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
}

pub fn identity() -> Identity {
    let leaf0 = __cpuid_count(0, 0);
    let mut vendor = [0; 12];
    for (chunk, register) in vendor.chunks_mut(4).zip([leaf0.ebx, leaf0.edx, leaf0.ecx]) {
        chunk.copy_from_slice(&register.to_le_bytes());
    }
    let signature = __cpuid_count(1, 0).eax;
    let base_family = (signature >> 8) & 0xF;
    let base_model = (signature >> 4) & 0xF;
    let family = if base_family == 0xF {
        base_family + ((signature >> 20) & 0xFF)
    } else {
        base_family
    };
    let model = if base_family == 0x6 || base_family == 0xF {
        base_model | (((signature >> 16) & 0xF) << 4)
    } else {
        base_model
    };
    Identity {
        vendor,
        family,
        model,
        stepping: signature & 0xF,
    }
}

/// How an APIC id splits into package, core and thread fields.
pub struct Topology {
    /// Low bits of the APIC id that number the threads of a core.
    pub thread_bits: u32,
    /// Low bits that number the threads of a package; the rest is the
    /// package number.
    pub package_shift: u32,
}

/// From the extended topology leaf 0xB, or, without it, from leaf 1's count
/// of logical processors per package (then one thread per core).
pub fn topology() -> Topology {
    let mut thread_bits = 0;
    if __cpuid_count(0, 0).eax >= 0xB {
        for level in 0..8 {
            let leaf = __cpuid_count(0xB, level);
            match (leaf.ecx >> 8) & 0xFF {
                0 => break,
                1 => thread_bits = leaf.eax & 0x1F,
                // Level type 2, "core": its shift leaves the package number.
                2 => {
                    return Topology {
                        thread_bits,
                        package_shift: leaf.eax & 0x1F,
                    };
                }
                _ => {}
            }
        }
    }
    let logical = (__cpuid_count(1, 0).ebx >> 16) & 0xFF;
    Topology {
        thread_bits: 0,
        package_shift: logical.max(1).next_power_of_two().trailing_zeros(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    Data,
    Instruction,
    Unified,
}

impl CacheKind {
    pub fn name(self) -> &'static str {
        match self {
            CacheKind::Data => "data",
            CacheKind::Instruction => "instruction",
            CacheKind::Unified => "unified",
        }
    }
}

pub struct Cache {
    pub level: u32,
    pub kind: CacheKind,
    pub bytes: u64,
    /// APIC ids that agree above this many low bits share this cache.
    pub sharing_shift: u32,
}

/// The caches of this core, from the deterministic cache parameters leaf:
/// AMD's 0x8000001D where the processor has topology extensions, else leaf 4
/// (both use the same layout). An AMD processor without either (QEMU's TCG
/// models, for one) describes its caches only in the legacy leaves
/// 0x80000005/6, which give no sharing: AMD's convention, which
/// `legacy_amd_caches` follows, is L1 and L2 per core, L3 per package.
pub fn caches(topology: &Topology) -> Vec<Cache> {
    const AMD_CACHE_LEAF: u32 = 0x8000_001D;
    const TOPOLOGY_EXTENSIONS: u32 = 1 << 22;
    let max_extended = __cpuid_count(0x8000_0000, 0).eax;
    let amd_leaf = max_extended >= AMD_CACHE_LEAF
        && __cpuid_count(0x8000_0001, 0).ecx & TOPOLOGY_EXTENSIONS != 0;
    let described = if amd_leaf {
        deterministic_caches(AMD_CACHE_LEAF)
    } else if __cpuid_count(0, 0).eax >= 4 {
        deterministic_caches(4)
    } else {
        Vec::new()
    };
    if described.is_empty() && max_extended >= 0x8000_0006 {
        legacy_amd_caches(topology)
    } else {
        described
    }
}

fn deterministic_caches(leaf: u32) -> Vec<Cache> {
    // The leaf ends with a subleaf of type 0 (QEMU's AMD models return only
    // that from leaf 4); 16 bounds a processor that never says so.
    (0..16)
        .map(|subleaf| __cpuid_count(leaf, subleaf))
        .map_while(|registers| {
            let kind = match registers.eax & 0x1F {
                1 => CacheKind::Data,
                2 => CacheKind::Instruction,
                3 => CacheKind::Unified,
                _ => return None,
            };
            let ways = u64::from((registers.ebx >> 22) + 1);
            let partitions = u64::from(((registers.ebx >> 12) & 0x3FF) + 1);
            let line = u64::from((registers.ebx & 0xFFF) + 1);
            let sets = u64::from(registers.ecx) + 1;
            let sharing = ((registers.eax >> 14) & 0xFFF) + 1;
            Some(Cache {
                level: (registers.eax >> 5) & 0x7,
                kind,
                bytes: ways * partitions * line * sets,
                sharing_shift: sharing.next_power_of_two().trailing_zeros(),
            })
        })
        .collect()
}

fn legacy_amd_caches(topology: &Topology) -> Vec<Cache> {
    const KIB: u64 = 1024;
    let level1 = __cpuid_count(0x8000_0005, 0);
    let level23 = __cpuid_count(0x8000_0006, 0);
    let per_core = topology.thread_bits;
    let candidates = [
        (
            1,
            CacheKind::Data,
            u64::from(level1.ecx >> 24) * KIB,
            per_core,
        ),
        (
            1,
            CacheKind::Instruction,
            u64::from(level1.edx >> 24) * KIB,
            per_core,
        ),
        (
            2,
            CacheKind::Unified,
            u64::from(level23.ecx >> 16) * KIB,
            per_core,
        ),
        (
            3,
            CacheKind::Unified,
            u64::from(level23.edx >> 18) * 512 * KIB,
            topology.package_shift,
        ),
    ];
    candidates
        .into_iter()
        .filter(|&(_, _, bytes, _)| bytes > 0)
        .map(|(level, kind, bytes, sharing_shift)| Cache {
            level,
            kind,
            bytes,
            sharing_shift,
        })
        .collect()
}
