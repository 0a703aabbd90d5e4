use std::string::ToString;
use std::vec::Vec;

use super::*;
use crate::fake_mem::{
    FakeMem, fix_checksum, local_apic, madt, rsdp_v1, rsdp_v2, rsdt, slit, srat, srat_local_apic,
    srat_memory, srat_x2apic, table, xsdt,
};

const RSDP_ADDR: u64 = 0xF_5A60;
const RSDT_ADDR: u32 = 0x7FE_0000;
const XSDT_ADDR: u64 = 0x7FE_1000;
const FADT_ADDR: u64 = 0x7FE_2000;
const MADT_ADDR: u64 = 0x7FE_3000;
const DSDT_ADDR: u64 = 0x7FE_4000;
const HPET_ADDR: u64 = 0x7FE_5000;
const SRAT_ADDR: u64 = 0x7FE_6000;
const SLIT_ADDR: u64 = 0x7FE_7000;

/// QEMU q35's shutdown object: `Name (_S5, Package (0x04) { 0x05, Zero, Zero, Zero })`.
const S5_WITH_ZERO_OPS: [u8; 13] = [
    0x08, b'_', b'S', b'5', b'_', 0x12, 0x07, 0x04, 0x0A, 0x05, 0x00, 0x00, 0x00,
];

/// A FADT of ACPI 2.0 or later (244 bytes) as QEMU q35 writes it.
fn fadt_body(dsdt: u32, x_dsdt: u64) -> Vec<u8> {
    let mut body = std::vec![0u8; 244 - 36];
    let mut put = |offset: usize, bytes: &[u8]| {
        body[offset - 36..offset - 36 + bytes.len()].copy_from_slice(bytes)
    };
    put(40, &dsdt.to_le_bytes());
    put(46, &9u16.to_le_bytes());
    put(48, &0xB2u32.to_le_bytes());
    put(52, &[0xF1, 0xF0]);
    put(64, &0x604u32.to_le_bytes());
    put(89, &[2]);
    put(108, &[0x32]);
    put(112, &0x0000_84A5u32.to_le_bytes());
    put(140, &x_dsdt.to_le_bytes());
    body
}

fn dsdt(aml: &[&[u8]]) -> Vec<u8> {
    table(b"DSDT", 2, &aml.concat())
}

/// The MADT entries of a four-processor machine with one processor disabled, one x2APIC
/// processor, an I/O APIC, an interrupt override and a local APIC NMI.
fn four_cpu_madt_entries() -> Vec<u8> {
    let mut entries = Vec::new();
    entries.extend(local_apic(0, 0, 1));
    entries.extend(local_apic(1, 1, 1));
    entries.extend(local_apic(2, 2, 0));
    entries.extend(local_apic(3, 3, 0b11));
    entries.extend([1, 12, 0, 0]);
    entries.extend(0xFEC0_0000u32.to_le_bytes());
    entries.extend(0u32.to_le_bytes());
    entries.extend([2, 10, 0, 0]);
    entries.extend(2u32.to_le_bytes());
    entries.extend(0u16.to_le_bytes());
    entries.extend([9, 16, 0, 0]);
    entries.extend(300u32.to_le_bytes());
    entries.extend(1u32.to_le_bytes());
    entries.extend(4u32.to_le_bytes());
    entries.extend([4, 6, 0xFF, 0, 0, 1]);
    entries
}

/// A machine as QEMU q35 presents it: RSDP v2, XSDT and RSDT, FADT, MADT, DSDT, HPET.
fn machine() -> FakeMem {
    let mut mem = FakeMem::new();
    mem.put(RSDP_ADDR, &rsdp_v2(RSDT_ADDR, XSDT_ADDR));
    mem.put(
        u64::from(RSDT_ADDR),
        &rsdt(&[HPET_ADDR as u32, FADT_ADDR as u32, MADT_ADDR as u32]),
    );
    mem.put(XSDT_ADDR, &xsdt(&[HPET_ADDR, FADT_ADDR, MADT_ADDR]));
    mem.put(
        FADT_ADDR,
        &table(b"FACP", 3, &fadt_body(DSDT_ADDR as u32, 0)),
    );
    mem.put(MADT_ADDR, &madt(&four_cpu_madt_entries()));
    mem.put(
        DSDT_ADDR,
        &dsdt(&[
            &[0x10, 0x06, b'\\', b'_', b'S', b'B', b'_'],
            &S5_WITH_ZERO_OPS,
        ]),
    );
    mem.put(HPET_ADDR, &table(b"HPET", 1, &[0; 20]));
    mem
}

