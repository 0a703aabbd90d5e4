//! ACPI tables: finding the RSDP, looking tables up through the XSDT (or RSDT), and decoding the
//! MADT, the FADT, the `\_S5` sleep types in the DSDT, and the NUMA topology in the SRAT and the
//! SLIT. Each table is checked for its signature, length and checksum before any field of it is
//! trusted.

mod aml;
mod fadt;
mod madt;
mod slit;
mod srat;
mod subtables;

pub use aml::{AmlError, AmlProblem, S5Problem, s5_sleep_types};
pub use fadt::{Fadt, GenericAddress, SleepRegister, SleepRegisters};
pub use madt::{Madt, MadtEntries, MadtEntry};
pub use slit::Slit;
pub use srat::{Srat, SratEntries, SratEntry};

use core::fmt;

use crate::boot::RsdpSource;
use crate::{MemError, PhysBytes, PhysMem, checksum, read_array, read_u32, read_u64};

const RSDP_SIGNATURE: &[u8; 8] = b"RSD PTR ";
/// The ACPI 1.0 RSDP, covered by the first checksum.
const RSDP_V1_LEN: usize = 20;
/// The ACPI 2.0 RSDP, covered by the extended checksum.
const RSDP_V2_LEN: usize = 36;
/// Signature, length, revision, checksum, OEM ids and creator ids, common to every table.
const HEADER_LEN: u32 = 36;

/// The Root System Description Pointer: where the RSDT and, from ACPI 2.0, the XSDT are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rsdp {
    pub revision: u8,
    pub rsdt: u32,
    /// Present when the revision is 2 or more, the 36-byte form was given, and it is non-zero.
    pub xsdt: Option<u64>,
    pub oem_id: [u8; 6],
}

/// Where [`Rsdp::locate`] found the RSDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsdpOrigin {
    /// The copy in the boot information (multiboot2 tags 14 and 15).
    BootLoaderCopy,
    /// The address in the boot information (PVH `rsdp_paddr`).
    BootLoaderAddress(u64),
    /// Found by scanning the first KiB of the Extended BIOS Data Area, at this address.
    Ebda(u64),
    /// Found by scanning the BIOS area 0xE0000..0x100000, at this address.
    BiosArea(u64),
}

impl Rsdp {
    /// Parses an RSDP: checks the signature "RSD PTR " and the checksum of the first 20 bytes,
    /// and for revision 2 or more the extended checksum of the 36-byte form. Given only 20 bytes
    /// of a revision 2 RSDP (GRUB's tag 14 copies that much), it gives the RSDT alone.
    pub fn parse(bytes: &[u8]) -> Result<Rsdp, AcpiError> {
        let too_short = AcpiError::RsdpTooShort { len: bytes.len() };
        let v1: &[u8; RSDP_V1_LEN] = bytes.first_chunk().ok_or(too_short)?;
        let [
            signature @ ..,
            _,
            o1,
            o2,
            o3,
            o4,
            o5,
            o6,
            revision,
            r1,
            r2,
            r3,
            r4,
        ] = *v1;
        if signature != *RSDP_SIGNATURE {
            return Err(AcpiError::BadRsdpSignature);
        }
        if checksum(v1) != 0 {
            return Err(AcpiError::BadRsdpChecksum);
        }
        let xsdt = match bytes.first_chunk::<RSDP_V2_LEN>() {
            Some(v2) if revision >= 2 => {
                if checksum(v2) != 0 {
                    return Err(AcpiError::BadRsdpChecksum);
                }
                let [.., x1, x2, x3, x4, x5, x6, x7, x8, _, _, _, _] = *v2;
                Some(u64::from_le_bytes([x1, x2, x3, x4, x5, x6, x7, x8])).filter(|xsdt| *xsdt != 0)
            }
            _ => None,
        };
        Ok(Rsdp {
            revision,
            rsdt: u32::from_le_bytes([r1, r2, r3, r4]),
            xsdt,
            oem_id: [o1, o2, o3, o4, o5, o6],
        })
    }

    /// Finds the RSDP: where the boot information says, else by scanning the first KiB of the
    /// EBDA (whose segment is the u16 at physical 0x40E) and then 0xE0000..0x100000, on 16-byte
    /// boundaries. A bad RSDP named by the boot information is an error, not a reason to scan.
    pub fn locate(
        mem: &impl PhysMem,
        src: Option<&RsdpSource>,
    ) -> Result<(Rsdp, RsdpOrigin), AcpiError> {
        match src {
            Some(RsdpSource::Copy { bytes, len }) => {
                // A `len` past the array means all of it.
                let copy = bytes.get(..*len).unwrap_or(bytes);
                Ok((Rsdp::parse(copy)?, RsdpOrigin::BootLoaderCopy))
            }
            Some(RsdpSource::Address(addr)) => {
                Ok((read_rsdp(mem, *addr)?, RsdpOrigin::BootLoaderAddress(*addr)))
            }
            None => scan_for_rsdp(mem),
        }
    }
}

