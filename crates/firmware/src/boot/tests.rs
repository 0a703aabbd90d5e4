use std::string::ToString;
use std::vec::Vec;

use super::*;
use crate::fake_mem::{
    FakeMem, e820, multiboot2, multiboot2_memory_map, pvh_start_info, rsdp_v1, rsdp_v2,
};

const START_INFO: u64 = 0x1000;
const MEMMAP: u64 = 0x2000;
const CMDLINE: u64 = 0x3000;
const MBI: u64 = 0x8000;

/// QEMU's PVH memory map for a 128 MiB q35 machine, out of order.
const QEMU_MAP: [(u64, u64, u32); 4] = [
    (0x10_0000, 0x7F0_0000, 1),
    (0, 0x9_FC00, 1),
    (0xF_0000, 0x1_0000, 2),
    (0x9_FC00, 0x400, 2),
];

fn pvh_mem(version: u32, cmdline: Option<&[u8]>, regions: &[(u64, u64, u32)]) -> FakeMem {
    let mut mem = FakeMem::new();
    let cmdline_addr = if cmdline.is_some() { CMDLINE } else { 0 };
    let entries = u32::try_from(regions.len()).unwrap();
    mem.put(
        START_INFO,
        &pvh_start_info(version, cmdline_addr, 0xF_5A60, MEMMAP, entries),
    );
    mem.put(MEMMAP, &e820(regions));
    if let Some(cmdline) = cmdline {
        mem.put(CMDLINE, cmdline);
    }
    mem
}

fn parse_pvh(mem: &FakeMem) -> Result<BootInfo, BootInfoError> {
    parse_boot_info(mem, 0, START_INFO as u32)
}

fn parse_multiboot2(image: &[u8]) -> Result<BootInfo, BootInfoError> {
    let mut mem = FakeMem::new();
    mem.put(MBI, image);
    parse_boot_info(&mem, MULTIBOOT2_MAGIC, MBI as u32)
}

fn region(base: u64, len: u64, kind: MemoryKind) -> MemoryRegion {
    MemoryRegion { base, len, kind }
}

#[test]
fn pvh_start_info_gives_sorted_memory_cmdline_and_rsdp_address() {
    let info = parse_pvh(&pvh_mem(1, Some(b"console=ttyS0 cores=4\0"), &QEMU_MAP)).unwrap();
    assert_eq!(info.protocol, BootProtocol::Pvh);
    assert_eq!(
        info.memory(),
        [
            region(0, 0x9_FC00, MemoryKind::Usable),
            region(0x9_FC00, 0x400, MemoryKind::Reserved),
            region(0xF_0000, 0x1_0000, MemoryKind::Reserved),
            region(0x10_0000, 0x7F0_0000, MemoryKind::Usable),
        ]
    );
    assert_eq!(info.cmdline(), b"console=ttyS0 cores=4");
    assert_eq!(info.rsdp, Some(RsdpSource::Address(0xF_5A60)));
}

#[test]
fn pvh_without_cmdline_gives_an_empty_one() {
    let info = parse_pvh(&pvh_mem(1, None, &QEMU_MAP)).unwrap();
    assert_eq!(info.cmdline(), b"");
}

#[test]
fn e820_types_become_memory_kinds() {
    let map = [
        (0, 1, 1),
        (1, 1, 2),
        (2, 1, 3),
        (3, 1, 4),
        (4, 1, 5),
        (5, 1, 7),
    ];
    let info = parse_pvh(&pvh_mem(1, None, &map)).unwrap();
    let kinds: Vec<_> = info.memory().iter().map(|region| region.kind).collect();
    use MemoryKind::*;
    assert_eq!(
        kinds,
        [
            Usable,
            Reserved,
            AcpiReclaimable,
            AcpiNvs,
            Defective,
            Other(7)
        ]
    );
}

#[test]
fn overlapping_regions_are_kept_apart() {
    let map = [(0x1000, 0x2000, 1), (0x1000, 0x1000, 2), (0, 0x1800, 1)];
    let info = parse_pvh(&pvh_mem(1, None, &map)).unwrap();
    assert_eq!(
        info.memory(),
        [
            region(0, 0x1800, MemoryKind::Usable),
            region(0x1000, 0x1000, MemoryKind::Reserved),
            region(0x1000, 0x2000, MemoryKind::Usable),
        ]
    );
}