fn tables(mem: &FakeMem) -> AcpiTables<'_, FakeMem> {
    let (rsdp, _) = Rsdp::locate(mem, Some(&RsdpSource::Address(RSDP_ADDR))).unwrap();
    AcpiTables::new(mem, &rsdp).unwrap()
}

#[test]
fn rsdp_v1_gives_the_rsdt_only() {
    let rsdp = Rsdp::parse(&rsdp_v1(RSDT_ADDR)).unwrap();
    assert_eq!(
        rsdp,
        Rsdp {
            revision: 0,
            rsdt: RSDT_ADDR,
            xsdt: None,
            oem_id: *b"ATOLL "
        }
    );
}

#[test]
fn rsdp_v2_gives_the_xsdt_too() {
    let rsdp = Rsdp::parse(&rsdp_v2(RSDT_ADDR, XSDT_ADDR)).unwrap();
    assert_eq!(
        rsdp,
        Rsdp {
            revision: 2,
            rsdt: RSDT_ADDR,
            xsdt: Some(XSDT_ADDR),
            oem_id: *b"ATOLL "
        }
    );
}

#[test]
fn rsdp_v2_cut_to_20_bytes_gives_the_rsdt_only() {
    let rsdp = Rsdp::parse(&rsdp_v2(RSDT_ADDR, XSDT_ADDR)[..20]).unwrap();
    assert_eq!((rsdp.revision, rsdp.xsdt), (2, None));
}

#[test]
fn rsdp_with_bad_signature_checksum_or_length_is_rejected() {
    let mut bad_signature = rsdp_v1(RSDT_ADDR);
    bad_signature[0] = b'X';
    fix_checksum(&mut bad_signature, 8);
    assert_eq!(
        Rsdp::parse(&bad_signature),
        Err(AcpiError::BadRsdpSignature)
    );

    let mut bad_checksum = rsdp_v1(RSDT_ADDR);
    bad_checksum[16] ^= 1;
    assert_eq!(Rsdp::parse(&bad_checksum), Err(AcpiError::BadRsdpChecksum));

    let mut bad_extended_checksum = rsdp_v2(RSDT_ADDR, XSDT_ADDR);
    bad_extended_checksum[24] ^= 1;
    assert_eq!(
        Rsdp::parse(&bad_extended_checksum),
        Err(AcpiError::BadRsdpChecksum)
    );

    assert_eq!(
        Rsdp::parse(&rsdp_v1(RSDT_ADDR)[..19]),
        Err(AcpiError::RsdpTooShort { len: 19 })
    );
}

#[test]
fn rsdp_is_located_from_a_boot_loader_copy() {
    let mut bytes = [0; 36];
    bytes.copy_from_slice(&rsdp_v2(RSDT_ADDR, XSDT_ADDR));
    let (rsdp, origin) =
        Rsdp::locate(&FakeMem::new(), Some(&RsdpSource::Copy { bytes, len: 36 })).unwrap();
    assert_eq!(
        (rsdp.xsdt, origin),
        (Some(XSDT_ADDR), RsdpOrigin::BootLoaderCopy)
    );
}

#[test]
fn rsdp_v1_at_the_end_of_readable_memory_is_located() {
    let mut mem = FakeMem::new();
    mem.put(RSDP_ADDR, &rsdp_v1(RSDT_ADDR));
    let (rsdp, origin) = Rsdp::locate(&mem, Some(&RsdpSource::Address(RSDP_ADDR))).unwrap();
    assert_eq!(
        (rsdp.rsdt, origin),
        (RSDT_ADDR, RsdpOrigin::BootLoaderAddress(RSDP_ADDR))
    );
}

#[test]
fn bad_rsdp_named_by_the_boot_loader_is_an_error() {
    let mut mem = machine();
    mem.put(RSDP_ADDR + 8, &[0]);
    let error = Rsdp::locate(&mem, Some(&RsdpSource::Address(RSDP_ADDR))).unwrap_err();
    assert_eq!(error, AcpiError::BadRsdpChecksum);
}

/// Low memory with a zeroed BIOS area and an EBDA at 0x9FC00.
fn bios_memory() -> FakeMem {
    let mut mem = FakeMem::new();
    mem.put(0x40E, &0x9FC0u16.to_le_bytes());
    mem.put(0x9_FC00, &[0; 1024]);
    mem.put(0xE_0000, &[0; 0x2_0000]);
    mem
}

