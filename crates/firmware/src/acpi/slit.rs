//! The System Locality Information Table ("SLIT"): the relative cost of reaching one locality
//! (NUMA node, numbered as the SRAT's proximity domains) from another, as an N×N matrix of bytes.
//! Distances are read through [`PhysMem`] when asked for, so no heap is needed.

use super::{AcpiError, TableAt};
use crate::{PhysMem, read_u8, read_u64};

/// The header, then the number of localities (u64).
const MATRIX_OFFSET: u32 = 44;

/// The SLIT, checked: the table is long enough for the whole matrix.
pub struct Slit<'m, M: PhysMem> {
    mem: &'m M,
    address: u64,
    localities: u64,
}

impl<'m, M: PhysMem> Slit<'m, M> {
    pub(crate) fn parse(mem: &'m M, table: TableAt) -> Result<Self, AcpiError> {
        table.require_length(MATRIX_OFFSET)?;
        let localities = read_u64(mem, table.address, 36)?;
        let too_short = AcpiError::SlitTooShort {
            localities,
            length: table.length,
        };
        // Firmware sets the count, so N×N may overflow; once it is checked here, every in-range
        // `distance` lies within the table.
        let end = localities
            .checked_mul(localities)
            .and_then(|matrix| matrix.checked_add(u64::from(MATRIX_OFFSET)))
            .ok_or(too_short)?;
        if end > u64::from(table.length) {
            return Err(too_short);
        }
        Ok(Slit {
            mem,
            address: table.address,
            localities,
        })
    }

    /// How many localities the matrix covers; localities are numbered from 0.
    pub fn localities(&self) -> u64 {
        self.localities
    }

    /// The relative cost of reaching memory in locality `to` from a processor in locality
    /// `from`: 10 for a locality to itself, more for farther ones, 255 for unreachable.
    pub fn distance(&self, from: u64, to: u64) -> Result<u8, AcpiError> {
        if from >= self.localities || to >= self.localities {
            return Err(AcpiError::LocalityOutOfRange {
                from,
                to,
                localities: self.localities,
            });
        }
        // Below N×N, which parse checked fits in the table's u32 length: no overflow.
        let entry = from * self.localities + to;
        Ok(read_u8(
            self.mem,
            self.address,
            u64::from(MATRIX_OFFSET) + entry,
        )?)
    }
}
