//! The walk: a table's term list read in order, object by object, entering
//! every scope (Scope, Device, Processor, PowerResource, ThermalZone, and
//! the branch of an If that a constant predicate takes), skipping every
//! object it does not need by its encoded length (methods' bodies, buffers,
//! packages, fields), until the first definition of `\_S5`.
//!
//! Where it meets an opcode it cannot size, it gives up on the rest of the
//! enclosing scope only, and goes on after that scope, which has a length
//! of its own; the first such gap is kept, so that "not found" can say
//! where `\_S5` might have been.

use super::name::{self, Path, Segment};
use super::stream::Stream;
use super::{AmlError, AmlProblem, S5Problem};
use crate::PhysMem;
use crate::acpi::AcpiError;

const S5: Segment = *b"_S5_";
/// How deep scopes and expressions may nest. Real tables stay far below;
/// the bound keeps a hostile one from exhausting the kernel's stack.
const MOST_DEPTH: u32 = 32;

const ZERO_OP: u8 = 0x00;
const ONE_OP: u8 = 0x01;
const ALIAS_OP: u8 = 0x06;
const NAME_OP: u8 = 0x08;
const BYTE_PREFIX: u8 = 0x0A;
const WORD_PREFIX: u8 = 0x0B;
const DWORD_PREFIX: u8 = 0x0C;
const STRING_PREFIX: u8 = 0x0D;
const QWORD_PREFIX: u8 = 0x0E;
const SCOPE_OP: u8 = 0x10;
const BUFFER_OP: u8 = 0x11;
const PACKAGE_OP: u8 = 0x12;
const VAR_PACKAGE_OP: u8 = 0x13;
const METHOD_OP: u8 = 0x14;
const EXTERNAL_OP: u8 = 0x15;
const EXT_PREFIX: u8 = 0x5B;
const LOCAL0: u8 = 0x60;
const ARG6: u8 = 0x6E;
const MATCH_OP: u8 = 0x89;
const CREATE_DWORD_FIELD_OP: u8 = 0x8A;
const CREATE_BIT_FIELD_OP: u8 = 0x8D;
const CREATE_QWORD_FIELD_OP: u8 = 0x8F;
const LAND_OP: u8 = 0x90;
const LOR_OP: u8 = 0x91;
const LNOT_OP: u8 = 0x92;
const LEQUAL_OP: u8 = 0x93;
const LGREATER_OP: u8 = 0x94;
const LLESS_OP: u8 = 0x95;
const IF_OP: u8 = 0xA0;
const ELSE_OP: u8 = 0xA1;
const WHILE_OP: u8 = 0xA2;
const RETURN_OP: u8 = 0xA4;
const ONES_OP: u8 = 0xFF;

// After EXT_PREFIX.
const MUTEX_OP: u8 = 0x01;
const EVENT_OP: u8 = 0x02;
const CREATE_FIELD_OP: u8 = 0x13;
const ACQUIRE_OP: u8 = 0x23;
const FATAL_OP: u8 = 0x32;
const OP_REGION_OP: u8 = 0x80;
const FIELD_OP: u8 = 0x81;
const DEVICE_OP: u8 = 0x82;
const PROCESSOR_OP: u8 = 0x83;
const POWER_RES_OP: u8 = 0x84;
const THERMAL_ZONE_OP: u8 = 0x85;
const INDEX_FIELD_OP: u8 = 0x86;
const BANK_FIELD_OP: u8 = 0x87;
const DATA_REGION_OP: u8 = 0x88;

// The first byte of a FieldList element that is not a NamedField.
const RESERVED_FIELD: u8 = 0x00;
const ACCESS_FIELD: u8 = 0x01;
const CONNECT_FIELD: u8 = 0x02;
const EXTENDED_ACCESS_FIELD: u8 = 0x03;

/// What an expression is known to be without running anything.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Value {
    Integer(u64),
    /// A string, buffer, package, name, local, argument, or a result that
    /// depends on one.
    Other,
}

