//! What travels on a link: the messages of every service, on one set of
//! kind ids.
//!
//! Each service declares its own interface (`atoll_iface::interface!`) in
//! its own module, so a new message is one line there and its handler
//! beside it. A link carries all of them: the slot's kind byte holds the
//! service in its top three bits and the service's own kind in the low
//! five, so each service may declare up to 32 messages, checked at compile
//! time. This is the one place that gives the services their ids; the
//! monitor (`lib.rs`) holds one of each and routes to them by it.

use alloc::boxed::Box;
use alloc::vec::Vec;
use atoll_iface::{DecodeError, Interface, Role};

use crate::bench::messages::BenchMessage;
use crate::catchup::messages::CatchUpMessage;
use crate::control::messages::ControlMessage;
use crate::membership::messages::MembershipMessage;
use crate::process::messages::ProcessMessage;
use crate::skb::messages::SkbMessage;
use crate::vm::messages::VmMessage;

/// Kind bits that name a service's own message.
const KIND_BITS: u8 = 5;
const KIND_MASK: u8 = (1 << KIND_BITS) - 1;

macro_rules! services {
    ($($service:ident($message:ident in $holder:ident) = $id:literal,)*) => {
        /// The services of a monitor, each with its own interface.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ServiceId {
            $($service = $id,)*
        }

        /// A message of any service, as a link carries it.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Wire {
            $($service($holder<$message>),)*
        }

        $(
            impl From<$message> for Wire {
                fn from(message: $message) -> Self {
                    Wire::$service(Holder::new(message))
                }
            }

            const _: () = assert!(
                <$message as Interface>::KINDS <= KIND_MASK + 1,
                concat!(stringify!($message), " has more kinds than a service may")
            );
        )*

        /// Any one message of a service, as a link carries it.
        impl<M> From<M> for Wire
        where
            M: atoll_iface::Message,
            M::Interface: Into<Wire>,
        {
            fn from(message: M) -> Self {
                message.into_interface().into()
            }
        }

        $(
            impl Held for $message {
                fn from_wire(wire: Wire) -> Result<Self, Wire> {
                    match wire {
                        Wire::$service(message) => Ok(Holder::take(message)),
                        other => Err(other),
                    }
                }
            }
        )*

        impl Interface for Wire {
            // A bound, not a count: a kind is its service's id above the
            // service's own kind, so the kinds below it are sparse.
            const KINDS: u8 = {
                let mut services = 0;
                $(if $id >= services {
                    services = $id + 1;
                })*
                services << KIND_BITS
            };

            fn kind(&self) -> u8 {
                match self {
                    $(Wire::$service(message) => $id << KIND_BITS | message.kind(),)*
                }
            }

            fn wire_size(kind: u8) -> Option<usize> {
                match kind >> KIND_BITS {
                    $($id => <$message as Interface>::wire_size(kind & KIND_MASK),)*
                    _ => None,
                }
            }

            fn role(kind: u8) -> Option<Role> {
                let service = kind >> KIND_BITS;
                let role = match service {
                    $($id => <$message as Interface>::role(kind & KIND_MASK),)*
                    _ => None,
                };
                role.map(|role| match role {
                    Role::Request { reply } => Role::Request {
                        reply: service << KIND_BITS | reply,
                    },
                    other => other,
                })
            }

            fn name(kind: u8) -> Option<&'static str> {
                match kind >> KIND_BITS {
                    $($id => <$message as Interface>::name(kind & KIND_MASK),)*
                    _ => None,
                }
            }

            fn encode_fields(&self, out: &mut Vec<u8>) {
                match self {
                    $(Wire::$service(message) => message.encode_fields(out),)*
                }
            }

            fn decode_fields(kind: u8, fields: &[u8]) -> Result<Self, DecodeError> {
                match kind >> KIND_BITS {
                    $($id => <$message as Interface>::decode_fields(kind & KIND_MASK, fields)
                        .map(|message| Wire::$service(Holder::new(message))),)*
                    _ => Err(DecodeError::UnknownKind(kind)),
                }
            }
        }
    };
}

/// A service's interface, as a [`Wire`] holds its messages.
pub trait Held: Interface {
    /// The message, if `wire` holds one of this service's; else `wire` back.
    fn from_wire(wire: Wire) -> Result<Self, Wire>;
}