#[test]
fn rsdp_is_found_by_scanning_the_bios_area_past_a_false_signature() {
    let mut mem = bios_memory();
    mem.put(0xE_1000, b"RSD PTR not a real one");
    mem.put(RSDP_ADDR, &rsdp_v2(RSDT_ADDR, XSDT_ADDR));
    let (rsdp, origin) = Rsdp::locate(&mem, None).unwrap();
    assert_eq!(
        (rsdp.xsdt, origin),
        (Some(XSDT_ADDR), RsdpOrigin::BiosArea(RSDP_ADDR))
    );
}

#[test]
fn rsdp_in_the_ebda_is_found_first() {
    let mut mem = bios_memory();
    mem.put(RSDP_ADDR, &rsdp_v2(RSDT_ADDR, XSDT_ADDR));
    mem.put(0x9_FC40, &rsdp_v1(0x1234_5678));
    let (rsdp, origin) = Rsdp::locate(&mem, None).unwrap();
    assert_eq!(
        (rsdp.rsdt, origin),
        (0x1234_5678, RsdpOrigin::Ebda(0x9_FC40))
    );
}

#[test]
fn rsdp_scan_without_a_match_is_an_error() {
    assert_eq!(
        Rsdp::locate(&bios_memory(), None),
        Err(AcpiError::RsdpNotFound)
    );
    let mut unmapped_bios_area = FakeMem::new();
    unmapped_bios_area.put(0x40E, &[0, 0]);
    let error = Rsdp::locate(&unmapped_bios_area, None).unwrap_err();
    assert_eq!(
        error,
        AcpiError::Unreadable(MemError {
            addr: 0xE_0000,
            len: 8
        })
    );
}

#[test]
fn tables_are_found_through_the_xsdt() {
    let mem = machine();
    let tables = tables(&mem);
    assert_eq!(tables.root().signature, *b"XSDT");
    let madt = tables.find(b"APIC").unwrap().unwrap();
    assert_eq!(
        (madt.address, madt.signature, madt.revision),
        (MADT_ADDR, *b"APIC", 5)
    );
    assert_eq!(tables.find(b"SRAT"), Ok(None));
}

#[test]
fn tables_are_found_through_the_rsdt_of_an_acpi_1_machine() {
    let mut mem = machine();
    mem.put(RSDP_ADDR, &rsdp_v1(RSDT_ADDR));
    mem.put(XSDT_ADDR, b"garbage, to show that the XSDT is not read");
    let tables = tables(&mem);
    assert_eq!(tables.root().signature, *b"RSDT");
    assert_eq!(
        tables.find(b"FACP").unwrap().map(|t| t.address),
        Some(FADT_ADDR)
    );
}

#[test]
fn table_with_bad_checksum_is_rejected() {
    let mut mem = machine();
    mem.put(MADT_ADDR + 36, &[0x01]);
    let error = tables(&mem).find(b"APIC").unwrap_err();
    assert_eq!(
        error,
        AcpiError::BadChecksum {
            signature: *b"APIC"
        }
    );
    assert_eq!(
        error.to_string(),
        "ACPI table \"APIC\" checksum does not sum to zero"
    );
}

#[test]
fn root_table_with_bad_signature_or_length_is_rejected() {
    let rsdp = Rsdp::parse(&rsdp_v2(RSDT_ADDR, XSDT_ADDR)).unwrap();
    let mut mem = machine();
    mem.put(XSDT_ADDR, b"RSDT");
    let error = AcpiTables::new(&mem, &rsdp).err().unwrap();
    assert_eq!(
        error,
        AcpiError::BadSignature {
            expected: *b"XSDT",
            found: *b"RSDT"
        }
    );

    let mut mem = machine();
    mem.put(XSDT_ADDR + 4, &20u32.to_le_bytes());
    let error = AcpiTables::new(&mem, &rsdp).err().unwrap();
    assert_eq!(
        error,
        AcpiError::BadLength {
            signature: *b"XSDT",
            length: 20
        }
    );
}

#[test]
fn table_pointer_to_unreadable_memory_is_an_error() {
    let mut mem = machine();
    mem.put(XSDT_ADDR, &xsdt(&[0xDEAD_0000, FADT_ADDR]));
    let error = tables(&mem).find(b"FACP").unwrap_err();
    assert_eq!(
        error,
        AcpiError::Unreadable(MemError {
            addr: 0xDEAD_0000,
            len: 4
        })
    );
}

