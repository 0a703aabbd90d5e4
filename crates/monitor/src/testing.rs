//! Monitors set up for tests and simulations (the `testing` feature): the
//! facts a simulated core starts with and a monitor per core, so that the
//! monitor's own tests and the simulator start them alike.

use alloc::vec;
use alloc::vec::Vec;

use atoll_skb::Value;

use crate::skb::Facts;
use crate::{Config, CoreId, Monitor, Output};

/// The facts core `core` starts with when core `c` is on NUMA node
/// `nodes[c]` (0 or 1): its APIC id is its number, the nodes are 10 apart
/// from themselves and 20 from each other, and its CPU is "Simulated".
pub fn facts(core: u16, nodes: &[u16]) -> Facts {
    let mut firmware = Vec::new();
    for (id, &node) in nodes.iter().enumerate() {
        firmware.push(("core", vec![Value::int(id), Value::int(id)]));
        firmware.push(("core_node", vec![Value::int(id), Value::int(node)]));
    }
    for from in 0..2 {
        for to in 0..2 {
            let distance = if from == to { 10 } else { 20 };
            firmware.push((
                "distance",
                vec![Value::int(from), Value::int(to), Value::int(distance)],
            ));
        }
    }
    Facts {
        firmware,
        own: vec![(
            "cpu",
            vec![
                Value::int(core),
                Value::from("Simulated"),
                Value::int(1),
                Value::int(1),
                Value::int(1),
            ],
        )],
    }
}

/// A monitor for each core of `nodes` (see [`facts`]), core 0 the boot
/// core and core `c`'s frame at `0x1000 * (c + 1)`, each with the output
/// it produced on starting: each core but 0 asks core 0 to join its view,
/// and none is in a view with another yet.
pub fn start(nodes: &[u16]) -> Vec<(Monitor, Output)> {
    let cores = nodes.len() as u16;
    (0..cores)
        .map(|core| restart(core, nodes, (core != 0).then_some(CoreId(0))))
        .collect()
}

/// The monitor of a new kernel on core `core` of `nodes`, as [`start`]
/// makes them, which asks `sponsor` to join its view (and catches up from
/// it), with the output it produced on starting.
pub fn restart(core: u16, nodes: &[u16], sponsor: Option<CoreId>) -> (Monitor, Output) {
    let mut out = Output::default();
    let config = Config {
        me: CoreId(core),
        cores: nodes.len() as u16,
        boot_core: CoreId(0),
        frame: 0x1000 * (u64::from(core) + 1),
        facts: facts(core, nodes),
        detector: crate::Detector::DEFAULT,
        sponsor,
    };
    (Monitor::new(config, &mut out), out)
}

/// Delivers what `monitors` (as [`start`] made them) send each other, in
/// order per pair of cores, until nothing is left: the view forms with
/// every core. Their completions, notices and trace are cleared.
pub fn form_view(monitors: &mut [(Monitor, Output)]) {
    let mut now = 0;
    loop {
        let mut slots = Vec::new();
        for (core, (_, out)) in monitors.iter_mut().enumerate() {
            for (to, slot) in out.sends.drain(..) {
                slots.push((CoreId(core as u16), to, slot));
            }
            for deferred in out.deferred.drain(..) {
                assert!(
                    matches!(deferred, crate::Deferred::Drain { .. }),
                    "only drains before the view forms: {deferred:?}"
                );
            }
            out.completions.clear();
            out.notices.clear();
            out.trace.clear();
        }
        if slots.is_empty() {
            return;
        }
        for (from, to, slot) in slots {
            now += 1;
            let (monitor, out) = &mut monitors[usize::from(to.0)];
            monitor.step(now, crate::Input::Slot { from, slot: &slot }, out);
        }
    }
}
