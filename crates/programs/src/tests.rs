//! Archives built with the `tar` crate, and ELF files built here field by
//! field, good and bad.

use super::*;
use alloc::vec;
use proptest::prelude::*;

extern crate std;

/// A tar archive of `files`, as GNU tar would write it.
fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// A program header: type, flags, offset, address, file and memory size.
struct Header {
    kind: u32,
    flags: u32,
    offset: u64,
    address: u64,
    file_size: u64,
    mem_size: u64,
}

fn load(flags: u32, offset: u64, address: u64, file_size: u64, mem_size: u64) -> Header {
    Header {
        kind: PT_LOAD,
        flags,
        offset,
        address,
        file_size,
        mem_size,
    }
}

/// A 64-bit little-endian ELF file of `machine` and `kind`, entry `entry`,
/// with `headers`, padded to `size` bytes.
fn elf_file(machine: u16, kind: u16, entry: u64, headers: &[Header], size: usize) -> Vec<u8> {
    let mut file = vec![0u8; size.max(64 + 56 * headers.len())];
    file[..4].copy_from_slice(b"\x7fELF");
    file[4] = 2; // 64-bit
    file[5] = 1; // little-endian
    file[6] = 1; // version
    file[16..18].copy_from_slice(&kind.to_le_bytes());
    file[18..20].copy_from_slice(&machine.to_le_bytes());
    file[20..24].copy_from_slice(&1u32.to_le_bytes());
    file[24..32].copy_from_slice(&entry.to_le_bytes());
    file[32..40].copy_from_slice(&64u64.to_le_bytes()); // program headers
    file[52..54].copy_from_slice(&64u16.to_le_bytes()); // header size
    file[54..56].copy_from_slice(&56u16.to_le_bytes()); // program header size
    file[56..58].copy_from_slice(&(headers.len() as u16).to_le_bytes());
    file[58..60].copy_from_slice(&64u16.to_le_bytes()); // section header size
    for (index, header) in headers.iter().enumerate() {
        let at = 64 + 56 * index;
        let fields: [&[u8]; 8] = [
            &header.kind.to_le_bytes(),
            &header.flags.to_le_bytes(),
            &header.offset.to_le_bytes(),
            &header.address.to_le_bytes(),
            &header.address.to_le_bytes(),
            &header.file_size.to_le_bytes(),
            &header.mem_size.to_le_bytes(),
            &PAGE.to_le_bytes(),
        ];
        let mut cursor = at;
        for field in fields {
            file[cursor..cursor + field.len()].copy_from_slice(field);
            cursor += field.len();
        }
    }
    file
}

const CODE: u32 = 5; // read, execute
const DATA: u32 = 6; // read, write

/// A well-formed program: code at the user start, data two pages on.
fn good_program() -> Vec<u8> {
    let headers = [
        load(CODE, 0x1000, USER_START, 0x800, 0x800),
        load(DATA, 0x2000, USER_START + 0x2000, 0x100, 0x3000),
    ];
    elf_file(EM_X86_64, ET_EXEC, USER_START + 0x10, &headers, 0x2100)
}

#[test]
fn a_good_program_is_read_with_its_segments() {
    let image = Image::parse(&good_program()).unwrap();
    assert_eq!(image.entry, USER_START + 0x10);
    assert_eq!(
        image.segments,
        [
            Segment {
                start: USER_START,
                mem_size: 0x800,
                file: 0x1000..0x1800,
                writable: false,
                executable: true,
            },
            Segment {
                start: USER_START + 0x2000,
                mem_size: 0x3000,
                file: 0x2000..0x2100,
                writable: true,
                executable: false,
            },
        ]
    );
    assert_eq!(
        image.segments[1].pages(),
        USER_START + 0x2000..USER_START + 0x5000
    );
}