/// How a service's messages are held in a [`Wire`]: in place, or boxed
/// when they are large, so that moving a `Wire` costs few bytes whatever
/// the service (`SkbFacts` carries 480 bytes of text).
trait Holder<T> {
    fn new(message: T) -> Self;
    fn take(self) -> T;
}

/// A service's message held in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inline<T>(pub T);

impl<T> Holder<T> for Inline<T> {
    fn new(message: T) -> Self {
        Inline(message)
    }
    fn take(self) -> T {
        self.0
    }
}

impl<T> Holder<T> for Box<T> {
    fn new(message: T) -> Self {
        Box::new(message)
    }
    fn take(self) -> T {
        *self
    }
}

impl<T> core::ops::Deref for Inline<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

services! {
    Control(ControlMessage in Inline) = 0,
    Vm(VmMessage in Inline) = 1,
    Skb(SkbMessage in Box) = 2,
    Bench(BenchMessage in Inline) = 3,
    Membership(MembershipMessage in Inline) = 4,
    CatchUp(CatchUpMessage in Box) = 5,
    Process(ProcessMessage in Box) = 6,
}

impl Wire {
    /// The message's name for traces and reports: the declared name, or
    /// for a replication message the protocol message inside it.
    pub fn label(&self) -> &'static str {
        match self {
            Wire::Vm(Inline(VmMessage::Replicate(replicate))) => replicate.message.label(),
            Wire::Membership(Inline(MembershipMessage::MembershipProtocol(membership))) => {
                membership.message.0.label()
            }
            other => Self::name(other.kind()).unwrap_or("?"),
        }
    }

    /// The message, if it is an `M`.
    pub fn take<M>(self) -> Option<M>
    where
        M: atoll_iface::Message,
        M::Interface: Held,
    {
        let message = M::Interface::from_wire(self).ok()?;
        M::from_interface(message).ok()
    }

    /// Whether the message goes to and comes from cores outside the view,
    /// whatever its epoch: the membership protocol's, and what a member
    /// gives a core that asks it to join, before any view takes that core
    /// in (its facts and plan: `catchup`).
    pub fn crosses_views(&self) -> bool {
        match self {
            Wire::Membership(Inline(MembershipMessage::MembershipProtocol(_))) => true,
            Wire::CatchUp(message) => matches!(
                **message,
                CatchUpMessage::CatchUpFacts(_) | CatchUpMessage::CatchUpPlan(_)
            ),
            _ => false,
        }
    }

    /// The message's role on the link.
    pub fn link_role(&self) -> Role {
        <Self as Interface>::role(self.kind()).unwrap_or(Role::OneWay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Ping, Pong};
    use crate::skb::{SkbFacts, SkbGather, SkbGathered};
    use atoll_iface::{Bytes, Message, Reassembler, encode};

    #[test]
    fn services_share_one_kind_space_without_overlap() {
        let ping = Wire::from(Ping {});
        let gather = Wire::from(SkbGather { samples: 3 });
        assert_eq!(ping.kind(), Ping::KIND);
        assert_eq!(gather.kind(), 2 << KIND_BITS | SkbGather::KIND);
        assert_eq!(
            Wire::role(gather.kind()),
            Some(Role::Request {
                reply: 2 << KIND_BITS | SkbGathered::KIND
            })
        );
        assert_eq!(Wire::name(gather.kind()), Some("SkbGather"));
        assert_eq!(Wire::role(Pong::KIND), Some(Role::Reply));
        assert_eq!(Wire::name(7 << KIND_BITS), None);
        assert_eq!(Wire::role(7 << KIND_BITS), None);
    }

    #[test]
    fn every_service_message_round_trips_through_slots() {
        let text = Bytes::new(b"core(0, 0).").unwrap();
        for message in [Wire::from(SkbFacts { text }), Wire::from(Ping {})] {
            let mut reassembler = Reassembler::<Wire>::new(1);
            let mut whole = None;
            for slot in encode(&message, 9, 0) {
                whole = reassembler.push(&slot).unwrap();
            }
            let envelope = whole.expect("the last slot completes the message");
            assert_eq!((envelope.call, envelope.message), (9, message));
        }
    }

    #[test]
    fn an_unknown_service_is_rejected_not_misread() {
        let mut slot = encode(&Wire::from(Ping {}), 0, 0).next().unwrap();
        slot[0] = 7 << KIND_BITS;
        let rejected = Reassembler::<Wire>::new(1).push(&slot).unwrap_err();
        assert_eq!(rejected.error, DecodeError::UnknownKind(7 << KIND_BITS));
    }
}
