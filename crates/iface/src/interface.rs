//! The traits an [`interface!`](crate::interface!) declaration implements:
//! one for the enum of all its messages, one for each message, and the
//! role each message plays on a link.

use alloc::vec::Vec;

use crate::error::DecodeError;

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
    /// Every kind is below `KINDS`. An interface that [`interface!`]
    /// generates has exactly the kinds `0..KINDS`.
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
