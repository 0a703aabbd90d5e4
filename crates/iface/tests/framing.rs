//! Messages to slots and back: field layouts, fragmentation, and what the
//! reassembler does with slots no honest sender writes.

mod ping;
use atoll_iface::{
    Bytes, DecodeError, Envelope, FRAGMENT_SIZE, FieldError, Interface, Message, Reassembler,
    Rejected, encode,
};
use atoll_urpc::{PAYLOAD_SIZE, Payload};
use ping::{Echo, Hello, Ping, Put};
use proptest::prelude::*;
use std::fmt::Debug;

atoll_iface::interface! {
    /// One field of every type.
    pub interface Everything {
        Numbers { a: u8, b: u16, c: u32, d: u64, e: u128, f: i8, g: i16, h: i32, i: i64, j: i128 }
        Flags { yes: bool, no: bool } -> Blobs { array: [u8; 5], text: Bytes<60>, tail: u16 }
        Empty {}
    }
}

/// Header bytes, as docs/iface.md gives them.
const KIND: usize = 0;
const FRAGMENT: usize = 1;
const FRAGMENTS: usize = 2;
const LENGTH: usize = 3;
const CALL: usize = 4;
const EPOCH_AT: usize = 8;
const BODY: usize = 12;

/// The epoch every test message is sent in.
const EPOCH: u32 = 0x0e0c_0003;

fn encoded<I: Interface>(message: &I, call: u32) -> Vec<Payload> {
    encode(message, call, EPOCH).collect()
}

/// Pushes every slot; the result of the last one.
fn reassemble<I: Interface + Debug + PartialEq>(
    slots: &[Payload],
) -> Result<Option<Envelope<I>>, Rejected> {
    let mut reassembler = Reassembler::new(1);
    let (last, first) = slots.split_last().expect("at least one slot");
    for slot in first {
        assert_eq!(reassembler.push(slot), Ok(None));
    }
    reassembler.push(last)
}

fn round_trip<I: Interface + Debug + PartialEq>(message: I) {
    let slots = encoded(&message, 9);
    assert_eq!(
        reassemble(&slots),
        Ok(Some(Envelope {
            call: 9,
            epoch: EPOCH,
            message
        }))
    );
}

fn bytes<const MAX: usize>(contents: &[u8]) -> Bytes<MAX> {
    Bytes::new(contents).expect("fits")
}

fn long_put() -> Ping {
    Put {
        id: 0xfeed,
        data: bytes(&[0xab; 200]),
    }
    .into()
}

#[test]
fn every_field_type_round_trips_at_its_extremes() {
    let numbers = |bits: u128| Numbers {
        a: bits as u8,
        b: bits as u16,
        c: bits as u32,
        d: bits as u64,
        e: bits,
        f: bits as i8,
        g: bits as i16,
        h: bits as i32,
        i: bits as i64,
        j: bits as i128,
    };
    for bits in [
        0,
        1,
        u128::MAX,
        1 << 127,
        0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
    ] {
        round_trip(Everything::from(numbers(bits)));
    }
    for (yes, no) in [(true, false), (false, true), (true, true)] {
        round_trip(Everything::from(Flags { yes, no }));
    }
    for text in [&[][..], b"x", &[7; 60]] {
        round_trip(Everything::from(Blobs {
            array: [1, 0, 2, 0, 3],
            text: bytes(text),
            tail: 0xbeef,
        }));
    }
    round_trip(Everything::from(Empty {}));
}

#[test]
fn fields_are_packed_little_endian_in_declaration_order() {
    let slot = encoded(
        &Ping::from(Hello {
            from_core: 0x0403_0201,
        }),
        0,
    )[0];
    assert_eq!(slot[KIND], Hello::KIND);
    assert_eq!(&slot[BODY..BODY + 4], [1, 2, 3, 4]);
    assert_eq!(Blobs::WIRE_SIZE, 5 + 2 + 60 + 2);
}

#[test]
fn kinds_follow_the_declaration_requests_before_their_replies() {
    let kinds = [Numbers::KIND, Flags::KIND, Blobs::KIND, Empty::KIND];
    assert_eq!(kinds, [0, 1, 2, 3]);
}

