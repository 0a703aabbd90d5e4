//! Spawns children on its own core and waits for each: `hello` with
//! arguments exits 0; `crash illegal` and `crash protection` are ended by
//! their faults (invalid opcode, general protection), which this process
//! survives; two `ticker`s take turns while it waits. It also checks what
//! the kernel must refuse: waiting for itself, for a process that does not
//! exist, for a child twice, and spawning a program that is not there;
//! then spawns `hello` on the next core and waits for it there, kills a
//! `spin` here and one on the next core and finds each killed, and checks
//! that a core that is not there and a process that is not its child are
//! refused.
//! Prints each check, and exits with the number that failed.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libatoll::{Call, EXITED, Error, ExitRecord, FAULTED, KILLED, println};

libatoll::main!(main);

/// Spawns `name` with `args` and waits for it; how it ended.
fn run(name: &str, args: &str) -> Result<(u32, ExitRecord), Error> {
    let pid = libatoll::spawn(name, args)?;
    Ok((pid, libatoll::wait(pid)?))
}

fn main() -> u64 {
    let me = libatoll::pid();
    println!("family: process {me}");
    let mut failed = 0;
    let mut check = |what: &str, ok: bool| {
        println!("family: {what}: {}", if ok { "ok" } else { "FAILED" });
        failed += u64::from(!ok);
    };
    let hello = run("hello", "from family");
    check(
        "hello exits 0",
        matches!(
            hello,
            Ok((
                _,
                ExitRecord {
                    kind: EXITED,
                    value: 0,
                    ..
                }
            ))
        ),
    );
    for (args, vector, what) in [
        ("illegal", 6, "crash illegal ends by an invalid opcode"),
        (
            "protection",
            13,
            "crash protection ends by a protection fault",
        ),
    ] {
        let crash = run("crash", args);
        check(
            what,
            matches!(crash, Ok((_, ExitRecord { kind: FAULTED, value, .. })) if value == vector),
        );
    }
    let tickers = [
        libatoll::spawn("ticker", "a"),
        libatoll::spawn("ticker", "b"),
    ];
    let mut all_exited = true;
    for ticker in tickers {
        all_exited &= matches!(
            ticker.and_then(libatoll::wait),
            Ok(ExitRecord {
                kind: EXITED,
                value: 0,
                ..
            })
        );
    }
    check("two tickers exit 0", all_exited);
    check(
        "waiting for itself is refused",
        libatoll::wait(me) == Err(Error::NotAChild),
    );
    check(
        "waiting for nobody is refused",
        libatoll::wait(me.wrapping_add(1 << 20)) == Err(Error::NoSuchProcess),
    );
    check(
        "a child is waited for once",
        match hello {
            Ok((pid, _)) => libatoll::wait(pid) == Err(Error::NoSuchProcess),
            Err(_) => false,
        },
    );
    check(
        "spawning what is not there is refused",
        libatoll::spawn("nosuch", "") == Err(Error::NoSuchProgram),
    );
    let not_text = [0xFFu8, 0xFE];
    let answer = libatoll::call_raw(
        Call::Spawn as u64,
        [not_text.as_ptr() as u64, not_text.len() as u64, 0, 0],
    );
    check(
        "a name that is not text is refused",
        Error::from_return(answer) == Some(Error::NotText),
    );
    // Children on another core, if there is one, and here.
    let (here, cores) = libatoll::core_info();
    let there = (here + 1) % cores;
    let afar = libatoll::spawn_at("hello", "from afar", Some(there))
        .and_then(|child| libatoll::wait(child).map(|record| (child, record)));
    check(
        "a child on another core exits 0",
        matches!(afar, Ok((child, ExitRecord { kind: EXITED, value: 0, .. }))
            if child % 1024 == there),
    );
    for at in [None, Some(there)] {
        let killed = libatoll::spawn_at("spin", "", at).and_then(|child| {
            libatoll::kill(child)?;
            libatoll::wait(child)
        });
        check(
            "a child killed is waited for as killed",
            matches!(killed, Ok(ExitRecord { kind: KILLED, .. })),
        );
    }
    check(
        "a core that is not there is refused",
        libatoll::spawn_at("hello", "", Some(999)) == Err(Error::NoSuchCore),
    );
    check(
        "killing what is not its child is refused",
        libatoll::kill(me) == Err(Error::NotAChild)
            && libatoll::kill(me.wrapping_add(1 << 20)) == Err(Error::NoSuchProcess),
    );
    println!("family: {failed} checks failed");
    failed
}
