//! The programs in the boot image.
//!
//! User programs travel as one boot module: a tar archive of static ELF
//! executables, one per program, named by their file names. Adding a
//! program means adding a file to the archive (`cargo xtask` builds the
//! programs under `user/` and packs them), not rebuilding the kernel.
//!
//! [`Archive::parse`] reads the archive and [`Image::parse`] one program's
//! ELF file, and both check everything the kernel will rely on before it
//! loads a byte: names, sizes, the machine, and that every loaded segment
//! lies in the user half of an address space ([`USER_START`] to
//! [`USER_END`]), inside the file, apart from the others, never both
//! writable and executable, with the entry point in an executable one. Bad
//! input gets an error that says what is wrong, never a panic.
//!
//! The parsing is the crates' (`tar-no-std` for the archive, `elf` for the
//! executables); the checks are Atoll's. This crate touches no hardware and
//! allocates only the lists it returns.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use elf::ElfBytes;
use elf::abi::{EM_X86_64, ET_EXEC, PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;

pub use atoll_abi::{USER_END, USER_START};
/// The most programs an archive may hold.
pub const MAX_PROGRAMS: usize = 64;
/// The longest program name, in bytes.
pub const MAX_NAME: usize = 32;
/// The most loaded segments a program may have.
pub const MAX_SEGMENTS: usize = 16;
const PAGE: u64 = 4096;

/// One program of the archive: its name and its ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program<'a> {
    pub name: String,
    pub file: &'a [u8],
}

/// The archive of programs the boot loader handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive<'a> {
    programs: Vec<Program<'a>>,
}

/// Why an archive cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveError {
    /// Not a tar archive the parser reads.
    NotAnArchive,
    /// More programs than [`MAX_PROGRAMS`].
    TooManyPrograms,
    /// A file name that is not a program name: 1 to [`MAX_NAME`] bytes of
    /// ASCII letters, digits, `-` and `_`.
    BadName { name: String },
    /// Two files of one name.
    Duplicate { name: String },
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnArchive => write!(f, "not a tar archive"),
            Self::TooManyPrograms => write!(f, "more than {MAX_PROGRAMS} programs"),
            Self::BadName { name } => write!(
                f,
                "{name:?} is no program name (1 to {MAX_NAME} letters, digits, '-' or '_')"
            ),
            Self::Duplicate { name } => write!(f, "two programs named {name}"),
        }
    }
}

fn is_program_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

impl<'a> Archive<'a> {
    /// Reads the archive in `bytes`: its regular files, each a program
    /// named by its file name (a leading `./` is dropped).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ArchiveError> {
        let archive =
            tar_no_std::TarArchiveRef::new(bytes).map_err(|_| ArchiveError::NotAnArchive)?;
        let mut programs: Vec<Program<'a>> = Vec::new();
        for entry in archive.entries() {
            let name = entry.filename();
            let name = name.as_str().map_err(|_| ArchiveError::BadName {
                name: String::from("(not UTF-8)"),
            })?;
            let name = name.strip_prefix("./").unwrap_or(name);
            if !is_program_name(name) {
                return Err(ArchiveError::BadName { name: name.into() });
            }
            if programs.len() == MAX_PROGRAMS {
                return Err(ArchiveError::TooManyPrograms);
            }
            if programs.iter().any(|program| program.name == name) {
                return Err(ArchiveError::Duplicate { name: name.into() });
            }
            programs.push(Program {
                name: name.into(),
                file: entry.data(),
            });
        }
        Ok(Self { programs })
    }

    /// The programs, in the archive's order.
    pub fn programs(&self) -> &[Program<'a>] {
        &self.programs
    }

    /// The program named `name`.
    pub fn find(&self, name: &str) -> Option<&Program<'a>> {
        self.programs.iter().find(|program| program.name == name)
    }
}

/// One loaded segment of a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Where it goes in the address space (a page boundary).
    pub start: u64,
    /// Bytes it takes there; past the file's bytes, zeros.
    pub mem_size: u64,
    /// Its bytes in the file.
    pub file: Range<usize>,
    pub writable: bool,
    pub executable: bool,
}

impl Segment {
    /// The pages it covers, rounded out.
    pub fn pages(&self) -> Range<u64> {
        self.start..(self.start + self.mem_size).next_multiple_of(PAGE)
    }
}

/// A program's image, checked: where to start it and what to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub entry: u64,
    pub segments: Vec<Segment>,
}

