//! The `membership` service: this core's part in the view of which cores
//! are members (`atoll_proto::membership`, which agrees on each view), and
//! the failure detector that tells it whom to suspect.
//!
//! The detector: this core sends every other member a heartbeat when it has
//! sent it nothing else for a heartbeat period (any message counts), and
//! suspects a member it has heard nothing from for `suspect_after` ticks.
//! The monitor (`lib.rs`) checks every other service's message against the
//! view ([`Membership::gate`]): delivered in the view it was sent in, held
//! when sent in a newer one, dropped when sent in an older one or by a
//! non-member. On each view installed it tells the replicas' protocols that
//! the cores left out are down, and the knowledge base derives its trees
//! again.

pub(crate) mod messages;

use alloc::format;
use alloc::vec::Vec;

use atoll_proto::CoreId;
use atoll_proto::membership::{
    Detector, Members, Membership, MembershipEvent, MembershipMsg, MembershipOutbox, Suspicion,
    View,
};
use atoll_proto::mutants::{self, Mutant};

pub use self::messages::*;
use crate::base::{Cx, Service};
use crate::calls::{OpEvent, OpRef};
use crate::output::{Deferred, Effect};

/// A view this core installed, for the monitor to act on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Installed {
    pub old: View,
    pub new: View,
}

pub(crate) struct MembershipService {
    protocol: Membership,
    /// Views installed and not yet acted on by the monitor.
    installed: Vec<Installed>,
}

impl MembershipService {
    pub fn new(me: CoreId, cores: u16, detector: Detector) -> Self {
        Self {
            protocol: Membership::new(me, cores, detector),
            installed: Vec::new(),
        }
    }

    pub fn protocol(&self) -> &Membership {
        &self.protocol
    }

    pub fn set_detector(&mut self, detector: Detector) {
        self.protocol.set_detector(detector);
    }

    /// The views installed since the last call.
    pub fn take_installed(&mut self) -> Vec<Installed> {
        core::mem::take(&mut self.installed)
    }

    /// Asks `sponsor` to let this core join.
    pub fn join(&mut self, cx: &mut Cx<'_>, sponsor: CoreId) {
        self.run(cx, |protocol, _, out| protocol.join(sponsor, out));
    }

    /// Takes `cores` in, as if each had asked to join.
    pub fn admit(&mut self, cx: &mut Cx<'_>, cores: Members) {
        self.run(cx, |protocol, tick, out| protocol.admit(cores, tick, out));
    }

    /// Has `core` leave: a view without it, by agreement, as if it had
    /// failed; it stops when it hears of the view.
    pub fn remove(&mut self, cx: &mut Cx<'_>, core: CoreId) {
        self.run(cx, |protocol, tick, out| {
            protocol.suspect(core, Suspicion::Leaving, tick, out)
        });
    }

    /// The host has read every slot waiting from `core`.
    pub fn drained(&mut self, cx: &mut Cx<'_>, core: CoreId) {
        self.run(cx, |protocol, _, out| protocol.drained(core, out));
    }

    /// Tells `core`, whose message the monitor dropped for its view, that
    /// it is left out (once per view).
    pub fn tell_left_out(&mut self, cx: &mut Cx<'_>, core: CoreId) {
        self.run(cx, |protocol, _, out| protocol.tell_left_out(core, out));
    }

    /// Runs `step` on the protocol with this step's tick, then carries out
    /// what it produced: its events (which stamp what follows), then its
    /// messages.
    fn run(
        &mut self,
        cx: &mut Cx<'_>,
        step: impl FnOnce(&mut Membership, u64, &mut MembershipOutbox),
    ) {
        let mut out = MembershipOutbox::default();
        step(&mut self.protocol, cx.tick(), &mut out);
        for event in out.events {
            match event {
                MembershipEvent::Suspects { core, why } => {
                    cx.notice(format!("suspects core {}: {why}", core.0));
                }
                MembershipEvent::Stamp(view) => {
                    cx.base.stamp(view);
                    let (mappings, mut mapping_cx) = cx.mappings();
                    mappings.view_stamped(&mut mapping_cx, view.members);
                }
                MembershipEvent::Drain(core) => cx.defer(Deferred::Drain { core }),
                MembershipEvent::Installed { old, new } => {
                    cx.base.install(new);
                    self.installed.push(Installed { old, new });
                }
                MembershipEvent::Excluded { epoch } => {
                    cx.notice(format!(
                        "left out of view {epoch} while running; stopping (fenced)"
                    ));
                    cx.effect(Effect::Excluded { epoch });
                }
            }
        }
        for (to, message) in out.sends {
            cx.send(
                to,
                MembershipProtocol {
                    message: Protocol(message),
                },
            );
        }
    }
}

impl Service for MembershipService {
    type Message = MembershipMessage;

    fn receive(&mut self, cx: &mut Cx<'_>, from: CoreId, call: u32, message: MembershipMessage) {
        match message {
            MembershipMessage::MembershipProtocol(MembershipProtocol {
                message: Protocol(message),
            }) => self.run(cx, |protocol, tick, out| {
                protocol.on_message(from, message, tick, out)
            }),
            MembershipMessage::SetDetector(SetDetector {
                heartbeat,
                suspect_after,
            }) => {
                let detector = Detector {
                    heartbeat: heartbeat.max(1),
                    suspect_after: suspect_after.max(1),
                };
                self.protocol.set_detector(detector);
                cx.base.mappings.follow_detector(detector);
                // Silence under the old settings does not count against the
                // new ones: every member is heard from as of now.
                let tick = cx.tick();
                cx.base.heard.fill(tick);
                cx.reply(cx.requester(from, call), DetectorSet {});
            }
            MembershipMessage::ResetChannels(ResetChannels { core }) => {
                let core = CoreId(core);
                let reset = cx.base.reset_link(core);
                if reset {
                    cx.effect(Effect::ResetChannels { core });
                }
                cx.reply(cx.requester(from, call), ChannelsReset { reset });
            }
            MembershipMessage::DetectorSet(_) | MembershipMessage::ChannelsReset(_) => {}
        }
    }

    fn event(&mut self, _cx: &mut Cx<'_>, _op: OpRef, _event: OpEvent) {}

    /// Heartbeats, suspicions of silent members, and proposals that wait
    /// too long.
    fn tick(&mut self, cx: &mut Cx<'_>) {
        let me = cx.me();
        let tick = cx.tick();
        let detector = self.protocol.detector();
        let watched = self
            .protocol
            .view()
            .members
            .union(self.protocol.stamp().members);
        for core in watched.iter().filter(|&core| core != me) {
            if tick.saturating_sub(cx.base.sent_at(core)) >= detector.heartbeat
                && !mutants::active(Mutant::NoHeartbeats)
            {
                cx.send(
                    core,
                    MembershipProtocol {
                        message: Protocol(MembershipMsg::Heartbeat),
                    },
                );
            }
        }
        // A joiner is watched from the commit that takes it in (the stamp),
        // before that it answers the proposal or is suspected for not
        // answering.
        for core in watched.iter().filter(|&core| core != me) {
            let silent = tick.saturating_sub(cx.base.heard_at(core));
            if silent > detector.suspect_after && !mutants::active(Mutant::NeverSuspect) {
                let why = Suspicion::Silent { ticks: silent };
                self.run(cx, |protocol, tick, out| {
                    protocol.suspect(core, why, tick, out)
                });
            }
        }
        self.run(cx, |protocol, tick, out| protocol.on_tick(tick, out));
    }
}
