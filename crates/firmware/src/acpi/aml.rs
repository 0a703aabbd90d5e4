//! Just enough AML to power off: the DSDT is scanned for the `_S5_` name rather than
//! interpreted, which finds the `Name (_S5, Package () { SLP_TYPa, SLP_TYPb, ... })` that PC
//! firmware and QEMU write.

use super::{AcpiError, HEADER_LEN, TableAt};
use crate::{PhysBytes, PhysMem, read_into};

const NAME_OP: u8 = 0x08;
const ROOT_PREFIX: u8 = b'\\';
const PACKAGE_OP: u8 = 0x12;
const ZERO_OP: u8 = 0x00;
const ONE_OP: u8 = 0x01;
const BYTE_PREFIX: u8 = 0x0A;
const WORD_PREFIX: u8 = 0x0B;
const DWORD_PREFIX: u8 = 0x0C;
/// The most bytes decoding needs: PackageOp, a PkgLength of up to 4 bytes, NumElements, and two
/// integers of up to 5 bytes each.
const S5_PACKAGE_MAX_LEN: usize = 16;

/// SLP_TYPa and SLP_TYPb of the `\_S5` (soft off) sleep state, from the DSDT at `dsdt` (checked
/// for signature, length and checksum). Write `SLP_TYPx << 10 | SLP_EN` to the PM1x control ports.
pub fn s5_sleep_types(mem: &impl PhysMem, dsdt: u64) -> Result<(u8, u8), AcpiError> {
    let table = TableAt::read(mem, dsdt, b"DSDT")?;
    let table_bytes = (0u64..).zip(PhysBytes::new(mem, dsdt, u64::from(table.length)));
    // The last bytes seen: NameOp, an optional root prefix, and the four bytes of the name.
    let mut recent = [0u8; 6];
    for (offset, byte) in table_bytes.skip(HEADER_LEN as usize) {
        recent.rotate_left(1);
        recent[5] = byte?;
        let [before_prefix, before_name, name @ ..] = recent;
        let defines_name =
            before_name == NAME_OP || (before_name == ROOT_PREFIX && before_prefix == NAME_OP);
        if defines_name && name == *b"_S5_" {
            let package_offset = offset + 1;
            let available = u64::from(table.length).saturating_sub(package_offset);
            let mut package = [0; S5_PACKAGE_MAX_LEN];
            // At most S5_PACKAGE_MAX_LEN, so the conversion is lossless.
            let package = package
                .get_mut(..available.min(S5_PACKAGE_MAX_LEN as u64) as usize)
                .unwrap_or_default();
            read_into(mem, dsdt, package_offset, package)?;
            return decode_s5_package(package).ok_or(AcpiError::BadS5Package);
        }
    }
    Err(AcpiError::NoS5)
}

/// Decodes `PackageOp PkgLength NumElements SLP_TYPa SLP_TYPb ...`; the elements after the first
/// two (reserved) are not needed.
fn decode_s5_package(aml: &[u8]) -> Option<(u8, u8)> {
    let [PACKAGE_OP, pkg_length_lead, rest @ ..] = aml else {
        return None;
    };
    // Bits 6-7 of PkgLength's lead byte count the bytes that follow it.
    let rest = rest.get(usize::from(pkg_length_lead >> 6)..)?;
    let [element_count, rest @ ..] = rest else {
        return None;
    };
    if *element_count < 2 {
        return None;
    }
    let (slp_typ_a, rest) = integer(rest)?;
    let (slp_typ_b, _) = integer(rest)?;
    Some((u8::try_from(slp_typ_a).ok()?, u8::try_from(slp_typ_b).ok()?))
}

/// Decodes one integer constant: ZeroOp, OneOp, or a byte, word or dword with its prefix.
fn integer(aml: &[u8]) -> Option<(u32, &[u8])> {
    let (&op, rest) = aml.split_first()?;
    let width = match op {
        ZERO_OP => return Some((0, rest)),
        ONE_OP => return Some((1, rest)),
        BYTE_PREFIX => 1,
        WORD_PREFIX => 2,
        DWORD_PREFIX => 4,
        _ => return None,
    };
    let (value, rest) = rest.split_at_checked(width)?;
    let value = value
        .iter()
        .rev()
        .fold(0, |value, byte| value << 8 | u32::from(*byte));
    Some((value, rest))
}

#[cfg(test)]
mod tests {
    use super::decode_s5_package;

    #[test]
    fn decodes_byte_word_dword_and_constant_elements() {
        assert_eq!(
            decode_s5_package(&[0x12, 0x0A, 0x04, 0x0A, 0x05, 0x0A, 0x07, 0x00, 0x00]),
            Some((5, 7))
        );
        assert_eq!(
            decode_s5_package(&[0x12, 0x06, 0x04, 0x00, 0x01, 0x00, 0x00]),
            Some((0, 1))
        );
        assert_eq!(
            decode_s5_package(&[0x12, 0x0B, 0x02, 0x0B, 0x07, 0x00, 0x0C, 0x06, 0, 0, 0]),
            Some((7, 6))
        );
    }

    #[test]
    fn skips_a_multi_byte_package_length() {
        // Lead byte 0x41: one more PkgLength byte follows.
        assert_eq!(
            decode_s5_package(&[0x12, 0x41, 0x01, 0x02, 0x0A, 0x03, 0x0A, 0x04]),
            Some((3, 4))
        );
    }

    #[test]
    fn rejects_what_is_not_a_two_integer_package() {
        assert_eq!(decode_s5_package(&[0x0A, 0x05]), None, "not a package");
        assert_eq!(
            decode_s5_package(&[0x12, 0x04, 0x01, 0x0A, 0x05]),
            None,
            "one element"
        );
        assert_eq!(
            decode_s5_package(&[0x12, 0x06, 0x02, 0x0A, 0x05, 0x0D]),
            None,
            "a string element"
        );
        assert_eq!(
            decode_s5_package(&[0x12, 0x06, 0x02, 0x0B, 0x00, 0x01, 0x00]),
            None,
            "wider than a byte"
        );
        assert_eq!(
            decode_s5_package(&[0x12, 0x06, 0x02, 0x0A]),
            None,
            "truncated"
        );
    }
}
