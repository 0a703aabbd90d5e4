//! Why bytes do not make a message: errors of the fields and of the
//! framing, each with a `Display` in words.

use core::fmt;

/// Bytes that are not a value of a field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldError {
    /// A `bool` other than 0 or 1.
    NotABool(u8),
    /// A byte string longer than its type allows.
    BytesTooLong { length: u16, max: usize },
    /// Bytes that no value of the field's type encodes to, for a type with
    /// an encoding of its own (a protocol message carried as one field).
    Invalid { type_name: &'static str },
}

impl fmt::Display for FieldError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotABool(value) => write!(formatter, "bool is {value}, not 0 or 1"),
            Self::BytesTooLong { length, max } => {
                write!(formatter, "{length} bytes, more than the {max} allowed")
            }
            Self::Invalid { type_name } => write!(formatter, "not a valid {type_name}"),
        }
    }
}

impl core::error::Error for FieldError {}

/// Why received slots do not make a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// No message of the interface has this kind id.
    UnknownKind(u8),
    /// A header no sender writes: no fragments, an index past the count,
    /// more bytes than a slot holds, or a fragment before the last that is
    /// not full.
    BadFragmentHeader {
        fragment: u8,
        fragments: u8,
        length: u8,
    },
    /// More fragments than messages of this kind ever need.
    TooManyFragments { kind: u8, fragments: u8, max: usize },
    /// More bytes than messages of this kind have.
    TooLong { kind: u8, length: usize, max: usize },
    /// A fragment that neither starts a message nor continues the one in
    /// reassembly under its call id: a fragment went missing, came twice or
    /// out of order, or belongs to another message (another kind, or the
    /// same call id under another epoch). Both are dropped.
    UnexpectedFragment {
        kind: u8,
        fragment: u8,
        fragments: u8,
    },
    /// A message in reassembly was dropped to make room for a new one:
    /// fragments of more than `limit` messages were interleaved, or one
    /// message's last fragments never came.
    TooManyPartial { limit: usize },
    /// A field's bytes are not a value of its type.
    BadField {
        message: &'static str,
        field: &'static str,
        error: FieldError,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKind(kind) => write!(formatter, "unknown message kind {kind}"),
            Self::BadFragmentHeader {
                fragment,
                fragments,
                length,
            } => {
                write!(
                    formatter,
                    "bad fragment header: fragment {fragment} of {fragments}, {length} bytes"
                )
            }
            Self::TooManyFragments {
                kind,
                fragments,
                max,
            } => {
                write!(
                    formatter,
                    "message kind {kind} in {fragments} fragments; it needs at most {max}"
                )
            }
            Self::TooLong { kind, length, max } => {
                write!(
                    formatter,
                    "message kind {kind} of {length} bytes; it has at most {max}"
                )
            }
            Self::UnexpectedFragment {
                kind,
                fragment,
                fragments,
            } => write!(
                formatter,
                "fragment {fragment} of {fragments} (kind {kind}) does not continue a message in reassembly"
            ),
            Self::TooManyPartial { limit } => {
                write!(
                    formatter,
                    "partial message dropped: more than {limit} in reassembly at once"
                )
            }
            Self::BadField {
                message,
                field,
                error,
            } => write!(formatter, "field {message}.{field}: {error}"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// A [`DecodeError`], with the call id of the message it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    pub call: u32,
    pub error: DecodeError,
}

impl fmt::Display for Rejected {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "call {}: {}", self.call, self.error)
    }
}

impl core::error::Error for Rejected {}
