//! Every parser, fed arbitrary bytes, returns rather than panics, and does work bounded by its
//! input: the reads it makes are counted, so an endless loop fails the test instead of hanging it.

use std::cell::Cell;
use std::vec::Vec;

use proptest::collection::vec;
use proptest::prelude::*;

use crate::fake_mem::{
    FakeMem, fix_checksum, madt, multiboot2, pvh_start_info, slit, srat, table, xsdt,
};
use crate::*;

const BASE: u64 = 0x1_0000;

/// Counts the reads made through it.
struct CountingMem {
    mem: FakeMem,
    reads: Cell<usize>,
}

impl CountingMem {
    fn with(addr: u64, bytes: &[u8]) -> Self {
        let mut mem = FakeMem::new();
        mem.put(addr, bytes);
        CountingMem {
            mem,
            reads: Cell::new(0),
        }
    }
}

impl PhysMem for CountingMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.reads.set(self.reads.get() + 1);
        self.mem.read(addr, buf)
    }
}

fn check_boot_info(info: &BootInfo) {
    assert!(info.memory().len() <= MAX_MEMORY_REGIONS);
    assert!(info.cmdline().len() <= MAX_CMDLINE);
    assert!(info.memory().is_sorted_by_key(|region| region.base));
}

/// Well-formed MADT or SRAT entries {type, length, ...}, each filled with its one byte.
fn filled_entries(entries: &[(u8, u8, u8)]) -> Vec<u8> {
    entries
        .iter()
        .flat_map(|&(kind, length, fill)| {
            let mut entry = std::vec![fill; usize::from(length)];
            entry[..2].copy_from_slice(&[kind, length]);
            entry
        })
        .collect()
}

/// Tags of the kinds the parser reads, and others, with arbitrary payloads.
fn multiboot2_tags() -> impl Strategy<Value = Vec<(u32, Vec<u8>)>> {
    let kind = prop_oneof![Just(1u32), Just(6), Just(14), Just(15), 0u32..32];
    vec((kind, vec(any::<u8>(), 0..120)), 0..8)
}

