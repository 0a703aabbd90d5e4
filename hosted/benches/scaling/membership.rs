//! `cargo xtask bench membership`: what failure detection, a view change
//! and heartbeats cost, against the number of cores, up to 256.
//!
//! Simulated, not timed: N monitors of `atoll-monitor` (the code each
//! kernel core runs), with the kernel's detector (a heartbeat every 10
//! ticks, suspicion after 100; a tick is 10 ms in the kernel), over links
//! in order, every core ticking once per round and every message delivered
//! within the round it was sent in. So the results are ticks and messages:
//! what the protocol costs, the same on any machine, and a floor for what
//! it costs on real cores, where delivery takes time.
//!
//! For each N:
//! - idle: heartbeats each core sends per second, when nothing else moves;
//! - busy: the same while every core sends every other core a round trip
//!   each heartbeat period (all-to-all traffic, which the replication
//!   protocols' commits come close to), against the idle cost;
//! - a member that is not the leader stops: ticks until the first core
//!   suspects it, until every survivor has installed the view without it,
//!   and the membership messages that change took; the ratio of the
//!   detection to the suspicion timeout;
//! - the leader (core 0) stops: the same, with a new leader taking over.
//!   At 2 cores the survivor is half of the view without its lowest
//!   member, not a quorum, so by design it keeps the old view (a core
//!   alone cannot tell a dead peer from a cut link): the run checks that it
//!   does and records no failover there.

use std::time::Instant;

use atoll_bench_report::report::{Axes, Panel, Report, Series, SeriesLabelPosition, line_grid};
use atoll_bench_report::stats::Summary;
use atoll_monitor::control::Ping;
use atoll_monitor::{CoreId, Detector, Input, Members, Monitor, Output, testing};
use serde_json::{Value, json};

use crate::common::Settings;

const CORE_COUNTS: [usize; 8] = [2, 4, 8, 16, 32, 64, 128, 256];
/// Ticks of quiet traffic measured per load.
const MEASURED_TICKS: u64 = 100;
/// The kernel's tick, for the rates.
const TICKS_PER_SECOND: f64 = 100.0;
/// How long a stopped core may take to be left out before the run fails.
const MOST_TICKS: u64 = 10_000;

/// N monitors in one view, and the messages between them.
struct Machine {
    monitors: Vec<Monitor>,
    stopped: Vec<bool>,
    /// Slots sent this round, by (from, to), delivered next.
    in_flight: Vec<(CoreId, CoreId, atoll_urpc::Payload)>,
    now: u64,
    /// Messages sent, by the label of what they carry.
    sent: Vec<(&'static str, u64)>,
}

impl Machine {
    fn new(cores: usize) -> Machine {
        let nodes = vec![0; cores];
        let mut started = testing::start(&nodes);
        testing::form_view(&mut started);
        let monitors: Vec<Monitor> = started.into_iter().map(|(monitor, _)| monitor).collect();
        let everyone: Members = (0..cores as u16).map(CoreId).collect();
        assert!(
            monitors
                .iter()
                .all(|monitor| monitor.view().members == everyone),
            "the view formed"
        );
        Machine {
            monitors,
            stopped: vec![false; cores],
            in_flight: Vec::new(),
            now: 0,
            sent: Vec::new(),
        }
    }

    fn absorb(&mut self, core: CoreId, out: &mut Output) {
        for (to, slot) in out.sends.drain(..) {
            self.in_flight.push((core, to, slot));
        }
        for deferred in out.deferred.drain(..) {
            if let atoll_monitor::Deferred::Drain { core: from } = deferred {
                // Everything from a stopped core was delivered in its round.
                let mut drained = Output::default();
                self.now += 1;
                self.monitors[usize::from(core.0)].step(
                    self.now,
                    Input::Drained(from),
                    &mut drained,
                );
                self.absorb(core, &mut drained);
            }
        }
        out.completions.clear();
        out.notices.clear();
    }

    fn step(&mut self, core: CoreId, input: Input<'_>) {
        if self.stopped[usize::from(core.0)] {
            return;
        }
        let mut out = Output::default();
        self.now += 1;
        self.monitors[usize::from(core.0)].step(self.now, input, &mut out);
        self.absorb(core, &mut out);
    }

    /// One tick on every running core, then every message delivered, and
    /// every message those send, until nothing is in flight. Counts the
    /// membership messages (by their first slot's label).
    fn round(&mut self) {
        for core in 0..self.monitors.len() as u16 {
            self.step(CoreId(core), Input::Tick);
        }
        while !self.in_flight.is_empty() {
            for (from, to, slot) in std::mem::take(&mut self.in_flight) {
                self.count(&slot);
                self.step(to, Input::Slot { from, slot: &slot });
            }
        }
    }