#[test]
fn madt_lists_processors_io_apic_and_overrides() {
    let mem = machine();
    let madt = tables(&mem).madt().unwrap();
    assert_eq!((madt.local_apic_address, madt.flags), (0xFEE0_0000, 1));
    let entries: Vec<_> = madt.entries().collect::<Result<_, _>>().unwrap();
    let cpu = |uid, apic_id, enabled, online_capable| MadtEntry::LocalApic {
        processor_uid: uid,
        apic_id,
        enabled,
        online_capable,
    };
    assert_eq!(
        entries,
        [
            cpu(0, 0, true, false),
            cpu(1, 1, true, false),
            cpu(2, 2, false, false),
            cpu(3, 3, true, true),
            MadtEntry::IoApic {
                id: 0,
                address: 0xFEC0_0000,
                gsi_base: 0
            },
            MadtEntry::InterruptOverride {
                bus: 0,
                source: 0,
                gsi: 2,
                flags: 0
            },
            cpu(4, 300, true, false),
            MadtEntry::Other { kind: 4 },
        ]
    );
}

#[test]
fn madt_local_apic_address_override_is_applied() {
    let mut entries = four_cpu_madt_entries();
    entries.extend([5, 12, 0, 0]);
    entries.extend(0x1_FEE0_0000u64.to_le_bytes());
    let mut mem = machine();
    mem.put(MADT_ADDR, &madt(&entries));
    let madt = tables(&mem).madt().unwrap();
    assert_eq!(madt.local_apic_address, 0x1_FEE0_0000);
    assert_eq!(
        madt.entries().last(),
        Some(Ok(MadtEntry::LocalApicAddressOverride {
            address: 0x1_FEE0_0000
        }))
    );
}

#[test]
fn malformed_madt_entries_are_errors() {
    let one_cpu = local_apic(0, 0, 1);
    let zero_length = [&one_cpu[..], &[0, 0, 0, 0]].concat();
    let past_the_end = [&one_cpu[..], &[1, 12, 0, 0]].concat();
    let too_short_for_its_type = [&one_cpu[..], &[0, 6, 1, 1, 1, 0]].concat();
    let lone_byte = [&one_cpu[..], &[0]].concat();
    for entries in [zero_length, past_the_end, too_short_for_its_type, lone_byte] {
        let mut mem = machine();
        mem.put(MADT_ADDR, &madt(&entries));
        let error = tables(&mem).madt().err();
        assert_eq!(
            error,
            Some(AcpiError::BadMadtEntry { offset: 44 + 8 }),
            "entries {entries:02x?}"
        );
    }
}

#[test]
fn missing_madt_is_reported_by_name() {
    let mut mem = machine();
    mem.put(XSDT_ADDR, &xsdt(&[FADT_ADDR]));
    let error = tables(&mem).madt().err().unwrap();
    assert_eq!(
        error,
        AcpiError::TableNotFound {
            signature: *b"APIC"
        }
    );
    assert_eq!(error.to_string(), "no ACPI table \"APIC\" in the RSDT/XSDT");
}

/// The PM1a control register of [`fadt_body`]: I/O port 0x604, two bytes wide.
const PM1A: GenericAddress = GenericAddress {
    space: GenericAddress::SYSTEM_IO,
    bit_width: 16,
    bit_offset: 0,
    access_size: 0,
    address: 0x604,
};

#[test]
fn fadt_gives_power_management_ports_and_dsdt() {
    let mem = machine();
    let fadt = tables(&mem).fadt().unwrap();
    assert_eq!(
        fadt,
        Fadt {
            revision: 3,
            sci_interrupt: 9,
            smi_command: 0xB2,
            acpi_enable: 0xF1,
            pm1a_control: Some(PM1A),
            pm1b_control: None,
            sleep_control: None,
            dsdt: Some(DSDT_ADDR),
            century: 0x32,
            flags: 0x84A5,
        }
    );
    assert!(!fadt.hardware_reduced());
    assert_eq!(
        fadt.sleep_registers(),
        Ok(SleepRegisters::Pm1 { a: 0x604, b: None })
    );
}

#[test]
fn fadt_prefers_a_non_zero_x_dsdt() {
    let mut mem = machine();
    mem.put(
        FADT_ADDR,
        &table(b"FACP", 3, &fadt_body(0x1000, 0x1_0000_0000)),
    );
    assert_eq!(tables(&mem).fadt().unwrap().dsdt, Some(0x1_0000_0000));
    mem.put(FADT_ADDR, &table(b"FACP", 3, &fadt_body(0, 0)));
    assert_eq!(tables(&mem).fadt().unwrap().dsdt, None);
}

#[test]
fn acpi_1_fadt_is_read() {
    let mut mem = machine();
    mem.put(
        FADT_ADDR,
        &table(b"FACP", 1, &fadt_body(DSDT_ADDR as u32, 0)[..116 - 36]),
    );
    let fadt = tables(&mem).fadt().unwrap();
    assert_eq!(
        (fadt.revision, fadt.pm1a_control, fadt.dsdt),
        (1, Some(PM1A), Some(DSDT_ADDR))
    );
}

