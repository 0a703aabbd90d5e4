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
        /// Inside a `Scope (NAME)` below the root, whose one bare segment
        /// ACPICA looks for in each enclosing scope in turn: this is the
        /// first place it looks, and the object may be higher up. Names
        /// appended to it stay below that object wherever it is.
        searched: bool,
    },
    /// `^` climbed out of a searched scope: where this is cannot be told
    /// without the namespace. Its last segment, if one was appended.
    Uncertain { last: Option<Segment> },
    /// Deeper than [`MOST_SEGMENTS`], or above the root.
    Unknown,
}

impl Path {
    pub(super) const ROOT: Path = Path::Known {
        segments: [[0; 4]; MOST_SEGMENTS],
        len: 0,
        searched: false,
    };

    /// Whether this is `\` followed by exactly `segments`.
    pub(super) fn is(&self, wanted: &[Segment]) -> bool {
        match self {
            Path::Known { segments, len, .. } => segments.get(..*len) == Some(wanted),
            Path::Uncertain { .. } | Path::Unknown => false,
        }
    }

    /// Whether this ends with `last` in a place that cannot be told, which
    /// may be the root.
    pub(super) fn may_be_root_s(&self, last: Segment) -> bool {
        *self == Path::Uncertain { last: Some(last) }
    }

    fn up(self, levels: usize) -> Path {
        match self {
            _ if levels == 0 => self,
            Path::Known { searched: true, .. } | Path::Uncertain { .. } => {
                Path::Uncertain { last: None }
            }
            Path::Known {
                segments,
                len,
                searched: false,
            } if levels <= len => Path::Known {
                segments,
                len: len - levels,
                searched: false,
            },
            _ => Path::Unknown,
        }
    }

    fn push(self, segment: Segment) -> Path {
        match self {
            Path::Known {
                mut segments,
                len,
                searched,
            } if len < MOST_SEGMENTS => {
                segments[len] = segment;
                Path::Known {
                    segments,
                    len: len + 1,
                    searched,
                }
            }
            Path::Uncertain { .. } => Path::Uncertain {
                last: Some(segment),
            },
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

/// Reads the name of a `Scope`: as [`read_name`], but one bare segment
/// below the root is searched for in the enclosing scopes too, as ACPICA
/// does for a name that refers to an existing object.
pub(super) fn read_scope_name(
    stream: &mut Stream<'_, impl PhysMem>,
    scope: Path,
) -> Result<Path, AcpiError> {
    let bare = leads_segment(stream.peek()?);
    match read_name(stream, scope)? {
        Path::Known {
            segments,
            len,
            searched: false,
        } if bare && scope != Path::ROOT => Ok(Path::Known {
            segments,
            len,
            searched: true,
        }),
        path => Ok(path),
    }
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
