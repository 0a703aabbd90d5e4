//! Fixed-size encoding of protocol messages, so that each fits one URPC
//! slot.
//!
//! Fields are written in declaration order, little-endian; an enum is a tag
//! byte (its variant's index) followed by that variant's fields. Bytes past
//! the end of the input read as zero, as `atoll-iface` hands back a message
//! whose trailing zeros it did not send. [`Wire::MAX_SIZE`] is the most
//! bytes a value takes, checked at compile time against the slot by
//! [`encode`].

use crate::membership::{Members, MembershipMsg, View};
use crate::multicast::RoundMsg;
use crate::two_phase::{Known, TwoPhaseMsg, Vote};
use crate::{CoreId, OpId, Report, Route, Shape};

pub struct Writer<'a> {
    bytes: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    pub fn put(&mut self, value: impl Wire) {
        value.write(self);
    }

    fn put_bytes(&mut self, raw: &[u8]) {
        self.bytes[self.len..self.len + raw.len()].copy_from_slice(raw);
        self.len += raw.len();
    }
}

pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    pub fn get<T: Wire>(&mut self) -> Option<T> {
        T::read(self)
    }

    fn get_bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut raw = [0; N];
        for byte in &mut raw {
            *byte = self.bytes.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
        }
        raw
    }
}

/// A value with a fixed-size encoding.
pub trait Wire: Sized + Copy {
    /// The most bytes the encoding takes.
    const MAX_SIZE: usize;
    fn write(self, w: &mut Writer);
    /// `None` for bytes no value encodes to (an unknown tag).
    fn read(r: &mut Reader) -> Option<Self>;
}

/// Encodes `value` into the first bytes of an `N`-byte buffer, zeros after.
/// Does not compile when `T` may not fit.
pub fn encode<T: Wire, const N: usize>(value: T) -> [u8; N] {
    const { assert!(T::MAX_SIZE <= N, "message does not fit its slot") };
    let mut bytes = [0; N];
    value.write(&mut Writer {
        bytes: &mut bytes,
        len: 0,
    });
    bytes
}

/// Decodes a value that [`encode`] wrote; missing trailing bytes read as zero.
pub fn decode<T: Wire>(bytes: &[u8]) -> Option<T> {
    T::read(&mut Reader { bytes, pos: 0 })
}

/// The larger of two sizes, for `MAX_SIZE` of an enum: its tag byte plus
/// the largest of its variants.
pub const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

macro_rules! integers {
    ($($int:ty),*) => {$(
        impl Wire for $int {
            const MAX_SIZE: usize = size_of::<$int>();
            fn write(self, w: &mut Writer) {
                w.put_bytes(&self.to_le_bytes());
            }
            fn read(r: &mut Reader) -> Option<Self> {
                Some(<$int>::from_le_bytes(r.get_bytes()))
            }
        }
    )*};
}
integers!(u8, u16, u32, u64);

impl Wire for () {
    const MAX_SIZE: usize = 0;
    fn write(self, _: &mut Writer) {}
    fn read(_: &mut Reader) -> Option<Self> {
        Some(())
    }
}