fn read_rsdp(mem: &impl PhysMem, addr: u64) -> Result<Rsdp, AcpiError> {
    let v1: [u8; RSDP_V1_LEN] = read_array(mem, addr, 0)?;
    // Read the ACPI 2.0 part only where it exists: an ACPI 1.0 RSDP may end a mapped range.
    let [.., revision, _, _, _, _] = v1;
    if revision >= 2 {
        let v2: [u8; RSDP_V2_LEN] = read_array(mem, addr, 0)?;
        return Rsdp::parse(&v2);
    }
    Rsdp::parse(&v1)
}

fn scan_for_rsdp(mem: &impl PhysMem) -> Result<(Rsdp, RsdpOrigin), AcpiError> {
    const EBDA_SEGMENT_POINTER: u64 = 0x40E;
    const EBDA_SCAN_LEN: u64 = 1024;
    const BIOS_AREA: core::ops::Range<u64> = 0xE_0000..0x10_0000;

    let ebda = u64::from(crate::read_u16(mem, EBDA_SEGMENT_POINTER, 0)?) << 4;
    if ebda != 0
        && let Some((rsdp, addr)) = scan_range(mem, ebda..ebda + EBDA_SCAN_LEN)?
    {
        return Ok((rsdp, RsdpOrigin::Ebda(addr)));
    }
    match scan_range(mem, BIOS_AREA)? {
        Some((rsdp, addr)) => Ok((rsdp, RsdpOrigin::BiosArea(addr))),
        None => Err(AcpiError::RsdpNotFound),
    }
}

fn scan_range(
    mem: &impl PhysMem,
    range: core::ops::Range<u64>,
) -> Result<Option<(Rsdp, u64)>, AcpiError> {
    for addr in range.step_by(16) {
        let signature: [u8; 8] = read_array(mem, addr, 0)?;
        // The signature may occur by chance: only a valid RSDP ends the scan.
        if &signature == RSDP_SIGNATURE
            && let Ok(rsdp) = read_rsdp(mem, addr)
        {
            return Ok(Some((rsdp, addr)));
        }
    }
    Ok(None)
}

/// A table whose signature, length and checksum have been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableAt {
    pub address: u64,
    pub signature: [u8; 4],
    /// The whole table, header included.
    pub length: u32,
    pub revision: u8,
}

impl TableAt {
    /// Reads the header of the table at `address` and checks that it has the `expected`
    /// signature, a length that covers the header, and bytes that sum to zero.
    pub fn read(
        mem: &impl PhysMem,
        address: u64,
        expected: &[u8; 4],
    ) -> Result<TableAt, AcpiError> {
        let header: [u8; 9] = read_array(mem, address, 0)?;
        let [s1, s2, s3, s4, l1, l2, l3, l4, revision] = header;
        let signature = [s1, s2, s3, s4];
        if signature != *expected {
            return Err(AcpiError::BadSignature {
                expected: *expected,
                found: signature,
            });
        }
        let length = u32::from_le_bytes([l1, l2, l3, l4]);
        if length < HEADER_LEN {
            return Err(AcpiError::BadLength { signature, length });
        }
        let sum = PhysBytes::new(mem, address, u64::from(length))
            .try_fold(0u8, |sum, byte| byte.map(|byte| sum.wrapping_add(byte)))?;
        if sum != 0 {
            return Err(AcpiError::BadChecksum { signature });
        }
        Ok(TableAt {
            address,
            signature,
            length,
            revision,
        })
    }

    /// Fails unless the table is at least `min_length` bytes long, so that fixed fields exist.
    fn require_length(&self, min_length: u32) -> Result<(), AcpiError> {
        if self.length < min_length {
            return Err(AcpiError::BadLength {
                signature: self.signature,
                length: self.length,
            });
        }
        Ok(())
    }
}

/// The ACPI tables reachable from an RSDP, through the XSDT when there is one, else the RSDT.
pub struct AcpiTables<'m, M: PhysMem> {
    mem: &'m M,
    root: TableAt,
    /// 8 for the XSDT's 64-bit pointers, 4 for the RSDT's 32-bit ones.
    pointer_size: u8,
}

