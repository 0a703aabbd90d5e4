//! Typed interfaces over URPC: the part Flounder plays in Barrelfish.
//!
//! An interface is declared once, with [`interface!`]: its one-way messages
//! and its rpcs (a request and its reply). The declaration gives a struct per
//! message, one enum of all of them, their byte layout, and each message's
//! [`Role`] (a request names the kind of its reply). [`encode`] cuts a
//! message into 56-byte URPC slot payloads, each with a small header (kind,
//! call id, fragment index and count, length); a [`Reassembler`] puts them
//! back together and rejects, with an error and never a panic, whatever no
//! honest sender writes. `docs/iface.md` has the wire format.
//!
//! What a call id means, which reply answers which request, and what happens
//! to a reply nobody waits for any more is the business of the code that
//! owns the link (the monitor's links, `atoll-monitor`); nothing here keeps
//! calls, touches a ring or reads a clock.
//!
//! It may depend on `core`, `alloc`, `zerocopy` (the byte layouts) and
//! `atoll-urpc`'s payload type; it has no `unsafe`.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod field;
mod frame;
mod macros;

pub use field::{Bytes, BytesWire, Field, FieldError};
pub use frame::{
    DecodeError, Envelope, FRAGMENT_SIZE, Fragments, MAX_FRAGMENTS, MAX_MESSAGE_SIZE, Reassembler,
    Rejected, encode,
};

use alloc::vec::Vec;

/// What part a message plays on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A one-way message: sent under call id 0, answered by nothing.
    OneWay,
    /// A request: sent under a fresh call id, answered by one message of
    /// kind `reply` under the same id.
    Request { reply: u8 },
    /// The reply to a request, under the request's call id.
    Reply,
}

/// The enum of all messages of an interface, as [`interface!`] declares it.
/// Its methods are the plumbing between messages and their bytes; the
/// framing layer calls them, and the owner of a link asks [`role`] and
/// [`name`] to route and to report what it received.
///
/// [`role`]: Interface::role
/// [`name`]: Interface::name
pub trait Interface: Sized {
    /// How many kinds of message the interface has; kinds are `0..KINDS`.
    const KINDS: u8;
    /// This message's kind id: its position in the declaration.
    fn kind(&self) -> u8;
    /// The size of the fields of messages of `kind`, or `None` if no message
    /// of the interface has that kind.
    fn wire_size(kind: u8) -> Option<usize>;
    /// What messages of `kind` are for, or `None` for an unknown kind.
    fn role(kind: u8) -> Option<Role>;
    /// The name of messages of `kind` as declared, or `None` for an unknown
    /// kind.
    fn name(kind: u8) -> Option<&'static str>;
    /// Appends the message's fields, in declaration order, packed and
    /// little-endian.
    fn encode_fields(&self, out: &mut Vec<u8>);
    /// Reads a message of `kind` from `fields`; bytes missing at the end
    /// read as zeros.
    fn decode_fields(kind: u8, fields: &[u8]) -> Result<Self, DecodeError>;
}

/// One message of an interface, as [`interface!`] declares it.
pub trait Message: Sized {
    type Interface: Interface;
    /// For an rpc request, its reply; `()` for a one-way message and for a
    /// reply.
    type Reply;
    /// The struct's name, for error messages.
    const NAME: &'static str;
    const KIND: u8;
    const ROLE: Role;
    /// Bytes of the fields on the wire, before trailing zeros are dropped.
    const WIRE_SIZE: usize;

    /// The interface enum's variant for this message (as `From` does).
    fn into_interface(self) -> Self::Interface;
    /// The message, if `message` is one of this kind; else `message` back.
    fn from_interface(message: Self::Interface) -> Result<Self, Self::Interface>;
    /// See [`Interface::encode_fields`].
    fn encode_fields(&self, out: &mut Vec<u8>);
    /// See [`Interface::decode_fields`].
    fn decode_fields(fields: &[u8]) -> Result<Self, DecodeError>;
}

/// What the code that [`interface!`] generates uses; not an API.
#[doc(hidden)]
pub mod __private {
    pub use crate::field::{FieldReader, write_field};
    pub use alloc::vec::Vec;
}