    fn count(&mut self, slot: &atoll_urpc::Payload) {
        let label = membership_label(slot);
        match self.sent.iter_mut().find(|(name, _)| *name == label) {
            Some((_, count)) => *count += 1,
            None => self.sent.push((label, 1)),
        }
    }

    fn sent(&self, label: &str) -> u64 {
        self.sent
            .iter()
            .filter(|(name, _)| *name == label)
            .map(|(_, count)| count)
            .sum()
    }

    /// Every running core calls every other (a round trip).
    fn all_to_all(&mut self) {
        let cores = self.monitors.len() as u16;
        for from in 0..cores {
            for to in (0..cores).filter(|&to| to != from) {
                let mut out = Output::default();
                self.now += 1;
                self.monitors[usize::from(from)].call(
                    self.now,
                    CoreId(to),
                    Ping {},
                    1000,
                    &mut out,
                );
                self.absorb(CoreId(from), &mut out);
            }
        }
    }
}

/// The name of the membership message a slot starts, or "other".
fn membership_label(slot: &atoll_urpc::Payload) -> &'static str {
    let mut reassembler = atoll_iface::Reassembler::<atoll_monitor::Wire>::new(1);
    match reassembler.push(slot) {
        Ok(Some(envelope)) if matches!(envelope.message, atoll_monitor::Wire::Membership(_)) => {
            envelope.message.label()
        }
        _ => "other",
    }
}

/// What one N measured.
struct Point {
    cores: usize,
    idle_heartbeats: f64,
    busy_heartbeats: f64,
    busy_messages: f64,
    member: Failover,
    /// `None` where the survivors hold no quorum of the view, and so, by
    /// design, never leave the leader out.
    leader: Option<Failover>,
    seconds: f64,
}

/// One core stopping, and the view without it.
struct Failover {
    /// Ticks from the stop to the first suspicion, and to the last
    /// survivor's install.
    detected: u64,
    installed: u64,
    /// Membership messages other than heartbeats from the stop to the
    /// install.
    messages: u64,
}

/// Stops `stopped` and runs until every survivor has left it out: `None`
/// if the survivors hold no quorum of the view and so must not, and do not,
/// within [`MOST_TICKS`]; an error if they should have and did not, or
/// did though they should not have.
fn failover(cores: usize, stopped: u16) -> Result<Option<Failover>, String> {
    let mut machine = Machine::new(cores);
    for _ in 0..20 {
        machine.round();
    }
    let view = machine.monitors[usize::from(stopped)].view();
    machine.stopped[usize::from(stopped)] = true;
    let membership = |machine: &Machine| {
        machine.sent.iter().map(|(_, n)| n).sum::<u64>()
            - machine.sent("Heartbeat")
            - machine.sent("other")
    };
    let before = membership(&machine);
    let survivors: Vec<usize> = (0..cores)
        .filter(|&core| core != usize::from(stopped))
        .collect();
    let (mut detected, mut installed) = (None, None);
    for tick in 1..=MOST_TICKS {
        machine.round();
        let suspected = survivors.iter().any(|&core| {
            machine.monitors[core].suspects().contains(CoreId(stopped))
                || !machine.monitors[core]
                    .view()
                    .members
                    .contains(CoreId(stopped))
        });
        if suspected && detected.is_none() {
            detected = Some(tick);
        }
        let done = survivors.iter().all(|&core| {
            !machine.monitors[core]
                .view()
                .members
                .contains(CoreId(stopped))
        });
        if done {
            installed = Some(tick);
            break;
        }
    }
    let after = membership(&machine);
    let survivors_quorum =
        view.keeps_quorum(survivors.iter().map(|&core| CoreId(core as u16)).collect());
    match (detected, installed, survivors_quorum) {
        (Some(detected), Some(installed), true) => Ok(Some(Failover {
            detected,
            installed,
            messages: after - before,
        })),
        (_, None, false) => Ok(None),
        (_, Some(_), false) => Err(format!(
            "{cores} cores: the survivors of core {stopped} hold no quorum, yet left it out"
        )),
        (_, _, true) => Err(format!(
            "{cores} cores: core {stopped} was not left out within {MOST_TICKS} ticks"
        )),
    }
}

