//! A sparse fake physical memory, and builders for the images that boot loaders and firmware
//! leave in it.

use std::collections::BTreeMap;
use std::vec::Vec;

use crate::{MemError, PhysMem, checksum};

/// Physical memory where only the bytes that were put are readable.
#[derive(Default)]
pub struct FakeMem {
    bytes: BTreeMap<u64, u8>,
}

impl FakeMem {
    pub fn new() -> Self {
        FakeMem::default()
    }

    pub fn put(&mut self, addr: u64, bytes: &[u8]) {
        for (byte_addr, byte) in (addr..).zip(bytes) {
            self.bytes.insert(byte_addr, *byte);
        }
    }
}

impl PhysMem for FakeMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let unreadable = MemError {
            addr,
            len: buf.len(),
        };
        for (byte_addr, slot) in (0u64..).map(|i| addr.checked_add(i)).zip(buf.iter_mut()) {
            *slot = *byte_addr
                .and_then(|a| self.bytes.get(&a))
                .ok_or(unreadable)?;
        }
        Ok(())
    }
}

/// Sets the byte at `at` so that the bytes of `image` sum to zero.
pub fn fix_checksum(image: &mut [u8], at: usize) {
    image[at] = 0;
    image[at] = 0u8.wrapping_sub(checksum(image));
}

/// An ACPI table: a header with this signature, revision, length and checksum, then `body`.
pub fn table(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let length = u32::try_from(36 + body.len()).unwrap();
    let mut image = Vec::new();
    image.extend_from_slice(signature);
    image.extend_from_slice(&length.to_le_bytes());
    image.push(revision);
    image.push(0); // checksum
    image.extend_from_slice(b"ATOLL ");
    image.extend_from_slice(b"TESTTABL");
    image.extend_from_slice(&1u32.to_le_bytes());
    image.extend_from_slice(b"ATOL");
    image.extend_from_slice(&1u32.to_le_bytes());
    image.extend_from_slice(body);
    fix_checksum(&mut image, 9);
    image
}

pub fn rsdp_v1(rsdt: u32) -> Vec<u8> {
    let mut image = Vec::new();
    image.extend_from_slice(b"RSD PTR ");
    image.push(0); // checksum
    image.extend_from_slice(b"ATOLL ");
    image.push(0); // revision: ACPI 1.0
    image.extend_from_slice(&rsdt.to_le_bytes());
    fix_checksum(&mut image, 8);
    image
}

pub fn rsdp_v2(rsdt: u32, xsdt: u64) -> Vec<u8> {
    let mut image = rsdp_v1(rsdt);
    image[15] = 2;
    fix_checksum(&mut image, 8);
    image.extend_from_slice(&36u32.to_le_bytes());
    image.extend_from_slice(&xsdt.to_le_bytes());
    image.extend_from_slice(&[0; 4]); // extended checksum, reserved
    fix_checksum(&mut image, 32);
    image
}

pub fn xsdt(tables: &[u64]) -> Vec<u8> {
    table(
        b"XSDT",
        1,
        &tables
            .iter()
            .flat_map(|t| t.to_le_bytes())
            .collect::<Vec<_>>(),
    )
}

pub fn rsdt(tables: &[u32]) -> Vec<u8> {
    table(
        b"RSDT",
        1,
        &tables
            .iter()
            .flat_map(|t| t.to_le_bytes())
            .collect::<Vec<_>>(),
    )
}

/// A MADT with the local APIC at 0xFEE0_0000, PC-AT compatible, and these raw entries.
pub fn madt(entries: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0xFEE0_0000u32.to_le_bytes());
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(entries);
    table(b"APIC", 5, &body)
}

/// A type 0 MADT entry.
pub fn local_apic(processor_uid: u8, apic_id: u8, flags: u32) -> Vec<u8> {
    let mut entry = std::vec![0, 8, processor_uid, apic_id];
    entry.extend_from_slice(&flags.to_le_bytes());
    entry
}

/// An SRAT with these raw entries after its two reserved fields.
pub fn srat(entries: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(&0u64.to_le_bytes());
    body.extend_from_slice(entries);
    table(b"SRAT", 3, &body)
}

/// A type 0 SRAT entry, with the domain split into its low byte and its three high bytes.
pub fn srat_local_apic(domain: u32, apic_id: u8, flags: u32) -> Vec<u8> {
    let [d0, d1, d2, d3] = domain.to_le_bytes();
    let mut entry = std::vec![0, 16, d0, apic_id];
    entry.extend_from_slice(&flags.to_le_bytes());
    entry.extend_from_slice(&[0, d1, d2, d3]); // SAPIC EID, domain bits 8..32
    entry.extend_from_slice(&0u32.to_le_bytes()); // clock domain
    entry
}