#[test]
fn every_bad_program_gets_its_own_error() {
    let code = |start, size| load(CODE, 0x1000, start, size, size);
    let cases: Vec<(Vec<u8>, ImageError)> = vec![
        (b"not an elf file at all".to_vec(), ImageError::NotElf),
        (
            elf_file(3, ET_EXEC, USER_START, &[code(USER_START, 16)], 0x2000),
            ImageError::NotAnExecutable,
        ),
        (
            elf_file(EM_X86_64, 3, USER_START, &[code(USER_START, 16)], 0x2000),
            ImageError::NotAnExecutable,
        ),
        (
            elf_file(EM_X86_64, ET_EXEC, USER_START, &[], 0x2000),
            ImageError::SegmentCount { count: 0 },
        ),
        (
            elf_file(EM_X86_64, ET_EXEC, 0x1000, &[code(0x1000, 16)], 0x2000),
            ImageError::OutsideUserSpace {
                start: 0x1000,
                end: 0x1010,
            },
        ),
        (
            elf_file(
                EM_X86_64,
                ET_EXEC,
                USER_START,
                &[code(USER_END - 8, 16)],
                0x2000,
            ),
            ImageError::BadSegment {
                start: USER_END - 8,
            },
        ),
        (
            elf_file(
                EM_X86_64,
                ET_EXEC,
                USER_START,
                &[load(CODE, 0x1000, USER_START, 0x2000, 0x2000)],
                0x2000,
            ),
            ImageError::PastEndOfFile { start: USER_START },
        ),
        (
            elf_file(
                EM_X86_64,
                ET_EXEC,
                USER_START,
                &[load(7, 0x1000, USER_START, 16, 16)],
                0x2000,
            ),
            ImageError::WritableAndExecutable { start: USER_START },
        ),
        (
            elf_file(
                EM_X86_64,
                ET_EXEC,
                USER_START,
                &[code(USER_START, 16), load(DATA, 0x1000, USER_START, 16, 16)],
                0x2000,
            ),
            ImageError::Overlap { start: USER_START },
        ),
        (
            elf_file(
                EM_X86_64,
                ET_EXEC,
                USER_START + 0x5000,
                &[code(USER_START, 16)],
                0x2000,
            ),
            ImageError::EntryOutside {
                entry: USER_START + 0x5000,
            },
        ),
        (
            elf_file(
                EM_X86_64,
                ET_EXEC,
                USER_START,
                &[load(CODE, 0x1000, USER_START, 32, 16)],
                0x2000,
            ),
            ImageError::BadSegment { start: USER_START },
        ),
    ];
    for (file, expected) in cases {
        assert_eq!(Image::parse(&file), Err(expected.clone()), "{expected}");
    }
}

#[test]
fn an_archive_lists_its_programs_by_name() {
    let hello = good_program();
    let bytes = archive(&[("hello", &hello), ("./ping-pong_2", b"x")]);
    let archive = Archive::parse(&bytes).unwrap();
    let names: Vec<&str> = archive.programs().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["hello", "ping-pong_2"]);
    assert_eq!(archive.find("hello").unwrap().file, &hello[..]);
    assert!(archive.find("hell").is_none());
}

#[test]
fn a_bad_archive_says_why() {
    assert_eq!(
        Archive::parse(b"not a tar archive, too short"),
        Err(ArchiveError::NotAnArchive)
    );
    assert_eq!(
        Archive::parse(&archive(&[("a/b", b"x")])),
        Err(ArchiveError::BadName { name: "a/b".into() })
    );
    assert_eq!(
        Archive::parse(&archive(&[("same", b"x"), ("same", b"y")])),
        Err(ArchiveError::Duplicate {
            name: "same".into()
        })
    );
    let many: Vec<String> = (0..=MAX_PROGRAMS).map(|n| alloc::format!("p{n}")).collect();
    let files: Vec<(&str, &[u8])> = many.iter().map(|name| (name.as_str(), &b"x"[..])).collect();
    assert_eq!(
        Archive::parse(&archive(&files)),
        Err(ArchiveError::TooManyPrograms)
    );
}

proptest! {
    #[test]
    fn no_bytes_make_the_parsers_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = Archive::parse(&bytes);
        let _ = Image::parse(&bytes);
    }

    #[test]
    fn no_program_header_makes_the_image_parser_panic(
        flags in 0u32..8,
        offset in any::<u64>(),
        address in any::<u64>(),
        file_size in any::<u64>(),
        mem_size in any::<u64>(),
        entry in any::<u64>(),
    ) {
        let file = elf_file(
            EM_X86_64,
            ET_EXEC,
            entry,
            &[load(flags, offset, address, file_size, mem_size)],
            0x2000,
        );
        if let Ok(image) = Image::parse(&file) {
            for segment in &image.segments {
                prop_assert!(segment.start >= USER_START && segment.start + segment.mem_size <= USER_END);
                prop_assert!(segment.file.end <= file.len());
                prop_assert!(!(segment.writable && segment.executable));
            }
        }
    }
}