proptest! {
    #[test]
    fn multiboot2_of_random_bytes(mut bytes in vec(any::<u8>(), 0..600), exact_total_size: bool) {
        if exact_total_size && bytes.len() >= 4 {
            let len = u32::try_from(bytes.len()).unwrap();
            bytes[..4].copy_from_slice(&len.to_le_bytes());
        }
        let mem = CountingMem::with(BASE, &bytes);
        if let Ok(info) = parse_boot_info(&mem, MULTIBOOT2_MAGIC, BASE as u32) {
            check_boot_info(&info);
        }
        prop_assert!(mem.reads.get() <= 4 * bytes.len() + 8, "{} reads", mem.reads.get());
    }

    #[test]
    fn multiboot2_of_random_tags(tags in multiboot2_tags(), corruptions in vec((any::<usize>(), any::<u8>()), 0..4)) {
        let mut image = multiboot2(&tags);
        for (at, byte) in corruptions {
            let len = image.len();
            image[at % len] = byte;
        }
        let mem = CountingMem::with(BASE, &image);
        if let Ok(info) = parse_boot_info(&mem, MULTIBOOT2_MAGIC, BASE as u32) {
            check_boot_info(&info);
        }
        prop_assert!(mem.reads.get() <= 4 * image.len() + 8, "{} reads", mem.reads.get());
    }

    #[test]
    fn pvh_of_random_bytes(
        version in 0u32..3,
        cmdline in prop_oneof![Just(0u64), 0u64..600, any::<u64>()],
        memmap in prop_oneof![Just(0u64), 0u64..600, any::<u64>()],
        memmap_entries in prop_oneof![0u32..140, any::<u32>()],
        tail in vec(any::<u8>(), 0..600),
    ) {
        let mut image = pvh_start_info(version, BASE.wrapping_add(cmdline), 0, BASE.wrapping_add(memmap), memmap_entries);
        image.extend(tail);
        let mem = CountingMem::with(BASE, &image);
        if let Ok(info) = parse_boot_info(&mem, 0, BASE as u32) {
            check_boot_info(&info);
        }
        prop_assert!(mem.reads.get() <= 8 + 3 * MAX_MEMORY_REGIONS + MAX_CMDLINE + 1, "{} reads", mem.reads.get());
    }

    #[test]
    fn rsdp_of_random_bytes(bytes in vec(any::<u8>(), 0..48)) {
        if Rsdp::parse(&bytes).is_ok() {
            prop_assert!(bytes.starts_with(b"RSD PTR "));
        }
    }

    #[test]
    fn rsdp_with_valid_signature_and_checksums_parses(mut bytes in vec(any::<u8>(), 20..48)) {
        bytes[..8].copy_from_slice(b"RSD PTR ");
        fix_checksum(&mut bytes[..20], 8);
        if bytes.len() >= 36 {
            fix_checksum(&mut bytes[..36], 32);
        }
        let rsdp = Rsdp::parse(&bytes).unwrap();
        prop_assert_eq!(&rsdp.rsdt.to_le_bytes()[..], &bytes[16..20]);
        prop_assert_eq!(rsdp.xsdt.is_some(), bytes[15] >= 2 && bytes.len() >= 36 && bytes[24..32] != [0; 8]);
    }

    #[test]
    fn madt_of_random_entry_bytes(entries in vec(any::<u8>(), 0..300)) {
        let mem = CountingMem::with(BASE, &madt(&entries));
        if let Ok(madt) = Madt::parse(&mem, TableAt::read(&mem, BASE, b"APIC").unwrap()) {
            // Each entry is at least 2 bytes long, and a valid MADT yields no errors.
            let bound = entries.len() / 2;
            let seen: Vec<_> = madt.entries().take(bound + 1).collect();
            prop_assert!(seen.len() <= bound);
            prop_assert!(seen.iter().all(Result::is_ok));
        }
    }

    #[test]
    fn madt_of_well_formed_entries_of_random_content(
        entries in vec((prop_oneof![Just(0u8), Just(1), Just(2), Just(5), Just(9), any::<u8>()], 16u8..40, any::<u8>()), 0..20),
    ) {
        let mem = CountingMem::with(BASE, &madt(&filled_entries(&entries)));
        let madt = Madt::parse(&mem, TableAt::read(&mem, BASE, b"APIC").unwrap()).unwrap();
        prop_assert_eq!(madt.entries().filter(Result::is_ok).count(), entries.len());
    }

    #[test]
    fn root_table_of_random_pointers(pointers in vec(prop_oneof![any::<u64>(), BASE..BASE + 64], 0..8), signature: [u8; 4]) {
        let mem = CountingMem::with(BASE, &xsdt(&pointers));
        let rsdp = Rsdp { revision: 2, rsdt: 0, xsdt: Some(BASE), oem_id: *b"ATOLL " };
        let tables = AcpiTables::new(&mem, &rsdp).unwrap();
        if let Ok(Some(found)) = tables.find(&signature) {
            prop_assert_eq!(found.signature, signature);
        }
        let _ = tables.madt();
        let _ = tables.fadt();
        let _ = tables.srat();
        let _ = tables.slit();
    }

    #[test]
    fn srat_of_random_bytes(body in vec(any::<u8>(), 0..300)) {
        let image = table(b"SRAT", 3, &body);
        let mem = CountingMem::with(BASE, &image);
        let parsed = Srat::parse(&mem, TableAt::read(&mem, BASE, b"SRAT").unwrap());
        // Each entry is at least 2 bytes long and takes at most 6 reads; the checksum reads
        // the table in 64-byte chunks after one read of the header.
        let bound = body.len().saturating_sub(12) / 2;
        let reads = mem.reads.get();
        prop_assert!(reads <= 1 + image.len() / 64 + 1 + 6 * (bound + 1), "{reads} reads");
        if let Ok(srat) = parsed {
            // A valid SRAT yields no errors.
            let seen: Vec<_> = srat.entries().take(bound + 1).collect();
            prop_assert!(seen.len() <= bound);
            prop_assert!(seen.iter().all(Result::is_ok));
        }
    }

    #[test]
    fn srat_of_well_formed_entries_of_random_content(
        entries in vec((prop_oneof![Just(0u8), Just(1), Just(2), any::<u8>()], 40u8..64, any::<u8>()), 0..20),
    ) {
        let mem = CountingMem::with(BASE, &srat(&filled_entries(&entries)));
        let srat = Srat::parse(&mem, TableAt::read(&mem, BASE, b"SRAT").unwrap()).unwrap();
        prop_assert_eq!(srat.entries().filter(Result::is_ok).count(), entries.len());
    }

    #[test]
    fn slit_of_random_bytes(
        localities in prop_oneof![0u64..20, Just(1 << 32), any::<u64>()],
        fit_the_matrix: bool,
        distances in vec(any::<u8>(), 0..300),
        from in prop_oneof![0u64..20, any::<u64>()],
        to in prop_oneof![0u64..20, any::<u64>()],
    ) {
        let localities = if fit_the_matrix { distances.len().isqrt() as u64 } else { localities };
        let mem = CountingMem::with(BASE, &slit(localities, &distances));
        let Ok(slit) = Slit::parse(&mem, TableAt::read(&mem, BASE, b"SLIT").unwrap()) else {
            prop_assert!(!fit_the_matrix);
            return Ok(());
        };
        prop_assert_eq!(slit.localities(), localities);
        let matrix = localities.checked_mul(localities).unwrap();
        prop_assert!(matrix <= distances.len() as u64);
        if from < localities && to < localities {
            prop_assert_eq!(slit.distance(from, to), Ok(distances[(from * localities + to) as usize]));
        } else {
            prop_assert_eq!(slit.distance(from, to), Err(AcpiError::LocalityOutOfRange { from, to, localities }));
        }
    }

    #[test]
    fn dsdt_of_random_aml(aml in vec(prop_oneof![Just(0x08u8), Just(0x10), Just(0x14), Just(0x5B), Just(0x82), Just(0xA0), Just(b'_'), Just(b'5'), Just(0x12), any::<u8>()], 0..600)) {
        let image = table(b"DSDT", 2, &aml);
        let mem = CountingMem::with(BASE, &image);
        let _ = s5_sleep_types(&mem, BASE);
        // The checksum reads the table once in 64-byte chunks; the walk only goes forward,
        // a window of 64 bytes at a time, stepping back a byte at most when it looks two ahead.
        let chunks = image.len() / 63 + 1;
        prop_assert!(mem.reads.get() <= 3 * chunks + 2, "{} reads", mem.reads.get());
    }

    #[test]
    fn s5_after_random_objects_is_found(
        objects in vec(aml_object(), 0..12),
        slp_typ_a in 0u8..8,
        slp_typ_b in 0u8..8,
    ) {
        let s5 = name(b"_S5_", &[0x12, 0x08, 0x04, 0x0A, slp_typ_a, 0x0A, slp_typ_b, 0x00, 0x00]);
        let mem = CountingMem::with(BASE, &table(b"DSDT", 2, &[objects.concat(), s5].concat()));
        prop_assert_eq!(s5_sleep_types(&mem, BASE), Ok((slp_typ_a, slp_typ_b)));
    }

    #[test]
    fn s5_inside_a_device_among_random_objects_is_not_the_root_s(
        objects in vec(aml_object(), 0..12),
    ) {
        let s5 = name(b"_S5_", &[0x12, 0x07, 0x04, 0x0A, 0x05, 0x00, 0x00, 0x00]);
        let device = scoped(&[0x5B, 0x82], b"DEV0", &[], &s5);
        let mem = CountingMem::with(BASE, &table(b"DSDT", 2, &[objects.concat(), device].concat()));
        prop_assert_eq!(s5_sleep_types(&mem, BASE), Err(AcpiError::NoS5 { unread: None }));
    }
}

