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
            "programs_in_the_boot_image_are_checked_and_their_bad_system_calls_refused",
            programs_checked_and_bad_calls_refused,
        ),
        QemuTest::new(
            "a_program_that_computes_past_the_detector_s_timeout_leaves_its_core_in_the_view",
            long_program_is_preempted,
        ),
        QemuTest::new(
            "bench_user_times_a_program_s_start_and_end_and_a_system_call",
            bench_user_measures,
        ),
    ]
    .into_iter()
    .chain([
        QemuTest::new(
            "a_process_spanning_cores_ends_when_one_of_them_stops_and_the_others_get_its_frames_back",
            spanning_process_survives_no_lost_core,
        ),
        QemuTest::new(
            "a_revocation_waits_for_a_core_that_stops_mid_revocation_until_the_view_leaves_it_out",
            revocation_outlasts_a_stopped_core,
        ),
        QemuTest::new(
            "a_process_that_a_stopped_core_cannot_join_stays_as_it_was_and_grows_later",
            growth_survives_a_core_that_never_joins,
        ),
    ])
    .chain(PROCESS_CORES.map(|cores| {
        QemuTest::new(
            format!("processes_spawn_wait_take_turns_die_alone_and_are_killed_at_{cores}_cores"),
            move |context: &mut TestContext| processes_at(context, cores),
        )
    }))
    .collect()
}

/// The id of the process that spans every core in `processes_at`: core
/// 0's second.
const SPANNING: usize = 2 << 10;

/// The core counts the process tests boot.
const PROCESS_CORES: [usize; 4] = [1, 2, 4, 8];

/// A `spin` spanning cores 1 to 3 runs on all three; core 3 faults while
/// its dispatcher computes (the fault's NMI lands in ring 3): the view
/// leaves it out, and the home (core 1) kills the process. Then a
/// `memstress` spanning cores 2, 0 and 1, mapping and unmapping pages of
/// all three cores' pools, loses its home (`core off 2`) mid-change: cores
/// 0 and 1 end their dispatchers and, once each has said so to the other,
/// give back their frames. Then the ends of a channel find each other
/// gone: a `pingpong` server whose client leaves without a word, and a
/// client whose server does. After the first process, cores 0 to 2 have
/// every frame back (core 1's needed core 2's word that it no longer mapped
/// them; `run true` on core 2 comes after that word); at the end, cores 0
/// and 1 have every frame back. (Before each kept its replica of the second
/// process's space open until the other was done, one could close it while
/// the other still needed its answer about a round of the home's, and both
/// then kept their frames for good.)
fn spanning_process_survives_no_lost_core(context: &mut TestContext) -> Result<(), String> {
    let script = "mem; spawn spin --cores 1,2,3; ps; ps; fault 3; ps; ps; run true --cores 2; mem; \
                  spawn memstress --cores 2,0,1 1000000; ps; ps; core off 2; ps; ps; \
                  run pingpong --cores 0 ping 1 3000 abandon; \
                  run pingpong --cores 0 ping 1 100000 leave 300; mem";
    let run = context.exec(4, script)?;
    super::cases::expect_success(&run, script)?;
    let serial = &run.serial;
    let frames = |index| free_frames_or_gone(serial, index, 4);
    let (before, after) = (frames(0)?, frames(1)?);
    expect_line(serial, "spawn spin: process 1025 on cores 1 2 3 (home 1)")?;
    expect_line(serial, "ps: 1 processes, 3 dispatchers, on 4 cores")?;
    if !protocol::lines(serial)
        .any(|line| line.starts_with("atoll: core 3: exception 14 (page fault)"))
    {
        return Err("core 3 did not fault".to_owned());
    }
    expect_line(serial, "atoll: core 1: process 1025 (spin) was killed")?;
    expect_line(
        serial,
        "spawn memstress: process 2050 on cores 0 1 2 (home 2)",
    )?;
    expect_line(serial, "ps: 1 processes, 3 dispatchers, on 3 cores")?;
    expect_line(serial, "ps: 0 processes, 0 dispatchers, on 2 cores")?;
    if after[..3] != before[..3] || after[3].is_some() {
        return Err(format!(
            "after core 3's fault, free frames per core are {after:?}, before {before:?}: cores 0 to 2 should have all theirs back, core 3 none to report"
        ));
    }
    let at_end = frames(2)?;
    if at_end[..2] != before[..2] {
        return Err(format!(
            "at the end, free frames per core are {at_end:?}, before {before:?}: cores 0 and 1 should have all theirs back"
        ));
    }
    // Each end of a channel finds the other gone when it leaves without a
    // word: the server the client (which ended), the client the server.
    expect_line(
        serial,
        "pingpong: the other end left after 3000 round trips",
    )?;
    // The abandoned server, the pinger's child, ends after its parent: its
    // end is told on the parent's core.
    let server_end = |line: &str| {
        line.strip_prefix("atoll: core 0: process ")
            .is_some_and(|rest| {
                rest.ends_with(
                    " of core 1, whose parent 1024 no longer waits for it, exited with status 0",
                )
            })
    };
    if !protocol::lines(serial).any(server_end) {
        return Err("the abandoned pingpong server's end was not told on core 0".to_owned());
    }
    expect_line(serial, "pingpong: leaving after 300 round trips")?;
    let runs: Vec<&str> = protocol::lines(serial)
        .filter_map(|line| line.strip_prefix("run pingpong: process "))
        .collect();
    match runs[..] {
        [abandoned, left]
            if abandoned.ends_with(" exited with status 0")
                && left.ends_with(" exited with status 1") => {}
        _ => {
            return Err(format!(
                "the pingers should end 0 (it abandoned) then 1 (its server left): {runs:?}"
            ));
        }
    }
    let left = protocol::lines(serial).any(|line| {
        line.strip_prefix("pingpong: process ")
            .is_some_and(|rest| rest.ends_with(" left after 300 round trips"))
    });
    if !left {
        return Err("the pinger did not find its server gone after 300 round trips".to_owned());
    }
    Ok(())
}

