//! How much memory a core's kernel needs, by the number of cores. Much of
//! a core's heap grows with the square of the core count: every core's
//! replica of the knowledge base holds a measured latency for each pair of
//! cores (up to 32 of them), and every root's multicast tree derived from
//! its facts (on one node of 128 cores, 16,256 `member` facts). The kernel sizes each
//! core's heap by [`heap_bytes`]; `cargo xtask run` picks, or insists on,
//! at least [`machine_mib`] of guest memory, so that the heap never runs
//! out at boot.

const MIB: u64 = 1 << 20;

/// A core's heap with `cores` cores: a base, and a share per pair of cores
/// (measured: 128 cores boot, install every tree and run a storm with 10
/// MiB, not with 8; the knowledge base's evaluation peaks at 6.6 MiB there
/// on the host).
pub const fn heap_bytes(cores: u64) -> u64 {
    2 * MIB + 512 * cores * cores
}

/// The least a core's frame pool must hold: its heap twice over (the other
/// half for page tables, stacks and programs).
pub const fn span_bytes(cores: u64) -> u64 {
    2 * heap_bytes(cores)
}

/// The least guest memory, in MiB, for `cores` cores: every core's span,
/// and 64 MiB for the kernel image, the boot modules and what the firmware
/// reserves, rounded up to 64 MiB.
pub const fn machine_mib(cores: u64) -> u64 {
    let mib = (cores * span_bytes(cores)).div_ceil(MIB) + 64;
    mib.div_ceil(64) * 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_memory_holds_up_to_64_cores_and_more_need_more() {
        assert_eq!(machine_mib(1), 128);
        assert_eq!(machine_mib(8), 128);
        assert_eq!(machine_mib(48), 384);
        assert_eq!(machine_mib(64), 576);
        assert_eq!(machine_mib(96), 1344);
        assert_eq!(machine_mib(128), 2624);
        assert!(
            heap_bytes(128) >= 2 * heap_bytes(64),
            "the pairs grow as a square"
        );
        assert!(machine_mib(128) > machine_mib(96));
    }
}
