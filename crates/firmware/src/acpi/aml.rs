//! The `\_S5` (soft off) object of the DSDT, found by walking the AML namespace as ACPICA loads
//! it: the first definition whose path, resolved from the root, is `\_S5`. A `Name` gives a
//! package of integers; a `Method` must return one as its first statement.
//!
//! Hand-rolled, not a crate: the AML interpreter of rust-osdev now lives in the `acpi` crate,
//! whose 6.x releases need nightly Rust, and the older `aml` crate keeps its namespace on the
//! heap, while this crate allocates nothing (the kernel reads the firmware before it has a heap)
//! and needs one object. So this is a walk of the AML subset that holds `\_S5`, not an
//! interpreter: it enters Scope, Device, Processor, PowerResource and ThermalZone; skips every
//! other object by its encoded length (Buffer, Package, Field, the bodies of methods and loops);
//! reads the operands of expressions to skip them, and evaluates only integer constants and the
//! logical operators on them, which is what decides an `If` at load time in practice. What it
//! does not support is said in `docs/acpi.md`.

mod name;
mod stream;
mod walk;

use core::fmt;

use super::{AcpiError, HEADER_LEN, TableAt};
use crate::PhysMem;

/// SLP_TYPa and SLP_TYPb of the `\_S5` (soft off) sleep state, from the DSDT at `dsdt` (checked
/// for signature, length and checksum). Write `SLP_TYPx << 10 | SLP_EN` to the PM1x control
/// registers, or `SLP_TYPa << 2 | SLP_EN` to a hardware-reduced machine's sleep control register.
pub fn s5_sleep_types(mem: &impl PhysMem, dsdt: u64) -> Result<(u8, u8), AcpiError> {
    let table = TableAt::read(mem, dsdt, b"DSDT")?;
    let mut stream = stream::Stream::new(mem, dsdt, HEADER_LEN, table.length);
    let mut walk = walk::Walk::new(&mut stream, table.revision);
    match walk.s5()? {
        Some(sleep_types) => Ok(sleep_types),
        None => Err(AcpiError::NoS5 { unread: walk.gap }),
    }
}

/// Where and why a walk could not read on through the AML. Offsets are from the table's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmlError {
    pub offset: u32,
    pub problem: AmlProblem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmlProblem {
    /// An object runs past the object or table that holds it.
    Truncated,
    /// Bytes where a name should be that are not one.
    BadName,
    /// An opcode the walk does not know the length of (two bytes for the extended opcodes,
    /// 0x5B first).
    Unsupported { opcode: u16 },
    /// Scopes or expressions nested deeper than the walk follows.
    TooDeep,
}

/// Why the `\_S5` object that was found gives no sleep types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S5Problem {
    /// It is not a package (or a method returning one).
    NotAPackage,
    /// A package that declares or lists no elements.
    Empty,
    /// A VarPackage whose element count is not a constant.
    CountNotConstant,
    /// SLP_TYPa or SLP_TYPb is not an integer constant (a name or a string, say).
    NotAnInteger,
    /// A sleep type does not fit SLP_TYP's three bits.
    SleepTypeTooWide,
    /// A method whose body does not start by returning a package.
    MethodNotConstant,
    /// It is defined under an `If` whose predicate is not a constant, so whether it exists
    /// depends on running AML.
    Conditional,
    /// It is defined inside a `Scope` whose name ACPICA looks up in the enclosing scopes, with
    /// `^` climbing out of it: where it lands depends on which objects exist.
    UncertainScope,
    /// Its encoding is cut short or malformed.
    Malformed,
}

impl fmt::Display for AmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = self.offset;
        match self.problem {
            AmlProblem::Truncated => {
                write!(
                    f,
                    "an AML object at offset {offset:#x} runs past what holds it"
                )
            }
            AmlProblem::BadName => write!(f, "a malformed AML name at offset {offset:#x}"),
            AmlProblem::Unsupported { opcode } => write!(
                f,
                "AML opcode {opcode:#x} at offset {offset:#x}, which the walk cannot size"
            ),
            AmlProblem::TooDeep => write!(f, "AML nested too deep at offset {offset:#x}"),
        }
    }
}

impl fmt::Display for S5Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            S5Problem::NotAPackage => "it is not a package",
            S5Problem::Empty => "its package is empty",
            S5Problem::CountNotConstant => "its package's element count is not a constant",
            S5Problem::NotAnInteger => "SLP_TYPa or SLP_TYPb is not an integer constant",
            S5Problem::SleepTypeTooWide => "a sleep type does not fit SLP_TYP's three bits",
            S5Problem::MethodNotConstant => {
                "it is a method whose body does not start by returning a package"
            }
            S5Problem::Conditional => "it is defined under an If whose predicate is not a constant",
            S5Problem::UncertainScope => {
                "it is named with ^ from inside a Scope whose place depends on which objects exist"
            }
            S5Problem::Malformed => "its encoding is malformed or cut short",
        })
    }
}

#[cfg(test)]
mod tests;
