//! Field types and their wire forms: fixed-size little-endian integers,
//! `bool`, byte arrays, and bounded byte strings.

use core::fmt;

use alloc::vec::Vec;
use zerocopy::little_endian::{I16, I32, I64, I128, U16, U32, U64, U128};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{DecodeError, FieldError};
use crate::frame::MAX_MESSAGE_SIZE;

/// A type a message field may have. Its wire form is a plain byte layout,
/// which any bytes fill; `from_wire` rejects the values that are not valid.
pub trait Field: Sized {
    type Wire: FromBytes + IntoBytes + Immutable;
    fn to_wire(&self) -> Self::Wire;
    fn from_wire(wire: Self::Wire) -> Result<Self, FieldError>;
}

/// Integers on the wire: little-endian, unaligned.
macro_rules! little_endian_fields {
    ($($integer:ty => $wire:ty),*) => {$(
        impl Field for $integer {
            type Wire = $wire;
            fn to_wire(&self) -> $wire {
                <$wire>::new(*self)
            }
            fn from_wire(wire: $wire) -> Result<Self, FieldError> {
                Ok(wire.get())
            }
        }
    )*};
}

little_endian_fields!(
    u16 => U16, u32 => U32, u64 => U64, u128 => U128,
    i16 => I16, i32 => I32, i64 => I64, i128 => I128
);

/// Types whose wire form is themselves: every bit pattern is a value.
macro_rules! byte_fields {
    ($($byte:ty),*) => {$(
        impl Field for $byte {
            type Wire = $byte;
            fn to_wire(&self) -> $byte {
                *self
            }
            fn from_wire(wire: $byte) -> Result<Self, FieldError> {
                Ok(wire)
            }
        }
    )*};
}

byte_fields!(u8, i8);

impl<const N: usize> Field for [u8; N] {
    type Wire = [u8; N];
    fn to_wire(&self) -> [u8; N] {
        *self
    }
    fn from_wire(wire: [u8; N]) -> Result<Self, FieldError> {
        Ok(wire)
    }
}

impl Field for bool {
    type Wire = u8;
    fn to_wire(&self) -> u8 {
        u8::from(*self)
    }
    fn from_wire(wire: u8) -> Result<Self, FieldError> {
        match wire {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(FieldError::NotABool(other)),
        }
    }
}

/// A byte string of at most `MAX` bytes. It always takes `2 + MAX` bytes in
/// the layout, but when it is the last field, the unused part is trailing
/// zeros, which are not sent.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bytes<const MAX: usize> {
    length: usize,
    /// Zero past `length`, so that the derived comparisons and the wire
    /// form depend on the contents only.
    bytes: [u8; MAX],
}

impl<const MAX: usize> Bytes<MAX> {
    /// A copy of `bytes`, or `None` if there are more than `MAX`.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        // A longer one could not be in a message, nor its length in a u16.
        const {
            assert!(
                MAX <= MAX_MESSAGE_SIZE,
                "Bytes<MAX> longer than a message can be"
            )
        };
        let mut stored = [0; MAX];
        stored.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(Self {
            length: bytes.len(),
            bytes: stored,
        })
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.length]
    }
}

impl<const MAX: usize> Default for Bytes<MAX> {
    fn default() -> Self {
        Self {
            length: 0,
            bytes: [0; MAX],
        }
    }
}

impl<const MAX: usize> fmt::Debug for Bytes<MAX> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Bytes<{MAX}>({:?})", self.as_slice())
    }
}

/// The wire form of [`Bytes<MAX>`]: the length, then `MAX` bytes.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C, packed)]
pub struct BytesWire<const MAX: usize> {
    length: U16,
    bytes: [u8; MAX],
}

impl<const MAX: usize> Field for Bytes<MAX> {
    type Wire = BytesWire<MAX>;
    fn to_wire(&self) -> BytesWire<MAX> {
        // `new` made sure that MAX, and so the length, fits in a u16.
        BytesWire {
            length: U16::new(self.length as u16),
            bytes: self.bytes,
        }
    }
    fn from_wire(wire: BytesWire<MAX>) -> Result<Self, FieldError> {
        let length = wire.length.get();
        let bytes = wire.bytes;
        bytes
            .get(..usize::from(length))
            .and_then(Self::new)
            .ok_or(FieldError::BytesTooLong { length, max: MAX })
    }
}

/// Appends `field`'s wire form.
pub fn write_field<F: Field>(field: &F, out: &mut Vec<u8>) {
    out.extend_from_slice(field.to_wire().as_bytes());
}

/// Reads the fields of one message in order, from bytes that may stop
/// short: the encoder drops trailing zeros, so missing bytes are zeros.
pub struct FieldReader<'b> {
    message: &'static str,
    bytes: &'b [u8],
}

impl<'b> FieldReader<'b> {
    pub fn new(message: &'static str, bytes: &'b [u8]) -> Self {
        Self { message, bytes }
    }

    pub fn read<F: Field>(&mut self, field: &'static str) -> Result<F, DecodeError> {
        let mut wire = F::Wire::new_zeroed();
        let wire_bytes = wire.as_mut_bytes();
        let size = wire_bytes.len();
        wire_bytes
            .iter_mut()
            .zip(self.bytes)
            .for_each(|(to, from)| *to = *from);
        self.bytes = self.bytes.get(size..).unwrap_or_default();
        F::from_wire(wire).map_err(|error| DecodeError::BadField {
            message: self.message,
            field,
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_longer_than_max_are_refused() {
        assert!(Bytes::<3>::new(b"abc").is_some());
        assert!(Bytes::<3>::new(b"abcd").is_none());
    }

    #[test]
    fn a_wire_length_past_max_is_an_error() {
        let wire = BytesWire::<2> {
            length: U16::new(3),
            bytes: [1, 2],
        };
        assert_eq!(
            Bytes::from_wire(wire),
            Err(FieldError::BytesTooLong { length: 3, max: 2 })
        );
    }

    #[test]
    fn bytes_past_the_length_do_not_count() {
        let wire = BytesWire::<4> {
            length: U16::new(1),
            bytes: [7, 8, 9, 10],
        };
        assert_eq!(Bytes::from_wire(wire), Ok(Bytes::<4>::new(&[7]).unwrap()));
    }

    #[test]
    fn a_short_input_reads_as_zeros() {
        let mut reader = FieldReader::new("Test", &[0x34, 0x12, 1]);
        assert_eq!(reader.read::<u32>("a"), Ok(0x0001_1234));
        assert_eq!(reader.read::<u64>("b"), Ok(0));
    }
}