/// The operands, each a TermArg (a target or a SuperName reads as one),
/// of the opcodes that need no special reading; `None` for opcodes this
/// walk cannot size.
fn operands(op: u8) -> Option<u8> {
    Some(match op {
        // Continue, Noop, Break, BreakPoint.
        0x9F | 0xA3 | 0xA5 | 0xCC => 0,
        // RefOf, Increment, Decrement, DerefOf, SizeOf, ObjectType, Return.
        0x71 | 0x75 | 0x76 | 0x83 | 0x87 | 0x8E | RETURN_OP => 1,
        // Store, Not, FindSetLeftBit, FindSetRightBit, Notify, ToBuffer,
        // ToDecimalString, ToHexString, ToInteger, CopyObject.
        0x70 | 0x80 | 0x81 | 0x82 | 0x86 | 0x96..=0x99 | 0x9D => 2,
        // Add, Concat, Subtract, Multiply, ShiftLeft, ShiftRight, And,
        // Nand, Or, Nor, Xor, ConcatRes, Mod, Index, ToString.
        0x72..=0x74 | 0x77 | 0x79..=0x7F | 0x84 | 0x85 | 0x88 | 0x9C => 3,
        // Divide, Mid.
        0x78 | 0x9E => 4,
        _ => return None,
    })
}

/// The same, for the opcodes after the extended prefix.
fn extended_operands(op: u8) -> Option<u8> {
    Some(match op {
        // Revision, Debug, Timer.
        0x30 | 0x31 | 0x33 => 0,
        // Stall, Sleep, Signal, Reset, Release, Unload.
        0x21 | 0x22 | 0x24 | 0x26 | 0x27 | 0x2A => 1,
        // CondRefOf, Load, Wait, FromBCD, ToBCD.
        0x12 | 0x20 | 0x25 | 0x28 | 0x29 => 2,
        // LoadTable.
        0x1F => 6,
        _ => return None,
    })
}

/// What a scope-like object is: a Scope names an object that exists; a
/// Device, Processor, PowerResource or ThermalZone defines one, with
/// `fixed` bytes of fields before its term list.
#[derive(Clone, Copy)]
enum Scope {
    Existing,
    Defined { fixed: u32 },
}

/// Where a walk is: the scope names resolve in, how deep it is, and
/// whether an If it could not decide encloses it.
#[derive(Clone, Copy)]
struct Place {
    scope: Path,
    depth: u32,
    conditional: bool,
}

impl Place {
    fn inside(self, scope: Path, offset: u32) -> Result<Place, AcpiError> {
        if self.depth >= MOST_DEPTH {
            return Err(gap(offset, AmlProblem::TooDeep));
        }
        Ok(Place {
            scope,
            depth: self.depth + 1,
            ..self
        })
    }

    fn deeper(self, offset: u32) -> Result<Place, AcpiError> {
        self.inside(self.scope, offset)
    }
}

fn gap(offset: u32, problem: AmlProblem) -> AcpiError {
    AcpiError::Aml(AmlError { offset, problem })
}

fn bad_s5(offset: u32, problem: S5Problem) -> AcpiError {
    AcpiError::BadS5 { offset, problem }
}

/// Whether `path`, just defined at `at`, is `\_S5`; an error if it may
/// be and the walk cannot tell.
fn defines_s5(path: Path, at: u32) -> Result<bool, AcpiError> {
    if path.may_be_root_s(S5) {
        return Err(bad_s5(at, S5Problem::UncertainScope));
    }
    Ok(path.is(&[S5]))
}

/// Fails if `path`, defined at `at` as something other than a package
/// or a method, is (or may be) `\_S5`.
fn not_s5(path: Path, at: u32) -> Result<(), AcpiError> {
    match defines_s5(path, at)? {
        true => Err(bad_s5(at, S5Problem::NotAPackage)),
        false => Ok(()),
    }
}

/// A walk of one table for `\_S5`.
pub(super) struct Walk<'s, 'm, M> {
    stream: &'s mut Stream<'m, M>,
    /// The bits an integer has: a table of revision 1 has 32-bit integers
    /// (ACPI's DefinitionBlock ComplianceRevision), so Ones is 0xFFFFFFFF
    /// and wider constants are cut, as ACPICA does.
    integer_mask: u64,
    /// The first part of the table the walk could not read through.
    pub(super) gap: Option<AmlError>,
}