impl Wire for bool {
    const MAX_SIZE: usize = 1;
    fn write(self, w: &mut Writer) {
        w.put(u8::from(self));
    }
    fn read(r: &mut Reader) -> Option<Self> {
        match r.get::<u8>()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

impl Wire for CoreId {
    const MAX_SIZE: usize = 2;
    fn write(self, w: &mut Writer) {
        w.put(self.0);
    }
    fn read(r: &mut Reader) -> Option<Self> {
        Some(CoreId(r.get()?))
    }
}

impl Wire for OpId {
    const MAX_SIZE: usize = CoreId::MAX_SIZE + 4;
    fn write(self, w: &mut Writer) {
        w.put(self.origin);
        w.put(self.seq);
    }
    fn read(r: &mut Reader) -> Option<Self> {
        Some(OpId {
            origin: r.get()?,
            seq: r.get()?,
        })
    }
}

impl Wire for Report {
    const MAX_SIZE: usize = 4;
    fn write(self, w: &mut Writer) {
        w.put(self.acked);
        w.put(self.unreached);
    }
    fn read(r: &mut Reader) -> Option<Self> {
        Some(Report {
            acked: r.get()?,
            unreached: r.get()?,
        })
    }
}

/// One byte, the variant's index: 0 `Unicast`, 1 `Flat`, 2 `Planned`. The
/// values are fixed: a renamed or reordered variant keeps its byte.
impl Wire for Shape {
    const MAX_SIZE: usize = 1;
    fn write(self, w: &mut Writer) {
        w.put(match self {
            Shape::Unicast => 0u8,
            Shape::Flat => 1,
            Shape::Planned => 2,
        });
    }
    fn read(r: &mut Reader) -> Option<Self> {
        Shape::ALL.get(usize::from(r.get::<u8>()?)).copied()
    }
}

impl Wire for Route {
    const MAX_SIZE: usize = 4 + Shape::MAX_SIZE;
    fn write(self, w: &mut Writer) {
        w.put(self.set);
        w.put(self.shape);
    }
    fn read(r: &mut Reader) -> Option<Self> {
        Some(Route {
            set: r.get()?,
            shape: r.get()?,
        })
    }
}

impl<P: Wire> Wire for RoundMsg<P> {
    const MAX_SIZE: usize = 1 + max(
        OpId::MAX_SIZE + Route::MAX_SIZE + P::MAX_SIZE + bool::MAX_SIZE,
        OpId::MAX_SIZE + Report::MAX_SIZE,
    );
    fn write(self, w: &mut Writer) {
        match self {
            RoundMsg::Request {
                round,
                route,
                payload,
                forward,
            } => {
                w.put(0u8);
                w.put(round);
                w.put(route);
                w.put(payload);
                w.put(forward);
            }
            RoundMsg::Ack { round, report } => {
                w.put(1u8);
                w.put(round);
                w.put(report);
            }
        }
    }
    fn read(r: &mut Reader) -> Option<Self> {
        Some(match r.get::<u8>()? {
            0 => RoundMsg::Request {
                round: r.get()?,
                route: r.get()?,
                payload: r.get()?,
                forward: r.get()?,
            },
            1 => RoundMsg::Ack {
                round: r.get()?,
                report: r.get()?,
            },
            _ => return None,
        })
    }
}

impl<R: Wire> Wire for Vote<R> {
    const MAX_SIZE: usize = 1 + R::MAX_SIZE;
    fn write(self, w: &mut Writer) {
        match self {
            Vote::Yes => w.put(0u8),
            Vote::No(refusal) => {
                w.put(1u8);
                w.put(refusal);
            }
        }
    }
    fn read(r: &mut Reader) -> Option<Self> {
        match r.get::<u8>()? {
            0 => Some(Vote::Yes),
            1 => Some(Vote::No(r.get()?)),
            _ => None,
        }
    }
}

impl Wire for Members {
    const MAX_SIZE: usize = 32;
    fn write(self, w: &mut Writer) {
        for word in self.words() {
            w.put(word);
        }
    }
    fn read(r: &mut Reader) -> Option<Self> {
        Some(Members::from_words([
            r.get()?,
            r.get()?,
            r.get()?,
            r.get()?,
        ]))
    }
}

impl Wire for View {
    const MAX_SIZE: usize = 4 + Members::MAX_SIZE;
    fn write(self, w: &mut Writer) {
        w.put(self.epoch);
        w.put(self.members);
    }
    fn read(r: &mut Reader) -> Option<Self> {
        Some(View {
            epoch: r.get()?,
            members: r.get()?,
        })
    }
}

impl Wire for MembershipMsg {
    const MAX_SIZE: usize = 1 + View::MAX_SIZE;
    fn write(self, w: &mut Writer) {
        match self {
            MembershipMsg::Heartbeat => w.put(0u8),
            MembershipMsg::Join { core } => {
                w.put(1u8);
                w.put(core);
            }
            MembershipMsg::Suspect { core } => {
                w.put(2u8);
                w.put(core);
            }
            MembershipMsg::Propose { view } => {
                w.put(3u8);
                w.put(view);
            }
            MembershipMsg::Accept { epoch } => {
                w.put(4u8);
                w.put(epoch);
            }
            MembershipMsg::Refuse {
                epoch,
                newest,
                leader,
                excluded,
            } => {
                w.put(5u8);
                w.put(epoch);
                w.put(newest);
                w.put(leader);
                w.put(excluded);
            }
            MembershipMsg::Commit { view } => {
                w.put(6u8);
                w.put(view);
            }
            MembershipMsg::Flush { epoch } => {
                w.put(7u8);
                w.put(epoch);
            }
        }
    }
    fn read(r: &mut Reader) -> Option<Self> {
        Some(match r.get::<u8>()? {
            0 => MembershipMsg::Heartbeat,
            1 => MembershipMsg::Join { core: r.get()? },
            2 => MembershipMsg::Suspect { core: r.get()? },
            3 => MembershipMsg::Propose { view: r.get()? },
            4 => MembershipMsg::Accept { epoch: r.get()? },
            5 => MembershipMsg::Refuse {
                epoch: r.get()?,
                newest: r.get()?,
                leader: r.get()?,
                excluded: r.get()?,
            },
            6 => MembershipMsg::Commit { view: r.get()? },
            7 => MembershipMsg::Flush { epoch: r.get()? },
            _ => return None,
        })
    }
}

impl Wire for Known {
    const MAX_SIZE: usize = 1;
    fn write(self, w: &mut Writer) {
        w.put(match self {
            Known::Committed => 0u8,
            Known::Aborted => 1,
            Known::InDoubt => 2,
            Known::Unknown => 3,
        });
    }
    fn read(r: &mut Reader) -> Option<Self> {
        Some(match r.get::<u8>()? {
            0 => Known::Committed,
            1 => Known::Aborted,
            2 => Known::InDoubt,
            3 => Known::Unknown,
            _ => return None,
        })
    }
}

impl<C: Wire, R: Wire> Wire for TwoPhaseMsg<C, R> {
    const MAX_SIZE: usize = 1 + max(
        max(
            OpId::MAX_SIZE + Route::MAX_SIZE + C::MAX_SIZE,
            OpId::MAX_SIZE + Vote::<R>::MAX_SIZE,
        ),
        RoundMsg::<()>::MAX_SIZE,
    );
    fn write(self, w: &mut Writer) {
        match self {
            TwoPhaseMsg::Prepare { id, route, change } => {
                w.put(0u8);
                w.put(id);
                w.put(route);
                w.put(change);
            }
            TwoPhaseMsg::Vote { id, vote } => {
                w.put(1u8);
                w.put(id);
                w.put(vote);
            }
            TwoPhaseMsg::Abort { id } => {
                w.put(2u8);
                w.put(id);
            }
            TwoPhaseMsg::Commit(round) => {
                w.put(3u8);
                w.put(round);
            }
            TwoPhaseMsg::Inquire { id } => {
                w.put(4u8);
                w.put(id);
            }
            TwoPhaseMsg::Settled { id, known } => {
                w.put(5u8);
                w.put(id);
                w.put(known);
            }
        }
    }
    fn read(r: &mut Reader) -> Option<Self> {
        Some(match r.get::<u8>()? {
            0 => TwoPhaseMsg::Prepare {
                id: r.get()?,
                route: r.get()?,
                change: r.get()?,
            },
            1 => TwoPhaseMsg::Vote {
                id: r.get()?,
                vote: r.get()?,
            },
            2 => TwoPhaseMsg::Abort { id: r.get()? },
            3 => TwoPhaseMsg::Commit(r.get()?),
            4 => TwoPhaseMsg::Inquire { id: r.get()? },
            5 => TwoPhaseMsg::Settled {
                id: r.get()?,
                known: r.get()?,
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testnet::shape;
    use proptest::prelude::*;

    fn op_id() -> impl Strategy<Value = OpId> {
        (any::<u16>(), any::<u32>()).prop_map(|(n, seq)| OpId {
            origin: CoreId(n),
            seq,
        })
    }

    fn route() -> impl Strategy<Value = Route> {
        (any::<u32>(), shape()).prop_map(|(set, shape)| Route { set, shape })
    }

    fn round_msg() -> impl Strategy<Value = RoundMsg<u64>> {
        prop_oneof![
            (op_id(), route(), any::<u64>(), any::<bool>()).prop_map(
                |(round, route, payload, forward)| RoundMsg::Request {
                    round,
                    route,
                    payload,
                    forward
                }
            ),
            (op_id(), any::<u16>(), any::<u16>()).prop_map(|(round, acked, unreached)| {
                RoundMsg::Ack {
                    round,
                    report: Report { acked, unreached },
                }
            }),
        ]
    }

    fn two_phase_msg() -> impl Strategy<Value = TwoPhaseMsg<u64, u32>> {
        let unit_round = (op_id(), route(), any::<bool>()).prop_map(|(round, route, forward)| {
            RoundMsg::Request {
                round,
                route,
                payload: (),
                forward,
            }
        });
        prop_oneof![
            (op_id(), route(), any::<u64>()).prop_map(|(id, route, change)| TwoPhaseMsg::Prepare {
                id,
                route,
                change
            }),
            (op_id(), prop::option::of(any::<u32>())).prop_map(|(id, no)| TwoPhaseMsg::Vote {
                id,
                vote: no.map_or(Vote::Yes, Vote::No),
            }),
            op_id().prop_map(|id| TwoPhaseMsg::Abort { id }),
            unit_round.prop_map(TwoPhaseMsg::Commit),
            op_id().prop_map(|id| TwoPhaseMsg::Inquire { id }),
            (op_id(), 0..4u8).prop_map(|(id, known)| TwoPhaseMsg::Settled {
                id,
                known: [
                    Known::Committed,
                    Known::Aborted,
                    Known::InDoubt,
                    Known::Unknown
                ][usize::from(known)],
            }),
        ]
    }

    fn membership_msg() -> impl Strategy<Value = MembershipMsg> {
        let core = any::<u16>().prop_map(CoreId);
        let view = (any::<u32>(), any::<[u64; 4]>()).prop_map(|(epoch, words)| View {
            epoch,
            members: Members::from_words(words),
        });
        prop_oneof![
            Just(MembershipMsg::Heartbeat),
            core.clone().prop_map(|core| MembershipMsg::Join { core }),
            core.clone()
                .prop_map(|core| MembershipMsg::Suspect { core }),
            view.clone()
                .prop_map(|view| MembershipMsg::Propose { view }),
            any::<u32>().prop_map(|epoch| MembershipMsg::Accept { epoch }),
            (any::<u32>(), any::<u32>(), core, any::<bool>()).prop_map(
                |(epoch, newest, leader, excluded)| MembershipMsg::Refuse {
                    epoch,
                    newest,
                    leader,
                    excluded
                }
            ),
            view.prop_map(|view| MembershipMsg::Commit { view }),
            any::<u32>().prop_map(|epoch| MembershipMsg::Flush { epoch }),
        ]
    }

    proptest! {
        #[test]
        fn round_messages_round_trip(message in round_msg()) {
            let bytes: [u8; 48] = encode(message);
            prop_assert_eq!(decode::<RoundMsg<u64>>(&bytes), Some(message));
        }

        #[test]
        fn two_phase_messages_round_trip_even_with_trailing_zeros_cut(message in two_phase_msg()) {
            let bytes: [u8; 48] = encode(message);
            let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |last| last + 1);
            prop_assert_eq!(decode::<TwoPhaseMsg<u64, u32>>(&bytes[..used]), Some(message));
        }

        #[test]
        fn membership_messages_round_trip_even_with_trailing_zeros_cut(message in membership_msg()) {
            let bytes: [u8; 44] = encode(message);
            let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |last| last + 1);
            prop_assert_eq!(decode::<MembershipMsg>(&bytes[..used]), Some(message));
        }

        #[test]
        fn encoding_stays_within_max_size(message in two_phase_msg()) {
            let bytes: [u8; 64] = encode(message);
            let max = TwoPhaseMsg::<u64, u32>::MAX_SIZE;
            prop_assert!(bytes[max..].iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn shapes_keep_their_bytes() {
        let shapes = [Shape::Unicast, Shape::Flat, Shape::Planned];
        for (byte, shape) in (0u8..).zip(shapes) {
            assert_eq!(encode::<Shape, 1>(shape), [byte]);
            assert_eq!(decode::<Shape>(&[byte]), Some(shape));
        }
    }

    #[test]
    fn unknown_tags_are_rejected() {
        assert_eq!(decode::<RoundMsg<()>>(&[2]), None);
        assert_eq!(decode::<TwoPhaseMsg<u8, u8>>(&[6]), None);
        assert_eq!(decode::<Shape>(&[3]), None);
        assert_eq!(decode::<bool>(&[2]), None);
    }
}
