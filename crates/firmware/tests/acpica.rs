//! `\_S5` as ACPICA finds it. Each `tests/acpica/<case>.asl` is a DSDT with, on its first line,
//! what ACPICA's `AcpiGetSleepTypeData` gives for S5 (the sleep types, or the status it fails
//! with), and, where Atoll deliberately answers otherwise, a second line saying which refusal
//! Atoll gives instead. Beside it, `<case>.aml` is what `iasl -f` compiled from it. A
//! `<case>.hex` is a DSDT that iasl will not write (it rewrites or folds what the case is
//! about): the same first lines, a `// revision N` line, then the AML body in hexadecimal, from
//! which the test builds the table.
//!
//! - `checked_in_tables_give_acpica_s_answer` reads every `.aml` (and builds every `.hex`) with
//!   [`s5_sleep_types`] and checks the answer against the case's first lines. It needs no tools.
//! - `acpica_agrees_on_freshly_compiled_tables` compiles every `.asl` again with `iasl`, asks
//!   ACPICA (`acpiexec`, its `sleep 5` command, which prints what `AcpiGetSleepTypeData`
//!   returned) and Atoll about it and every `.hex` table, and checks that ACPICA still says what
//!   the case says and Atoll agrees. It needs the Debian package `acpica-tools`, which
//!   `cargo xtask test` installs.

use std::path::{Path, PathBuf};
use std::process::Command;

use atoll_firmware::acpi::S5Problem;
use atoll_firmware::{AcpiError, MemError, PhysMem, s5_sleep_types};

/// What `AcpiGetSleepTypeData` gives for S5.
#[derive(Debug, PartialEq, Eq, Clone)]
enum Answer {
    SleepTypes(u8, u8),
    /// `\_S5` does not exist (AE_NOT_FOUND).
    NotFound,
    /// It exists, and gives no usable sleep types: the ACPICA status.
    Refused(String),
}

/// What a case says: ACPICA's answer, and the refusal Atoll gives instead, if any.
struct Case {
    name: String,
    source: Source,
    acpica: Answer,
    atoll_refuses: Option<S5Problem>,
}

enum Source {
    /// ASL for iasl, with what it compiled beside it.
    Asl(PathBuf),
    /// A table built from hand-assembled AML.
    Hex(Vec<u8>),
}

const PROBLEMS: [(&str, S5Problem); 9] = [
    ("NotAPackage", S5Problem::NotAPackage),
    ("Empty", S5Problem::Empty),
    ("CountNotConstant", S5Problem::CountNotConstant),
    ("UncertainScope", S5Problem::UncertainScope),
    ("NotAnInteger", S5Problem::NotAnInteger),
    ("SleepTypeTooWide", S5Problem::SleepTypeTooWide),
    ("MethodNotConstant", S5Problem::MethodNotConstant),
    ("Conditional", S5Problem::Conditional),
    ("Malformed", S5Problem::Malformed),
];

fn cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acpica");
    let mut cases: Vec<Case> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter_map(|path| {
            let name = path.file_stem()?.to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).ok()?;
            let source = match path.extension()?.to_str()? {
                "asl" => Source::Asl(path.clone()),
                "hex" => Source::Hex(table_of_hex(&name, &text)),
                _ => return None,
            };
            let mut lines = text.lines();
            let acpica = lines
                .next()
                .and_then(|line| line.strip_prefix("// ACPICA: "))
                .unwrap_or_else(|| panic!("{name}: no `// ACPICA: ` first line"));
            let atoll_refuses = lines
                .next()
                .and_then(|line| line.strip_prefix("// Atoll: refused: "))
                .map(|problem| {
                    PROBLEMS
                        .iter()
                        .find(|(label, _)| *label == problem)
                        .unwrap_or_else(|| panic!("{name}: no refusal `{problem}`"))
                        .1
                });
            Some(Case {
                acpica: expected(acpica).unwrap_or_else(|| panic!("{name}: `{acpica}`")),
                name,
                source,
                atoll_refuses,
            })
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        cases.len() >= 5,
        "{} cases in {}",
        cases.len(),
        dir.display()
    );
    cases
}