fn measure(cores: usize) -> Result<Point, String> {
    let started = Instant::now();
    let mut idle = Machine::new(cores);
    for _ in 0..20 {
        idle.round();
    }
    let before = idle.sent("Heartbeat");
    for _ in 0..MEASURED_TICKS {
        idle.round();
    }
    let per_core_second =
        |count: u64| count as f64 / cores as f64 / MEASURED_TICKS as f64 * TICKS_PER_SECOND;
    let idle_heartbeats = per_core_second(idle.sent("Heartbeat") - before);

    let mut busy = Machine::new(cores);
    for _ in 0..20 {
        busy.round();
    }
    let (heartbeats, others) = (busy.sent("Heartbeat"), busy.sent("other"));
    for tick in 0..MEASURED_TICKS {
        if tick % Detector::DEFAULT.heartbeat == 0 {
            busy.all_to_all();
        }
        busy.round();
    }
    let busy_heartbeats = per_core_second(busy.sent("Heartbeat") - heartbeats);
    let busy_messages = per_core_second(busy.sent("other") - others);
    Ok(Point {
        cores,
        idle_heartbeats,
        busy_heartbeats,
        busy_messages,
        member: failover(cores, cores as u16 - 1)?
            .ok_or_else(|| format!("{cores} cores: a member's survivors always hold a quorum"))?,
        leader: failover(cores, 0)?,
        seconds: started.elapsed().as_secs_f64(),
    })
}

pub fn run(_settings: &Settings) -> Result<Report, String> {
    let points = CORE_COUNTS
        .into_iter()
        .map(measure)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Report {
        table: table(&points),
        json: results_json(&points),
        plot: plot(&points)?,
    })
}

fn table(points: &[Point]) -> String {
    let suspect = Detector::DEFAULT.suspect_after;
    let mut table = format!(
        "membership: simulated monitors, the kernel's detector (heartbeat every {} ticks, \
         suspect after {suspect}; a tick is 10 ms); ticks and messages, not time on this machine\n",
        Detector::DEFAULT.heartbeat
    );
    table += "cores | heartbeats/core/s idle  busy (other msgs/core/s)  busy/idle \
              | member stops: detected  installed  detected/timeout  view msgs \
              | leader stops: detected  installed  view msgs\n";
    for point in points {
        let leader = match &point.leader {
            Some(leader) => format!(
                "{:>22}  {:>9}  {:>9}",
                leader.detected, leader.installed, leader.messages
            ),
            None => format!("{:>42}", "no quorum: old view kept"),
        };
        table += &format!(
            "{:>5} | {:>18.1}  {:>4.1} ({:>8.1})  {:>9.3} | {:>22}  {:>9}  {:>16.2}  {:>9} | {leader}\n",
            point.cores,
            point.idle_heartbeats,
            point.busy_heartbeats,
            point.busy_messages,
            point.busy_heartbeats / point.idle_heartbeats,
            point.member.detected,
            point.member.installed,
            point.member.detected as f64 / suspect as f64,
            point.member.messages,
        );
    }
    table
}

fn results_json(points: &[Point]) -> Value {
    let failover = |f: &Failover| {
        json!({
            "detected_ticks": f.detected,
            "installed_ticks": f.installed,
            "view_change_messages": f.messages,
        })
    };
    json!({
        "simulated": "ticks and messages of the monitors' code, not time on this machine",
        "detector": {
            "heartbeat_ticks": Detector::DEFAULT.heartbeat,
            "suspect_after_ticks": Detector::DEFAULT.suspect_after,
            "tick_ms": 10,
        },
        "points": points.iter().map(|point| json!({
            "cores": point.cores,
            "heartbeats_per_core_per_second_idle": point.idle_heartbeats,
            "heartbeats_per_core_per_second_busy": point.busy_heartbeats,
            "other_messages_per_core_per_second_busy": point.busy_messages,
            "member_stops": failover(&point.member),
            "leader_stops": point.leader.as_ref().map_or(
                json!("the survivors hold no quorum of the view: by design they keep it"),
                failover,
            ),
            "simulation_seconds": point.seconds,
        })).collect::<Vec<_>>(),
    })
}

fn plot(points: &[Point]) -> Result<String, String> {
    let exact = |value: f64| Summary::of(&[value]);
    let series = |label: &str, value: &dyn Fn(&Point) -> Option<f64>| Series {
        label: label.to_owned(),
        points: points
            .iter()
            .filter_map(|point| Some((point.cores as f64, exact(value(point)?))))
            .collect(),
    };
    let panels = [
        Panel {
            caption: "a stopped core left out (ticks from the stop)",
            y_axis: "ticks",
            content: vec![
                series("member: detected", &|p| Some(p.member.detected as f64)),
                series("member: view installed", &|p| {
                    Some(p.member.installed as f64)
                }),
                series("leader: view installed", &|p| {
                    p.leader.as_ref().map(|leader| leader.installed as f64)
                }),
            ],
        },
        Panel {
            caption: "messages",
            y_axis: "messages",
            content: vec![
                series("view change (member stops)", &|p| {
                    Some(p.member.messages as f64)
                }),
                series("heartbeats/core/s, idle", &|p| Some(p.idle_heartbeats)),
            ],
        },
    ];
    let axes = Axes {
        x: "cores",
        log_y: true,
        legend: SeriesLabelPosition::UpperLeft,
    };
    line_grid(&axes, &panels)
}