/// `capcheck late` grants a capability to its peer on core 3, then core 3
/// stops silently (`hang`) before the revocation, which asks every core:
/// cores 1 and 2 answer, core 3 never does, and the revocation returns
/// only once the view has left core 3 out (the detector is set to 4 s, so
/// the revocation starts well inside the window where core 3 is stopped
/// but still a member), having deleted the copy on core 0 and passed over
/// core 3.
fn revocation_outlasts_a_stopped_core(context: &mut TestContext) -> Result<(), String> {
    let script = "view detector 4000; spawn capcheck late 3000; sleep 1500; hang 3; sleep 7000; ps";
    let run = context.exec(4, script)?;
    super::cases::expect_success(&run, script)?;
    let serial = &run.serial;
    let lines: Vec<&str> = protocol::lines(serial).collect();
    let at = |wanted: &dyn Fn(&str) -> bool| lines.iter().position(|line| wanted(line));
    let hang = at(&|line| line.starts_with("hang 3: core 3 stops answering"));
    let view = at(&|line| line == "atoll: core 0: view 2: cores 0 1 2; left: 3");
    let passed = at(&|line| {
        line.starts_with("atoll: core 0: process ")
            && line.ends_with("'s revocation passed over core 3, which left the view")
    });
    let done = at(&|line| {
        line.starts_with("capcheck: late: revoked 1 after ")
            && line.ends_with(" ms, with the peer's core 3 gone")
    });
    match (hang, view, passed, done) {
        (Some(hang), Some(view), Some(passed), Some(done))
            if hang < view && view < passed && passed < done => {}
        found => {
            return Err(format!(
                "expected the hang, the view without core 3, the revocation passing core 3 over and capcheck's line, in that order; found them at {found:?}"
            ));
        }
    }
    // The revocation waited for the view: it took a good part of the
    // detector's 4 s.
    let took = lines[done.expect("matched above")]
        .strip_prefix("capcheck: late: revoked 1 after ")
        .and_then(|rest| rest.split_once(' '))
        .and_then(|(ms, _)| ms.parse::<u64>().ok())
        .ok_or("no duration in capcheck's line")?;
    if took < 1000 {
        return Err(format!(
            "the revocation took {took} ms: it did not wait for the view to leave core 3 out"
        ));
    }
    let exited = protocol::lines(serial).any(|line| {
        line.strip_prefix("atoll: core 0: process ")
            .is_some_and(|rest| rest.ends_with(" (capcheck) exited with status 0"))
    });
    if !exited {
        return Err("capcheck late did not exit 0".to_owned());
    }
    expect_line(serial, "ps: 0 processes, 0 dispatchers, on 3 cores")
}

