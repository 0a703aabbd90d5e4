//! AML names: reading a NameString and resolving it against the scope it
//! is written in, as a definition does (relative to that scope, with no
//! search up the tree: `Name (_S5, ...)` inside a device defines the
//! device's `_S5`, never the root's).

use super::stream::Stream;
use super::{AmlError, AmlProblem};
use crate::PhysMem;
use crate::acpi::AcpiError;

const ROOT_CHAR: u8 = b'\\';
const PARENT_PREFIX: u8 = b'^';
const DUAL_NAME_PREFIX: u8 = 0x2E;
const MULTI_NAME_PREFIX: u8 = 0x2F;
const NULL_NAME: u8 = 0x00;

/// The deepest path kept. Deeper scopes are tracked as [`Path::Unknown`]:
/// no name in them is `\_S5`, unless it is written from the root.
const MOST_SEGMENTS: usize = 16;

pub(super) type Segment = [u8; 4];

/// An absolute path in the namespace.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Path {
    Known {
        segments: [Segment; MOST_SEGMENTS],
        len: usize,
    },
    /// Deeper than [`MOST_SEGMENTS`], or above the root.
    Unknown,
}

impl Path {
    pub(super) const ROOT: Path = Path::Known {
        segments: [[0; 4]; MOST_SEGMENTS],
        len: 0,
    };

    /// Whether this is `\` followed by exactly `segments`.
    pub(super) fn is(&self, wanted: &[Segment]) -> bool {
        match self {
            Path::Known { segments, len } => segments.get(..*len) == Some(wanted),
            Path::Unknown => false,
        }
    }

    fn up(self, levels: usize) -> Path {
        match self {
            Path::Known { segments, len } if levels <= len => Path::Known {
                segments,
                len: len - levels,
            },
            _ => Path::Unknown,
        }
    }

    fn push(self, segment: Segment) -> Path {
        match self {
            Path::Known { mut segments, len } if len < MOST_SEGMENTS => {
                segments[len] = segment;
                Path::Known {
                    segments,
                    len: len + 1,
                }
            }
            _ => Path::Unknown,
        }
    }
}

/// Whether `byte` can start a NameString.
pub(super) fn starts_name(byte: u8) -> bool {
    matches!(
        byte,
        ROOT_CHAR | PARENT_PREFIX | DUAL_NAME_PREFIX | MULTI_NAME_PREFIX
    ) || leads_segment(byte)
}

/// Whether `byte` can start a NameSeg: `A`-`Z` or `_`.
fn leads_segment(byte: u8) -> bool {
    byte == b'_' || byte.is_ascii_uppercase()
}

fn bad_name(offset: u32) -> AcpiError {
    AcpiError::Aml(AmlError {
        offset,
        problem: AmlProblem::BadName,
    })
}

/// Reads a NameString and gives the path it names when written in `scope`.
/// The NullName resolves to `scope` itself.
pub(super) fn read_name(
    stream: &mut Stream<'_, impl PhysMem>,
    scope: Path,
) -> Result<Path, AcpiError> {
    let start = stream.pos();
    let mut path = match stream.peek()? {
        ROOT_CHAR => {
            stream.byte()?;
            Path::ROOT
        }
        _ => {
            let mut levels = 0;
            while stream.peek()? == PARENT_PREFIX {
                stream.byte()?;
                levels += 1;
            }
            scope.up(levels)
        }
    };
    let count = match stream.peek()? {
        NULL_NAME => {
            stream.byte()?;
            0
        }
        DUAL_NAME_PREFIX => {
            stream.byte()?;
            2
        }
        MULTI_NAME_PREFIX => {
            stream.byte()?;
            stream.byte()?
        }
        // A single segment, which starts here.
        lead if leads_segment(lead) => 1,
        _ => return Err(bad_name(start)),
    };
    for _ in 0..count {
        let segment = stream.le::<4>()?.to_le_bytes();
        let segment = [segment[0], segment[1], segment[2], segment[3]];
        let [lead, rest @ ..] = segment;
        let valid = leads_segment(lead)
            && rest
                .iter()
                .all(|byte| leads_segment(*byte) || byte.is_ascii_digit());
        if !valid {
            return Err(bad_name(start));
        }
        path = path.push(segment);
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_mem::FakeMem;

    fn resolve(bytes: &[u8], scope: Path) -> Result<Path, AcpiError> {
        let mut mem = FakeMem::new();
        mem.put(0x1000, bytes);
        let mut stream = Stream::new(&mem, 0x1000, 0, bytes.len() as u32);
        read_name(&mut stream, scope)
    }

    #[test]
    fn names_resolve_from_the_root_the_scope_or_its_parents() {
        let sb = Path::ROOT.push(*b"_SB_");
        assert!(resolve(b"\\_S5_", sb).unwrap().is(&[*b"_S5_"]));
        assert!(resolve(b"_S5_", Path::ROOT).unwrap().is(&[*b"_S5_"]));
        assert!(resolve(b"_S5_", sb).unwrap().is(&[*b"_SB_", *b"_S5_"]));
        assert!(resolve(b"^_S5_", sb).unwrap().is(&[*b"_S5_"]));
        assert!(
            resolve(b"\\\x2E_SB_PCI0", Path::ROOT)
                .unwrap()
                .is(&[*b"_SB_", *b"PCI0"])
        );
        assert!(
            resolve(b"\x2F\x03_SB_PCI0ISA_", Path::ROOT)
                .unwrap()
                .is(&[*b"_SB_", *b"PCI0", *b"ISA_"])
        );
        assert!(resolve(b"\x00", sb).unwrap().is(&[*b"_SB_"]));
        assert_eq!(resolve(b"^^_S5_", sb), Ok(Path::Unknown), "above the root");
    }

    #[test]
    fn bad_names_are_errors() {
        assert_eq!(
            resolve(b"\\\x2E_SB_p", Path::ROOT),
            Err(AcpiError::Aml(AmlError {
                offset: 7,
                problem: AmlProblem::Truncated
            }))
        );
        assert_eq!(resolve(b"\x2E_SB_pci0", Path::ROOT), Err(bad_name(0)));
        assert_eq!(resolve(b"1ABC", Path::ROOT), Err(bad_name(0)));
    }
}
