//! What the simulators share: the generator seeds drive ([`Rng`]), a
//! broken invariant ([`Violation`]), the seeded run of a world to its end ([`run`]), and how a seed is chosen, a
//! failure explained and a seed replayed in the seed tests.

use std::fmt;

/// A broken invariant, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// SplitMix64: small, fast, and the same on every host.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }
}

/// `Err(Violation(format!(...)))`.
macro_rules! violation {
    ($($arg:tt)*) => { Err($crate::seeded::Violation(format!($($arg)*))) };
}
pub(crate) use violation;

/// A world a seed drives: the actions possible in each state, one step, and
/// the checks of a state with no action left.
pub trait Simulation {
    type Action: Copy + PartialEq + fmt::Debug;
    /// What a run counts, summed over seeds.
    type Tally: PartialEq + fmt::Debug;
    /// The actions possible now; none means the run is over.
    fn actions(&self) -> Vec<Self::Action>;
    /// Takes one of `actions()` and checks the invariants of every step.
    fn act(&mut self, action: Self::Action) -> Result<(), Violation>;
    /// Checks a world with no action left.
    fn check_quiescent(&self) -> Result<(), Violation>;
    fn tally(&self) -> Self::Tally;
    /// `action` in words, as it would change this world.
    fn describe(&self, action: Self::Action) -> String;
}

/// Switches on the mutant that `ATOLL_MUTANT` names, if any
/// (`atoll_proto::mutants`; the sim must be built with its `mutants`
/// feature for one to take). Every world calls this as it is made, so that
/// a check run under `ATOLL_MUTANT` runs the mutant.
pub fn mutant_from_env() -> Result<(), Violation> {
    use atoll_proto::mutants::{self, Mutant};
    let mutant = match std::env::var("ATOLL_MUTANT") {
        Ok(name) => match Mutant::from_name(&name) {
            Some(mutant) => Some(mutant),
            None => return violation!("ATOLL_MUTANT={name} names no mutant"),
        },
        Err(_) => None,
    };
    mutants::set(mutant).map_err(|why| Violation(format!("ATOLL_MUTANT: {why}")))
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run<T> {
    pub steps: usize,
    pub tally: T,
}

/// A run that broke an invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub seed: u64,
    pub step: usize,
    pub violation: Violation,
}

/// Runs `world` (the world of `seed`'s scenario, or why it could not be
/// set up) under the schedule `pick` draws from `seed` until no action is
/// left, failing at the first broken invariant or after `max_steps` (a
/// livelock). `trace` sees each action with the world it is about to
/// change.
pub fn run<W: Simulation>(
    seed: u64,
    world: Result<W, Violation>,
    max_steps: usize,
    mut pick: impl FnMut(&mut Rng, &[W::Action]) -> W::Action,
    mut trace: impl FnMut(usize, &W, W::Action),
) -> Result<Run<W::Tally>, Failure> {
    let fail = |step, violation| Failure {
        seed,
        step,
        violation,
    };
    let mut world = world.map_err(|violation| fail(0, violation))?;
    // A stream of its own, so that the schedule does not shift when the
    // scenario's draws change.
    let mut rng = Rng::new(seed ^ 0x5eed_5eed_5eed_5eed);
    for step in 1..=max_steps {
        let actions = world.actions();
        if actions.is_empty() {
            world
                .check_quiescent()
                .map_err(|violation| fail(step, violation))?;
            return Ok(Run {
                steps: step - 1,
                tally: world.tally(),
            });
        }
        let action = pick(&mut rng, &actions);
        trace(step, &world, action);
        world
            .act(action)
            .map_err(|violation| fail(step, violation))?;
    }
    Err(fail(
        max_steps,
        Violation(format!("no end after {max_steps} steps")),
    ))
}

/// A number from the environment variable `name`, or `default` when it is
/// unset; a value that is no number is a panic that names it.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
        Err(_) => default,
    }
}

/// A failure in words, with the command that replays it with the seed test
/// `test` of this crate.
fn explain(test: &str, failure: &Failure) -> String {
    format!(
        "seed {} broke an invariant at step {}: {}\nreplay it with: ATOLL_SIM_SEED={} ATOLL_SIM_TRACE=1 cargo test -p atoll-sim --test {test} replay -- --nocapture",
        failure.seed, failure.step, failure.violation, failure.seed
    )
}

/// The seed test `test`'s `seeds`: runs `ATOLL_SIM_SEEDS` seeds (default
/// `default`) from `ATOLL_SIM_FIRST_SEED` (default 0) with `run`, panicking
/// at the first broken invariant with the command that replays it; prints
/// and returns how many seeds ran and their tallies summed.
pub fn run_seeds<T: Default + std::ops::AddAssign + fmt::Debug>(
    test: &str,
    default: u64,
    run: impl Fn(u64) -> Result<Run<T>, Failure>,
) -> (u64, T) {
    let first = env_u64("ATOLL_SIM_FIRST_SEED", 0);
    let count = env_u64("ATOLL_SIM_SEEDS", default);
    let started = std::time::Instant::now();
    let (mut steps, mut tally) = (0, T::default());
    for seed in first..first + count {
        let run = run(seed).unwrap_or_else(|failure| panic!("{}", explain(test, &failure)));
        steps += run.steps;
        tally += run.tally;
    }
    println!(
        "{test}: {count} seeds from {first}: {steps} steps, {tally:?}, {:.2?}",
        started.elapsed()
    );
    (count, tally)
}

/// The seed test `test`'s `replay`: runs `seed` twice with `run`, printing
/// its `scenario` and, with `ATOLL_SIM_TRACE` set, every action; fails if
/// the two runs took different actions or ended differently (the simulator
/// must be deterministic for a seed to mean anything), or with the first
/// run's broken invariant.
pub fn replay<W: Simulation>(
    test: &str,
    seed: u64,
    scenario: &impl fmt::Debug,
    run: impl Fn(u64, &mut dyn FnMut(usize, &W, W::Action)) -> Result<Run<W::Tally>, Failure>,
) {
    let trace = std::env::var_os("ATOLL_SIM_TRACE").is_some();
    println!("seed {seed}: {scenario:#?}");
    let mut first = Vec::new();
    let result = run(seed, &mut |step, world, action| {
        if trace {
            println!("{step:>6}. {}", world.describe(action));
        }
        first.push(action);
    });
    let mut second = Vec::new();
    let again = run(seed, &mut |_, _, action| second.push(action));
    assert_eq!(
        first, second,
        "seed {seed} took different actions on a second run"
    );
    assert_eq!(
        result, again,
        "seed {seed} ended differently on a second run"
    );
    let run = result.unwrap_or_else(|failure| panic!("{}", explain(test, &failure)));
    println!("seed {seed}: {run:?}");
}