#[test]
fn pvh_version_0_has_no_memory_map() {
    let error = parse_pvh(&pvh_mem(0, None, &QEMU_MAP)).unwrap_err();
    assert_eq!(error, BootInfoError::UnsupportedPvhVersion(0));
}

#[test]
fn pvh_memory_map_of_128_regions_fits_and_129_does_not() {
    let map: Vec<_> = (0..129u64).map(|i| (i * 0x1000, 0x1000, 1)).collect();
    let info = parse_pvh(&pvh_mem(1, None, &map[..128])).unwrap();
    assert_eq!(info.memory().len(), 128);
    assert_eq!(info.memory()[127].base, 127 * 0x1000);

    let error = parse_pvh(&pvh_mem(1, None, &map)).unwrap_err();
    assert_eq!(error, BootInfoError::TooManyMemoryRegions { count: 129 });
    assert_eq!(
        error.to_string(),
        "memory map has 129 regions, at most 128 supported"
    );
}

#[test]
fn pvh_cmdline_of_1024_bytes_fits_and_1025_does_not() {
    let mut cmdline = [b'x'; MAX_CMDLINE + 2];
    cmdline[MAX_CMDLINE] = 0;
    let info = parse_pvh(&pvh_mem(1, Some(&cmdline), &QEMU_MAP)).unwrap();
    assert_eq!(info.cmdline().len(), MAX_CMDLINE);

    cmdline[MAX_CMDLINE] = b'x';
    cmdline[MAX_CMDLINE + 1] = 0;
    let error = parse_pvh(&pvh_mem(1, Some(&cmdline), &QEMU_MAP)).unwrap_err();
    assert_eq!(error, BootInfoError::CmdlineTooLong);
}

#[test]
fn pvh_with_an_empty_memory_map_is_an_error() {
    assert_eq!(
        parse_pvh(&pvh_mem(1, None, &[])).unwrap_err(),
        BootInfoError::NoMemoryMap
    );
}

#[test]
fn unreadable_pvh_memory_map_is_reported_with_its_address() {
    let mut mem = FakeMem::new();
    mem.put(START_INFO, &pvh_start_info(1, 0, 0, MEMMAP, 2));
    mem.put(MEMMAP, &e820(&QEMU_MAP[..1]));
    let error = parse_pvh(&mem).unwrap_err();
    assert_eq!(
        error,
        BootInfoError::Unreadable(MemError {
            addr: MEMMAP + 24,
            len: 8
        })
    );
}

#[test]
fn unknown_protocol_is_an_error() {
    let mut mem = FakeMem::new();
    mem.put(START_INFO, &0x2BAD_B002u32.to_le_bytes());
    let error = parse_boot_info(&mem, 0x2BAD_B002, START_INFO as u32).unwrap_err();
    assert_eq!(
        error,
        BootInfoError::UnknownProtocol {
            eax: 0x2BAD_B002,
            magic_at_ebx: 0x2BAD_B002
        }
    );
    assert!(error.to_string().starts_with("unknown boot protocol"));
}

#[test]
fn unreadable_ebx_is_an_error() {
    let error = parse_boot_info(&FakeMem::new(), 0, 0x1234).unwrap_err();
    assert_eq!(
        error,
        BootInfoError::Unreadable(MemError {
            addr: 0x1234,
            len: 4
        })
    );
}

fn grub_tags(rsdp_tags: &[(u32, Vec<u8>)]) -> Vec<(u32, Vec<u8>)> {
    let mut tags = std::vec![
        (1, b"/boot/atoll cores=2\0".to_vec()),
        (2, b"GRUB 2.12\0".to_vec()),
        (6, multiboot2_memory_map(&QEMU_MAP)),
    ];
    tags.extend_from_slice(rsdp_tags);
    tags
}

#[test]
fn multiboot2_gives_sorted_memory_cmdline_and_rsdp_copy() {
    let info = parse_multiboot2(&multiboot2(&grub_tags(&[(
        15,
        rsdp_v2(0x7FE_0000, 0x7FE_1000),
    )])))
    .unwrap();
    assert_eq!(info.protocol, BootProtocol::Multiboot2);
    assert_eq!(info.memory().len(), 4);
    assert_eq!(info.memory()[0], region(0, 0x9_FC00, MemoryKind::Usable));
    assert_eq!(
        info.memory()[3],
        region(0x10_0000, 0x7F0_0000, MemoryKind::Usable)
    );
    assert_eq!(info.cmdline(), b"/boot/atoll cores=2");
    let Some(RsdpSource::Copy { bytes, len }) = info.rsdp else {
        panic!("no RSDP copy: {info:?}")
    };
    assert_eq!(&bytes[..len], rsdp_v2(0x7FE_0000, 0x7FE_1000));
}