/// A generic address at `offset` of a FADT body.
fn put_generic_address(body: &mut [u8], offset: usize, space: u8, address: u64) {
    body[offset - 36] = space;
    body[offset - 36 + 1] = 8;
    body[offset - 36 + 4..offset - 36 + 12].copy_from_slice(&address.to_le_bytes());
}

#[test]
fn fadt_x_pm1_fields_win_over_the_32_bit_ones() {
    let mut body = fadt_body(DSDT_ADDR as u32, 0);
    put_generic_address(&mut body, 172, GenericAddress::SYSTEM_IO, 0x1804);
    let mut mem = machine();
    mem.put(FADT_ADDR, &table(b"FACP", 5, &body));
    let fadt = tables(&mem).fadt().unwrap();
    assert_eq!(fadt.pm1a_control.map(|pm1a| pm1a.address), Some(0x1804));
    assert_eq!(
        fadt.sleep_registers(),
        Ok(SleepRegisters::Pm1 { a: 0x1804, b: None })
    );

    // Only the 64-bit field set.
    body[64 - 36..68 - 36].fill(0);
    mem.put(FADT_ADDR, &table(b"FACP", 5, &body));
    assert_eq!(
        tables(&mem)
            .fadt()
            .unwrap()
            .pm1a_control
            .map(|pm1a| pm1a.address),
        Some(0x1804)
    );

    // A PM1b only in the 64-bit field.
    put_generic_address(&mut body, 184, GenericAddress::SYSTEM_IO, 0x1904);
    mem.put(FADT_ADDR, &table(b"FACP", 5, &body));
    assert_eq!(
        tables(&mem).fadt().unwrap().sleep_registers(),
        Ok(SleepRegisters::Pm1 {
            a: 0x1804,
            b: Some(0x1904)
        })
    );
}

#[test]
fn a_pm1_register_in_memory_is_read_and_refused_for_power_off() {
    let mut body = fadt_body(DSDT_ADDR as u32, 0);
    put_generic_address(&mut body, 172, GenericAddress::SYSTEM_MEMORY, 0xFED8_0804);
    let mut mem = machine();
    mem.put(FADT_ADDR, &table(b"FACP", 5, &body));
    let fadt = tables(&mem).fadt().unwrap();
    assert_eq!(
        fadt.dsdt,
        Some(DSDT_ADDR),
        "the other fields still come back"
    );
    let error = fadt.sleep_registers().unwrap_err();
    assert_eq!(
        error,
        AcpiError::SleepRegisterNotAPort {
            register: SleepRegister::Pm1aControl,
            space: GenericAddress::SYSTEM_MEMORY,
            address: 0xFED8_0804
        }
    );
    assert_eq!(
        error.to_string(),
        "FADT PM1a control register 0xfed80804 is in system memory; Atoll writes sleep registers only as I/O ports"
    );
}

/// An ACPI 6 FADT (276 bytes) of a hardware-reduced machine with no PM1 blocks, with a sleep
/// control register in `space` at `address` (none if 0).
fn hardware_reduced_fadt(space: u8, address: u64) -> Vec<u8> {
    let mut body = fadt_body(DSDT_ADDR as u32, 0);
    body.resize(276 - 36, 0);
    body[64 - 36..68 - 36].fill(0);
    body[112 - 36..116 - 36].copy_from_slice(&(Fadt::HW_REDUCED_ACPI | 0x10).to_le_bytes());
    put_generic_address(&mut body, 244, space, address);
    table(b"FACP", 6, &body)
}

#[test]
fn a_hardware_reduced_fadt_powers_off_through_its_sleep_control_register() {
    let mut mem = machine();
    mem.put(
        FADT_ADDR,
        &hardware_reduced_fadt(GenericAddress::SYSTEM_IO, 0x3C4),
    );
    let fadt = tables(&mem).fadt().unwrap();
    assert!(fadt.hardware_reduced());
    assert_eq!(
        (fadt.pm1a_control, fadt.dsdt, fadt.sci_interrupt),
        (None, Some(DSDT_ADDR), 9),
        "every other field comes back"
    );
    assert_eq!(
        fadt.sleep_registers(),
        Ok(SleepRegisters::SleepControl { port: 0x3C4 })
    );

    mem.put(
        FADT_ADDR,
        &hardware_reduced_fadt(GenericAddress::SYSTEM_IO, 0),
    );
    assert_eq!(
        tables(&mem).fadt().unwrap().sleep_registers(),
        Err(AcpiError::NoSleepControl)
    );
    mem.put(
        FADT_ADDR,
        &hardware_reduced_fadt(GenericAddress::SYSTEM_MEMORY, 0xFE00_0000),
    );
    assert_eq!(
        tables(&mem).fadt().unwrap().sleep_registers(),
        Err(AcpiError::SleepRegisterNotAPort {
            register: SleepRegister::SleepControl,
            space: GenericAddress::SYSTEM_MEMORY,
            address: 0xFE00_0000
        })
    );
}