impl<'m, M: PhysMem> AcpiTables<'m, M> {
    /// Checks the root table (XSDT or RSDT) that `rsdp` points at.
    pub fn new(mem: &'m M, rsdp: &Rsdp) -> Result<Self, AcpiError> {
        let (address, signature, pointer_size) = match rsdp.xsdt {
            Some(xsdt) => (xsdt, b"XSDT", 8),
            None => (u64::from(rsdp.rsdt), b"RSDT", 4),
        };
        let root = TableAt::read(mem, address, signature)?;
        Ok(AcpiTables {
            mem,
            root,
            pointer_size,
        })
    }

    /// The root table (XSDT or RSDT) in use.
    pub fn root(&self) -> TableAt {
        self.root
    }

    /// The first table with this signature, checked (length and checksum); `None` if the root
    /// table lists none. Tables that only the FADT points at (the DSDT, the FACS) are not listed.
    pub fn find(&self, signature: &[u8; 4]) -> Result<Option<TableAt>, AcpiError> {
        let pointer_size = u64::from(self.pointer_size);
        let pointers = u64::from(self.root.length.saturating_sub(HEADER_LEN)) / pointer_size;
        for index in 0..pointers {
            let offset = u64::from(HEADER_LEN) + index * pointer_size;
            let address = match self.pointer_size {
                8 => read_u64(self.mem, self.root.address, offset)?,
                _ => u64::from(read_u32(self.mem, self.root.address, offset)?),
            };
            let found: [u8; 4] = read_array(self.mem, address, 0)?;
            if found == *signature {
                return TableAt::read(self.mem, address, signature).map(Some);
            }
        }
        Ok(None)
    }

    /// The MADT ("APIC"): interrupt controllers and processors.
    pub fn madt(&self) -> Result<Madt<'m, M>, AcpiError> {
        Madt::parse(self.mem, self.require(b"APIC")?)
    }

    /// The FADT ("FACP"): power management ports and the DSDT address.
    pub fn fadt(&self) -> Result<Fadt, AcpiError> {
        Fadt::parse(self.mem, self.require(b"FACP")?)
    }

    /// The SRAT, when the machine describes its NUMA nodes: which node each processor and
    /// memory range belongs to. Machines with a single node commonly have none.
    pub fn srat(&self) -> Result<Option<Srat<'m, M>>, AcpiError> {
        self.find(b"SRAT")?
            .map(|table| Srat::parse(self.mem, table))
            .transpose()
    }

    /// The SLIT, when the machine gives distances between its NUMA nodes; it may have an SRAT
    /// without one.
    pub fn slit(&self) -> Result<Option<Slit<'m, M>>, AcpiError> {
        self.find(b"SLIT")?
            .map(|table| Slit::parse(self.mem, table))
            .transpose()
    }

    fn require(&self, signature: &[u8; 4]) -> Result<TableAt, AcpiError> {
        self.find(signature)?.ok_or(AcpiError::TableNotFound {
            signature: *signature,
        })
    }
}

/// Why an ACPI structure could not be found or trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcpiError {
    Unreadable(MemError),
    RsdpTooShort {
        len: usize,
    },
    BadRsdpSignature,
    BadRsdpChecksum,
    RsdpNotFound,
    BadSignature {
        expected: [u8; 4],
        found: [u8; 4],
    },
    /// The table is too short for its header or for the fields its type requires.
    BadLength {
        signature: [u8; 4],
        length: u32,
    },
    BadChecksum {
        signature: [u8; 4],
    },
    TableNotFound {
        signature: [u8; 4],
    },
    /// A MADT entry (at this offset in the table) whose length is too small for its type or
    /// runs past the end of the table.
    BadMadtEntry {
        offset: u32,
    },
    /// An SRAT entry (at this offset in the table) whose length is too small for its type or
    /// runs past the end of the table.
    BadSratEntry {
        offset: u32,
    },
    /// The SLIT is too short for its matrix of `localities`² distances.
    SlitTooShort {
        localities: u64,
        length: u32,
    },
    /// A distance asked for between localities of which at least one is not in the SLIT.
    LocalityOutOfRange {
        from: u64,
        to: u64,
        localities: u64,
    },
    /// The FADT names no PM1a control register (and the machine is not hardware-reduced).
    NoPm1aControl,
    /// The FADT of a hardware-reduced machine names no sleep control register.
    NoSleepControl,
    /// A sleep register that is not a 16-bit I/O port (`space` is its Generic Address
    /// Structure's address space: 0 memory, 1 I/O).
    SleepRegisterNotAPort {
        register: SleepRegister,
        space: u8,
        address: u64,
    },
    /// The FADT gives no DSDT address.
    NoDsdt,
    /// AML that could not be read on through.
    Aml(AmlError),
    /// The DSDT defines no `\_S5`: in all of it, or, if `unread` says where the walk could not
    /// read on, in all it could read.
    NoS5 {
        unread: Option<AmlError>,
    },
    /// The `\_S5` defined at `offset` in the DSDT gives no sleep types.
    BadS5 {
        offset: u32,
        problem: S5Problem,
    },
}

