//! Typed interfaces over URPC: the part Flounder plays in Barrelfish.
//!
//! An interface is declared once, with [`interface!`]: its one-way messages
//! and its rpcs (a request and its reply). The declaration gives a struct per
//! message, one enum of all of them, and their byte layout. [`encode`] cuts a
//! message into 56-byte URPC slot payloads, each with a small header (kind,
//! call id, fragment index and count, length); a [`Reassembler`] puts them
//! back together and rejects, with an error and never a panic, whatever no
//! honest sender writes. A [`Client`] makes split-phase calls: `call` returns
//! a future at once, and the reply, fed in later by whoever owns the receive
//! side, completes it. A [`Server`] hands requests to a handler and sends the
//! replies under the requests' call ids. `docs/iface.md` has the wire format.
//!
//! Nothing here touches a ring or a clock (design §2.3): messages leave
//! through a [`Transport`] (a URPC [`Sender`](atoll_urpc::Sender), or a host's
//! wrapper of one), and received payloads are handed in by the caller.
//!
//! It may depend on `core`, `alloc`, `zerocopy` (the byte layouts) and
//! `atoll-urpc`'s payload, `Full` and `Sender` types; it has no `unsafe`.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod field;
mod frame;
mod macros;
pub mod ping;
mod rpc;

pub use field::{Bytes, BytesWire, Field, FieldError};
pub use frame::{
    DecodeError, Envelope, FRAGMENT_SIZE, Fragments, MAX_FRAGMENTS, MAX_MESSAGE_SIZE, Reassembler,
    Rejected, encode,
};
pub use rpc::{Call, CallError, Client, Outbox, Server, Transport};

use alloc::vec::Vec;

/// The enum of all messages of an interface, as [`interface!`] declares it.
/// Its methods are the plumbing between messages and their bytes; the
/// framing layer calls them, other code rarely needs to.
pub trait Interface: Sized {
    /// This message's kind id: its position in the declaration.
    fn kind(&self) -> u8;
    /// The size of the fields of messages of `kind`, or `None` if no message
    /// of the interface has that kind.
    fn wire_size(kind: u8) -> Option<usize>;
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
    /// reply. A [`Handle`]r returns it.
    type Reply: Answer<Self::Interface>;
    /// The struct's name, for error messages.
    const NAME: &'static str;
    const KIND: u8;
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

/// What a handler returns for a message: `()` for a one-way message, the
/// reply for a request. [`interface!`] implements it for every message.
pub trait Answer<I> {
    /// The reply to send, if any.
    fn into_reply(self) -> Option<I>;
}

impl<I> Answer<I> for () {
    fn into_reply(self) -> Option<I> {
        None
    }
}

/// Handles messages of type `M`: a server implements it for each request
/// and one-way message of its interface.
pub trait Handle<M: Message> {
    fn handle(&mut self, message: M) -> M::Reply;
}

/// Hands a message to the handler `H` for its type; [`interface!`]
/// implements it for every `H` that handles all the interface's requests and
/// one-way messages.
pub trait Dispatch<H>: Interface {
    /// `Ok(reply)`: the handler took the message, and for a request returned
    /// this reply. `Err(message)`: the message is a reply, which handlers do
    /// not take (replies complete [`Call`]s).
    fn dispatch(self, handler: &mut H) -> Result<Option<Self>, Self>;
}

/// What the code that [`interface!`] generates uses; not an API.
#[doc(hidden)]
pub mod __private {
    pub use crate::field::{FieldReader, write_field};
    pub use alloc::vec::Vec;
}