/// An AML PkgLength for `content` bytes that follow it (the length counts itself).
fn pkg_length(content: usize) -> Vec<u8> {
    for follow in 0..4usize {
        let total = content + 1 + follow;
        let fits = match follow {
            0 => total < 0x40,
            _ => total < 1 << (4 + 8 * follow),
        };
        if fits {
            let lead = match follow {
                0 => total as u8,
                _ => ((follow as u8) << 6) | (total & 0x0F) as u8,
            };
            let mut bytes = std::vec![lead];
            bytes.extend((0..follow).map(|index| (total >> (4 + 8 * index)) as u8));
            return bytes;
        }
    }
    panic!("{content} bytes are too many for a PkgLength")
}

/// `Name (seg, data)`.
fn name(segment: &[u8; 4], data: &[u8]) -> Vec<u8> {
    [&[0x08][..], segment, data].concat()
}

/// `opcode PkgLength seg fixed body`: a Scope, Device, Method and the like.
fn scoped(opcode: &[u8], segment: &[u8; 4], fixed: &[u8], body: &[u8]) -> Vec<u8> {
    let content = [segment, fixed, body].concat();
    [opcode.to_vec(), pkg_length(content.len()), content].concat()
}

/// A length-prefixed data object (a Buffer or Package) of random bytes.
fn blob(opcode: u8, bytes: &[u8]) -> Vec<u8> {
    [std::vec![opcode], pkg_length(bytes.len()), bytes.to_vec()].concat()
}

