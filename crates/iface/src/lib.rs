//! Typed interfaces over URPC: the part Flounder plays in Barrelfish.
//!
//! An interface is declared once, with [`interface!`]: its one-way messages
//! and its rpcs (a request and its reply). The declaration gives a struct per
//! message, one enum of all of them, their byte layout, and each message's
//! [`Role`] (a request names the kind of its reply). [`encode`] cuts a
//! message into 56-byte URPC slot payloads, each with a small header (kind,
//! call id, the sender's epoch, fragment index and count, length); a [`Reassembler`] puts them
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

mod error;
mod field;
mod frame;
mod interface;
mod macros;

pub use error::{DecodeError, FieldError, Rejected};
pub use field::{Bytes, BytesWire, Field};
pub use frame::{
    Envelope, FRAGMENT_SIZE, Fragments, MAX_FRAGMENTS, MAX_MESSAGE_SIZE, Reassembler, encode,
};
pub use interface::{Interface, Message, Role};

/// What the code that [`interface!`] generates uses; not an API.
#[doc(hidden)]
pub mod __private {
    pub use crate::field::{FieldReader, write_field};
    pub use alloc::vec::Vec;
}