#[test]
fn each_kind_has_its_role_and_name() {
    use atoll_iface::Role;
    assert_eq!(Ping::KINDS, 5);
    let declared = [
        (Hello::KIND, Role::OneWay, "Hello"),
        (Echo::KIND, Role::Request { reply: 2 }, "Echo"),
        (2, Role::Reply, "EchoReply"),
        (Put::KIND, Role::Request { reply: 4 }, "Put"),
        (4, Role::Reply, "PutAck"),
    ];
    for (kind, role, name) in declared {
        assert_eq!(Ping::role(kind), Some(role), "{name}");
        assert_eq!(Ping::name(kind), Some(name));
    }
    assert_eq!(Echo::ROLE, Role::Request { reply: 2 });
    assert_eq!((Ping::role(5), Ping::name(5)), (None, None));
    assert_eq!(Numbers::ROLE, Role::OneWay);
}

#[test]
fn a_200_byte_message_takes_five_slots_and_comes_back_whole() {
    let slots = encoded(&long_put(), 0x1234_5678);
    assert_eq!(slots.len(), 5);
    for (index, slot) in slots.iter().enumerate() {
        assert_eq!(slot[KIND], Put::KIND);
        assert_eq!((slot[FRAGMENT], slot[FRAGMENTS]), (index as u8, 5));
        assert_eq!(&slot[CALL..CALL + 4], 0x1234_5678u32.to_le_bytes());
        let expected = if index < 4 {
            FRAGMENT_SIZE
        } else {
            4 + 2 + 200 - 4 * FRAGMENT_SIZE
        };
        assert_eq!(usize::from(slot[LENGTH]), expected);
    }
    assert_eq!(
        reassemble(&slots),
        Ok(Some(Envelope {
            call: 0x1234_5678,
            epoch: EPOCH,
            message: long_put()
        }))
    );
}

#[test]
fn trailing_zeros_are_not_sent() {
    let short_put = Ping::from(Put {
        id: 1,
        data: bytes(b"hi"),
    });
    let slots = encoded(&short_put, 3);
    assert_eq!(slots.len(), 1);
    assert_eq!(slots[0][LENGTH], 4 + 2 + 2);
    let zeros = encoded(
        &Ping::from(Echo {
            value: 0,
            pad: [0; 36],
        }),
        3,
    );
    assert_eq!((zeros.len(), zeros[0][LENGTH]), (1, 0));
    round_trip(short_put);
}

#[test]
fn a_full_echo_fills_exactly_one_slot() {
    let slots = encoded(
        &Ping::from(Echo {
            value: u64::MAX,
            pad: [0xff; 36],
        }),
        1,
    );
    assert_eq!(
        (slots.len(), usize::from(slots[0][LENGTH])),
        (1, FRAGMENT_SIZE)
    );
}

fn rejected<I: Interface + Debug>(reassembler: &mut Reassembler<I>, slot: &Payload) -> Rejected {
    reassembler.push(slot).expect_err("rejected")
}

#[test]
fn bad_field_values_are_errors_with_the_field_named() {
    let mut slot = encoded(
        &Everything::from(Flags {
            yes: true,
            no: true,
        }),
        4,
    )[0];
    slot[BODY + 1] = 2;
    let error = rejected(&mut Reassembler::<Everything>::new(1), &slot);
    let expected = DecodeError::BadField {
        message: "Flags",
        field: "no",
        error: FieldError::NotABool(2),
    };
    assert_eq!(
        error,
        Rejected {
            call: 4,
            error: expected
        }
    );
    assert_eq!(
        error.to_string(),
        "call 4: field Flags.no: bool is 2, not 0 or 1"
    );

    let mut slot = encoded(
        &Everything::from(Blobs {
            array: [0; 5],
            text: bytes(b"ok"),
            tail: 0,
        }),
        0,
    )[0];
    slot[BODY + 5] = 61;
    let error = DecodeError::BadField {
        message: "Blobs",
        field: "text",
        error: FieldError::BytesTooLong {
            length: 61,
            max: 60,
        },
    };
    assert_eq!(
        rejected(&mut Reassembler::<Everything>::new(1), &slot).error,
        error
    );
}

#[test]
fn bad_headers_are_errors() {
    let mut reassembler = Reassembler::<Ping>::new(1);
    let good = encoded(&long_put(), 1);
    let with = |index: usize, value: u8| {
        let mut slot = good[0];
        slot[index] = value;
        slot
    };
    let cases = [
        (
            with(FRAGMENTS, 0),
            DecodeError::BadFragmentHeader {
                fragment: 0,
                fragments: 0,
                length: 44,
            },
        ),
        (
            with(FRAGMENT, 5),
            DecodeError::BadFragmentHeader {
                fragment: 5,
                fragments: 5,
                length: 44,
            },
        ),
        (
            with(LENGTH, 43),
            DecodeError::BadFragmentHeader {
                fragment: 0,
                fragments: 5,
                length: 43,
            },
        ),
        (
            with(LENGTH, 45),
            DecodeError::BadFragmentHeader {
                fragment: 0,
                fragments: 5,
                length: 45,
            },
        ),
        (with(KIND, 200), DecodeError::UnknownKind(200)),
        (
            with(FRAGMENTS, 6),
            DecodeError::TooManyFragments {
                kind: Put::KIND,
                fragments: 6,
                max: 5,
            },
        ),
        (
            with(KIND, Hello::KIND),
            DecodeError::TooManyFragments {
                kind: Hello::KIND,
                fragments: 5,
                max: 1,
            },
        ),
    ];
    for (slot, error) in cases {
        assert_eq!(
            rejected(&mut reassembler, &slot),
            Rejected { call: 1, error }
        );
    }
    assert_eq!(
        DecodeError::UnknownKind(200).to_string(),
        "unknown message kind 200"
    );
}

