//! How the shell asks cores for things: calls through this core's monitor
//! (to this core too, through its loopback), waited for at the shell's top
//! level, with errors in words; and the checks of the core numbers a user
//! typed.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use atoll_iface::Message;
use atoll_monitor::Wire;
use atoll_monitor::wire::Held;

use crate::host::Core;
use atoll_monitor::CoreId;

use crate::shared::{boot_facts, scaled};

/// How long the shell waits for a call on up to 64 cores (longer past that,
/// by `atoll_monitor::square_growth`, as the protocols' own timeouts), unless
/// the kernel command line says otherwise with `atoll.call_timeout_ms=`.
const DEFAULT_CALL_TIMEOUT_MS: u64 = 30_000;
const CALL_TIMEOUT_OPTION: &str = "atoll.call_timeout_ms=";

/// How long the shell waits for each call.
pub fn call_timeout_ms() -> u64 {
    atoll_shell::cmdline_option(boot_facts().info.cmdline(), CALL_TIMEOUT_OPTION)
        .and_then(|value| value.parse().ok())
        .filter(|&ms| ms > 0)
        .unwrap_or_else(|| scaled(DEFAULT_CALL_TIMEOUT_MS))
}

/// Calls core `to` with `request` (this core too, through its loopback)
/// and waits for its reply.
pub fn ask<R>(core: &Core, to: usize, request: R) -> Result<R::Reply, String>
where
    R: Message,
    R::Interface: Into<Wire>,
    R::Reply: Message,
    <R::Reply as Message>::Interface: Held,
{
    core.ask(to, request, call_timeout_ms())
}

/// Calls each core of `requests` at once, then waits for every reply; the
/// replies in the order of `requests`.
pub fn ask_all<R>(
    core: &Core,
    requests: impl IntoIterator<Item = (usize, R)>,
) -> Vec<(usize, Result<R::Reply, String>)>
where
    R: Message,
    R::Interface: Into<Wire>,
    R::Reply: Message,
    <R::Reply as Message>::Interface: Held,
{
    let timeout = call_timeout_ms();
    let tickets: Vec<_> = requests
        .into_iter()
        .map(|(to, request)| (to, core.call(to, request, timeout)))
        .collect();
    tickets
        .into_iter()
        .map(|(to, ticket)| (to, core.wait_for(ticket)))
        .collect()
}

/// What the shell's core knows of a core: a member of its view runs; one
/// that was a member and is no longer stopped (it faulted, hung, was taken
/// off, or was left out); one that never was is offline (it never started).
/// A core that hangs runs until the view leaves it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreState {
    Offline,
    Running,
    Stopped,
}

impl CoreState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Offline => "offline",
            Self::Running => "running",
            Self::Stopped => "stopped",
        }
    }
}

/// `target`'s state as this core's view and past views have it.
pub fn core_state(core: &Core, target: usize) -> CoreState {
    let monitor = core.monitor();
    let id = CoreId(target as u16);
    if monitor.view().members.contains(id) {
        CoreState::Running
    } else if monitor.mappings().members().contains(id) {
        CoreState::Stopped
    } else {
        CoreState::Offline
    }
}

/// `target`'s state, if the machine has such a core.
pub fn check_core(core: &Core, command: &str, target: usize) -> Result<CoreState, String> {
    let count = boot_facts().cores.len();
    if target >= count {
        return Err(format!(
            "{command}: no core {target} (cores are 0 to {})",
            count - 1
        ));
    }
    Ok(core_state(core, target))
}

pub fn check_running(core: &Core, command: &str, target: usize) -> Result<(), String> {
    match check_core(core, command, target)? {
        CoreState::Running => Ok(()),
        state => Err(format!("{command}: core {target} is {}", state.name())),
    }
}

pub fn nanoseconds(cycles: u64) -> u64 {
    cycles * 1_000_000 / boot_facts().tsc_per_ms.max(1)
}