#[test]
fn a_fadt_with_no_pm1_blocks_still_gives_its_other_fields() {
    let mut body = fadt_body(DSDT_ADDR as u32, 0);
    body[64 - 36..68 - 36].fill(0);
    let mut mem = machine();
    mem.put(FADT_ADDR, &table(b"FACP", 5, &body));
    let fadt = tables(&mem).fadt().unwrap();
    assert_eq!((fadt.pm1a_control, fadt.dsdt), (None, Some(DSDT_ADDR)));
    assert_eq!(fadt.sleep_registers(), Err(AcpiError::NoPm1aControl));
}

#[test]
fn fields_past_the_table_s_length_are_absent_whatever_its_revision() {
    let mut body = hardware_reduced_fadt(GenericAddress::SYSTEM_IO, 0x3C4)[36..].to_vec();
    body.truncate(244 - 36);
    let mut mem = machine();
    mem.put(FADT_ADDR, &table(b"FACP", 6, &body));
    assert_eq!(tables(&mem).fadt().unwrap().sleep_control, None);
}

#[test]
fn fadt_too_short_for_acpi_1_is_rejected() {
    let mut mem = machine();
    mem.put(FADT_ADDR, &table(b"FACP", 1, &[0; 60]));
    assert_eq!(
        tables(&mem).fadt(),
        Err(AcpiError::BadLength {
            signature: *b"FACP",
            length: 96
        })
    );
}

fn s5_of(aml: &[&[u8]]) -> Result<(u8, u8), AcpiError> {
    let mut mem = FakeMem::new();
    mem.put(DSDT_ADDR, &dsdt(aml));
    s5_sleep_types(&mem, DSDT_ADDR)
}

#[test]
fn s5_sleep_types_are_read_with_zero_ops_through_the_fadt() {
    let mem = machine();
    let fadt = tables(&mem).fadt().unwrap();
    assert_eq!(s5_sleep_types(&mem, fadt.dsdt.unwrap()), Ok((5, 0)));
}

#[test]
fn dsdt_without_s5_is_an_error() {
    let error = s5_of(&[&[0x10, 0x06, b'\\', b'_', b'S', b'B', b'_']]).unwrap_err();
    assert_eq!(error, AcpiError::NoS5 { unread: None });
    assert_eq!(error.to_string(), "the DSDT defines no \\_S5 object");
}

#[test]
fn s5_package_cut_by_the_table_end_is_an_error() {
    assert_eq!(
        s5_of(&[&S5_WITH_ZERO_OPS[..10]]),
        Err(AcpiError::BadS5 {
            offset: 36,
            problem: S5Problem::Malformed
        })
    );
}

#[test]
fn dsdt_with_bad_checksum_or_signature_is_rejected() {
    let mut image = dsdt(&[&S5_WITH_ZERO_OPS]);
    image[40] ^= 0xFF;
    let mut mem = FakeMem::new();
    mem.put(DSDT_ADDR, &image);
    assert_eq!(
        s5_sleep_types(&mem, DSDT_ADDR),
        Err(AcpiError::BadChecksum {
            signature: *b"DSDT"
        })
    );
    assert_eq!(
        s5_sleep_types(&machine(), MADT_ADDR),
        Err(AcpiError::BadSignature {
            expected: *b"DSDT",
            found: *b"APIC"
        })
    );
}

#[test]
fn dsdt_cut_short_in_memory_is_unreadable() {
    let image = dsdt(&[&[0; 200], &S5_WITH_ZERO_OPS]);
    let mut mem = FakeMem::new();
    mem.put(DSDT_ADDR, &image[..150]);
    // The checksum reads the table in 64-byte chunks; the third one runs past byte 150.
    let error = s5_sleep_types(&mem, DSDT_ADDR).unwrap_err();
    assert_eq!(
        error,
        AcpiError::Unreadable(MemError {
            addr: DSDT_ADDR + 128,
            len: 64
        })
    );
}