/// `grow`, started on core 0, adds a dispatcher on core 1, then asks core
/// 3, which has stopped silently (`hang`) and is still in the view (the
/// detector is set to 8 s): core 3 never answers the join, the span fails
/// (`NotLoaded`) after the call's timeout, and the process, thawed on
/// cores 0 and 1, ends there with every frame back. Once the view has
/// left core 3 out, `grow` adds cores 1 and 2.
fn growth_survives_a_core_that_never_joins(context: &mut TestContext) -> Result<(), String> {
    let script = "mem; view detector 8000; hang 3; run grow 1 3; ps; ps; mem; run grow 1 2";
    let run = context.exec(4, script)?;
    super::cases::expect_success(&run, script)?;
    let serial = &run.serial;
    expect_line(
        serial,
        "atoll: core 0: process 1024: core 3 did not join it",
    )?;
    expect_line(
        serial,
        "grow: span 3: Err(NotLoaded), not dispatcher 2 there",
    )?;
    expect_line(serial, "run grow: process 1024 exited with status 1")?;
    let (before, after) = (
        free_frames_or_gone(serial, 0, 4)?,
        free_frames_or_gone(serial, 1, 4)?,
    );
    if after[..3] != before[..3] {
        return Err(format!(
            "after the failed growth, free frames per core are {after:?}, before {before:?}: cores 0 to 2 should have all theirs back"
        ));
    }
    expect_line(
        serial,
        "grow: 3 dispatchers, 2 added while it ran: each read the page mapped before it came (0 wrong) and mapped its own; replicas agree: true",
    )
}

/// As [`free_frames`], with `None` for a core that does not report (`-`:
/// it stopped).
fn free_frames_or_gone(
    serial: &str,
    index: usize,
    cores: usize,
) -> Result<Vec<Option<u64>>, String> {
    table_lines(serial, index, cores)?
        .into_iter()
        .map(|line| match line.split_whitespace().last() {
            Some("-") => Ok(None),
            Some(free) => free
                .parse()
                .map(Some)
                .map_err(|_| format!("no free frames in `{line}`")),
            None => Err(format!("no free frames in `{line}`")),
        })
        .collect()
}

/// The core lines of the `index`th `mem` table in `serial`.
fn table_lines(serial: &str, index: usize, cores: usize) -> Result<Vec<&str>, String> {
    let lines: Vec<&str> = protocol::lines(serial).collect();
    let header = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.starts_with("core  pool span"))
        .nth(index)
        .map(|(at, _)| at)
        .ok_or(format!("no `mem` table number {index}"))?;
    Ok(lines[header + 1..].iter().take(cores).copied().collect())
}

/// The free frames of each core's pool, from a `mem` answer: the `index`th
/// table in `serial`.
fn free_frames(serial: &str, index: usize, cores: usize) -> Result<Vec<u64>, String> {
    free_frames_or_gone(serial, index, cores)?
        .into_iter()
        .map(|free| free.ok_or_else(|| String::from("a core did not report its frames")))
        .collect()
}

/// The `run <program>` end line for a process of core `core`: what follows
/// `process <pid> `, if one says it.
fn ended<'a>(serial: &'a str, program: &str, core: usize) -> Vec<&'a str> {
    let prefix = format!("run {program}: process ");
    protocol::lines(serial)
        .filter_map(|line| {
            let (pid, how) = line.strip_prefix(&prefix)?.split_once(' ')?;
            let pid: u32 = pid.parse().ok()?;
            (pid as usize % 1024 == core).then_some(how)
        })
        .collect()
}