/// A type 1 SRAT entry.
pub fn srat_memory(domain: u32, base: u64, length: u64, flags: u32) -> Vec<u8> {
    let mut entry = std::vec![1, 40];
    entry.extend_from_slice(&domain.to_le_bytes());
    entry.extend_from_slice(&[0; 2]);
    entry.extend_from_slice(&base.to_le_bytes());
    entry.extend_from_slice(&length.to_le_bytes());
    entry.extend_from_slice(&[0; 4]);
    entry.extend_from_slice(&flags.to_le_bytes());
    entry.extend_from_slice(&[0; 8]);
    entry
}

/// A type 2 SRAT entry.
pub fn srat_x2apic(domain: u32, x2apic_id: u32, flags: u32) -> Vec<u8> {
    let mut entry = std::vec![2, 24, 0, 0];
    entry.extend_from_slice(&domain.to_le_bytes());
    entry.extend_from_slice(&x2apic_id.to_le_bytes());
    entry.extend_from_slice(&flags.to_le_bytes());
    entry.extend_from_slice(&[0; 8]); // clock domain, reserved
    entry
}

/// A SLIT claiming `localities` localities, followed by these distances (row by row).
pub fn slit(localities: u64, distances: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&localities.to_le_bytes());
    body.extend_from_slice(distances);
    table(b"SLIT", 1, &body)
}

/// A multiboot2 information structure with these {type, payload} tags and the end tag.
pub fn multiboot2(tags: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut image = std::vec![0; 8];
    for (kind, payload) in tags.iter().chain([(0, Vec::new())].iter()) {
        image.extend_from_slice(&kind.to_le_bytes());
        image.extend_from_slice(&u32::try_from(8 + payload.len()).unwrap().to_le_bytes());
        image.extend_from_slice(payload);
        image.resize(image.len().next_multiple_of(8), 0);
    }
    let total_size = u32::try_from(image.len()).unwrap();
    image[..4].copy_from_slice(&total_size.to_le_bytes());
    image
}

/// A multiboot2 memory map tag payload (version 0, 24-byte entries).
pub fn multiboot2_memory_map(regions: &[(u64, u64, u32)]) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&24u32.to_le_bytes());
    payload.extend_from_slice(&0u32.to_le_bytes());
    payload.extend(e820(regions));
    payload
}

/// E820 entries as PVH lays them out: {addr u64, size u64, type u32, reserved u32}.
pub fn e820(regions: &[(u64, u64, u32)]) -> Vec<u8> {
    let mut image = Vec::new();
    for (base, len, kind) in regions {
        image.extend_from_slice(&base.to_le_bytes());
        image.extend_from_slice(&len.to_le_bytes());
        image.extend_from_slice(&kind.to_le_bytes());
        image.extend_from_slice(&0u32.to_le_bytes());
    }
    image
}

/// A PVH `hvm_start_info`; addresses of 0 mean "none".
pub fn pvh_start_info(
    version: u32,
    cmdline: u64,
    rsdp: u64,
    memmap: u64,
    memmap_entries: u32,
) -> Vec<u8> {
    pvh_start_info_with_modules(version, cmdline, rsdp, memmap, memmap_entries, 0, 0)
}

/// [`pvh_start_info`] with `nr_modules` modules listed at `modlist`.
pub fn pvh_start_info_with_modules(
    version: u32,
    cmdline: u64,
    rsdp: u64,
    memmap: u64,
    memmap_entries: u32,
    nr_modules: u32,
    modlist: u64,
) -> Vec<u8> {
    let mut image = Vec::new();
    image.extend_from_slice(&crate::PVH_START_INFO_MAGIC.to_le_bytes());
    image.extend_from_slice(&version.to_le_bytes());
    image.extend_from_slice(&0u32.to_le_bytes()); // flags
    image.extend_from_slice(&nr_modules.to_le_bytes());
    image.extend_from_slice(&modlist.to_le_bytes());
    image.extend_from_slice(&cmdline.to_le_bytes());
    image.extend_from_slice(&rsdp.to_le_bytes());
    image.extend_from_slice(&memmap.to_le_bytes());
    image.extend_from_slice(&memmap_entries.to_le_bytes());
    image.extend_from_slice(&0u32.to_le_bytes());
    image
}