/// An element of a Field's list: a named unit, a reserved gap, or an access change.
fn field_element() -> impl Strategy<Value = Vec<u8>> {
    let unit = prop_oneof![Just(*b"PM1S"), Just(*b"GPE0"), Just(*b"_S4_")];
    prop_oneof![
        (unit, 1usize..2000).prop_map(|(seg, bits)| [&seg[..], &pkg_length(bits - 1)].concat()),
        (1usize..300).prop_map(|bits| [std::vec![0x00], pkg_length(bits - 1)].concat()),
        (any::<u8>(), any::<u8>()).prop_map(|(kind, attribute)| std::vec![0x01, kind, attribute]),
    ]
}

/// Objects PC firmware writes, none of them `\_S5`, some of them holding random bytes where AML
/// keeps data or code (bodies of methods, buffers, branches that are never taken).
fn aml_object() -> impl Strategy<Value = Vec<u8>> {
    let segment = prop_oneof![
        Just(*b"_S4_"),
        Just(*b"PCI0"),
        Just(*b"_HID"),
        Just(*b"BUF0")
    ];
    let leaf = prop_oneof![
        (segment.clone(), any::<u32>())
            .prop_map(|(seg, value)| name(&seg, &[&[0x0C][..], &value.to_le_bytes()].concat())),
        (segment.clone(), vec(any::<u8>(), 0..100))
            .prop_map(|(seg, bytes)| name(&seg, &blob(0x11, &bytes))),
        (segment.clone(), vec(1u8..0x7F, 0..20))
            .prop_map(|(seg, text)| name(&seg, &[&[0x0D][..], &text, &[0]].concat())),
        (segment.clone(), vec(any::<u8>(), 0..60))
            .prop_map(|(seg, bytes)| name(&seg, &blob(0x12, &bytes))),
        (segment.clone(), any::<u8>(), vec(any::<u8>(), 0..300))
            .prop_map(|(seg, flags, body)| scoped(&[0x14], &seg, &[flags], &body)),
        (segment.clone(), vec(field_element(), 0..8)).prop_map(|(seg, fields)| scoped(
            &[0x5B, 0x81],
            &seg,
            &[0x01],
            &fields.concat()
        )),
        (segment.clone(), any::<u16>(), any::<u8>()).prop_map(|(seg, offset, len)| {
            [
                &[0x5B, 0x80][..],
                &seg,
                &[0x01, 0x0B],
                &offset.to_le_bytes(),
                &[0x0A, len],
            ]
            .concat()
        }),
        vec(any::<u8>(), 0..100).prop_map(|body| {
            // If (Zero) { body }: never taken, so never read.
            let content = [&[0x00][..], &body].concat();
            [std::vec![0xA0], pkg_length(content.len()), content].concat()
        }),
        (segment.clone()).prop_map(|seg| [&[0x5B, 0x01][..], &seg, &[0x00]].concat()),
    ];
    leaf.prop_recursive(2, 24, 6, move |inner| {
        (
            prop_oneof![Just(&[0x10][..]), Just(&[0x5B, 0x82][..])],
            segment.clone(),
            vec(inner, 0..6),
        )
            .prop_map(|(opcode, seg, objects)| scoped(opcode, &seg, &[], &objects.concat()))
    })
}
