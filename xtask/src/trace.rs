//! `cargo xtask trace`: runs a script with tracing on, reads every core's
//! dump from the serial output (`docs/serial-protocol.md`), and writes it
//! in the Chrome Trace Event format, which Perfetto and `chrome://tracing`
//! load: one track per core; each message a slice on its sender's track
//! and on its receiver's, joined by a flow arrow; calls, and the serving of
//! requests, as spans; protocol phases, IPIs, faults and dropped messages as
//! instants. It also prints a summary: messages per pair of cores, and
//! latency percentiles per kind of message.
//!
//! A send and its receive are paired by the link's sequence number, which
//! each core counts whether it traces or not: the `n`-th message core `a`
//! sends to core `b` is the `n`-th `b` receives from `a`. A receive whose
//! send the sender should have recorded (it traced from an earlier
//! sequence number and lost nothing) but did not is counted and reported.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::cli::TraceOptions;
use crate::prereqs::{self, Need};
use crate::protocol;
use crate::run;
use crate::workspace::Workspace;

/// The script that runs `script` with tracing on and dumps it afterwards.
pub fn wrap(script: &str) -> String {
    format!("trace on; {script}; trace dump")
}

/// One recorded event, as a dump line gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub core: u32,
    pub tsc: u64,
    pub kind: String,
    pub peer: u32,
    pub call: u32,
    pub seq: u32,
    pub detail: u64,
    pub name: String,
}

/// One core's dump.
#[derive(Debug, Clone, PartialEq)]
pub struct Dump {
    pub events: Vec<Event>,
    pub lost: u64,
    pub tsc_per_ms: u64,
    /// By peer: the sequence number of the first send recorded.
    pub first_sends: BTreeMap<u32, u32>,
    /// Per peer, the sequence number of the first send after the dump.
    pub sent: BTreeMap<u32, u32>,
}

/// Every core's dump from one run.
#[derive(Debug, Default)]
pub struct Trace {
    pub dumps: BTreeMap<u32, Dump>,
}

/// A message: its send and its receive, if both were recorded.
#[derive(Debug)]
struct Flow<'a> {
    send: &'a Event,
    receive: &'a Event,
}

fn number<T: std::str::FromStr>(word: Option<&str>, what: &str, line: &str) -> Result<T> {
    word.and_then(|word| word.parse().ok())
        .ok_or_else(|| anyhow!("trace line without its {what}: `{line}`"))
}

/// `trace: core 3: 57 events, 0 lost, tsc_per_ms 2400000, first sends 0:5 1:3, sent 0:9 1:3`
fn parse_header(rest: &str, line: &str) -> Result<(u32, Dump)> {
    let (core, rest) = rest
        .split_once(": ")
        .ok_or_else(|| anyhow!("trace header without its core: `{line}`"))?;
    let mut words = rest
        .split_whitespace()
        .map(|word| word.trim_end_matches(','));
    let _events: u64 = number(words.next(), "event count", line)?;
    let lost = number(words.nth(1), "lost count", line)?;
    let tsc_per_ms = number(words.nth(2), "TSC rate", line)?;
    if words.next() != Some("first") || words.next() != Some("sends") {
        bail!("trace header without its first sends: `{line}`");
    }
    let pairs = |words: Vec<&str>| {
        words
            .into_iter()
            .map(|pair| {
                let (peer, seq) = pair
                    .split_once(':')
                    .ok_or_else(|| anyhow!("bad send counter `{pair}` in `{line}`"))?;
                Ok((
                    number(Some(peer), "peer", line)?,
                    number(Some(seq), "sequence", line)?,
                ))
            })
            .collect::<Result<BTreeMap<u32, u32>>>()
    };
    let rest: Vec<&str> = words.collect();
    let at = rest
        .iter()
        .position(|&word| word == "sent")
        .ok_or_else(|| anyhow!("trace header without its sent counters: `{line}`"))?;
    let dump = Dump {
        events: Vec::new(),
        lost,
        tsc_per_ms,
        first_sends: pairs(rest[..at].to_vec())?,
        sent: pairs(rest[at + 1..].to_vec())?,
    };
    Ok((number(Some(core), "core", line)?, dump))
}