/// The SRAT entries of a two-node machine as QEMU q35 describes it with `-numa`, plus an x2APIC
/// processor, a non-volatile range and an entry of a type the parser does not decode (a GICC).
fn two_node_srat_entries() -> Vec<u8> {
    let mut entries = Vec::new();
    entries.extend(srat_local_apic(0, 0, 1));
    entries.extend(srat_local_apic(1, 1, 1));
    entries.extend(srat_local_apic(1, 2, 0));
    entries.extend(srat_x2apic(1, 300, 1));
    entries.extend(srat_memory(0, 0, 0xA_0000, 1));
    entries.extend(srat_memory(0, 0x10_0000, 0x3FF0_0000, 1));
    entries.extend(srat_memory(1, 0x4000_0000, 0x4000_0000, 0b101));
    entries.extend(srat_memory(0, 0, 0, 0));
    entries.extend(srat_memory(1, 0x1_0000_0000, 0x2_0000_0000, 0b11));
    entries.extend([3, 18]);
    entries.extend([0; 16]);
    entries
}

/// Asymmetric distances between three localities, row by row: from 0, from 1, from 2.
const THREE_NODE_DISTANCES: [u8; 9] = [10, 20, 30, 21, 10, 25, 31, 26, 10];

/// [`machine`] with NUMA nodes: an SRAT and a SLIT listed in the XSDT.
fn numa_machine() -> FakeMem {
    let mut mem = machine();
    mem.put(
        XSDT_ADDR,
        &xsdt(&[HPET_ADDR, FADT_ADDR, MADT_ADDR, SRAT_ADDR, SLIT_ADDR]),
    );
    mem.put(SRAT_ADDR, &srat(&two_node_srat_entries()));
    mem.put(SLIT_ADDR, &slit(3, &THREE_NODE_DISTANCES));
    mem
}

#[test]
fn srat_gives_the_domains_of_processors_and_memory() {
    let mem = numa_machine();
    let srat = tables(&mem).srat().unwrap().unwrap();
    let entries: Vec<_> = srat.entries().collect::<Result<_, _>>().unwrap();
    let cpu = |apic_id, domain, enabled| SratEntry::ProcessorAffinity {
        apic_id,
        domain,
        enabled,
    };
    let memory = |domain, base, length, flags: u32| SratEntry::MemoryAffinity {
        domain,
        base,
        length,
        enabled: flags & 1 != 0,
        hot_pluggable: flags & 2 != 0,
        non_volatile: flags & 4 != 0,
    };
    assert_eq!(
        entries,
        [
            cpu(0, 0, true),
            cpu(1, 1, true),
            cpu(2, 1, false),
            cpu(300, 1, true),
            memory(0, 0, 0xA_0000, 1),
            memory(0, 0x10_0000, 0x3FF0_0000, 1),
            memory(1, 0x4000_0000, 0x4000_0000, 0b101),
            memory(0, 0, 0, 0),
            memory(1, 0x1_0000_0000, 0x2_0000_0000, 0b11),
            SratEntry::Other { kind: 3 },
        ]
    );
}

#[test]
fn srat_local_apic_domain_joins_its_low_and_high_bytes() {
    let mut mem = numa_machine();
    mem.put(SRAT_ADDR, &srat(&srat_local_apic(0x0302_0105, 7, 1)));
    let srat = tables(&mem).srat().unwrap().unwrap();
    assert_eq!(
        srat.entries().collect::<Vec<_>>(),
        [Ok(SratEntry::ProcessorAffinity {
            apic_id: 7,
            domain: 0x0302_0105,
            enabled: true
        })]
    );
}

#[test]
fn malformed_srat_entries_are_errors_at_their_offset() {
    let one_cpu = srat_local_apic(0, 0, 1);
    let zero_length = [&one_cpu[..], &[0, 0, 0, 0]].concat();
    let past_the_end = [&one_cpu[..], &srat_memory(0, 0, 0x1000, 1)[..39]].concat();
    let memory_too_short = [&one_cpu[..], &[1, 24], &srat_memory(0, 0, 0x1000, 1)[2..24]].concat();
    let cpu_too_short = [&one_cpu[..], &[0, 12], &one_cpu[2..12]].concat();
    let x2apic_too_short = [&one_cpu[..], &[2, 16], &srat_x2apic(0, 0, 1)[2..16]].concat();
    let lone_byte = [&one_cpu[..], &[0]].concat();
    for entries in [
        zero_length,
        past_the_end,
        memory_too_short,
        cpu_too_short,
        x2apic_too_short,
        lone_byte,
    ] {
        let mut mem = numa_machine();
        mem.put(SRAT_ADDR, &srat(&entries));
        let error = tables(&mem).srat().err();
        assert_eq!(
            error,
            Some(AcpiError::BadSratEntry { offset: 48 + 16 }),
            "entries {entries:02x?}"
        );
    }
    assert_eq!(
        AcpiError::BadSratEntry { offset: 64 }.to_string(),
        "SRAT entry at offset 64 is too short for its type or runs past the table"
    );
}

