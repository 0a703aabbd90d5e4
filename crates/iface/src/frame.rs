//! Framing: a message's fields cut into slot payloads, each behind a header,
//! and put back together on the receiving side.

use core::marker::PhantomData;

use alloc::vec::Vec;
use atoll_urpc::{PAYLOAD_SIZE, Payload};
use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{DecodeError, Rejected};
use crate::interface::Interface;

/// The header at the start of every slot payload.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct SlotHeader {
    /// The message's kind id: its position in the interface declaration.
    kind: u8,
    /// This fragment's index, from 0.
    fragment: u8,
    /// How many fragments the message has, at least 1.
    fragments: u8,
    /// Bytes of the message in this slot: `FRAGMENT_SIZE` in every fragment
    /// but the last.
    length: u8,
    /// The call a request starts and its reply answers; 0 for one-way
    /// messages.
    call: U32,
    /// The sender's epoch: the membership view it sent the message in,
    /// which the receiver checks against its own (`atoll-monitor`).
    epoch: U32,
}

/// Bytes of a message that one slot carries after the header.
pub const FRAGMENT_SIZE: usize = PAYLOAD_SIZE - size_of::<SlotHeader>();
/// The most fragments one message can have: the count is a byte.
pub const MAX_FRAGMENTS: usize = u8::MAX as usize;
/// The longest message: every field of every message fits in this many bytes.
pub const MAX_MESSAGE_SIZE: usize = MAX_FRAGMENTS * FRAGMENT_SIZE;

/// A slot payload, seen as its parts.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct Slot {
    header: SlotHeader,
    body: [u8; FRAGMENT_SIZE],
}

/// A message received whole, with the call id and epoch it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<I> {
    pub call: u32,
    pub epoch: u32,
    pub message: I,
}

/// Cuts `message` into the slot payloads that carry it, all marked with
/// `call` (0 for a one-way message) and the sender's `epoch`. The encoding's trailing zero bytes are
/// not sent, since the receiver reads missing bytes as zeros: an unused byte
/// string or padding at the end of a message costs no slots.
pub fn encode<I: Interface>(message: &I, call: u32, epoch: u32) -> Fragments {
    let mut body = Vec::new();
    message.encode_fields(&mut body);
    let length = body
        .iter()
        .rposition(|&byte| byte != 0)
        .map_or(0, |last| last + 1);
    body.truncate(length);
    Fragments {
        kind: message.kind(),
        call,
        epoch,
        body,
        next: 0,
    }
}

/// The slot payloads of one message, in the order they must be sent.
#[derive(Debug, Clone)]
pub struct Fragments {
    kind: u8,
    call: u32,
    epoch: u32,
    body: Vec<u8>,
    next: usize,
}

impl Fragments {
    fn fragment_count(&self) -> usize {
        // An empty message still takes one slot, for its header.
        self.body.len().div_ceil(FRAGMENT_SIZE).max(1)
    }
}

impl Iterator for Fragments {
    type Item = Payload;

