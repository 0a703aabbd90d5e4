//! QEMU tests of user space: the programs under `user/` travel in the boot
//! image (QEMU's `-initrd` here; the ISO tests check GRUB's `module2`), and
//! the kernel finds, checks and runs them in ring 3; a program's fault or
//! bad system call ends or fails that program alone; and a program that
//! computes for long leaves its core serving the others.

use super::cases::{expect_failure, expect_line};
use super::{QemuTest, TestContext};
use crate::protocol;

pub fn tests() -> Vec<QemuTest> {
    vec![
        QemuTest::new(
            "programs_in_the_boot_image_run_in_ring_3_and_their_faults_end_them_alone",
            programs_run_and_faults_end_them_alone,
        ),
        QemuTest::new(
            "a_program_that_computes_past_the_detector_s_timeout_leaves_its_core_in_the_view",
            long_program_is_preempted,
        ),
        QemuTest::new(
            "bench_user_times_a_program_s_start_and_end_and_a_system_call",
            bench_user_measures,
        ),
        QemuTest::new(
            "programs_run_on_other_cores_on_request_and_their_faults_stay_there",
            programs_run_on_other_cores,
        ),
    ]
}

/// `run <program> <core>` has that core run the program (asked by
/// message): `hello` prints from core 1 and exits 0; `crash` on core 2 is
/// killed there, reported with that core; `spin` on core 3 computes past
/// the detector's timeout and core 3 stays in the view; a second `hello`
/// on core 1 shows its pages were cleared away; a core that runs nothing
/// answers `run nosuch` with its own line; and every core still serves.
fn programs_run_on_other_cores(context: &mut TestContext) -> Result<(), String> {
    let script = "run hello 1; run crash 2; run spin 3; run hello 1; run nosuch 2; vm map 3 1; vm hash; cores";
    let run = context.exec(4, script)?;
    expect_failure(&run, script, 1)?;
    let exits = protocol::lines(&run.serial)
        .filter(|line| *line == "run hello: exited with status 0")
        .count();
    if exits != 2 {
        return Err(format!(
            "hello exited 0 {exits} times on core 1, expected 2"
        ));
    }
    let killed = protocol::lines(&run.serial)
        .find(|line| {
            line.starts_with("run crash: killed on core 2: exception 14 (page fault) error 0x4 ")
        })
        .ok_or("no report of crash's page fault on core 2")?;
    if !killed.ends_with(" addr 0x0; the kernel runs on") {
        return Err(format!("crash's fault is not at address 0: {killed}"));
    }
    expect_line(
        &run.serial,
        "spin: 1500000000 steps, state 0x252c93095346209",
    )?;
    expect_line(&run.serial, "run spin: exited with status 0")?;
    if let Some(line) = protocol::lines(&run.serial)
        .find(|line| line.contains("suspects core 3") || line.contains("left: 3"))
    {
        return Err(format!("core 3 was suspected while spin ran there: {line}"));
    }
    expect_line(
        &run.serial,
        "atoll: core 2: run nosuch: no such program in the boot image",
    )?;
    expect_line(
        &run.serial,
        "error: run nosuch: core 2 could not load it (its own line says why)",
    )?;
    expect_line(
        &run.serial,
        "vm map 3 1: 0x10000001000 committed: 4 holders applied it, 0 unreached",
    )?;
    expect_line(&run.serial, "vm hash: all 4 replicas agree")
}

/// `bench user` times `true`'s start, run and end, and `nullcall` times
/// its null system calls: both report medians that are counts of cycles,
/// with the fastest no slower than the median.
fn bench_user_measures(context: &mut TestContext) -> Result<(), String> {
    let script = "bench user";
    let run = context.exec(2, script)?;
    super::cases::expect_success(&run, script)?;
    let spawn = protocol::lines(&run.serial)
        .find_map(|line| line.strip_prefix("bench user: start, run and end of `true`: median "))
        .ok_or("no `bench user` line for `true`")?;
    let call = protocol::lines(&run.serial)
        .find_map(|line| line.strip_prefix("nullcall: 64 rounds of 256 calls: median "))
        .ok_or("no `nullcall` line")?;
    for (what, text, unit) in [
        ("spawn", spawn, " cycles (min "),
        ("null call", call, " cycles per call (min "),
    ] {
        let (median, rest) = text
            .split_once(unit)
            .ok_or(format!("{what}: no median in `{text}`"))?;
        let min = rest.split_once(',').map(|(min, _)| min);
        match (median.parse::<u64>(), min.map(str::parse::<u64>)) {
            (Ok(median), Some(Ok(min))) if median > 0 && min <= median => {}
            _ => {
                return Err(format!(
                    "{what}: not a median and a minimum of cycles: `{text}`"
                ));
            }
        }
    }
    Ok(())
}