#[test]
fn srat_too_short_for_its_reserved_fields_is_rejected() {
    let mut mem = numa_machine();
    mem.put(SRAT_ADDR, &table(b"SRAT", 3, &[1, 0, 0, 0, 0, 0, 0]));
    assert_eq!(
        tables(&mem).srat().err(),
        Some(AcpiError::BadLength {
            signature: *b"SRAT",
            length: 43
        })
    );
}

#[test]
fn srat_with_bad_checksum_is_rejected() {
    let mut mem = numa_machine();
    mem.put(SRAT_ADDR + 50, &[0x55]);
    assert_eq!(
        tables(&mem).srat().err(),
        Some(AcpiError::BadChecksum {
            signature: *b"SRAT"
        })
    );
}

#[test]
fn slit_gives_asymmetric_distances() {
    let mem = numa_machine();
    let slit = tables(&mem).slit().unwrap().unwrap();
    assert_eq!(slit.localities(), 3);
    for from in 0..3 {
        for to in 0..3 {
            assert_eq!(
                slit.distance(from, to),
                Ok(THREE_NODE_DISTANCES[(from * 3 + to) as usize]),
                "from {from} to {to}"
            );
        }
    }
}

#[test]
fn slit_distance_to_an_unknown_locality_is_an_error() {
    let mem = numa_machine();
    let slit = tables(&mem).slit().unwrap().unwrap();
    for (from, to) in [(3, 0), (0, 3), (u64::MAX, 1), (u64::MAX, u64::MAX)] {
        assert_eq!(
            slit.distance(from, to),
            Err(AcpiError::LocalityOutOfRange {
                from,
                to,
                localities: 3
            })
        );
    }
    assert_eq!(
        slit.distance(1, 3).unwrap_err().to_string(),
        "SLIT distance from locality 1 to 3 asked for, but it has 3"
    );
}

#[test]
fn slit_of_no_localities_has_no_distances() {
    let mut mem = numa_machine();
    mem.put(SLIT_ADDR, &slit(0, &[]));
    let slit = tables(&mem).slit().unwrap().unwrap();
    assert_eq!(slit.localities(), 0);
    assert!(slit.distance(0, 0).is_err());
}

#[test]
fn slit_too_short_for_its_matrix_is_rejected() {
    // The last two claim more than the table, and so much that N×N (and N×N + 44) overflow.
    for (localities, distances) in [
        (3, &THREE_NODE_DISTANCES[..8]),
        (4, &THREE_NODE_DISTANCES[..]),
        ((1 << 32) - 1, &THREE_NODE_DISTANCES[..]),
        (1 << 32, &THREE_NODE_DISTANCES[..]),
        (u64::MAX, &THREE_NODE_DISTANCES[..]),
    ] {
        let mut mem = numa_machine();
        let image = slit(localities, distances);
        let length = u32::try_from(image.len()).unwrap();
        mem.put(SLIT_ADDR, &image);
        assert_eq!(
            tables(&mem).slit().err(),
            Some(AcpiError::SlitTooShort { localities, length }),
            "{localities} localities"
        );
    }
    assert_eq!(
        AcpiError::SlitTooShort {
            localities: 3,
            length: 52
        }
        .to_string(),
        "SLIT of length 52 is too short for 3x3 distances"
    );
}

#[test]
fn slit_too_short_for_its_locality_count_is_rejected() {
    let mut mem = numa_machine();
    mem.put(SLIT_ADDR, &table(b"SLIT", 1, &[3, 0, 0, 0]));
    assert_eq!(
        tables(&mem).slit().err(),
        Some(AcpiError::BadLength {
            signature: *b"SLIT",
            length: 40
        })
    );
}

#[test]
fn srat_and_slit_are_none_when_the_root_table_lists_none() {
    let mem = machine();
    let tables = tables(&mem);
    assert!(matches!(tables.srat(), Ok(None)));
    assert!(matches!(tables.slit(), Ok(None)));
}

#[test]
fn slit_without_srat_is_found() {
    let mut mem = numa_machine();
    mem.put(XSDT_ADDR, &xsdt(&[FADT_ADDR, SLIT_ADDR]));
    let tables = tables(&mem);
    assert!(matches!(tables.srat(), Ok(None)));
    assert_eq!(tables.slit().unwrap().unwrap().distance(2, 1), Ok(26));
}