#[test]
fn more_bytes_than_the_message_has_are_an_error() {
    let mut slots = encoded(&long_put(), 1);
    slots[4][LENGTH] = FRAGMENT_SIZE as u8;
    let error = DecodeError::TooLong {
        kind: Put::KIND,
        length: 5 * FRAGMENT_SIZE,
        max: Put::WIRE_SIZE,
    };
    assert_eq!(reassemble::<Ping>(&slots), Err(Rejected { call: 1, error }));
}

/// What the reassembler says to each slot of `sequence`.
fn outcomes(limit: usize, sequence: &[&Payload]) -> Vec<Result<Option<Envelope<Ping>>, Rejected>> {
    let mut reassembler = Reassembler::new(limit);
    sequence.iter().map(|slot| reassembler.push(slot)).collect()
}

fn unexpected(call: u32, fragment: u8) -> Result<Option<Envelope<Ping>>, Rejected> {
    Err(Rejected {
        call,
        error: DecodeError::UnexpectedFragment {
            kind: Put::KIND,
            fragment,
            fragments: 5,
        },
    })
}

#[test]
fn missing_repeated_and_reordered_fragments_drop_the_message() {
    let s = encoded(&long_put(), 1);
    let missing = outcomes(1, &[&s[0], &s[1], &s[3], &s[4]]);
    assert_eq!(
        missing,
        [Ok(None), Ok(None), unexpected(1, 3), unexpected(1, 4)]
    );
    let repeated = outcomes(1, &[&s[0], &s[1], &s[1], &s[2]]);
    assert_eq!(
        repeated,
        [Ok(None), Ok(None), unexpected(1, 1), unexpected(1, 2)]
    );
    let restarted = outcomes(1, &[&s[0], &s[0], &s[0], &s[1], &s[2], &s[3], &s[4]]);
    assert_eq!(restarted[..2], [Ok(None), unexpected(1, 0)]);
    assert_eq!(
        restarted[6],
        Ok(Some(Envelope {
            call: 1,
            epoch: EPOCH,
            message: long_put()
        }))
    );
}

#[test]
fn a_fragment_sent_in_another_epoch_does_not_continue_a_message() {
    let s = encoded(&long_put(), 1);
    let later: Vec<Payload> = encode(&long_put(), 1, EPOCH + 1).collect();
    let mixed = outcomes(1, &[&s[0], &later[1]]);
    assert_eq!(mixed, [Ok(None), unexpected(1, 1)]);
    let whole = outcomes(1, &later.iter().collect::<Vec<_>>());
    assert_eq!(
        whole[4],
        Ok(Some(Envelope {
            call: 1,
            epoch: EPOCH + 1,
            message: long_put()
        }))
    );
}

#[test]
fn interleaving_past_the_limit_drops_the_oldest_message() {
    let (a, b) = (encoded(&long_put(), 1), encoded(&long_put(), 2));
    let too_many = Err(Rejected {
        call: 1,
        error: DecodeError::TooManyPartial { limit: 1 },
    });
    let one = outcomes(1, &[&a[0], &b[0], &a[1], &b[1], &b[2], &b[3], &b[4]]);
    assert_eq!(one[..3], [Ok(None), too_many, unexpected(1, 1)]);
    assert_eq!(
        one[6],
        Ok(Some(Envelope {
            call: 2,
            epoch: EPOCH,
            message: long_put()
        }))
    );

    let interleaved: Vec<&Payload> = a.iter().zip(&b).flat_map(|(a, b)| [a, b]).collect();
    let two = outcomes(2, &interleaved);
    assert_eq!(
        two[8],
        Ok(Some(Envelope {
            call: 1,
            epoch: EPOCH,
            message: long_put()
        }))
    );
    assert_eq!(
        two[9],
        Ok(Some(Envelope {
            call: 2,
            epoch: EPOCH,
            message: long_put()
        }))
    );
    assert!(two[..8].iter().all(|outcome| *outcome == Ok(None)));

    let none = outcomes(0, &[&a[0]]);
    assert_eq!(
        none,
        [Err(Rejected {
            call: 1,
            error: DecodeError::TooManyPartial { limit: 0 }
        })]
    );
}