    fn next(&mut self) -> Option<Payload> {
        let count = self.fragment_count();
        if self.next >= count {
            return None;
        }
        let chunk = self
            .body
            .chunks(FRAGMENT_SIZE)
            .nth(self.next)
            .unwrap_or_default();
        let mut body = [0; FRAGMENT_SIZE];
        body[..chunk.len()].copy_from_slice(chunk);
        // The `interface!` declaration checks at compile time that every
        // message fits in MAX_FRAGMENTS, so the count and index fit in a u8.
        let header = SlotHeader {
            kind: self.kind,
            fragment: self.next as u8,
            fragments: count as u8,
            length: chunk.len() as u8,
            call: U32::new(self.call),
            epoch: U32::new(self.epoch),
        };
        self.next += 1;
        Some(zerocopy::transmute!(Slot { header, body }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.fragment_count() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Fragments {}

/// Puts received slots back together into messages of interface `I`.
///
/// Its memory is bounded: at most `limit` messages are in reassembly at
/// once, each no longer than the longest of its kind. A single sender sends
/// each message's fragments back to back, so it never has more than one.
#[derive(Debug)]
pub struct Reassembler<I> {
    partials: Vec<Partial>,
    limit: usize,
    interface: PhantomData<fn() -> I>,
}

/// A message whose first fragments have arrived.
#[derive(Debug)]
struct Partial {
    call: u32,
    epoch: u32,
    kind: u8,
    fragments: u8,
    next: u8,
    body: Vec<u8>,
}

impl<I: Interface> Reassembler<I> {
    /// A reassembler that holds at most `limit` partial messages.
    pub fn new(limit: usize) -> Self {
        Self {
            partials: Vec::with_capacity(limit),
            limit,
            interface: PhantomData,
        }
    }

    /// Takes in one received slot. `Ok(Some(_))`: it completed a message.
    /// `Ok(None)`: it is a fragment of a message still in reassembly.
    /// `Err(_)`: it, or a message in reassembly, is dropped; any input gives
    /// one of these three, never a panic.
    pub fn push(&mut self, payload: &Payload) -> Result<Option<Envelope<I>>, Rejected> {
        let Slot { header, body } = zerocopy::transmute!(*payload);
        let SlotHeader {
            kind,
            fragment,
            fragments,
            length,
            call,
            epoch,
        } = header;
        let (call, epoch) = (call.get(), epoch.get());
        let reject = |error| Rejected { call, error };
        let is_last = fragment.checked_add(1) == Some(fragments);
        let data = match body.get(..usize::from(length)) {
            Some(data) if fragment < fragments && (is_last || data.len() == FRAGMENT_SIZE) => data,
            _ => {
                return Err(reject(DecodeError::BadFragmentHeader {
                    fragment,
                    fragments,
                    length,
                }));
            }
        };
        let wire_size = I::wire_size(kind).ok_or_else(|| reject(DecodeError::UnknownKind(kind)))?;
        let max_fragments = wire_size.div_ceil(FRAGMENT_SIZE).max(1);
        if usize::from(fragments) > max_fragments {
            return Err(reject(DecodeError::TooManyFragments {
                kind,
                fragments,
                max: max_fragments,
            }));
        }

        let in_reassembly = self
            .partials
            .iter()
            .position(|partial| partial.call == call);
        match in_reassembly {
            Some(index)
                if self.partials[index].continues_with(kind, epoch, fragment, fragments) =>
            {
                let partial = &mut self.partials[index];
                partial.body.extend_from_slice(data);
                partial.next += 1;
                if !is_last {
                    return Ok(None);
                }
                let partial = self.partials.remove(index);
                decode(kind, call, epoch, &partial.body, wire_size).map(Some)
            }
            Some(index) => {
                self.partials.remove(index);
                Err(reject(DecodeError::UnexpectedFragment {
                    kind,
                    fragment,
                    fragments,
                }))
            }
            None if fragment != 0 => Err(reject(DecodeError::UnexpectedFragment {
                kind,
                fragment,
                fragments,
            })),
            None if is_last => decode(kind, call, epoch, data, wire_size).map(Some),
            None => self.start(Partial {
                call,
                epoch,
                kind,
                fragments,
                next: 1,
                body: data.to_vec(),
            }),
        }
    }

    /// Keeps `partial` for its next fragments, dropping the oldest message
    /// in reassembly if there is no room: one whose last fragments never
    /// come must not block all others.
    fn start(&mut self, partial: Partial) -> Result<Option<Envelope<I>>, Rejected> {
        let too_many = DecodeError::TooManyPartial { limit: self.limit };
        if self.limit == 0 {
            return Err(Rejected {
                call: partial.call,
                error: too_many,
            });
        }
        let dropped = (self.partials.len() == self.limit).then(|| self.partials.remove(0));
        self.partials.push(partial);
        match dropped {
            Some(dropped) => Err(Rejected {
                call: dropped.call,
                error: too_many,
            }),
            None => Ok(None),
        }
    }
}

impl Partial {
    fn continues_with(&self, kind: u8, epoch: u32, fragment: u8, fragments: u8) -> bool {
        self.kind == kind
            && self.epoch == epoch
            && self.fragments == fragments
            && self.next == fragment
    }
}

fn decode<I: Interface>(
    kind: u8,
    call: u32,
    epoch: u32,
    body: &[u8],
    wire_size: usize,
) -> Result<Envelope<I>, Rejected> {
    if body.len() > wire_size {
        return Err(Rejected {
            call,
            error: DecodeError::TooLong {
                kind,
                length: body.len(),
                max: wire_size,
            },
        });
    }
    let message = I::decode_fields(kind, body).map_err(|error| Rejected { call, error })?;
    Ok(Envelope {
        call,
        epoch,
        message,
    })
}
