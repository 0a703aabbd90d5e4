//! The messages of the `membership` service: the membership protocol's,
//! one kind that carries an `atoll_proto::membership` message in its own
//! encoding, and the detector's settings.
//!
//! The protocol's message is one-way: a view change cannot wait on calls,
//! since calls go only to members and a view change is how cores become
//! and stop being members. It is handled whatever the sender's membership
//! and epoch (the other services' messages are checked against both).

use atoll_iface::{Field, FieldError};
use atoll_proto::membership::MembershipMsg;
use atoll_proto::wire;

/// Bytes of an encoded membership message: one slot's body.
pub const MEMBERSHIP_BYTES: usize = 44;

/// A membership protocol message as one field, in its own fixed encoding
/// (`atoll_proto::wire`); bytes that are none are rejected by the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol(pub MembershipMsg);

impl Field for Protocol {
    type Wire = [u8; MEMBERSHIP_BYTES];

    fn to_wire(&self) -> [u8; MEMBERSHIP_BYTES] {
        wire::encode(self.0)
    }

    fn from_wire(bytes: [u8; MEMBERSHIP_BYTES]) -> Result<Self, FieldError> {
        wire::decode(&bytes)
            .map(Protocol)
            .ok_or(FieldError::Invalid {
                type_name: "membership message",
            })
    }
}

atoll_iface::interface! {
    /// Heartbeats, and the agreement on each new view.
    pub interface MembershipMessage {
        /// A message of the membership protocol.
        MembershipProtocol { message: Protocol }
        /// Send heartbeats after `heartbeat` ticks without another message,
        /// and suspect after `suspect_after` ticks of silence, from now on
        /// (both at least 1); the silence so far is forgotten.
        SetDetector { heartbeat: u64, suspect_after: u64 } -> DetectorSet {}
        /// `core` has stopped and is about to start again as a new kernel:
        /// start the link and the rings to and from it afresh, so that the
        /// new kernel reads nothing the old one was sent, nor this core
        /// anything the old one sent. Refused (`reset` false) while `core`
        /// is a member, or if it is the receiver.
        ResetChannels { core: u16 } -> ChannelsReset { reset: bool }
    }
}

impl MembershipMessage {
    /// Whether this is `core` asking to join for itself (not a member
    /// passing a joiner on to the leader).
    pub(crate) fn is_join_of(&self, core: atoll_proto::CoreId) -> bool {
        matches!(
            self,
            MembershipMessage::MembershipProtocol(MembershipProtocol {
                message: Protocol(MembershipMsg::Join { core: joiner }),
            }) if *joiner == core
        )
    }
}