impl<'s, 'm, M: PhysMem> Walk<'s, 'm, M> {
    /// A walk of the table `stream` reads, of this revision.
    pub(super) fn new(stream: &'s mut Stream<'m, M>, revision: u8) -> Self {
        let integer_mask = match revision {
            0 | 1 => u64::from(u32::MAX),
            _ => u64::MAX,
        };
        Walk {
            stream,
            integer_mask,
            gap: None,
        }
    }

    /// The sleep types of the first `\_S5` defined in the stream's term
    /// list, or `None` if it defines none.
    pub(super) fn s5(&mut self) -> Result<Option<(u8, u8)>, AcpiError> {
        let root = Place {
            scope: Path::ROOT,
            depth: 0,
            conditional: false,
        };
        self.term_list(root)
    }

    /// Walks terms to the stream's limit. A gap ends the list, not the walk.
    fn term_list(&mut self, place: Place) -> Result<Option<(u8, u8)>, AcpiError> {
        while !self.stream.at_end() {
            match self.term(place) {
                Ok(Some(found)) => return Ok(Some(found)),
                Ok(None) => {}
                Err(AcpiError::Aml(error)) => {
                    self.gap.get_or_insert(error);
                    return Ok(None);
                }
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }

    fn term(&mut self, place: Place) -> Result<Option<(u8, u8)>, AcpiError> {
        let at = self.stream.pos();
        match self.stream.peek()? {
            NAME_OP => {
                self.stream.byte()?;
                let path = name::read_name(self.stream, place.scope)?;
                if defines_s5(path, at)? {
                    return self
                        .defined(at, place, |walk| walk.s5_package(place))
                        .map(Some);
                }
                self.term_arg(place.deeper(at)?)?;
            }
            METHOD_OP => {
                self.stream.byte()?;
                let end = self.stream.package_end()?;
                return self.within(end, |walk| {
                    let path = name::read_name(walk.stream, place.scope)?;
                    if !defines_s5(path, at)? {
                        return Ok(None);
                    }
                    walk.defined(at, place, |walk| walk.s5_method(at, place))
                        .map(Some)
                });
            }
            SCOPE_OP => {
                self.stream.byte()?;
                return self.scope(at, place, Scope::Existing);
            }
            IF_OP => {
                self.stream.byte()?;
                return self.if_else(place);
            }
            // An Else after no If, or a loop: what runs in them is not
            // walked.
            ELSE_OP | WHILE_OP => {
                self.stream.byte()?;
                let end = self.stream.package_end()?;
                self.within(end, |_| Ok(()))?;
            }
            ALIAS_OP => {
                self.stream.byte()?;
                name::read_name(self.stream, place.scope)?;
                let alias = name::read_name(self.stream, place.scope)?;
                not_s5(alias, at)?;
            }
            CREATE_DWORD_FIELD_OP..=CREATE_BIT_FIELD_OP | CREATE_QWORD_FIELD_OP => {
                // The buffer and the index, then the field's name.
                self.stream.byte()?;
                self.term_arg(place.deeper(at)?)?;
                self.term_arg(place.deeper(at)?)?;
                let field = name::read_name(self.stream, place.scope)?;
                not_s5(field, at)?;
            }
            EXTERNAL_OP => {
                self.stream.byte()?;
                name::read_name(self.stream, place.scope)?;
                self.stream.skip(2)?;
            }
            EXT_PREFIX => return self.extended_term(at, place),
            _ => {
                self.term_arg(place.deeper(at)?)?;
            }
        }
        Ok(None)
    }

    /// The named objects and scopes after the extended prefix; the rest are
    /// expressions.
    fn extended_term(&mut self, at: u32, place: Place) -> Result<Option<(u8, u8)>, AcpiError> {
        let named = |walk: &mut Self| -> Result<(), AcpiError> {
            let path = name::read_name(walk.stream, place.scope)?;
            not_s5(path, at)
        };
        match self.stream.peek_second()? {
            DEVICE_OP | THERMAL_ZONE_OP => {
                self.stream.skip(2)?;
                return self.scope(at, place, Scope::Defined { fixed: 0 });
            }
            PROCESSOR_OP => {
                self.stream.skip(2)?;
                // ProcID, PblkAddr (a dword), PblkLen.
                return self.scope(at, place, Scope::Defined { fixed: 6 });
            }
            POWER_RES_OP => {
                self.stream.skip(2)?;
                // SystemLevel, ResourceOrder (a word).
                return self.scope(at, place, Scope::Defined { fixed: 3 });
            }
            kind @ (FIELD_OP | INDEX_FIELD_OP | BANK_FIELD_OP) => {
                self.stream.skip(2)?;
                let end = self.stream.package_end()?;
                self.within(end, |walk| {
                    // The region (or the index and data fields, or the
                    // region and the bank field), then for a BankField the
                    // bank's value, then the field flags.
                    name::read_name(walk.stream, place.scope)?;
                    if kind != FIELD_OP {
                        name::read_name(walk.stream, place.scope)?;
                    }
                    if kind == BANK_FIELD_OP {
                        walk.term_arg(place.deeper(at)?)?;
                    }
                    walk.stream.skip(1)?;
                    walk.field_list(at, place)
                })?;
            }
            CREATE_FIELD_OP => {
                // The buffer, the bit index and the bit count, then the
                // field's name.
                self.stream.skip(2)?;
                for _ in 0..3 {
                    self.term_arg(place.deeper(at)?)?;
                }
                named(self)?;
            }
            OP_REGION_OP => {
                self.stream.skip(2)?;
                named(self)?;
                // The region space, then its offset and length.
                self.stream.skip(1)?;
                self.term_arg(place.deeper(at)?)?;
                self.term_arg(place.deeper(at)?)?;
            }
            DATA_REGION_OP => {
                self.stream.skip(2)?;
                named(self)?;
                for _ in 0..3 {
                    self.term_arg(place.deeper(at)?)?;
                }
            }
            MUTEX_OP => {
                self.stream.skip(2)?;
                named(self)?;
                self.stream.skip(1)?;
            }
            EVENT_OP => {
                self.stream.skip(2)?;
                named(self)?;
            }
            _ => {
                self.term_arg(place.deeper(at)?)?;
            }
        }
        Ok(None)
    }

    /// A Scope or a scope-like named object, after its opcode: PkgLength,
    /// the name, the object's fixed fields, then a term list in the named
    /// scope.
    fn scope(&mut self, at: u32, place: Place, kind: Scope) -> Result<Option<(u8, u8)>, AcpiError> {
        let end = self.stream.package_end()?;
        self.within(end, |walk| {
            let path = match kind {
                Scope::Existing => name::read_scope_name(walk.stream, place.scope)?,
                Scope::Defined { fixed } => {
                    let path = name::read_name(walk.stream, place.scope)?;
                    not_s5(path, at)?;
                    walk.stream.skip(fixed)?;
                    path
                }
            };
            walk.term_list(place.inside(path, at)?)
        })
    }

    /// The elements of a Field, IndexField or BankField defined at `at`:
    /// each named field unit is a definition too.
    fn field_list(&mut self, at: u32, place: Place) -> Result<(), AcpiError> {
        while !self.stream.at_end() {
            match self.stream.peek()? {
                // A ReservedField: its width in bits, encoded as a PkgLength.
                RESERVED_FIELD => {
                    self.stream.byte()?;
                    self.stream.pkg_length()?;
                }
                // An AccessField: the access type and attribute.
                ACCESS_FIELD => self.stream.skip(3)?,
                // A ConnectField: a name, or a buffer.
                CONNECT_FIELD => {
                    self.stream.byte()?;
                    self.term_arg(place.deeper(at)?)?;
                }
                // An ExtendedAccessField: type, attribute and length.
                EXTENDED_ACCESS_FIELD => self.stream.skip(4)?,
                // A NamedField: a segment, then its width in bits.
                _ => {
                    let unit = name::read_name(self.stream, place.scope)?;
                    not_s5(unit, at)?;
                    self.stream.pkg_length()?;
                }
            }
        }
        Ok(())
    }

    /// An If, after its opcode, and the Else that may follow it. A constant
    /// predicate picks the branch that is walked; any other makes both
    /// conditional: a `\_S5` in them cannot be decided.
    fn if_else(&mut self, place: Place) -> Result<Option<(u8, u8)>, AcpiError> {
        let at = self.stream.pos();
        let end = self.stream.package_end()?;
        let mut predicate = None;
        let found = self.within(end, |walk| {
            let value = walk.term_arg(place.deeper(at)?)?;
            predicate = Some(value);
            let branch = Place {
                conditional: place.conditional || value == Value::Other,
                ..place.deeper(at)?
            };
            match value {
                Value::Integer(0) => Ok(None),
                _ => walk.term_list(branch),
            }
        });
        let found = match found {
            Err(AcpiError::Aml(error)) => {
                // The predicate could not be read: neither branch is walked.
                self.gap.get_or_insert(error);
                None
            }
            other => other?,
        };
        if found.is_some() || self.stream.at_end() || self.stream.peek()? != ELSE_OP {
            return Ok(found);
        }
        self.stream.byte()?;
        let end = self.stream.package_end()?;
        self.within(end, |walk| match predicate {
            Some(Value::Integer(0)) => walk.term_list(place.deeper(at)?),
            Some(Value::Other) => walk.term_list(Place {
                conditional: true,
                ..place.deeper(at)?
            }),
            Some(Value::Integer(_)) | None => Ok(None),
        })
    }

    /// Evaluates the definition of `\_S5` at `at`, unless an If this walk
    /// could not decide encloses it.
    fn defined(
        &mut self,
        at: u32,
        place: Place,
        evaluate: impl FnOnce(&mut Self) -> Result<(u8, u8), AcpiError>,
    ) -> Result<(u8, u8), AcpiError> {
        if place.conditional {
            return Err(bad_s5(at, S5Problem::Conditional));
        }
        evaluate(self).map_err(|error| match error {
            AcpiError::Aml(_) => bad_s5(at, S5Problem::Malformed),
            other => other,
        })
    }

    /// `\_S5` as a method: its body must start by returning a package.
    fn s5_method(&mut self, at: u32, place: Place) -> Result<(u8, u8), AcpiError> {
        // The method's flags.
        self.stream.skip(1)?;
        if self.stream.at_end() || self.stream.byte()? != RETURN_OP {
            return Err(bad_s5(at, S5Problem::MethodNotConstant));
        }
        self.s5_package(place)
    }

    /// SLP_TYPa and SLP_TYPb from a package of integers: its first two
    /// elements, or, from a package of one, that element's low two bytes.
    /// As in ACPICA, the package holds what it declares and lists both:
    /// elements listed past the declared count are cut, and elements
    /// declared but not listed are dropped rather than read as
    /// uninitialized (`Package (2) { 5 }` is a package of one); a bare
    /// integer is a package of one.
    fn s5_package(&mut self, place: Place) -> Result<(u8, u8), AcpiError> {
        let at = self.stream.pos();
        let op = self.stream.peek()?;
        let (first, second) = match op {
            PACKAGE_OP | VAR_PACKAGE_OP => {
                self.stream.byte()?;
                let end = self.stream.package_end()?;
                self.within(end, |walk| {
                    // The declared count: a byte, or for a VarPackage an
                    // expression.
                    let declared = match op {
                        PACKAGE_OP => u64::from(walk.stream.byte()?),
                        _ => match walk.term_arg(place.deeper(at)?)? {
                            Value::Integer(count) => count,
                            Value::Other => return Err(bad_s5(at, S5Problem::CountNotConstant)),
                        },
                    };
                    let element = |walk: &mut Self, index: u64| {
                        if index >= declared || walk.stream.at_end() {
                            return Ok(None);
                        }
                        match walk.term_arg(place.deeper(at)?)? {
                            Value::Integer(value) => Ok(Some(value)),
                            Value::Other => Err(bad_s5(at, S5Problem::NotAnInteger)),
                        }
                    };
                    match element(walk, 0)? {
                        Some(first) => Ok((first, element(walk, 1)?)),
                        None => Err(bad_s5(at, S5Problem::Empty)),
                    }
                })?
            }
            // ACPICA wraps an integer where a package belongs in a package
            // of one.
            _ => match self.term_arg(place.deeper(at)?)? {
                Value::Integer(value) => (value, None),
                Value::Other => return Err(bad_s5(at, S5Problem::NotAPackage)),
            },
        };
        let (a, b) = match second {
            Some(second) => (first, second),
            None => (first & 0xFF, first >> 8 & 0xFF),
        };
        let sleep_type = |value: u64| {
            u8::try_from(value)
                .ok()
                .filter(|value| *value <= 7)
                .ok_or(bad_s5(at, S5Problem::SleepTypeTooWide))
        };
        Ok((sleep_type(a)?, sleep_type(b)?))
    }

    /// Reads `read` with `end` as the limit, and goes on from `end`.
    fn within<T>(
        &mut self,
        end: u32,
        read: impl FnOnce(&mut Self) -> Result<T, AcpiError>,
    ) -> Result<T, AcpiError> {
        let outer = self.stream.limit();
        self.stream.set_limit(end);
        let result = read(self);
        self.stream.set_limit(outer);
        self.stream.seek(end);
        result
    }

    /// Reads one TermArg (an expression or a data object), giving its value
    /// where it is a constant integer or a logical operator on constants.
    fn term_arg(&mut self, place: Place) -> Result<Value, AcpiError> {
        let at = self.stream.pos();
        let op = self.stream.peek()?;
        if name::starts_name(op) {
            // A reference, or a method call read as one (its arguments,
            // if it has any, follow as terms of their own).
            name::read_name(self.stream, place.scope)?;
            return Ok(Value::Other);
        }
        self.stream.byte()?;
        let operand = |walk: &mut Self| walk.term_arg(place.deeper(at)?);
        let value = match op {
            ZERO_OP => Value::Integer(0),
            ONE_OP => Value::Integer(1),
            ONES_OP => Value::Integer(u64::MAX),
            BYTE_PREFIX => Value::Integer(self.stream.le::<1>()?),
            WORD_PREFIX => Value::Integer(self.stream.le::<2>()?),
            DWORD_PREFIX => Value::Integer(self.stream.le::<4>()?),
            QWORD_PREFIX => Value::Integer(self.stream.le::<8>()?),
            STRING_PREFIX => {
                while self.stream.byte()? != 0 {}
                Value::Other
            }
            BUFFER_OP | PACKAGE_OP | VAR_PACKAGE_OP => {
                let end = self.stream.package_end()?;
                self.within(end, |_| Ok(()))?;
                Value::Other
            }
            LOCAL0..=ARG6 => Value::Other,
            LNOT_OP => match operand(self)? {
                Value::Integer(value) => Value::Integer(if value == 0 { u64::MAX } else { 0 }),
                Value::Other => Value::Other,
            },
            LAND_OP | LOR_OP | LEQUAL_OP | LGREATER_OP | LLESS_OP => {
                match (operand(self)?, operand(self)?) {
                    (Value::Integer(left), Value::Integer(right)) => {
                        let holds = match op {
                            LAND_OP => left != 0 && right != 0,
                            LOR_OP => left != 0 || right != 0,
                            LEQUAL_OP => left == right,
                            LGREATER_OP => left > right,
                            _ => left < right,
                        };
                        Value::Integer(if holds { u64::MAX } else { 0 })
                    }
                    _ => Value::Other,
                }
            }
            MATCH_OP => {
                // SearchPkg, then twice a match opcode (a byte) and its
                // operand, then StartIndex.
                operand(self)?;
                for _ in 0..2 {
                    self.stream.skip(1)?;
                    operand(self)?;
                }
                operand(self)?;
                Value::Other
            }
            EXT_PREFIX => {
                let extended = self.stream.byte()?;
                match extended {
                    ACQUIRE_OP => {
                        operand(self)?;
                        // The timeout, a word.
                        self.stream.skip(2)?;
                    }
                    FATAL_OP => {
                        // FatalType (a byte), FatalCode (a dword), then an
                        // operand.
                        self.stream.skip(5)?;
                        operand(self)?;
                    }
                    _ => {
                        let count = extended_operands(extended).ok_or(gap(
                            at,
                            AmlProblem::Unsupported {
                                opcode: u16::from_be_bytes([EXT_PREFIX, extended]),
                            },
                        ))?;
                        for _ in 0..count {
                            operand(self)?;
                        }
                    }
                }
                Value::Other
            }
            _ => {
                let count = operands(op).ok_or(gap(
                    at,
                    AmlProblem::Unsupported {
                        opcode: u16::from(op),
                    },
                ))?;
                for _ in 0..count {
                    operand(self)?;
                }
                Value::Other
            }
        };
        // ACPI's TRUE is Ones, and both are as wide as the table's integers.
        Ok(match value {
            Value::Integer(value) => Value::Integer(value & self.integer_mask),
            Value::Other => Value::Other,
        })
    }
}
