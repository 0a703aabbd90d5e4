//! The messages cores exchange for the replicated state, and their
//! fixed-size encoding (see `atoll_proto::wire`): every message fits the
//! 44 body bytes of one `atoll-iface` URPC slot.

use crate::change::{Change, Invalidation, Mapping, Refusal, SpaceId};
use atoll_proto::OpId;
use atoll_proto::multicast::RoundMsg;
use atoll_proto::two_phase::TwoPhaseMsg;
use atoll_proto::wire::{self, Reader, Wire, Writer};

/// Bytes of a message on the wire: one URPC slot's body in `atoll-iface`.
pub const MESSAGE_BYTES: usize = 44;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    /// Two-phase commit of mapping changes, commit rounds included.
    Agreement(TwoPhaseMsg<Change, Refusal>),
    /// A TLB shootdown round.
    Shootdown(RoundMsg<Invalidation>),
}

impl Message {
    /// The most bytes an encoded message takes (at most [`MESSAGE_BYTES`]).
    pub const MAX_SIZE: usize = <Message as Wire>::MAX_SIZE;

    pub fn to_bytes(self) -> [u8; MESSAGE_BYTES] {
        wire::encode(self)
    }

    /// `None` for bytes no message encodes to. Missing trailing bytes read
    /// as zero, so a body whose trailing zeros were not sent decodes whole.
    pub fn from_bytes(bytes: &[u8]) -> Option<Message> {
        wire::decode(bytes)
    }
}

impl Wire for SpaceId {
    const MAX_SIZE: usize = 4;
    fn write(self, w: &mut Writer) {
        w.put(self.0);
    }
    fn read(r: &mut Reader) -> Option<Self> {
        Some(SpaceId(r.get()?))
    }
}

impl Wire for Mapping {
    const MAX_SIZE: usize = 16;
    fn write(self, w: &mut Writer) {
        w.put(self.paddr);
        w.put(self.flags);
    }
    fn read(r: &mut Reader) -> Option<Self> {
        Some(Mapping {
            paddr: r.get()?,
            flags: r.get()?,
        })
    }
}

impl Wire for Invalidation {
    const MAX_SIZE: usize = SpaceId::MAX_SIZE + 8;
    fn write(self, w: &mut Writer) {
        w.put(self.space);
        w.put(self.vaddr);
    }
    fn read(r: &mut Reader) -> Option<Self> {
        Some(Invalidation {
            space: r.get()?,
            vaddr: r.get()?,
        })
    }
}

impl Wire for Change {
    const MAX_SIZE: usize = 1 + SpaceId::MAX_SIZE + 8 + Mapping::MAX_SIZE;
    fn write(self, w: &mut Writer) {
        match self {
            Change::Map {
                space,
                vaddr,
                mapping,
            } => {
                w.put(0u8);
                w.put(space);
                w.put(vaddr);
                w.put(mapping);
            }
            Change::Unmap { space, vaddr } => {
                w.put(1u8);
                w.put(space);
                w.put(vaddr);
            }
            Change::Protect {
                space,
                vaddr,
                flags,
            } => {
                w.put(2u8);
                w.put(space);
                w.put(vaddr);
                w.put(flags);
            }
        }
    }
    fn read(r: &mut Reader) -> Option<Self> {
        match r.get::<u8>()? {
            0 => Some(Change::Map {
                space: r.get()?,
                vaddr: r.get()?,
                mapping: r.get()?,
            }),
            1 => Some(Change::Unmap {
                space: r.get()?,
                vaddr: r.get()?,
            }),
            2 => Some(Change::Protect {
                space: r.get()?,
                vaddr: r.get()?,
                flags: r.get()?,
            }),
            _ => None,
        }
    }
}

impl Wire for Refusal {
    const MAX_SIZE: usize = 1 + OpId::MAX_SIZE;
    fn write(self, w: &mut Writer) {
        match self {
            Refusal::Conflict { with } => {
                w.put(0u8);
                w.put(with);
            }
            Refusal::AlreadyMapped => w.put(1u8),
            Refusal::NotMapped => w.put(2u8),
        }
    }
    fn read(r: &mut Reader) -> Option<Self> {
        match r.get::<u8>()? {
            0 => Some(Refusal::Conflict { with: r.get()? }),
            1 => Some(Refusal::AlreadyMapped),
            2 => Some(Refusal::NotMapped),
            _ => None,
        }
    }
}