/// The DSDT of a `.hex` case: a header with the revision its `// revision N` line gives, then the
/// bytes written in hexadecimal outside `//` comments.
fn table_of_hex(name: &str, text: &str) -> Vec<u8> {
    let revision = text
        .lines()
        .find_map(|line| line.strip_prefix("// revision "))
        .and_then(|revision| revision.trim().parse::<u8>().ok())
        .unwrap_or_else(|| panic!("{name}.hex: no `// revision N` line"));
    let body: Vec<u8> = text
        .lines()
        .flat_map(|line| {
            line.split("//")
                .next()
                .unwrap_or_default()
                .split_whitespace()
        })
        .map(|byte| u8::from_str_radix(byte, 16).unwrap_or_else(|_| panic!("{name}.hex: `{byte}`")))
        .collect();
    let length = u32::try_from(36 + body.len()).unwrap();
    let mut table = [
        &b"DSDT"[..],
        &length.to_le_bytes(),
        &[revision, 0],
        b"ATOLL HANDMADE",
        &1u32.to_le_bytes(),
        b"ATOL",
        &1u32.to_le_bytes(),
        &body,
    ]
    .concat();
    let sum = table.iter().fold(0u8, |sum, byte| sum.wrapping_add(*byte));
    table[9] = 0u8.wrapping_sub(sum);
    table
}

/// `Sleep-A 05, Sleep-B 06` (hexadecimal, as acpiexec prints them), or an ACPICA status.
fn expected(text: &str) -> Option<Answer> {
    if let Some(rest) = text.strip_prefix("Sleep-A ") {
        let (a, b) = rest.split_once(", Sleep-B ")?;
        return Some(Answer::SleepTypes(
            u8::from_str_radix(a, 16).ok()?,
            u8::from_str_radix(b, 16).ok()?,
        ));
    }
    match text {
        "AE_NOT_FOUND" => Some(Answer::NotFound),
        status if status.starts_with("AE_") => Some(Answer::Refused(status.to_owned())),
        _ => None,
    }
}

/// The first ACPICA status (`AE_...`) in `line`.
fn status(line: &str) -> Option<String> {
    let start = line.find("AE_")?;
    let status: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
        .collect();
    Some(status)
}

/// What `acpiexec -b "sleep 5"` printed. Its run ends with a simulated wake that fails with
/// AE_NOT_FOUND on any table; that status says nothing about `\_S5`, but a sleep type the
/// hardware cannot take fails the invocation with AE_AML_OPERAND_VALUE.
fn acpiexec_answer(output: &str) -> Option<Answer> {
    for line in output.lines() {
        if line.contains("Could not evaluate [\\_S5_]")
            || line.contains("While evaluating Sleep State")
        {
            return Some(match status(line)?.as_str() {
                "AE_NOT_FOUND" => Answer::NotFound,
                other => Answer::Refused(other.to_owned()),
            });
        }
        if let Some(rest) = line.strip_prefix("Register values for sleep state S5: ") {
            if output.contains("AE_AML_OPERAND_VALUE, During invocation of sleep state") {
                return Some(Answer::Refused("AE_AML_OPERAND_VALUE".to_owned()));
            }
            return expected(&rest.replace(": ", " "));
        }
    }
    None
}

/// Physical memory that holds one table at [`TABLE_AT`].
struct OneTable(Vec<u8>);

const TABLE_AT: u64 = 0x10_0000;