#[test]
fn multiboot2_prefers_the_new_rsdp_in_either_order() {
    let old = (14, rsdp_v1(0x7FE_0000));
    let new = (15, rsdp_v2(0x7FE_0000, 0x7FE_1000));
    for rsdp_tags in [[old.clone(), new.clone()], [new.clone(), old.clone()]] {
        let info = parse_multiboot2(&multiboot2(&grub_tags(&rsdp_tags))).unwrap();
        assert!(
            matches!(info.rsdp, Some(RsdpSource::Copy { len: 36, .. })),
            "{:?}",
            info.rsdp
        );
    }
    let info = parse_multiboot2(&multiboot2(&grub_tags(&[old]))).unwrap();
    assert!(
        matches!(info.rsdp, Some(RsdpSource::Copy { len: 20, .. })),
        "{:?}",
        info.rsdp
    );
}

#[test]
fn multiboot2_memory_map_with_larger_entries_is_read_by_entry_size() {
    let mut payload = std::vec![];
    payload.extend_from_slice(&32u32.to_le_bytes());
    payload.extend_from_slice(&0u32.to_le_bytes());
    for entry in e820(&[(0x5000, 0x1000, 1), (0x1000, 0x2000, 3)]).chunks(24) {
        payload.extend(entry);
        payload.extend([0xEE; 8]); // a field of a later entry version
    }
    let info = parse_multiboot2(&multiboot2(&[(6, payload)])).unwrap();
    assert_eq!(
        info.memory(),
        [
            region(0x1000, 0x2000, MemoryKind::AcpiReclaimable),
            region(0x5000, 0x1000, MemoryKind::Usable)
        ]
    );
}

#[test]
fn multiboot2_memory_map_of_129_regions_is_an_error() {
    let map: Vec<_> = (0..129u64).map(|i| (i * 0x1000, 0x1000, 1)).collect();
    let error = parse_multiboot2(&multiboot2(&[(6, multiboot2_memory_map(&map))])).unwrap_err();
    assert_eq!(error, BootInfoError::TooManyMemoryRegions { count: 129 });
}

#[test]
fn multiboot2_memory_map_with_partial_entries_is_an_error() {
    let mut payload = multiboot2_memory_map(&QEMU_MAP);
    payload.truncate(payload.len() - 4);
    let error = parse_multiboot2(&multiboot2(&[(6, payload)])).unwrap_err();
    assert_eq!(
        error,
        BootInfoError::BadMemoryMapTag {
            entry_size: 24,
            tag_size: 8 + 8 + 4 * 24 - 4
        }
    );
}

#[test]
fn multiboot2_cmdline_too_long_is_an_error() {
    let mut cmdline = std::vec![b'x'; MAX_CMDLINE + 1];
    cmdline.push(0);
    let tags = [(1, cmdline), (6, multiboot2_memory_map(&QEMU_MAP))];
    assert_eq!(
        parse_multiboot2(&multiboot2(&tags)).unwrap_err(),
        BootInfoError::CmdlineTooLong
    );
}

#[test]
fn multiboot2_without_memory_map_is_an_error() {
    let tags = [(1, b"atoll\0".to_vec())];
    assert_eq!(
        parse_multiboot2(&multiboot2(&tags)).unwrap_err(),
        BootInfoError::NoMemoryMap
    );
}

#[test]
fn multiboot2_tag_past_total_size_is_an_error() {
    let mut image = multiboot2(&grub_tags(&[]));
    // Cut the information in the middle of the memory map tag (the third, at offset 64).
    image[..4].copy_from_slice(&80u32.to_le_bytes());
    let error = parse_multiboot2(&image).unwrap_err();
    assert_eq!(
        error,
        BootInfoError::TagPastEnd {
            tag: 6,
            offset: 64,
            size: 16 + 4 * 24,
            total_size: 80
        }
    );
}

#[test]
fn multiboot2_without_end_tag_is_an_error() {
    let mut image = multiboot2(&grub_tags(&[]));
    let without_end = u32::try_from(image.len() - 8).unwrap();
    image[..4].copy_from_slice(&without_end.to_le_bytes());
    assert_eq!(
        parse_multiboot2(&image).unwrap_err(),
        BootInfoError::MissingEndTag
    );
}