impl Wire for Message {
    const MAX_SIZE: usize = 1 + wire::max(
        TwoPhaseMsg::<Change, Refusal>::MAX_SIZE,
        RoundMsg::<Invalidation>::MAX_SIZE,
    );
    fn write(self, w: &mut Writer) {
        match self {
            Message::Agreement(m) => {
                w.put(0u8);
                w.put(m);
            }
            Message::Shootdown(m) => {
                w.put(1u8);
                w.put(m);
            }
        }
    }
    fn read(r: &mut Reader) -> Option<Self> {
        match r.get::<u8>()? {
            0 => Some(Message::Agreement(r.get()?)),
            1 => Some(Message::Shootdown(r.get()?)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_proto::two_phase::Vote;
    use atoll_proto::{CoreId, Report, Route, Shape};
    use proptest::prelude::*;

    #[test]
    fn the_largest_message_fits_a_slot() {
        assert_eq!(Message::MAX_SIZE, 42);
        let prepare = Message::Agreement(TwoPhaseMsg::Prepare {
            id: OpId {
                origin: CoreId(u16::MAX),
                seq: u32::MAX,
            },
            route: Route {
                set: u32::MAX,
                shape: Shape::Planned,
            },
            change: Change::Map {
                space: SpaceId(u32::MAX),
                vaddr: u64::MAX,
                mapping: Mapping {
                    paddr: u64::MAX,
                    flags: u64::MAX,
                },
            },
        });
        let bytes = prepare.to_bytes();
        assert_eq!(
            bytes.iter().rposition(|&b| b != 0),
            Some(Message::MAX_SIZE - 1)
        );
        assert_eq!(Message::from_bytes(&bytes), Some(prepare));
    }

    fn op_id() -> impl Strategy<Value = OpId> {
        (any::<u16>(), any::<u32>()).prop_map(|(n, seq)| OpId {
            origin: CoreId(n),
            seq,
        })
    }

    fn message() -> impl Strategy<Value = Message> {
        let shape = prop::sample::select(Shape::ALL.to_vec());
        let route = (any::<u32>(), shape).prop_map(|(set, shape)| Route { set, shape });
        let change = prop_oneof![
            (any::<u32>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(s, v, p, f)| {
                Change::Map {
                    space: SpaceId(s),
                    vaddr: v,
                    mapping: Mapping { paddr: p, flags: f },
                }
            }),
            (any::<u32>(), any::<u64>()).prop_map(|(s, v)| Change::Unmap {
                space: SpaceId(s),
                vaddr: v
            }),
            (any::<u32>(), any::<u64>(), any::<u64>()).prop_map(|(s, v, f)| Change::Protect {
                space: SpaceId(s),
                vaddr: v,
                flags: f,
            }),
        ];
        let refusal = prop_oneof![
            op_id().prop_map(|with| Refusal::Conflict { with }),
            Just(Refusal::AlreadyMapped),
            Just(Refusal::NotMapped),
        ];
        prop_oneof![
            (op_id(), route.clone(), change).prop_map(|(id, route, change)| {
                Message::Agreement(TwoPhaseMsg::Prepare { id, route, change })
            }),
            (op_id(), prop::option::of(refusal)).prop_map(|(id, no)| {
                Message::Agreement(TwoPhaseMsg::Vote {
                    id,
                    vote: no.map_or(Vote::Yes, Vote::No),
                })
            }),
            (op_id(), route.clone(), any::<bool>()).prop_map(|(round, route, forward)| {
                Message::Agreement(TwoPhaseMsg::Commit(RoundMsg::Request {
                    round,
                    route,
                    payload: (),
                    forward,
                }))
            }),
            (op_id(), route, any::<u32>(), any::<u64>(), any::<bool>()).prop_map(
                |(round, route, space, vaddr, forward)| {
                    let payload = Invalidation {
                        space: SpaceId(space),
                        vaddr,
                    };
                    Message::Shootdown(RoundMsg::Request {
                        round,
                        route,
                        payload,
                        forward,
                    })
                }
            ),
            (op_id(), any::<u16>(), any::<u16>()).prop_map(|(round, acked, unreached)| {
                Message::Shootdown(RoundMsg::Ack {
                    round,
                    report: Report { acked, unreached },
                })
            }),
        ]
    }

    proptest! {
        #[test]
        fn messages_round_trip_through_their_bytes(message in message()) {
            let bytes = message.to_bytes();
            prop_assert_eq!(Message::from_bytes(&bytes), Some(message));
            let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |last| last + 1);
            prop_assert!(used <= Message::MAX_SIZE);
            prop_assert_eq!(Message::from_bytes(&bytes[..used]), Some(message));
        }
    }
}