/// Why a program's file cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageError {
    /// Not an ELF file the parser reads.
    NotElf,
    /// An ELF file, but not a 64-bit little-endian x86-64 executable.
    NotAnExecutable,
    /// No loaded segment, or more than [`MAX_SEGMENTS`].
    SegmentCount { count: usize },
    /// A segment that does not start on a page, whose file bytes are not
    /// at the same offset in their page, or whose file size exceeds its
    /// memory size.
    BadSegment { start: u64 },
    /// A segment outside [`USER_START`] to [`USER_END`].
    OutsideUserSpace { start: u64, end: u64 },
    /// A segment whose bytes lie past the end of the file.
    PastEndOfFile { start: u64 },
    /// A segment both writable and executable.
    WritableAndExecutable { start: u64 },
    /// Two segments on a common page.
    Overlap { start: u64 },
    /// The entry point is in no executable segment.
    EntryOutside { entry: u64 },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotElf => write!(f, "not an ELF file"),
            Self::NotAnExecutable => write!(f, "not a 64-bit x86-64 executable"),
            Self::SegmentCount { count } => write!(
                f,
                "{count} loaded segments (1 to {MAX_SEGMENTS} are allowed)"
            ),
            Self::BadSegment { start } => write!(
                f,
                "the segment at {start:#x} is not page-aligned, or its file bytes are longer than it"
            ),
            Self::OutsideUserSpace { start, end } => write!(
                f,
                "the segment {start:#x}-{end:#x} is outside user space ({USER_START:#x}-{USER_END:#x})"
            ),
            Self::PastEndOfFile { start } => {
                write!(f, "the segment at {start:#x} lies past the end of the file")
            }
            Self::WritableAndExecutable { start } => {
                write!(f, "the segment at {start:#x} is writable and executable")
            }
            Self::Overlap { start } => write!(f, "the segment at {start:#x} overlaps another"),
            Self::EntryOutside { entry } => {
                write!(f, "the entry point {entry:#x} is in no executable segment")
            }
        }
    }
}

impl Image {
    /// Reads and checks the ELF executable in `file`.
    pub fn parse(file: &[u8]) -> Result<Self, ImageError> {
        let elf = ElfBytes::<LittleEndian>::minimal_parse(file).map_err(|_| ImageError::NotElf)?;
        if elf.ehdr.class != elf::file::Class::ELF64
            || elf.ehdr.e_machine != EM_X86_64
            || elf.ehdr.e_type != ET_EXEC
        {
            return Err(ImageError::NotAnExecutable);
        }
        let headers = elf
            .segments()
            .ok_or(ImageError::SegmentCount { count: 0 })?;
        let mut segments: Vec<Segment> = Vec::new();
        for header in headers.iter().filter(|header| header.p_type == PT_LOAD) {
            if segments.len() == MAX_SEGMENTS {
                return Err(ImageError::SegmentCount {
                    count: MAX_SEGMENTS + 1,
                });
            }
            let start = header.p_vaddr;
            if start % PAGE != header.p_offset % PAGE || header.p_filesz > header.p_memsz {
                return Err(ImageError::BadSegment { start });
            }
            let end = start.checked_add(header.p_memsz);
            let Some(end) = end.filter(|&end| start >= USER_START && end <= USER_END) else {
                return Err(ImageError::OutsideUserSpace {
                    start,
                    end: end.unwrap_or(u64::MAX),
                });
            };
            let file_end = header.p_offset.checked_add(header.p_filesz);
            let Some(file_end) = file_end.filter(|&end| end <= file.len() as u64) else {
                return Err(ImageError::PastEndOfFile { start });
            };
            let writable = header.p_flags & PF_W != 0;
            let executable = header.p_flags & PF_X != 0;
            if writable && executable {
                return Err(ImageError::WritableAndExecutable { start });
            }
            // Loaded from its page's start, so that the file's offset in
            // the page stays the address's.
            let page = start - start % PAGE;
            let segment = Segment {
                start: page,
                mem_size: end - page,
                file: (header.p_offset - start % PAGE) as usize..file_end as usize,
                writable,
                executable,
            };
            if segments
                .iter()
                .any(|other| ranges_meet(&other.pages(), &segment.pages()))
            {
                return Err(ImageError::Overlap { start });
            }
            segments.push(segment);
        }
        if segments.is_empty() {
            return Err(ImageError::SegmentCount { count: 0 });
        }
        let entry = elf.ehdr.e_entry;
        if !segments.iter().any(|segment| {
            segment.executable && (segment.start..segment.start + segment.mem_size).contains(&entry)
        }) {
            return Err(ImageError::EntryOutside { entry });
        }
        Ok(Self { entry, segments })
    }
}

fn ranges_meet(a: &Range<u64>, b: &Range<u64>) -> bool {
    a.start < b.end && b.start < a.end
}

#[cfg(test)]
mod tests;
