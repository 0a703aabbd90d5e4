//! The Fixed ACPI Description Table ("FACP"): what the kernel needs to switch into ACPI mode, power
//! off (the PM1 control registers, or on a hardware-reduced machine the sleep control register,
//! and the DSDT that holds the sleep types) and read the RTC century.
//!
//! Read as ACPI 6.x §5.2.9 and ACPICA read it: each field on its own, so that a field a table
//! lacks or fills oddly does not hide the others; an address that has both a 32-bit field and a
//! 64-bit `X_` field is the `X_` one when that is non-zero, else the 32-bit one; the fields past
//! the table's length are absent, whatever its revision says.

use super::{AcpiError, TableAt};
use crate::{PhysMem, read_u8, read_u16, read_u32, read_u64};

/// The ACPI 1.0 FADT, which ends with the `flags` field.
const ACPI1_LEN: u32 = 116;
const DSDT: u64 = 40;
const SCI_INT: u64 = 46;
const SMI_CMD: u64 = 48;
const ACPI_ENABLE: u64 = 52;
const PM1A_CNT_BLK: u64 = 64;
const PM1B_CNT_BLK: u64 = 68;
const PM1_CNT_LEN: u64 = 89;
const CENTURY: u64 = 108;
const FLAGS: u64 = 112;
const X_DSDT: u64 = 140;
const X_PM1A_CNT_BLK: u64 = 172;
const X_PM1B_CNT_BLK: u64 = 184;
const SLEEP_CONTROL_REG: u64 = 244;
const GENERIC_ADDRESS_LEN: u64 = 12;

/// A register as ACPI's Generic Address Structure describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenericAddress {
    /// [`GenericAddress::SYSTEM_MEMORY`], [`GenericAddress::SYSTEM_IO`], or another space.
    pub space: u8,
    pub bit_width: u8,
    pub bit_offset: u8,
    pub access_size: u8,
    pub address: u64,
}

impl GenericAddress {
    pub const SYSTEM_MEMORY: u8 = 0;
    pub const SYSTEM_IO: u8 = 1;

