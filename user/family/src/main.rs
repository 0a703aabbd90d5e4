//! Spawns children on its own core and waits for each, by the process
//! capability each spawn gives it: `hello` with arguments exits 0; `crash
//! illegal` and `crash protection` are ended by their faults (invalid
//! opcode, general protection), which this process survives; two
//! `ticker`s take turns while it waits. It also checks what the kernel
//! must refuse: waiting for itself (its own capability has no right to),
//! by a capability it has not, for a child twice, and spawning a program
//! that is not there; then spawns `hello` on the next core and waits for
//! it there, kills a `spin` here and one on the next core and finds each
//! killed, and checks that a core that is not there, a kill by a
//! capability without the right to, and one by a capability that is not a
//! process's are refused.
//! Prints each check, and exits with the number that failed.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libatoll::{
    Call, Cap, EXITED, Error, ExitRecord, FAULTED, KILLED, MAX_CAPS, NO_CAP, RIGHT_COPY,
    RIGHT_WAIT, SELF_PROCESS, SELF_SPACE, println,
};

libatoll::main!(main);

/// Spawns `name` with `args` and waits for it; its capability, and how it
/// ended.
fn run(name: &str, args: &str) -> Result<(Cap, ExitRecord), Error> {
    let child = libatoll::spawn(name, args)?;
    Ok((child, libatoll::wait(child)?))
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
        libatoll::wait(SELF_PROCESS) == Err(Error::NoRight),
    );
    check(
        "waiting by a capability it has not is refused",
        libatoll::wait(MAX_CAPS) == Err(Error::NoSuchCapability),
    );
    check(
        "a child is waited for once, and the capability waited by goes",
        match hello {
            Ok((child, _)) => libatoll::wait(child) == Err(Error::NoSuchCapability),
            Err(_) => false,
        },
    );
    // A copy made before the wait names a child that is gone after it.
    let copied = libatoll::spawn("hello", "").and_then(|child| {
        let copy = libatoll::cap_copy(child, libatoll::RIGHT_WAIT)?;
        libatoll::wait(child)?;
        Ok(libatoll::wait(copy))
    });
    check(
        "a child's copy waits for nothing once it was waited for",
        copied == Ok(Err(Error::NoSuchProcess)),
    );
    check(
        "spawning what is not there is refused",
        libatoll::spawn("nosuch", "") == Err(Error::NoSuchProgram),
    );
    let not_text = [0xFFu8, 0xFE];
    let answer = libatoll::call_raw(
        Call::Spawn as u64,
        [
            not_text.as_ptr() as u64,
            not_text.len() as u64,
            0,
            0,
            0,
            NO_CAP,
        ],
    );
    check(
        "a name that is not text is refused",
        Error::from_return(answer) == Some(Error::NotText),
    );
    // Children on another core, if there is one, and here.
    let (here, cores) = libatoll::core_info();
    let there = (here + 1) % cores;
    // Its id is read before the wait, which empties the slot.
    let afar = libatoll::spawn_at("hello", "from afar", Some(there)).and_then(|child| {
        let pid = libatoll::pid_of(child)?;
        libatoll::wait(child).map(|record| (pid, record))
    });
    check(
        "a child on another core exits 0",
        matches!(afar, Ok((pid, ExitRecord { kind: EXITED, value: 0, .. })) if pid % 1024 == there),
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
    // A copy of a child's capability that may wait but not kill.
    let unkillable = libatoll::spawn("spin", "").map(|child| {
        let refused = libatoll::cap_copy(child, RIGHT_WAIT | RIGHT_COPY).map(|waiter| {
            let refused = libatoll::kill(waiter);
            let _ = libatoll::cap_delete(waiter);
            refused
        });
        let killed = libatoll::kill(child).and_then(|()| libatoll::wait(child));
        (refused, killed)
    });
    check(
        "a kill without the right is refused",
        matches!(
            unkillable,
            Ok((Ok(Err(Error::NoRight)), Ok(ExitRecord { kind: KILLED, .. })))
        ),
    );
    check(
        "a kill by what is not a process's capability is refused",
        libatoll::kill(SELF_SPACE) == Err(Error::WrongCapability)
            && libatoll::kill(MAX_CAPS) == Err(Error::NoSuchCapability),
    );
    println!("family: {failed} checks failed");
    failed
}