/// On `cores` cores: a `spin` spawned on every core shows in `ps` on its
/// core, is killed there, and every frame it took is back in its core's
/// pool; so does one `spin` that spans every core (a dispatcher on each),
/// killed through its home; on the last core, `hello` gets its arguments; `family` spawns,
/// waits, and sees two `ticker`s take turns and each fault end a child
/// alone; `protect` spanning every core makes a page every dispatcher
/// wrote read-only, writable and read-only again, and the last
/// dispatcher's write after that faults on its core; `capcheck` on core 0 checks its table's types and rights, grants
/// a process capability over a channel to its child on the last core,
/// which kills with it, and revokes another everywhere before the child's
/// kill with it is refused; `crash`'s three faults each end it alone, reported with the core,
/// the exception and the address; `fuzz`'s 100,000 random system calls
/// each get an answer the ABI allows; `memstress` maps, writes, reads back
/// and unmaps 16 pages 50 times by split-phase changes; `mapreduce` on
/// every core sums the input its home mapped and wrote, from each core;
/// `memstress` on every core maps and unmaps at once from each, and the
/// cores' replicas of its space agree at the end; `heapcheck` fills, sums
/// and frees vectors, strings and maps on the heap, alone and from every
/// core at once; every frame the
/// processes took (images, stacks, mapped pages, page tables) is back
/// afterwards; an unknown program is refused there; and the kernel runs
/// on: a map commits on every core.
fn processes_at(context: &mut TestContext, cores: usize) -> Result<(), String> {
    let last = cores - 1;
    let pid = |core: usize| 1024 + core;
    let each =
        |command: &dyn Fn(usize) -> String| (0..cores).map(command).collect::<Vec<_>>().join("; ");
    let all = (0..cores)
        .map(|core| core.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let others = (1..cores)
        .map(|core| core.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    // A spanning process's frames go back after messages between its
    // cores: two round trips to every core (`ps` asks each) see them all
    // handled.
    let settle = "ps; ps; ";
    // A server on core 1 (0 with one core), spawned there by its pinger on
    // the last core.
    let server_core = last.min(1);
    let script = format!(
        "mem; {}; ps; {}; ps; spawn spin --cores {all}; ps; kill {SPANNING}; ps; {settle}mem; \
         run pingpong --cores {last} ping {server_core} 1000; \
         run hello --cores {last} one two; run sysinfo --cores {last}; run family --cores {last}; \
         run crash --cores {last}; run crash --cores {last} illegal; run crash --cores {last} protection; \
         run capcheck --cores 0; run protect --cores {all}; run grow --cores 0 {others}; \
         run fuzz --cores {last}; run memstress --cores {last}; run mapreduce --cores {all}; \
         run memstress --cores {all} 20; run heapcheck --cores {last}; run heapcheck --cores {all}; \
         {settle}mem; run nosuch --cores {last}; vm map {last} 1",
        each(&|core| format!("spawn spin --cores {core}")),
        each(&|core| format!("kill {}", pid(core))),
    );
    let run = context.exec(cores as u8, &script)?;
    expect_failure(&run, &script, 1)?;
    let serial = &run.serial;
    for core in 0..cores {
        expect_line(
            serial,
            &format!("spawn spin: process {} on core {core}", pid(core)),
        )?;
        for (listed, dispatcher) in [
            (pid(core), String::from("0/1")),
            (SPANNING, format!("{core}/{cores}")),
        ] {
            let shown = protocol::lines(serial).any(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                // Each dispatcher holds the three capabilities it starts
                // with: its space, process and dispatcher.
                matches!(words[..], [id, "-", "spin", on, disp, "3", _, "ready" | "running" | "joining"]
                    if id == listed.to_string() && on == core.to_string() && disp == dispatcher)
            });
            if !shown {
                return Err(format!(
                    "ps does not show spin {listed}'s dispatcher {dispatcher} on core {core}"
                ));
            }
        }
        expect_line(
            serial,
            &format!(
                "kill: process {} of core {core} killed; its frames go back once no core maps them",
                pid(core)
            ),
        )?;
        expect_line(
            serial,
            &format!(
                "atoll: core {core}: process {} (spin) was killed",
                pid(core)
            ),
        )?;
    }
    expect_line(
        serial,
        &format!("ps: {cores} processes, {cores} dispatchers, on {cores} cores"),
    )?;
    expect_line(
        serial,
        &format!("ps: 1 processes, {cores} dispatchers, on {cores} cores"),
    )?;
    let spanning = match cores {
        1 => format!("spawn spin: process {SPANNING} on core 0"),
        _ => format!(
            "spawn spin: process {SPANNING} on cores {} (home 0)",
            (0..cores)
                .map(|core| core.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ),
    };
    expect_line(serial, &spanning)?;
    expect_line(
        serial,
        &format!(
            "kill: process {SPANNING} of core 0 killed; its frames go back once no core maps them"
        ),
    )?;
    let emptied = protocol::lines(serial)
        .filter(|line| *line == format!("ps: 0 processes, 0 dispatchers, on {cores} cores"))
        .count();
    // After each kill, and at each settling: nothing else runs then.
    let expected = 2 + 2 * settle.matches("ps").count();
    if emptied != expected {
        return Err(format!(
            "ps showed no process {emptied} times, expected {expected} (after each kill and each settling)"
        ));
    }
    expect_line(
        serial,
        &format!(
            "mapreduce: {cores} dispatchers summed 1..=4096: 8390656, expected 8390656; input unmapped: true"
        ),
    )?;
    for dispatchers in [1, cores] {
        expect_line(
            serial,
            &format!(
                "heapcheck: {dispatchers} dispatchers filled, summed and freed their vectors, strings and maps; 0 checks failed"
            ),
        )?;
    }
    for program in ["mapreduce", "memstress", "heapcheck"] {
        if ended(serial, program, 0).last() != Some(&"exited with status 0") {
            return Err(format!("{program} on every core did not exit 0"));
        }
    }
    let agreed = protocol::lines(serial).any(|line| {
        line.starts_with(&format!(
            "memstress: {cores} dispatchers, 0 checks failed; replicas on {cores} cores agree (hash "
        ))
    });
    if !agreed {
        return Err(format!(
            "memstress on all {cores} cores did not end with every check passed and the replicas agreeing"
        ));
    }
    let (before, after) = (
        free_frames(serial, 0, cores)?,
        free_frames(serial, 1, cores)?,
    );
    if before != after {
        return Err(format!(
            "the killed processes' frames are not all back: free frames per core {before:?} before, {after:?} after"
        ));
    }
    let pinged = protocol::lines(serial)
        .find_map(|line| line.strip_prefix("pingpong: 1000 round trips to process "))
        .ok_or(format!(
            "no pingpong from core {last} to core {server_core}"
        ))?;
    let server = pinged
        .split(':')
        .next()
        .and_then(|pid| pid.parse::<usize>().ok());
    if server.is_none_or(|pid| pid % 1024 != server_core) || !pinged.ends_with("; 0 echoes wrong") {
        return Err(format!("pingpong to core {server_core}: `{pinged}`"));
    }
    expect_line(serial, "pingpong: served 1000 round trips")?;
    expect_line(serial, "hello from user space (one two)")?;
    let info = protocol::lines(serial)
        .find_map(|line| {
            line.strip_prefix(&format!(
                "sysinfo: core {last} of {cores} in the view; the knowledge base knows {cores} cores; "
            ))
        })
        .ok_or(format!("no `sysinfo` line from core {last} of {cores}"))?;
    if !info.ends_with("; 0 checks failed") {
        return Err(format!("sysinfo: `{info}`"));
    }
    expect_line(serial, "family: 0 checks failed")?;
    // A capability granted to a process on the last core kills there; the
    // revocation of another deletes its local copy and the grant there
    // (two), and the grantee's kill with it is then refused.
    expect_line(serial, &format!("capcheck: ok revoked 2 on core {last}"))?;
    // Every dispatcher wrote the page, read it back after a protect to
    // read-only and wrote it after one to writable; after the last protect
    // the last dispatcher's write faults on its core: the process ends
    // there, at that dispatcher's word.
    expect_line(
        serial,
        &format!(
            "protect: {cores} dispatchers wrote, read back and wrote again between protects (0 words wrong); dispatcher {last} now writes to the page made read-only"
        ),
    )?;
    let protected = format!("killed on core {last}: exception 14 (page fault) error 0x7 rip ");
    let word = (1u64 << 39) + (1 << 36) + 8 * last as u64;
    if !protocol::lines(serial).any(|line| {
        line.starts_with("run protect: process ")
            && line.contains(&protected)
            && line.ends_with(&format!(" addr {word:#x}; the kernel runs on"))
    }) {
        return Err(format!(
            "protect's write to the read-only page did not fault on core {last} at {word:#x}"
        ));
    }
    // Started on core 0, it adds a dispatcher on every other core while it
    // runs: each finds the page mapped before it came, and maps one of its
    // own that every core agrees to.
    expect_line(
        serial,
        &format!(
            "grow: {cores} dispatchers, {} added while it ran: each read the page mapped before it came (0 wrong) and mapped its own; replicas agree: true",
            cores - 1
        ),
    )?;
    let lines: Vec<&str> = protocol::lines(serial).collect();
    let at = |wanted: &str| lines.iter().position(|line| *line == wanted);
    match (at("ticker b: 0"), at("ticker a: 4")) {
        (Some(b), Some(a)) if b < a => {}
        found => {
            return Err(format!(
                "the tickers did not take turns (ticker b: 0 and ticker a: 4 at {found:?})"
            ));
        }
    }
    let fuzzed = protocol::lines(serial)
        .find(|line| line.starts_with("fuzz: 100000 calls: "))
        .ok_or("no `fuzz` summary")?;
    if !fuzzed.ends_with(", 0 not as the ABI allows") {
        return Err(format!("fuzz saw answers the ABI does not allow: {fuzzed}"));
    }
    let expected: [(&str, &[&str]); 5] = [
        ("hello", &["exited with status 0"]),
        ("memstress", &["exited with status 0"]),
        ("family", &["exited with status 0"]),
        ("fuzz", &["exited with status 0"]),
        (
            "crash",
            &[
                "exception 14 (page fault) error 0x4 ",
                "exception 6 (invalid opcode) error 0x0 ",
                "exception 13 (general protection) error 0x0 ",
            ],
        ),
    ];
    for (program, hows) in expected {
        let ends = ended(serial, program, last);
        for (index, how) in hows.iter().enumerate() {
            let wanted = match program {
                "crash" => format!("killed on core {last}: {how}"),
                _ => String::from(*how),
            };
            if !ends.get(index).is_some_and(|end| end.starts_with(&wanted)) {
                return Err(format!(
                    "run {program} on core {last}: end {index} is not `{wanted}...`: {ends:?}"
                ));
            }
        }
    }
    if !ended(serial, "crash", last)
        .first()
        .is_some_and(|end| end.ends_with(" addr 0x0; the kernel runs on"))
    {
        return Err("crash's null read is not reported at address 0".to_owned());
    }
    match last {
        0 => expect_line(
            serial,
            "error: run nosuch: no such program in the boot image",
        )?,
        _ => {
            expect_line(
                serial,
                &format!("atoll: core {last}: spawn nosuch: no such program in the boot image"),
            )?;
            expect_line(
                serial,
                &format!(
                    "error: run nosuch: core {last} could not start it (its own line says why)"
                ),
            )?;
        }
    }
    if let Some(line) = protocol::lines(serial).find(|line| line.contains(" stopped")) {
        return Err(format!("a core stopped: {line}"));
    }
    expect_line(
        serial,
        &format!(
            "vm map {last} 1: 0x10000001000 committed: {cores} holders applied it, 0 unreached"
        ),
    )
}

/// `bench user` times `true`'s start, run and end, and `nullcall` times
/// its null system calls: both report medians that are counts of cycles,
/// with the fastest no slower than the median; `pingpong` times 1,000
/// user-level round trips between cores 0 and 1, every echo right, beside
/// the kernel's round trip between them; and `maplat` times a map and an
/// unmap spanning 1 and 2 cores, each of which took effect.
fn bench_user_measures(context: &mut TestContext) -> Result<(), String> {
    let script = "bench user";
    let run = context.exec(2, script)?;
    super::cases::expect_success(&run, script)?;
    for cores in 1..=2 {
        let timed = protocol::lines(&run.serial)
            .find_map(|line| line.strip_prefix(&format!("maplat: {cores} cores: map median ")));
        let Some(timed) = timed else {
            return Err(format!("no `maplat` line for {cores} cores"));
        };
        if !timed.ends_with(" over 64 rounds; 0 did not take effect") {
            return Err(format!("maplat on {cores} cores: `{timed}`"));
        }
    }
    let spawn = protocol::lines(&run.serial)
        .find_map(|line| line.strip_prefix("bench user: spawn, run and end of `true`: median "))
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
    if ended(&run.serial, "spin", 0) != ["exited with status 0"] {
        return Err("spin did not exit 0 on core 0".to_owned());
    }
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
/// range, code and constants apart); `badcall`'s bad system calls each get
/// their error; and the kernel runs on: a round trip works. (Processes'
/// runs, faults and kills are `processes_at`'s, at several core counts.)
fn programs_checked_and_bad_calls_refused(context: &mut TestContext) -> Result<(), String> {
    let script = "programs; run badcall; urpc ping 0 1";
    let run = context.exec(2, script)?;
    super::cases::expect_success(&run, script)?;
    expect_line(&run.serial, super::cases::PROGRAMS_LINE)?;
    expect_line(&run.serial, "atoll: user space: ring 3, with SMEP and SMAP")?;
    expect_line(&run.serial, "programs: 18 in the boot image")?;
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
    for refusal in [
        "unknown call: refused with UnknownCall",
        "kernel address: refused with BadAddress",
        "no program's address: refused with BadAddress",
        "past its stack: refused with BadAddress",
        "too long: refused with TooLong",
        "a capability it has not: refused with NoSuchCapability",
        "a capability of the wrong type: refused with WrongCapability",
    ] {
        expect_line(&run.serial, &format!("badcall: {refusal}"))?;
    }
    if ended(&run.serial, "badcall", 0) != ["exited with status 0"] {
        return Err("badcall did not exit 0".to_owned());
    }
    if protocol::urpc_ping_median(&run.serial, 0, 1).is_none() {
        return Err("no `urpc ping 0 1` round trip".to_owned());
    }
    Ok(())
}