fn arbitrary_everything() -> impl Strategy<Value = Everything> {
    let numbers = (
        any::<(u8, u16, u32, u64, u128)>(),
        any::<(i8, i16, i32, i64, i128)>(),
    )
        .prop_map(|((a, b, c, d, e), (f, g, h, i, j))| {
            Everything::from(Numbers {
                a,
                b,
                c,
                d,
                e,
                f,
                g,
                h,
                i,
                j,
            })
        });
    let flags = any::<(bool, bool)>().prop_map(|(yes, no)| Everything::from(Flags { yes, no }));
    let blobs = (
        any::<[u8; 5]>(),
        prop::collection::vec(any::<u8>(), 0..=60),
        any::<u16>(),
    )
        .prop_map(|(array, text, tail)| {
            Everything::from(Blobs {
                array,
                text: bytes(&text),
                tail,
            })
        });
    prop_oneof![numbers, flags, blobs, Just(Everything::from(Empty {}))]
}

fn arbitrary_ping() -> impl Strategy<Value = Ping> {
    prop_oneof![
        any::<u32>().prop_map(|from_core| Ping::from(Hello { from_core })),
        (any::<u64>(), any::<[u8; 36]>()).prop_map(|(value, pad)| Ping::from(Echo { value, pad })),
        (any::<u32>(), prop::collection::vec(any::<u8>(), 0..=200)).prop_map(|(id, data)| {
            Ping::from(Put {
                id,
                data: bytes(&data),
            })
        }),
    ]
}

/// Slots with headers near valid ones, which reach the reassembler's deeper
/// checks far more often than uniformly random bytes do.
fn plausible_slot() -> impl Strategy<Value = Payload> {
    (
        0..6u8,
        0..7u8,
        0..7u8,
        prop_oneof![Just(44u8), 0..=46u8],
        0..3u32,
        0..2u32,
        any::<[u8; FRAGMENT_SIZE]>(),
    )
        .prop_map(|(kind, fragment, fragments, length, call, epoch, body)| {
            let mut slot = [0; PAYLOAD_SIZE];
            slot[..4].copy_from_slice(&[kind, fragment, fragments, length]);
            slot[CALL..EPOCH_AT].copy_from_slice(&call.to_le_bytes());
            slot[EPOCH_AT..BODY].copy_from_slice(&epoch.to_le_bytes());
            slot[BODY..].copy_from_slice(&body);
            slot
        })
}

proptest! {
    #[test]
    fn encode_then_decode_is_the_identity(message in arbitrary_everything(), call in any::<u32>()) {
        let slots = encoded(&message, call);
        prop_assert_eq!(reassemble(&slots), Ok(Some(Envelope { call, epoch: EPOCH, message })));
    }

    #[test]
    fn ping_messages_round_trip(message in arbitrary_ping(), call in any::<u32>()) {
        let slots = encoded(&message, call);
        prop_assert_eq!(reassemble(&slots), Ok(Some(Envelope { call, epoch: EPOCH, message })));
    }

    #[test]
    fn random_slots_never_panic(
        random in prop::collection::vec(any::<[u8; PAYLOAD_SIZE]>(), 1..20),
        plausible in prop::collection::vec(plausible_slot(), 1..40),
        limit in 0..3usize,
    ) {
        let mut ping = Reassembler::<Ping>::new(limit);
        let mut everything = Reassembler::<Everything>::new(limit);
        for slot in random.iter().chain(&plausible) {
            let _ = ping.push(slot);
            let _ = everything.push(slot);
        }
    }

    #[test]
    fn shuffled_dropped_and_repeated_fragments_never_panic(
        messages in prop::collection::vec(arbitrary_ping(), 1..4),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
        limit in 0..3usize,
    ) {
        // Each message under its own call id, its index.
        let all: Vec<Payload> = (0..).zip(&messages).flat_map(|(call, message)| encode(message, call, EPOCH)).collect();
        let mut reassembler = Reassembler::<Ping>::new(limit);
        for pick in &picks {
            if let Ok(Some(Envelope { call, epoch: EPOCH, message })) = reassembler.push(pick.get(&all)) {
                // Whatever comes out whole is the message sent under its call id.
                prop_assert_eq!(&messages[call as usize], &message);
            }
        }
    }
}
