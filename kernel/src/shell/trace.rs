//! The shell's `trace` commands: tracing on or off on every running core,
//! and every running core's dump, one core after the other.

use alloc::format;
use alloc::string::String;

use atoll_monitor::control::{TraceDump, TraceDumped, TraceSet, TraceSetDone};

use super::ask::{ask, ask_all};
use crate::host::Core;

/// `trace on` or `trace off` on every running core.
pub fn set(core: &Core, on: bool) -> Result<(), String> {
    let word = if on { "on" } else { "off" };
    let cores = set_everywhere(core, on, &format!("trace {word}"))?;
    println!("trace: {word} on {cores} cores");
    Ok(())
}

/// Tracing on or off on every running core, for `command` (which names
/// an error); how many cores.
pub fn set_everywhere(core: &Core, on: bool, command: &str) -> Result<usize, String> {
    let mut cores = 0;
    for (id, reply) in ask_all(
        core,
        core.members().into_iter().map(|id| (id, TraceSet { on })),
    ) {
        let TraceSetDone {} = reply.map_err(|error| format!("{command}: core {id}: {error}"))?;
        cores += 1;
    }
    Ok(cores)
}

/// `trace dump`: each running core prints its events before the next is
/// asked, so that the dumps do not interleave.
pub fn dump(core: &Core) -> Result<(), String> {
    let mut cores = 0;
    for id in core.members().into_iter() {
        let TraceDumped {} = ask(core, id, TraceDump {})
            .map_err(|error| format!("trace dump: core {id}: {error}"))?;
        cores += 1;
    }
    println!("trace: dumped {cores} cores");
    Ok(())
}