impl From<MemError> for AcpiError {
    fn from(error: MemError) -> Self {
        AcpiError::Unreadable(error)
    }
}

/// A table signature, shown as text.
struct Signature<'a>(&'a [u8; 4]);

impl fmt::Display for Signature<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcpiError::Unreadable(error) => write!(f, "ACPI table unreadable: {error}"),
            AcpiError::RsdpTooShort { len } => {
                write!(
                    f,
                    "RSDP of {len} bytes is shorter than the {RSDP_V1_LEN} of ACPI 1.0"
                )
            }
            AcpiError::BadRsdpSignature => write!(f, "RSDP lacks the \"RSD PTR \" signature"),
            AcpiError::BadRsdpChecksum => write!(f, "RSDP checksum does not sum to zero"),
            AcpiError::RsdpNotFound => {
                write!(
                    f,
                    "no RSDP in the boot information, the EBDA or the BIOS area"
                )
            }
            AcpiError::BadSignature { expected, found } => write!(
                f,
                "expected ACPI table {}, found {}",
                Signature(expected),
                Signature(found)
            ),
            AcpiError::BadLength { signature, length } => write!(
                f,
                "ACPI table {} has length {length}, too short for its fields",
                Signature(signature)
            ),
            AcpiError::BadChecksum { signature } => {
                write!(
                    f,
                    "ACPI table {} checksum does not sum to zero",
                    Signature(signature)
                )
            }
            AcpiError::TableNotFound { signature } => {
                write!(f, "no ACPI table {} in the RSDT/XSDT", Signature(signature))
            }
            AcpiError::BadMadtEntry { offset } => write!(
                f,
                "MADT entry at offset {offset} is too short for its type or runs past the table"
            ),
            AcpiError::BadSratEntry { offset } => write!(
                f,
                "SRAT entry at offset {offset} is too short for its type or runs past the table"
            ),
            AcpiError::SlitTooShort { localities, length } => write!(
                f,
                "SLIT of length {length} is too short for {localities}x{localities} distances"
            ),
            AcpiError::LocalityOutOfRange {
                from,
                to,
                localities,
            } => write!(
                f,
                "SLIT distance from locality {from} to {to} asked for, but it has {localities}"
            ),
            AcpiError::NoPm1aControl => write!(f, "FADT gives no PM1a control register"),
            AcpiError::NoSleepControl => write!(
                f,
                "FADT of a hardware-reduced machine gives no sleep control register"
            ),
            AcpiError::SleepRegisterNotAPort {
                register,
                space,
                address,
            } => {
                let register = match register {
                    SleepRegister::Pm1aControl => "PM1a control",
                    SleepRegister::Pm1bControl => "PM1b control",
                    SleepRegister::SleepControl => "sleep control",
                };
                let space = match *space {
                    GenericAddress::SYSTEM_MEMORY => "in system memory",
                    GenericAddress::SYSTEM_IO => "an I/O port past 0xffff",
                    _ => "in an address space other than memory or I/O",
                };
                write!(
                    f,
                    "FADT {register} register {address:#x} is {space}; Atoll writes sleep registers only as I/O ports"
                )
            }
            AcpiError::NoDsdt => write!(f, "FADT gives no DSDT address"),
            AcpiError::Aml(error) => write!(f, "DSDT: {error}"),
            AcpiError::NoS5 { unread: None } => write!(f, "the DSDT defines no \\_S5 object"),
            AcpiError::NoS5 {
                unread: Some(error),
            } => write!(
                f,
                "no \\_S5 object in what could be read of the DSDT: the walk stopped at {error}, and \\_S5 may lie in the rest of that scope"
            ),
            AcpiError::BadS5 { offset, problem } => {
                write!(
                    f,
                    "the DSDT's \\_S5 at offset {offset:#x} gives no sleep types: {problem}"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests;
