//! The walk on hand-encoded AML: what `iasl` will not write (malformed lengths, opcodes the walk
//! cannot size, hostile nesting), and how it reports each. `tests/acpica.rs` checks the tables
//! `iasl` compiles against ACPICA.

use std::string::ToString;
use std::vec::Vec;

use super::*;
use crate::fake_mem::{FakeMem, table};

const AT: u64 = 0x8000;

fn s5_of(aml: &[&[u8]]) -> Result<(u8, u8), AcpiError> {
    let mut mem = FakeMem::new();
    mem.put(AT, &table(b"DSDT", 2, &aml.concat()));
    s5_sleep_types(&mem, AT)
}

/// `Name (_S5, Package () { 5, 6, 0, 0 })`.
const S5: [u8; 14] = [
    0x08, b'_', b'S', b'5', b'_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x06, 0x00, 0x00,
];

/// `Device (DEV0) { <body> }`, for a body of under 58 bytes.
fn device(body: &[u8]) -> Vec<u8> {
    let length = u8::try_from(1 + 4 + body.len()).unwrap();
    [&[0x5B, 0x82, length][..], b"DEV0", body].concat()
}

#[test]
fn an_opcode_the_walk_cannot_size_ends_its_scope_only() {
    // 0x5B 0x99 is no opcode: the rest of the device is skipped, and \_S5 after it is found.
    let broken = device(&[0x5B, 0x99, 0x01, 0x02]);
    assert_eq!(s5_of(&[&broken, &S5]), Ok((5, 6)));
    // Past the same opcode at the root, nothing is found, and the error says where it stopped.
    let error = s5_of(&[&[0x5B, 0x99], &S5]).unwrap_err();
    assert_eq!(
        error,
        AcpiError::NoS5 {
            unread: Some(AmlError {
                offset: 36,
                problem: AmlProblem::Unsupported { opcode: 0x5B99 }
            })
        }
    );
    assert_eq!(
        error.to_string(),
        "no \\_S5 object in what could be read of the DSDT: the walk stopped at AML opcode 0x5b99 at offset 0x24, which the walk cannot size, and \\_S5 may lie in the rest of that scope"
    );
}

#[test]
fn a_package_length_past_its_scope_is_a_gap() {
    // The device says it runs 0x30 bytes, past the table's end.
    let error = s5_of(&[&[0x5B, 0x82, 0x30], b"DEV0"]).unwrap_err();
    assert_eq!(
        error,
        AcpiError::NoS5 {
            unread: Some(AmlError {
                offset: 38,
                problem: AmlProblem::Truncated
            })
        }
    );
}

#[test]
fn nesting_past_the_walk_s_depth_is_a_gap_not_a_stack_overflow() {
    // 40 scopes one inside the other, each `Scope (DEEP) { ... }` with a two-byte PkgLength.
    let mut aml = S5.to_vec();
    for _ in 0..40 {
        let length = 2 + 4 + aml.len();
        let pkg_length = [0x40 | (length & 0x0F) as u8, (length >> 4) as u8];
        aml = [&[0x10][..], &pkg_length, b"DEEP", &aml].concat();
    }
    assert_eq!(
        s5_of(&[&aml]),
        Err(AcpiError::NoS5 {
            unread: Some(AmlError {
                offset: 36 + 32 * 7,
                problem: AmlProblem::TooDeep
            })
        })
    );
}

#[test]
fn expressions_are_skipped_by_their_operands() {
    // Store (Add (0x10, Local0, Local1), Debug), CreateDWordField (BUF0, 0x04, FLD0), and
    // OperationRegion (REG0, SystemIO, ADD2 (), 0x08) with a call read as a reference.
    let store = [0x70, 0x72, 0x0A, 0x10, 0x60, 0x61, 0x5B, 0x31];
    let field = [&[0x8A][..], b"BUF0", &[0x0A, 0x04], b"FLD0"].concat();
    let region = [&[0x5B, 0x80][..], b"REG0", &[0x01], b"ADD2", &[0x0A, 0x08]].concat();
    assert_eq!(s5_of(&[&store, &field, &region, &S5]), Ok((5, 6)));
}

#[test]
fn a_constant_if_takes_one_branch() {
    // If (LAnd (One, LGreater (0x03, 0x02))) { Name (_S5, ...) } Else { Name (_S5, 1, 1) }
    let predicate = [0x90, 0x01, 0x94, 0x0A, 0x03, 0x0A, 0x02];
    let body = [&predicate[..], &S5].concat();
    let other = [0x08, b'_', b'S', b'5', b'_', 0x12, 0x04, 0x02, 0x01, 0x01];
    let if_op = [&[0xA0, u8::try_from(1 + body.len()).unwrap()][..], &body].concat();
    let else_op = [&[0xA1, u8::try_from(1 + other.len()).unwrap()][..], &other].concat();
    assert_eq!(s5_of(&[&if_op, &else_op]), Ok((5, 6)));
    // LNot turns it round: the Else is taken.
    let body = [&[0x92][..], &predicate, &S5].concat();
    let if_op = [&[0xA0, u8::try_from(1 + body.len()).unwrap()][..], &body].concat();
    assert_eq!(s5_of(&[&if_op, &else_op]), Ok((1, 1)));
}