impl PhysMem for OneTable {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let unreadable = MemError {
            addr,
            len: buf.len(),
        };
        let start = usize::try_from(addr.checked_sub(TABLE_AT).ok_or(unreadable)?)
            .map_err(|_| unreadable)?;
        let bytes = self.0.get(start..start + buf.len()).ok_or(unreadable)?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

fn atoll(aml: Vec<u8>) -> Result<(u8, u8), AcpiError> {
    s5_sleep_types(&OneTable(aml), TABLE_AT)
}

/// Whether Atoll's `result` is what `case` says it should be.
fn check(case: &Case, result: Result<(u8, u8), AcpiError>) -> Result<(), String> {
    let fits = match (&case.atoll_refuses, &case.acpica, result) {
        (Some(problem), _, Err(AcpiError::BadS5 { problem: got, .. })) => *problem == got,
        (None, Answer::SleepTypes(a, b), Ok(types)) => types == (*a, *b),
        (None, Answer::NotFound, Err(AcpiError::NoS5 { .. })) => true,
        (None, Answer::Refused(_), Err(AcpiError::BadS5 { .. })) => true,
        _ => false,
    };
    match fits {
        true => Ok(()),
        false => Err(format!(
            "{}: ACPICA gives {:?}{}, Atoll {result:?}",
            case.name,
            case.acpica,
            case.atoll_refuses
                .map(|problem| format!(" and Atoll should refuse it ({problem:?})"))
                .unwrap_or_default()
        )),
    }
}

#[test]
fn checked_in_tables_give_acpica_s_answer() {
    let failures: Vec<String> = cases()
        .iter()
        .filter_map(|case| {
            let aml = match &case.source {
                Source::Asl(asl) => std::fs::read(asl.with_extension("aml"))
                    .unwrap_or_else(|error| panic!("{}.aml: {error}", case.name)),
                Source::Hex(table) => table.clone(),
            };
            check(case, atoll(aml)).err()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn missing(program: &str, error: std::io::Error) -> String {
    format!(
        "cannot run {program} ({error}): it comes with the Debian package acpica-tools \
         (apt-get install acpica-tools), which `cargo xtask test` installs"
    )
}

/// What the finished `child` printed, stdout then stderr.
fn printed(output: std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

#[test]
fn acpica_agrees_on_freshly_compiled_tables() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("acpica");
    std::fs::create_dir_all(&out).unwrap();
    let mut failures = Vec::new();
    // Each acpiexec run sleeps about ten seconds in its simulated S5, so they run side by side.
    let mut running = Vec::new();
    for case in cases() {
        let prefix = out.join(&case.name);
        let prefix = prefix.to_str().unwrap();
        let aml_path = format!("{prefix}.aml");
        // What an earlier run left must not stand in for what iasl writes now.
        let _ = std::fs::remove_file(&aml_path);
        match &case.source {
            Source::Asl(asl) => {
                // -f: some cases are tables iasl rejects and firmware ships anyway.
                let log = Command::new("iasl")
                    .args(["-f", "-p", prefix, asl.to_str().unwrap()])
                    .output()
                    .unwrap_or_else(|error| panic!("{}", missing("iasl", error)));
                if !Path::new(&aml_path).exists() {
                    let log = printed(log);
                    failures.push(format!("{}: iasl wrote no AML:\n{log}", case.name));
                    continue;
                }
            }
            Source::Hex(table) => std::fs::write(&aml_path, table).unwrap(),
        }
        let aml = std::fs::read(&aml_path).unwrap();
        let acpiexec = Command::new("acpiexec")
            .args(["-b", "sleep 5", &aml_path])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("{}", missing("acpiexec", error)));
        running.push((case, aml, acpiexec));
    }
    for (case, aml, acpiexec) in running {
        let printed = printed(acpiexec.wait_with_output().unwrap());
        match acpiexec_answer(&printed) {
            Some(answer) if answer == case.acpica => {}
            other => failures.push(format!(
                "{}: the .asl says ACPICA gives {:?}, acpiexec gave {other:?}:\n{printed}",
                case.name, case.acpica
            )),
        }
        if let Err(failure) = check(&case, atoll(aml)) {
            failures.push(failure);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