/// `trace: 3 123456789 send 5 17 4 0 VmPropose`
fn parse_event(rest: &str, line: &str) -> Result<Event> {
    let mut words = rest.splitn(8, ' ');
    Ok(Event {
        core: number(words.next(), "core", line)?,
        tsc: number(words.next(), "tsc", line)?,
        kind: words
            .next()
            .ok_or_else(|| anyhow!("trace line without its kind: `{line}`"))?
            .to_owned(),
        peer: number(words.next(), "peer", line)?,
        call: number(words.next(), "call", line)?,
        seq: number(words.next(), "sequence", line)?,
        detail: number(words.next(), "detail", line)?,
        name: words.next().unwrap_or_default().to_owned(),
    })
}

impl Trace {
    /// Every dump in `serial`. A core dumped twice (a faulting core dumps
    /// itself) keeps its last dump.
    pub fn parse(serial: &str) -> Result<Trace> {
        let mut trace = Trace::default();
        let mut current: Option<u32> = None;
        for line in protocol::lines(serial) {
            let Some(rest) = line.strip_prefix("trace: ") else {
                continue;
            };
            if let Some(header) = rest.strip_prefix("core ") {
                // A core whose ring was in use when it was asked dumps
                // nothing, and says so.
                if header.ends_with("the ring is busy; nothing dumped") {
                    current = None;
                    continue;
                }
                let (core, dump) = parse_header(header, line)?;
                trace.dumps.insert(core, dump);
                current = Some(core);
            } else if rest.starts_with(|c: char| c.is_ascii_digit()) {
                let event = parse_event(rest, line)?;
                let dump = current
                    .filter(|&core| core == event.core)
                    .and_then(|core| trace.dumps.get_mut(&core))
                    .ok_or_else(|| anyhow!("trace event outside its core's dump: `{line}`"))?;
                dump.events.push(event);
            }
        }
        if trace.dumps.is_empty() {
            bail!("no trace dump in the serial output");
        }
        Ok(trace)
    }

    fn events(&self) -> impl Iterator<Item = &Event> {
        self.dumps.values().flat_map(|dump| &dump.events)
    }

    /// TSC cycles per microsecond.
    fn cycles_per_us(&self) -> f64 {
        let tsc_per_ms = self.dumps.values().map(|dump| dump.tsc_per_ms).max();
        tsc_per_ms.unwrap_or(1000).max(1) as f64 / 1000.0
    }

    /// Messages whose send and receive were both recorded, and the receives
    /// whose send should have been recorded and was not.
    fn flows(&self) -> (Vec<Flow<'_>>, Vec<&Event>) {
        let sends: BTreeMap<(u32, u32, u32), &Event> = self
            .events()
            .filter(|event| event.kind == "send")
            .map(|event| ((event.core, event.peer, event.seq), event))
            .collect();
        let mut flows = Vec::new();
        let mut unmatched = Vec::new();
        for receive in self.events().filter(|event| event.kind == "recv") {
            let key = (receive.peer, receive.core, receive.seq);
            match sends.get(&key) {
                Some(send) => flows.push(Flow { send, receive }),
                None => {
                    // Owed only a send the sender's dump spans: from the
                    // first send it recorded on the link to its last before
                    // the dump (the peer may have dumped later and received
                    // more), and only if it lost nothing.
                    let sender = self.dumps.get(&receive.peer).filter(|dump| dump.lost == 0);
                    let span = sender.and_then(|dump| {
                        Some((
                            *dump.first_sends.get(&receive.core)?,
                            *dump.sent.get(&receive.core)?,
                        ))
                    });
                    if span.is_some_and(|(first, next)| (first..next).contains(&receive.seq)) {
                        unmatched.push(receive);
                    }
                }
            }
        }
        (flows, unmatched)
    }

    /// Receives whose send should have been recorded and was not.
    pub fn unmatched_receives(&self) -> usize {
        self.flows().1.len()
    }

