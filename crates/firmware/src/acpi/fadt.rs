//! The Fixed ACPI Description Table ("FACP"): what the kernel needs to switch into ACPI mode, power
//! off (the PM1 control ports and the DSDT that holds the sleep types) and read the RTC century.

use super::{AcpiError, TableAt};
use crate::{PhysMem, read_u8, read_u16, read_u32, read_u64};

/// The ACPI 1.0 FADT, which ends with the `flags` field.
const ACPI1_LEN: u32 = 116;
const X_DSDT: u64 = 140;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fadt {
    pub revision: u8,
    /// The interrupt (ISA IRQ or GSI) on which ACPI events arrive.
    pub sci_interrupt: u16,
    /// The port that takes `acpi_enable` to switch into ACPI mode; 0 when the machine is
    /// always in ACPI mode.
    pub smi_command: u32,
    pub acpi_enable: u8,
    /// The PM1a control block's I/O port, where SLP_TYPa and SLP_EN are written.
    pub pm1a_control: u16,
    pub pm1b_control: Option<u16>,
    /// The DSDT's address: X_DSDT when the table has it and it is non-zero, else DSDT.
    pub dsdt: u64,
    /// The CMOS RTC register that holds the century; 0 when there is none.
    pub century: u8,
    pub flags: u32,
}

impl Fadt {
    pub(super) fn parse(mem: &impl PhysMem, table: TableAt) -> Result<Fadt, AcpiError> {
        table.require_length(ACPI1_LEN)?;
        let at = table.address;
        let x_dsdt = if u64::from(table.length) >= X_DSDT + 8 {
            read_u64(mem, at, X_DSDT)?
        } else {
            0
        };
        let dsdt = if x_dsdt != 0 {
            x_dsdt
        } else {
            u64::from(read_u32(mem, at, 40)?)
        };
        Ok(Fadt {
            revision: table.revision,
            sci_interrupt: read_u16(mem, at, 46)?,
            smi_command: read_u32(mem, at, 48)?,
            acpi_enable: read_u8(mem, at, 52)?,
            pm1a_control: pm1_control_port(mem, &table, 64, 172)?
                .ok_or(AcpiError::NoPm1aControl)?,
            pm1b_control: pm1_control_port(mem, &table, 68, 184)?,
            dsdt,
            century: read_u8(mem, at, 108)?,
            flags: read_u32(mem, at, 112)?,
        })
    }
}

/// The I/O port of a PM1 control block: the 32-bit field when non-zero, as PC firmware fills
/// it, else the ACPI 2.0 generic address when the table has it and it is in I/O space.
fn pm1_control_port(
    mem: &impl PhysMem,
    table: &TableAt,
    legacy_offset: u64,
    generic_address_offset: u64,
) -> Result<Option<u16>, AcpiError> {
    const GENERIC_ADDRESS_LEN: u64 = 12;
    const SYSTEM_IO_SPACE: u8 = 1;
    let legacy = read_u32(mem, table.address, legacy_offset)?;
    let address = if legacy != 0 {
        u64::from(legacy)
    } else if u64::from(table.length) >= generic_address_offset + GENERIC_ADDRESS_LEN
        && read_u8(mem, table.address, generic_address_offset)? == SYSTEM_IO_SPACE
    {
        read_u64(mem, table.address, generic_address_offset + 4)?
    } else {
        0
    };
    if address == 0 {
        return Ok(None);
    }
    u16::try_from(address)
        .map(Some)
        .map_err(|_| AcpiError::Pm1ControlNotAPort { address })
}