#[test]
fn a_definition_under_an_undecided_if_is_refused_and_the_rest_is_not_read() {
    // If (FLAG) { } then \_S5: no definition under it, so \_S5 after it stands.
    let empty_if = [&[0xA0, 0x05][..], b"FLAG"].concat();
    assert_eq!(s5_of(&[&empty_if, &S5]), Ok((5, 6)));
    // If (FLAG) { Name (_S5, ...) }: whether it exists depends on FLAG.
    let body = [&b"FLAG"[..], &S5].concat();
    let if_op = [&[0xA0, u8::try_from(1 + body.len()).unwrap()][..], &body].concat();
    let error = s5_of(&[&if_op, &S5]).unwrap_err();
    assert_eq!(
        error,
        AcpiError::BadS5 {
            offset: 42,
            problem: S5Problem::Conditional
        }
    );
    assert_eq!(
        error.to_string(),
        "the DSDT's \\_S5 at offset 0x2a gives no sleep types: it is defined under an If whose predicate is not a constant"
    );
}

#[test]
fn other_objects_named_s5_are_refused() {
    // Device (\_S5) {}, and Alias (PKG0, \_S5).
    let device = [&[0x5B, 0x82, 0x06, b'\\'][..], b"_S5_"].concat();
    assert_eq!(
        s5_of(&[&device, &S5]),
        Err(AcpiError::BadS5 {
            offset: 36,
            problem: S5Problem::NotAPackage
        })
    );
    let alias = [&[0x06][..], b"PKG0", b"\\_S5_"].concat();
    assert_eq!(
        s5_of(&[&alias, &S5]),
        Err(AcpiError::BadS5 {
            offset: 36,
            problem: S5Problem::NotAPackage
        })
    );
}

#[test]
fn a_method_s5_must_start_by_returning_a_package() {
    let method = |body: &[u8]| {
        [
            &[0x14, u8::try_from(1 + 4 + 1 + body.len()).unwrap()][..],
            b"_S5_",
            &[0x00],
            body,
        ]
        .concat()
    };
    let package = [0x12, 0x05, 0x02, 0x0A, 0x03, 0x00];
    let returns = [&[0xA4][..], &package].concat();
    assert_eq!(s5_of(&[&method(&returns)]), Ok((3, 0)));
    for body in [
        &[][..],
        &[0xA3, 0xA4, 0x01][..],
        &[0xA4, 0x0D, b'x', 0x00][..],
    ] {
        assert!(
            matches!(
                s5_of(&[&method(body)]),
                Err(AcpiError::BadS5 {
                    problem: S5Problem::MethodNotConstant | S5Problem::NotAPackage,
                    ..
                })
            ),
            "{body:x?}"
        );
    }
}

#[test]
fn sleep_types_must_fit_three_bits() {
    let wide = [
        0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x02, 0x0A, 0x08, 0x0A, 0x01,
    ];
    assert_eq!(
        s5_of(&[&wide]),
        Err(AcpiError::BadS5 {
            offset: 41,
            problem: S5Problem::SleepTypeTooWide
        })
    );
}

#[test]
fn a_package_length_shorter_than_its_own_bytes_is_a_gap() {
    // An Else whose two-byte PkgLength says 1: it would end inside itself.
    assert_eq!(
        s5_of(&[&[0xA1, 0x41, 0x00], &S5]),
        Err(AcpiError::NoS5 {
            unread: Some(AmlError {
                offset: 37,
                problem: AmlProblem::Truncated
            })
        })
    );
}

#[test]
fn a_buffer_field_named_s5_is_refused() {
    // CreateDWordField (BUF0, 0x04, \_S5) before the package.
    let field = [&[0x8A][..], b"BUF0", &[0x0A, 0x04], b"\\_S5_"].concat();
    assert_eq!(
        s5_of(&[&field, &S5]),
        Err(AcpiError::BadS5 {
            offset: 36,
            problem: S5Problem::NotAPackage
        })
    );
}

/// `Scope (name) { body }`, for a body of under 58 bytes.
fn scope(name: &[u8], body: &[u8]) -> Vec<u8> {
    let length = u8::try_from(1 + name.len() + body.len()).unwrap();
    [&[0x10, length][..], name, body].concat()
}

#[test]
fn a_scope_below_the_root_is_searched_for_only_where_carets_climb_out_of_it() {
    // Scope (\_SB) { Scope (PCI0) { Name (_S5, ...) } }: \_SB.PCI0._S5 or \PCI0._S5, never \_S5.
    let nested = scope(b"\\_SB_", &scope(b"PCI0", &S5));
    assert_eq!(s5_of(&[&nested]), Err(AcpiError::NoS5 { unread: None }));
    // With Name (^^_S5, ...) in it, where it lands depends on where PCI0 is.
    let climbing = [&[0x08, b'^', b'^'][..], &S5[1..]].concat();
    let nested = scope(b"\\_SB_", &scope(b"PCI0", &climbing));
    assert_eq!(
        s5_of(&[&nested]),
        Err(AcpiError::BadS5 {
            offset: 49,
            problem: S5Problem::UncertainScope
        })
    );
}