    /// The trace in the Chrome Trace Event format.
    pub fn chrome_json(&self) -> Value {
        let base = self.events().map(|event| event.tsc).min().unwrap_or(0);
        let per_us = self.cycles_per_us();
        let ts = |tsc: u64| tsc.saturating_sub(base) as f64 / per_us;
        let mut out = vec![json!({
            "ph": "M", "pid": 0, "name": "process_name", "args": { "name": "atoll" }
        })];
        for &core in self.dumps.keys() {
            out.push(json!({
                "ph": "M", "pid": 0, "tid": core, "name": "thread_name",
                "args": { "name": format!("core {core}") }
            }));
            out.push(json!({
                "ph": "M", "pid": 0, "tid": core, "name": "thread_sort_index",
                "args": { "sort_index": core }
            }));
        }
        for event in self.events() {
            let common = |name: String, category: &str| {
                json!({
                    "pid": 0, "tid": event.core, "ts": ts(event.tsc), "name": name, "cat": category,
                    "args": { "peer": event.peer, "call": event.call, "seq": event.seq, "detail": event.detail }
                })
            };
            let mut entry = match event.kind.as_str() {
                "send" => common(format!("{} to {}", event.name, event.peer), "message"),
                "recv" => common(format!("{} from {}", event.name, event.peer), "message"),
                "call" => common(format!("call {}", event.name), "call"),
                "end" => common(format!("call {}", event.name), "call"),
                other => common(format!("{other} {}", event.name), other),
            };
            let fields = entry.as_object_mut().expect("an object");
            match event.kind.as_str() {
                "send" | "recv" => {
                    fields.insert("ph".into(), json!("X"));
                    fields.insert("dur".into(), json!(0.1));
                }
                "call" | "end" => {
                    let phase = if event.kind == "call" { "b" } else { "e" };
                    fields.insert("ph".into(), json!(phase));
                    let id = u64::from(event.core) << 32 | u64::from(event.call);
                    fields.insert("id".into(), json!(id));
                }
                _ => {
                    fields.insert("ph".into(), json!("i"));
                    fields.insert("s".into(), json!("t"));
                }
            }
            out.push(entry);
        }
        let (flows, _) = self.flows();
        for flow in &flows {
            let id = u64::from(flow.send.core) << 40
                | u64::from(flow.send.peer) << 32
                | u64::from(flow.send.seq);
            out.push(json!({
                "ph": "s", "pid": 0, "tid": flow.send.core, "ts": ts(flow.send.tsc),
                "id": id, "name": flow.send.name, "cat": "flow"
            }));
            out.push(json!({
                "ph": "f", "bp": "e", "pid": 0, "tid": flow.receive.core, "ts": ts(flow.receive.tsc),
                "id": id, "name": flow.send.name, "cat": "flow"
            }));
        }
        // The serving of a request: from its receive to the send of its
        // reply, under the same call id, on the core that served it.
        for receive in self
            .events()
            .filter(|event| event.kind == "recv" && event.call != 0)
        {
            let reply = self.dumps[&receive.core].events.iter().find(|event| {
                event.kind == "send"
                    && event.peer == receive.peer
                    && event.call == receive.call
                    && event.tsc >= receive.tsc
                    && event.name != receive.name
            });
            if let Some(reply) = reply {
                let id = u64::from(receive.peer) << 40
                    | u64::from(receive.core) << 32
                    | u64::from(receive.call);
                let name = format!("serve {}", receive.name);
                out.push(json!({
                    "ph": "b", "pid": 0, "tid": receive.core, "ts": ts(receive.tsc),
                    "id": id, "name": name, "cat": "serve"
                }));
                out.push(json!({
                    "ph": "e", "pid": 0, "tid": receive.core, "ts": ts(reply.tsc),
                    "id": id, "name": name, "cat": "serve"
                }));
            }
        }
        json!({ "traceEvents": out, "displayTimeUnit": "ns" })
    }

    /// Messages per pair of cores and latency percentiles per kind.
    pub fn summary(&self) -> String {
        let (flows, unmatched) = self.flows();
        let sends = self.events().filter(|event| event.kind == "send").count();
        let mut text = format!(
            "trace: {} cores, {} events, {sends} messages sent, {} received with their send, {} received without it{}\n",
            self.dumps.len(),
            self.events().count(),
            flows.len(),
            unmatched.len(),
            if self.dumps.values().any(|dump| dump.lost > 0) {
                " (some cores lost events: their rings were full)"
            } else {
                ""
            }
        );
        let cores: BTreeSet<u32> = self.dumps.keys().copied().collect();
        let mut pairs: BTreeMap<(u32, u32), usize> = BTreeMap::new();
        for event in self.events().filter(|event| event.kind == "send") {
            *pairs.entry((event.core, event.peer)).or_default() += 1;
        }
        text += "messages sent per pair (row: from, column: to):\n      ";
        for to in &cores {
            let _ = write!(text, "{to:>5}");
        }
        text += "\n";
        for from in &cores {
            let _ = write!(text, "{from:>5} ");
            for to in &cores {
                let _ = write!(
                    text,
                    "{:>5}",
                    pairs.get(&(*from, *to)).copied().unwrap_or(0)
                );
            }
            text += "\n";
        }
        let per_us = self.cycles_per_us();
        let mut latencies: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for flow in &flows {
            let cycles = flow.receive.tsc.saturating_sub(flow.send.tsc);
            latencies
                .entry(flow.send.name.as_str())
                .or_default()
                .push(cycles as f64 / per_us);
        }
        text += "send to receive, by message (us; TSC rates from the dumps):\n";
        let _ = writeln!(
            text,
            "  {:<16} {:>6} {:>10} {:>10} {:>10} {:>10}",
            "message", "count", "p50", "p90", "p99", "max"
        );
        for (name, mut samples) in latencies {
            samples.sort_by(f64::total_cmp);
            let at = |fraction: f64| {
                let index = ((samples.len() - 1) as f64 * fraction).round() as usize;
                samples[index]
            };
            let _ = writeln!(
                text,
                "  {name:<16} {:>6} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
                samples.len(),
                at(0.5),
                at(0.9),
                at(0.99),
                at(1.0)
            );
        }
        for receive in unmatched {
            let _ = writeln!(
                text,
                "  no send recorded for: core {} received {} from core {} (seq {})",
                receive.core, receive.name, receive.peer, receive.seq
            );
        }
        text
    }
}