/// `spin` computes for longer than the failure detector's timeout (1 s)
/// without a system call. The timer takes the shell's core back at every
/// tick, so its monitor keeps answering: the view does not change, nobody
/// suspects the core, and the program ends with the right result. The
/// result is xorshift64 (13, 7, 17) from 0x9E37_79B9_7F4A_7C15 after 1.5e9
/// steps, as the same loop gives on the host (0x252c93095346209).
fn long_program_is_preempted(context: &mut TestContext) -> Result<(), String> {
    const SUSPECT_TICKS: u64 = 100;
    let script = "view; run spin; view; vm map 1 1";
    let run = context.exec(4, script)?;
    super::cases::expect_success(&run, script)?;
    expect_line(
        &run.serial,
        "spin: 1500000000 steps, state 0x252c93095346209",
    )?;
    expect_line(&run.serial, "run spin: exited with status 0")?;
    let nows: Vec<u64> = protocol::lines(&run.serial)
        .filter_map(|line| {
            line.strip_prefix("view 1: cores 0 1 2 3 (installed at tick ")?
                .split_once(", now ")?
                .1
                .strip_suffix(')')?
                .parse()
                .ok()
        })
        .collect();
    let [before, after] = nows[..] else {
        return Err(format!(
            "expected two `view` answers in view 1 with every core, got the ticks {nows:?}"
        ));
    };
    if after - before <= SUSPECT_TICKS {
        return Err(format!(
            "spin ran {} ticks, not past the detector's {SUSPECT_TICKS}",
            after - before
        ));
    }
    if let Some(line) = protocol::lines(&run.serial)
        .find(|line| line.contains("suspects core 0") || line.contains("left: 0"))
    {
        return Err(format!(
            "the shell's core was suspected while spin ran: {line}"
        ));
    }
    expect_line(
        &run.serial,
        "vm map 1 1: 0x10000001000 committed: 4 holders applied it, 0 unreached",
    )
}

/// The boot names the programs and says SMEP and SMAP are on; `programs`
/// shows `hello`'s image as the loader checked it (entry in the user
/// range, code and constants apart); `hello` prints from ring 3 and exits
/// 0, twice (its pages are cleared away between); `crash`'s null read ends
/// it alone, reported with the core, the fault and the address;
/// `badcall`'s bad system calls each get their error; an unknown program
/// is refused; `fuzz`'s 100,000 random system calls each get an answer the
/// ABI allows; and the kernel runs on: a map commits on both cores and a
/// round trip works.
fn programs_run_and_faults_end_them_alone(context: &mut TestContext) -> Result<(), String> {
    let script = "programs; run hello; run crash; run badcall; run nosuch; run fuzz; run hello; vm map 1 1; urpc ping 0 1";
    let run = context.exec(2, script)?;
    expect_failure(&run, script, 1)?;
    expect_line(
        &run.serial,
        "atoll: programs: badcall crash fuzz hello nullcall spin true",
    )?;
    expect_line(&run.serial, "atoll: user space: ring 3, with SMEP and SMAP")?;
    expect_line(&run.serial, "programs: 7 in the boot image")?;
    let hello = protocol::lines(&run.serial)
        .find_map(|line| line.strip_prefix("  hello: "))
        .ok_or("no `hello` line")?;
    let entry = hello
        .split_once(", entry ")
        .and_then(|(_, rest)| rest.split_once(','))
        .and_then(|(entry, _)| u64::from_str_radix(entry.trim_start_matches("0x"), 16).ok())
        .ok_or(format!("no entry point in `{hello}`"))?;
    if !(atoll_abi::USER_START..atoll_abi::USER_END).contains(&entry) {
        return Err(format!(
            "hello's entry {entry:#x} is outside the user range"
        ));
    }
    if !(hello.contains(" r-x") && hello.contains(" r--") && !hello.contains("cannot")) {
        return Err(format!(
            "hello's segments are not code and constants: {hello}"
        ));
    }
    let greetings = protocol::lines(&run.serial)
        .filter(|line| *line == "hello from user space")
        .count();
    let exits = protocol::lines(&run.serial)
        .filter(|line| *line == "run hello: exited with status 0")
        .count();
    if (greetings, exits) != (2, 2) {
        return Err(format!(
            "hello greeted {greetings} times and exited 0 {exits} times, expected 2 and 2"
        ));
    }
    let killed = protocol::lines(&run.serial)
        .find(|line| {
            line.starts_with(
                "run crash: killed on core 0: exception 14 (page fault) error 0x4 rip 0x80",
            )
        })
        .ok_or("no report of crash's page fault")?;
    if !killed.ends_with(" addr 0x0; the kernel runs on") {
        return Err(format!("crash's fault is not at address 0: {killed}"));
    }
    if protocol::lines(&run.serial).any(|line| line.starts_with("crash: read ")) {
        return Err("crash's null read returned".to_owned());
    }
    for refusal in [
        "unknown call: refused with UnknownCall",
        "kernel address: refused with BadAddress",
        "no program's address: refused with BadAddress",
        "past its stack: refused with BadAddress",
        "too long: refused with TooLong",
    ] {
        expect_line(&run.serial, &format!("badcall: {refusal}"))?;
    }
    expect_line(&run.serial, "run badcall: exited with status 0")?;
    let fuzzed = protocol::lines(&run.serial)
        .find(|line| line.starts_with("fuzz: 100000 calls: "))
        .ok_or("no `fuzz` summary")?;
    if !fuzzed.ends_with(", 0 not as the ABI allows") {
        return Err(format!("fuzz saw answers the ABI does not allow: {fuzzed}"));
    }
    expect_line(&run.serial, "run fuzz: exited with status 0")?;
    expect_line(
        &run.serial,
        "error: run nosuch: no such program in the boot image",
    )?;
    expect_line(
        &run.serial,
        "vm map 1 1: 0x10000001000 committed: 2 holders applied it, 0 unreached",
    )?;
    if protocol::urpc_ping_median(&run.serial, 0, 1).is_none() {
        return Err("no `urpc ping 0 1` round trip".to_owned());
    }
    Ok(())
}