    /// The register's I/O port, if it is one.
    pub fn port(&self) -> Option<u16> {
        match self.space {
            GenericAddress::SYSTEM_IO => u16::try_from(self.address).ok(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fadt {
    pub revision: u8,
    /// The interrupt (ISA IRQ or GSI) on which ACPI events arrive.
    pub sci_interrupt: u16,
    /// The port that takes `acpi_enable` to switch into ACPI mode; 0 when the machine is
    /// always in ACPI mode.
    pub smi_command: u32,
    pub acpi_enable: u8,
    /// The PM1a control register, where SLP_TYPa and SLP_EN are written; `None` when neither
    /// field names one (hardware-reduced machines have none).
    pub pm1a_control: Option<GenericAddress>,
    pub pm1b_control: Option<GenericAddress>,
    /// The sleep control register of a hardware-reduced machine (ACPI 5.0 and later).
    pub sleep_control: Option<GenericAddress>,
    /// The DSDT's address: X_DSDT when the table has it and it is non-zero, else DSDT; `None`
    /// when both are zero.
    pub dsdt: Option<u64>,
    /// The CMOS RTC register that holds the century; 0 when there is none.
    pub century: u8,
    pub flags: u32,
}

/// The registers that put the machine into a sleep state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SleepRegisters {
    /// Write `SLP_TYPx << 10 | SLP_EN` to each PM1 control port.
    Pm1 { a: u16, b: Option<u16> },
    /// A hardware-reduced machine: write `SLP_TYPa << 2 | SLP_EN` (bit 5) to this 8-bit port.
    SleepControl { port: u16 },
}

/// Which FADT register a [`AcpiError::SleepRegisterNotAPort`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SleepRegister {
    Pm1aControl,
    Pm1bControl,
    SleepControl,
}

impl Fadt {
    /// FADT flag: the machine has no fixed ACPI hardware (no PM1 blocks, no GPE blocks); it
    /// sleeps through the sleep control register.
    pub const HW_REDUCED_ACPI: u32 = 1 << 20;

    pub(super) fn parse(mem: &impl PhysMem, table: TableAt) -> Result<Fadt, AcpiError> {
        table.require_length(ACPI1_LEN)?;
        let at = table.address;
        let dsdt = match optional_u64(mem, &table, X_DSDT)? {
            Some(x_dsdt) if x_dsdt != 0 => x_dsdt,
            _ => u64::from(read_u32(mem, at, DSDT)?),
        };
        // The 32-bit PM1 control blocks are I/O ports PM1_CNT_LEN bytes wide.
        let pm1_bits = read_u8(mem, at, PM1_CNT_LEN)?.saturating_mul(8);
        Ok(Fadt {
            revision: table.revision,
            sci_interrupt: read_u16(mem, at, SCI_INT)?,
            smi_command: read_u32(mem, at, SMI_CMD)?,
            acpi_enable: read_u8(mem, at, ACPI_ENABLE)?,
            pm1a_control: register(mem, &table, PM1A_CNT_BLK, X_PM1A_CNT_BLK, pm1_bits)?,
            pm1b_control: register(mem, &table, PM1B_CNT_BLK, X_PM1B_CNT_BLK, pm1_bits)?,
            sleep_control: generic_address(mem, &table, SLEEP_CONTROL_REG)?,
            dsdt: Some(dsdt).filter(|dsdt| *dsdt != 0),
            century: read_u8(mem, at, CENTURY)?,
            flags: read_u32(mem, at, FLAGS)?,
        })
    }

    pub fn hardware_reduced(&self) -> bool {
        self.flags & Fadt::HW_REDUCED_ACPI != 0
    }

    /// The registers that enter a sleep state: on a hardware-reduced machine the sleep control
    /// register, otherwise the PM1 control blocks (as ACPICA chooses). Atoll writes them as I/O
    /// ports, so a register in another address space is refused, named.
    pub fn sleep_registers(&self) -> Result<SleepRegisters, AcpiError> {
        let port = |register: SleepRegister, address: GenericAddress| {
            address.port().ok_or(AcpiError::SleepRegisterNotAPort {
                register,
                space: address.space,
                address: address.address,
            })
        };
        if self.hardware_reduced() {
            let control = self.sleep_control.ok_or(AcpiError::NoSleepControl)?;
            return Ok(SleepRegisters::SleepControl {
                port: port(SleepRegister::SleepControl, control)?,
            });
        }
        let a = self.pm1a_control.ok_or(AcpiError::NoPm1aControl)?;
        Ok(SleepRegisters::Pm1 {
            a: port(SleepRegister::Pm1aControl, a)?,
            b: self
                .pm1b_control
                .map(|b| port(SleepRegister::Pm1bControl, b))
                .transpose()?,
        })
    }
}

/// The u64 at `offset`, if the table is long enough to hold it.
fn optional_u64(
    mem: &impl PhysMem,
    table: &TableAt,
    offset: u64,
) -> Result<Option<u64>, AcpiError> {
    if u64::from(table.length) < offset + 8 {
        return Ok(None);
    }
    Ok(Some(read_u64(mem, table.address, offset)?))
}

/// The Generic Address Structure at `offset`, if the table is long enough to hold it and its
/// address is non-zero.
fn generic_address(
    mem: &impl PhysMem,
    table: &TableAt,
    offset: u64,
) -> Result<Option<GenericAddress>, AcpiError> {
    if u64::from(table.length) < offset + GENERIC_ADDRESS_LEN {
        return Ok(None);
    }
    let at = table.address;
    let address = read_u64(mem, at, offset + 4)?;
    if address == 0 {
        return Ok(None);
    }
    Ok(Some(GenericAddress {
        space: read_u8(mem, at, offset)?,
        bit_width: read_u8(mem, at, offset + 1)?,
        bit_offset: read_u8(mem, at, offset + 2)?,
        access_size: read_u8(mem, at, offset + 3)?,
        address,
    }))
}

/// A register with a 32-bit I/O port field at `legacy` and a generic address at `extended`: the
/// extended one when its address is non-zero, as ACPI 2.0 and later say; else the 32-bit port.
fn register(
    mem: &impl PhysMem,
    table: &TableAt,
    legacy: u64,
    extended: u64,
    legacy_bits: u8,
) -> Result<Option<GenericAddress>, AcpiError> {
    if let Some(address) = generic_address(mem, table, extended)? {
        return Ok(Some(address));
    }
    let port = read_u32(mem, table.address, legacy)?;
    Ok((port != 0).then_some(GenericAddress {
        space: GenericAddress::SYSTEM_IO,
        bit_width: legacy_bits,
        bit_offset: 0,
        access_size: 0,
        address: u64::from(port),
    }))
}