/// Writes the Chrome trace of `serial` to `out`; returns the trace.
pub fn export(serial: &str, out: &Path) -> Result<Trace> {
    let trace = Trace::parse(serial)?;
    let json = serde_json::to_string(&trace.chrome_json()).context("encoding the trace")?;
    fs::write(out, json).with_context(|| format!("writing {}", out.display()))?;
    Ok(trace)
}

/// `cargo xtask trace`.
pub fn run(workspace: &Workspace, options: &TraceOptions) -> Result<ExitCode> {
    prereqs::ensure(workspace, Need::Qemu)?;
    let kernel = workspace.build_kernel()?;
    let script = wrap(&options.script);
    let serial = run::exec(&kernel, &options.machine, &script, options.timeout, false)?;
    for line in protocol::lines(&serial.text).filter(|line| !is_event_line(line)) {
        println!("{line}");
    }
    let verdict = protocol::exec_verdict(serial.exit, &serial.text);
    let trace = match export(&serial.text, &options.out) {
        Ok(trace) => trace,
        // A boot that failed has a better reason than a missing dump.
        Err(error) => return Err(verdict.err().map_or(error, |failure| anyhow!(failure))),
    };
    print!("{}", trace.summary());
    println!("xtask: wrote {}", options.out.display());
    verdict.map_err(|error| anyhow!(error))?;
    if trace.unmatched_receives() > 0 {
        bail!("some receives have no recorded send");
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `line` is one event of a dump (left out of what is echoed).
fn is_event_line(line: &str) -> bool {
    line.strip_prefix("trace: ")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERIAL: &str = "atoll> trace dump\r\n\
        trace: core 0: 3 events, 0 lost, tsc_per_ms 2000000, first sends 0:0 1:4, sent 0:0 1:5\r\n\
        trace: 0 1000 call 1 9 0 0 VmPropose\r\n\
        trace: 0 1000 send 1 9 4 0 VmPropose\r\n\
        trace: 0 9000 recv 1 9 7 0 VmDone\r\n\
        trace: core 1: 3 events, 0 lost, tsc_per_ms 2000000, first sends 0:7 1:0, sent 0:8 1:0\r\n\
        trace: 1 3000 recv 0 9 4 0 VmPropose\r\n\
        trace: 1 5000 phase 0 0 0 4294967296 2pc propose\r\n\
        trace: 1 7000 send 0 9 7 0 VmDone\r\n\
        trace: dumped 2 cores\r\n";

    #[test]
    fn dumps_parse_with_names_that_hold_spaces() {
        let trace = Trace::parse(SERIAL).unwrap();
        assert_eq!(trace.dumps.len(), 2);
        assert_eq!(trace.dumps[&1].events[1].name, "2pc propose");
        assert_eq!(trace.dumps[&1].first_sends[&0], 7);
        assert_eq!(trace.unmatched_receives(), 0);
    }

    #[test]
    fn sends_and_receives_become_flows_and_a_served_request_a_span() {
        let json = Trace::parse(SERIAL).unwrap().chrome_json();
        let events = json["traceEvents"].as_array().unwrap();
        let count = |phase: &str| events.iter().filter(|e| e["ph"] == phase).count();
        assert_eq!((count("s"), count("f")), (2, 2));
        let served: Vec<&Value> = events.iter().filter(|e| e["cat"] == "serve").collect();
        assert_eq!(served.len(), 2);
        assert_eq!(served[0]["name"], "serve VmPropose");
        // 2000 cycles per microsecond: the request arrived 1 us after the start.
        assert_eq!(served[0]["ts"], 1.0);
        let tracks = events.iter().filter(|e| e["name"] == "thread_name").count();
        assert_eq!(tracks, 2);
        let summary = Trace::parse(SERIAL).unwrap().summary();
        assert!(
            summary.contains("2 received with their send, 0 received without it"),
            "{summary}"
        );
        assert!(
            summary.contains("  VmPropose             1        1.0"),
            "{summary}"
        );
    }

    #[test]
    fn a_receive_whose_send_was_not_recorded_is_reported_only_when_it_should_have_been() {
        // Core 1 traced its sends to core 0 from sequence 7: a receive of
        // sequence 7 without its send is a loss; one of 6 is not.
        let missing = SERIAL.replace("trace: 1 7000 send 0 9 7 0 VmDone\r\n", "");
        assert_eq!(Trace::parse(&missing).unwrap().unmatched_receives(), 1);
        let earlier = missing.replace(
            "trace: 0 9000 recv 1 9 7 0 VmDone",
            "trace: 0 9000 recv 1 9 6 0 VmDone",
        );
        assert_eq!(Trace::parse(&earlier).unwrap().unmatched_receives(), 0);
    }

    #[test]
    fn a_send_after_the_sender_s_dump_is_not_owed() {
        // Core 0 received sequence 8 from core 1, sent after core 1 had
        // dumped (its next send then was 8): not a loss.
        let later = SERIAL.replace(
            "trace: 0 9000 recv 1 9 7 0 VmDone",
            "trace: 0 9000 recv 1 9 7 0 VmDone\r\ntrace: 0 9500 recv 1 0 8 0 Heartbeat",
        );
        assert_eq!(Trace::parse(&later).unwrap().unmatched_receives(), 0);
        let missing = SERIAL.replace("trace: 1 7000 send 0 9 7 0 VmDone\r\n", "");
        assert_eq!(Trace::parse(&missing).unwrap().unmatched_receives(), 1);
    }

    #[test]
    fn a_core_dumped_twice_keeps_its_last_dump_and_a_busy_ring_dumps_nothing() {
        // A faulting core dumps itself on the way down; a later dump of the
        // same core (here with one event less) replaces it.
        let again = "trace: core 1: 1 events, 0 lost, tsc_per_ms 2000000, first sends 0:7 1:0, sent 0:8 1:0\r\n\
            trace: 1 7000 send 0 9 7 0 VmDone\r\n\
            trace: core 0: the ring is busy; nothing dumped\r\n";
        let trace = Trace::parse(&(SERIAL.to_owned() + again)).unwrap();
        assert_eq!(trace.dumps[&1].events.len(), 1);
        assert_eq!(
            trace.dumps[&0].events.len(),
            3,
            "the busy line left core 0's dump"
        );
    }

    #[test]
    fn a_core_that_lost_events_is_owed_no_sends() {
        // Core 1 lost events: its missing send is not counted against it,
        // and the summary says that some cores lost events.
        let lossy = SERIAL
            .replace(
                "3 events, 0 lost, tsc_per_ms 2000000, first sends 0:7",
                "3 events, 2 lost, tsc_per_ms 2000000, first sends 0:7",
            )
            .replace("trace: 1 7000 send 0 9 7 0 VmDone\r\n", "");
        let trace = Trace::parse(&lossy).unwrap();
        assert_eq!(trace.dumps[&1].lost, 2);
        assert_eq!(trace.unmatched_receives(), 0);
        assert!(
            trace.summary().contains("some cores lost events"),
            "{}",
            trace.summary()
        );
    }

    #[test]
    fn bad_dumps_are_errors() {
        assert!(Trace::parse("no trace here").is_err());
        let stray = "trace: 4 1 send 0 0 0 0 Ping\r\n";
        assert!(
            Trace::parse(stray)
                .unwrap_err()
                .to_string()
                .contains("outside its core's dump")
        );
        let short = "trace: core 0: 1 events, 0 lost, tsc_per_ms 5, first sends, sent\r\ntrace: 0 x send\r\n";
        assert!(
            Trace::parse(short)
                .unwrap_err()
                .to_string()
                .contains("without its tsc")
        );
    }
}
