//! Exhaustive exploration of a world's states: the model check.
//!
//! This is a small explorer of our own rather than `stateright`: it walks
//! the simulator's own [`World`], so what is checked is the unchanged core
//! and protocol code with the simulator's invariants, not a model written
//! beside it; and it adds no dependencies to build on two cores.
//!
//! It is a depth-first search over every action in every state, with a set
//! of visited states kept as 128-bit fingerprints (two SipHash digests of
//! the state; a collision among a few million states has odds below
//! 10^-25). It checks:
//! - safety after every step (the world's per-step invariants: no two
//!   conflicting commits, completions only once their effects are
//!   everywhere, conflicts named truly);
//! - in every terminal state (no action left), that every request
//!   completed, no protocol state or lock is left, and the replicas agree;
//! - that no run can go on forever: an action leading back to a state on
//!   the current path is a cycle without progress.

use crate::seeded::{Simulation, Violation};
use crate::world::{Action, World};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

/// What an exploration covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explored {
    /// Distinct states reached.
    pub states: u64,
    /// Actions taken, counting those that led to a state seen before.
    pub transitions: u64,
    /// States with no action left.
    pub terminal: u64,
    /// The longest path walked.
    pub depth: usize,
    pub elapsed: Duration,
}

/// The path from the initial state to a broken invariant, each step in
/// words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counterexample {
    pub path: Vec<String>,
    pub violation: Violation,
}

impl std::fmt::Display for Counterexample {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        writeln!(f, "{}", self.violation)?;
        for (step, action) in self.path.iter().enumerate() {
            writeln!(f, "  {:>3}. {action}", step + 1)?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Visit {
    OnPath,
    Done,
}

struct Frame {
    world: World,
    fingerprint: u128,
    actions: Vec<Action>,
    next: usize,
}

fn fingerprint(world: &World) -> u128 {
    let digest = |salt: u8| {
        let mut hasher = DefaultHasher::new();
        salt.hash(&mut hasher);
        world.hash(&mut hasher);
        hasher.finish()
    };
    (u128::from(digest(0)) << 64) | u128::from(digest(1))
}

/// The actions taken from the initial state to the top of the stack.
fn path(stack: &[Frame]) -> Vec<String> {
    let taken = stack.iter().filter_map(|f| {
        f.next
            .checked_sub(1)
            .map(|i| f.world.describe(f.actions[i]))
    });
    taken.collect()
}

/// Counts a new state, checks it if it is terminal, and pushes it.
fn enter(
    world: World,
    fingerprint: u128,
    stack: &mut Vec<Frame>,
    stats: &mut Explored,
) -> Result<(), Counterexample> {
    let actions = world.actions();
    stats.states += 1;
    if actions.is_empty() {
        stats.terminal += 1;
        if let Err(violation) = world.check_quiescent() {
            return Err(Counterexample {
                path: path(stack),
                violation,
            });
        }
    }
    stack.push(Frame {
        world,
        fingerprint,
        actions,
        next: 0,
    });
    stats.depth = stats.depth.max(stack.len() - 1);
    Ok(())
}

/// Explores every state reachable from `initial`.
pub fn explore(initial: World) -> Result<Explored, Counterexample> {
    let started = Instant::now();
    let mut stats = Explored {
        states: 0,
        transitions: 0,
        terminal: 0,
        depth: 0,
        elapsed: Duration::ZERO,
    };
    let mut visited: HashMap<u128, Visit> = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let root = fingerprint(&initial);
    visited.insert(root, Visit::OnPath);
    enter(initial, root, &mut stack, &mut stats)?;
    while let Some(frame) = stack.last_mut() {
        let Some(&action) = frame.actions.get(frame.next) else {
            visited.insert(frame.fingerprint, Visit::Done);
            stack.pop();
            continue;
        };
        frame.next += 1;
        let mut world = frame.world.clone();
        stats.transitions += 1;
        if let Err(violation) = world.act(action) {
            return Err(Counterexample {
                path: path(&stack),
                violation,
            });
        }
        let next = fingerprint(&world);
        match visited.get(&next) {
            Some(Visit::Done) => {}
            Some(Visit::OnPath) => {
                let violation = Violation("a cycle: this path leads back to a state on it".into());
                return Err(Counterexample {
                    path: path(&stack),
                    violation,
                });
            }
            None => {
                visited.insert(next, Visit::OnPath);
                enter(world, next, &mut stack, &mut stats)?;
            }
        }
    }
    stats.elapsed = started.elapsed();
    Ok(stats)
}