#[test]
fn multiboot2_tag_smaller_than_its_header_is_an_error() {
    let mut image = multiboot2(&grub_tags(&[]));
    image[12..16].copy_from_slice(&4u32.to_le_bytes());
    assert_eq!(
        parse_multiboot2(&image).unwrap_err(),
        BootInfoError::BadTagSize {
            tag: 1,
            offset: 8,
            size: 4
        }
    );
}

#[test]
fn multiboot2_total_size_below_minimum_is_an_error() {
    let mut image = multiboot2(&[]);
    image[..4].copy_from_slice(&8u32.to_le_bytes());
    assert_eq!(
        parse_multiboot2(&image).unwrap_err(),
        BootInfoError::BadTotalSize(8)
    );
}

#[test]
fn multiboot2_information_cut_short_in_memory_is_unreadable() {
    let image = multiboot2(&grub_tags(&[]));
    let error = parse_multiboot2(&image[..40]).unwrap_err();
    assert!(
        matches!(error, BootInfoError::Unreadable(MemError { addr, .. }) if addr >= MBI + 40),
        "{error:?}"
    );
}

const MODLIST: u64 = 0x4000;

/// A PVH start info with `modules` (address, size) listed.
fn pvh_with_modules(modules: &[(u64, u64)]) -> FakeMem {
    let mut mem = pvh_mem(1, None, &QEMU_MAP);
    mem.put(
        START_INFO,
        &crate::fake_mem::pvh_start_info_with_modules(
            1,
            0,
            0,
            MEMMAP,
            QEMU_MAP.len() as u32,
            modules.len() as u32,
            MODLIST,
        ),
    );
    let mut list = Vec::new();
    for &(start, size) in modules {
        for field in [start, size, 0, 0] {
            list.extend_from_slice(&field.to_le_bytes());
        }
    }
    mem.put(MODLIST, &list);
    mem
}

#[test]
fn pvh_modules_are_listed_in_order() {
    let info = parse_pvh(&pvh_with_modules(&[(0x700_0000, 0x2800), (0x710_0000, 1)])).unwrap();
    assert_eq!(
        info.modules(),
        [
            BootModule {
                start: 0x700_0000,
                end: 0x700_2800
            },
            BootModule {
                start: 0x710_0000,
                end: 0x710_0001
            },
        ]
    );
    assert_eq!(
        parse_pvh(&pvh_mem(1, None, &QEMU_MAP)).unwrap().modules(),
        []
    );
}

#[test]
fn too_many_or_wrapping_pvh_modules_are_errors() {
    let many: Vec<(u64, u64)> = (0..=MAX_MODULES as u64).map(|n| (n << 20, 1)).collect();
    assert_eq!(
        parse_pvh(&pvh_with_modules(&many)).unwrap_err(),
        BootInfoError::TooManyModules
    );
    assert_eq!(
        parse_pvh(&pvh_with_modules(&[(u64::MAX - 1, 4)])).unwrap_err(),
        BootInfoError::BadModule {
            start: u64::MAX - 1,
            size: 4
        }
    );
}

/// A multiboot2 module tag: start, end, then its string.
fn module_tag(start: u32, end: u32) -> (u32, Vec<u8>) {
    let mut payload = Vec::new();
    payload.extend_from_slice(&start.to_le_bytes());
    payload.extend_from_slice(&end.to_le_bytes());
    payload.extend_from_slice(b"/boot/programs.tar\0");
    (3, payload)
}

#[test]
fn multiboot2_module_tags_are_listed_and_an_inverted_one_is_an_error() {
    let mut tags = grub_tags(&[]);
    tags.push(module_tag(0x80_0000, 0x80_3000));
    let info = parse_multiboot2(&multiboot2(&tags)).unwrap();
    assert_eq!(
        info.modules(),
        [BootModule {
            start: 0x80_0000,
            end: 0x80_3000
        }]
    );
    let mut tags = grub_tags(&[]);
    tags.push(module_tag(0x80_3000, 0x80_0000));
    assert_eq!(
        parse_multiboot2(&multiboot2(&tags)).unwrap_err(),
        BootInfoError::BadModule {
            start: 0x80_3000,
            size: 0
        }
    );
}
