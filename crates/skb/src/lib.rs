//! The system knowledge base (SKB): what Atoll knows about the machine it
//! runs on, and the rules it asks questions with.
//!
//! Facts are named tuples of integers and symbols, such as `core(0, 0)`,
//! `core_node(3, 1)` or `urpc_rtt(0, 1, 812)`. Questions about the topology
//! (which cores share a cache, which core aggregates a NUMA node for a
//! multicast) are written as rules in a small Datalog-style language, not
//! as Rust code:
//!
//! ```text
//! % Two distinct cores on the same NUMA node.
//! same_node(A, B) :- core_node(A, N), core_node(B, N), A != B.
//! % A node's first core is one with no lower-numbered core beside it.
//! has_lower(C) :- core_node(C, N), core_node(L, N), L < C.
//! first_core(N, C) :- core_node(C, N), not has_lower(C).
//! % Hops between cores, with their total cost.
//! path(A, B, C) :- urpc_rtt(A, B, C).
//! path(A, C, D) :- path(A, B, X), urpc_rtt(B, C, Y), D = X + Y, D < 5000.
//! ```
//!
//! A rule's body joins atoms, negates them (`not p(X)`, stratified: no
//! predicate may depend on its own negation), compares values (`<`, `<=`,
//! `==`, `!=`, `>`, `>=`) and computes them (`D = X + Y`, with `+`, `-` and
//! `*`). There are no aggregates: a minimum is what nothing beats, written
//! with a negation. Recursive rules are evaluated semi-naively to a
//! fixpoint, one stratum at a time. Literals are joined in the order they
//! are written, and an atom whose leading arguments are bound by then looks
//! up the tuples that start with them instead of scanning its relation, so
//! a rule is fast when each atom leads with bound arguments. A query is a
//! rule body whose bindings come back as answers
//! ([`KnowledgeBase::query`]); [`KnowledgeBase::facts`] lists a predicate's
//! facts, and [`Fact`] prints one as program text that loads back. Symbols
//! are written `intel` or, with Rust's string escapes, `"GenuineIntel"`.
//! Malformed text is rejected with its line, column and reason
//! ([`SyntaxError`]); the parser does not panic on any input.
//!
//! # Limits
//!
//! A knowledge base may serve a shell on a kernel with a few MiB of heap,
//! where running out of memory is fatal, so everything a query or an
//! evaluation may consume is bounded by its [`Limits`], and exceeding one is
//! an error that leaves the knowledge base as it was:
//!
//! - [`Limits::facts`]: evaluation holds at most this many facts, stored
//!   and derived; a round of evaluation stops at the first fact over it,
//!   with [`Error::TooManyFacts`]. The default, [`DEFAULT_FACT_LIMIT`]
//!   (about a million), suits a hosted process. A fact of a few integer
//!   arguments takes about 120 bytes stored and 100 derived, and evaluating
//!   holds the stored facts twice (as stored and in the model) and briefly
//!   up to about 250 bytes a fact, so a kernel should set a limit such as
//!   20 000, about 5 MiB at worst; the boot facts and topology model of a
//!   16-core machine are a few thousand.
//! - [`Limits::answers`]: a query with more distinct answers fails with
//!   [`Error::TooManyAnswers`] as soon as it finds the one over the limit,
//!   before enumerating the rest. An answer of a few variables takes about
//!   600 bytes, so the default, [`DEFAULT_ANSWER_LIMIT`] (4096, every
//!   ordered pair of cores of a 64-core machine), can take about 2.5 MiB; a
//!   kernel short of heap may want 1024.
//! - [`Limits::steps`]: a query whose join takes more steps (a literal tried
//!   on a partial binding, or a tuple examined) fails with
//!   [`Error::QueryTooExpensive`], so a join that finds nothing, such as a
//!   cross product filtered by a comparison that never holds, still ends
//!   soon. The default, [`DEFAULT_STEP_LIMIT`] (about a million, some 30 ms
//!   in an optimised build on a current x86 core), is several times what
//!   a join of three relations of a few hundred facts takes when its later
//!   atoms look up bound arguments, and well short of one that scans them
//!   all.
//!
//! A query may name only predicates that a fact or rule has mentioned: any
//! other is more likely misspelt than empty, so it is a syntax error at the
//! atom, with the known names it may have meant. Queries never change what
//! the knowledge base knows; they only fill its cache of derived facts.
//! Neither parsing nor the join recurses, so no text, however long, can
//! overflow the stack.
//!
//! For example, a kernel might make its knowledge bases with
//!
//! ```
//! use atoll_skb::{KnowledgeBase, Limits};
//!
//! let kb = KnowledgeBase::with_limits(Limits {
//!     facts: 20_000,
//!     answers: 1024,
//!     ..Limits::DEFAULT
//! });
//! # assert_eq!(kb.limits().steps, atoll_skb::DEFAULT_STEP_LIMIT);
//! ```
//!
//! # The boot facts
//!
//! The kernel fills a knowledge base at boot with these facts, which
//! [`topology::RULES`] reads. Cores are numbered by their index in the
//! MADT; memory ranges are `Base` and `End` addresses, in one convention
//! throughout.
//!
//! | Fact | Source and meaning |
//! |---|---|
//! | `core(C, Apic)` | MADT: core `C` has local APIC id `Apic` |
//! | `core_node(C, N)` | SRAT: core `C` is on NUMA node (proximity domain) `N`; every core on node 0 without an SRAT |
//! | `memory(Base, End, Kind)` | boot memory map; `Kind` is `usable`, `reserved`, `acpi_reclaimable`, `acpi_nvs`, `bad`, or `other` for a type the map does not name |
//! | `mem_node(Base, End, N)` | SRAT: an enabled memory range of node `N`; none without an SRAT |
//! | `distance(From, To, D)` | SLIT: relative distance between nodes; 10 local and 20 remote without a SLIT |
//! | `cpu(C, Vendor, Family, Model, Stepping)` | CPUID of core `C`; `Vendor` a symbol such as `"AuthenticAMD"` |
//! | `cpu_topology(C, Package, Core, Thread)` | CPUID leaf 0xB applied to core `C`'s APIC id |
//! | `cache(C, Level, Kind, Bytes, Instance)` | CPUID cache leaves; `Kind` is `data`, `instruction` or `unified`; cores with equal `Level`, `Kind` and `Instance` share the cache |
//! | `urpc_rtt(A, B, Cycles)` | median measured URPC round trip from core `A` to another core `B`, at most one per pair |
//! | `urpc_send(C, Cycles)` | cycles core `C` is busy per message it sends in a multicast, with the answer it takes in; not gathered at boot (the latency model gives it), read by `topology::fan_out` |
//! | `span(C, Base, End)` | memory of core `C`'s frame pool |
//! | `channels(C, Base, End)` | core `C`'s incoming URPC ring buffers |
//!
//! The crate is `no_std` with `alloc` and forbids `unsafe`, so the kernel
//! and the hosted build share it. It depends on `core` and `alloc` only, and
//! on no other Atoll crate; the kernel and the hosted OS depend on it.
//!
//! It is a small engine of its own because no crate on crates.io fits:
//! `datafrog` needs `std` (it is built on `Rc<RefCell<..>>`) and its rules are
//! Rust code over typed join operators, with no textual language; `crepe`
//! and `ascent` are procedural macros that compile rules at build time, so
//! they cannot answer a query typed at the shell or built at run time.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod eval;
mod syntax;
pub mod topology;
mod value;

pub use syntax::{Position, SyntaxError};
pub use value::Value;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::ops::ControlFlow;

use eval::Relations;
use syntax::{Atom, Rule};

/// Why a knowledge base operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The program or query text is malformed, or uses a predicate with a
    /// different number of arguments than before.
    Syntax(SyntaxError),
    /// A fact added from Rust has a different number of arguments than the
    /// predicate had before.
    Arity {
        /// The predicate.
        predicate: String,
        /// The number of arguments it has so far.
        expected: usize,
        /// The number the new fact has.
        found: usize,
    },
    /// Evaluation derived more than the knowledge base's limit of facts.
    /// Arithmetic in recursive rules can describe infinite relations, such
    /// as `n(Y) :- n(X), Y = X + 1.`; the limit stops those.
    TooManyFacts {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// [`KnowledgeBase::facts`] was asked for a predicate that no fact or
    /// rule has mentioned, which is more likely a misspelling than a
    /// relation that happens to be empty. (A query naming such a predicate
    /// fails with an [`Error::Syntax`] at the atom that names it.)
    UnknownPredicate {
        /// The predicate asked for.
        predicate: String,
        /// Every predicate the knowledge base knows, in ascending order.
        known: Vec<String>,
    },
    /// A query has more than the knowledge base's limit of answers
    /// ([`Limits::answers`]); the search stopped at the first answer over
    /// the limit.
    TooManyAnswers {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A query's join took more than the knowledge base's limit of steps
    /// ([`Limits::steps`]) without finishing, whatever it had found so far.
    QueryTooExpensive {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A helper that answers from a set of rules, such as
    /// [`topology::multicast_groups`], was called on a knowledge base into
    /// which they were not loaded.
    MissingRules {
        /// The rules to load, such as `topology::RULES`.
        rules: &'static str,
        /// A predicate they define that no rule derives.
        predicate: &'static str,
    },
}

impl From<SyntaxError> for Error {
    fn from(error: SyntaxError) -> Self {
        Error::Syntax(error)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Syntax(error) => write!(f, "{error}"),
            Error::Arity {
                predicate,
                expected,
                found,
            } => write!(
                f,
                "predicate `{predicate}` has {expected} arguments, this fact has {found}"
            ),
            Error::TooManyFacts { limit } => {
                write!(f, "evaluation derived more than {limit} facts")
            }
            Error::UnknownPredicate { predicate, known } => {
                write!(f, "no fact or rule mentions `{predicate}`")?;
                suggest(f, predicate, known.iter().map(String::as_str))
            }
            Error::TooManyAnswers { limit } => {
                write!(f, "the query has more than {limit} answers; narrow it")
            }
            Error::QueryTooExpensive { limit } => write!(
                f,
                "the query took more than {limit} steps; narrow it, or order its \
                 atoms so that each leads with arguments bound before it"
            ),
            Error::MissingRules { rules, predicate } => write!(
                f,
                "no rule derives `{predicate}`: load `{rules}` into the knowledge base first"
            ),
        }
    }
}

/// How many known predicates an unknown predicate's error names, when none
/// is near enough to be the one meant.
const SUGGESTIONS: usize = 5;

/// Writes what to try instead of the unknown `predicate`: the one `known`
/// name it is a likely misspelling of, as "; did you mean `core_node`?", or
/// else the nearest few known names.
fn suggest<'a>(
    out: &mut dyn fmt::Write,
    predicate: &str,
    known: impl Iterator<Item = &'a str>,
) -> fmt::Result {
    let mut nearest: Vec<(usize, &str)> = known
        .map(|name| (edit_distance(predicate, name), name))
        .collect();
    nearest.sort();
    // A misspelling is a typo or two away; a short name, one.
    let near = (predicate.chars().count() / 3).clamp(1, 2);
    match nearest.as_slice() {
        [] => write!(out, "; the knowledge base is empty"),
        [(distance, name), ..]
            if *distance <= near && nearest.get(1).is_none_or(|next| next.0 > *distance) =>
        {
            write!(out, "; did you mean `{name}`?")
        }
        _ => {
            write!(out, "; known predicates include")?;
            for (index, (_, name)) in nearest.iter().take(SUGGESTIONS).enumerate() {
                let separator = if index == 0 { " " } else { ", " };
                write!(out, "{separator}`{name}`")?;
            }
            if nearest.len() > SUGGESTIONS {
                write!(out, " and {} more", nearest.len() - SUGGESTIONS)?;
            }
            Ok(())
        }
    }
}

/// The Levenshtein distance between two names, in characters.
fn edit_distance(from: &str, to: &str) -> usize {
    let to: Vec<char> = to.chars().collect();
    // The distances from the prefix of `from` read so far to each prefix of
    // `to`, one row of the usual table at a time.
    let mut row: Vec<usize> = (0..=to.len()).collect();
    for (i, from_char) in from.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &to_char) in to.iter().enumerate() {
            let above = row[j + 1];
            let substitute = diagonal + usize::from(from_char != to_char);
            row[j + 1] = substitute.min(above + 1).min(row[j] + 1);
            diagonal = above;
        }
    }
    row[to.len()]
}

/// A fact, shown as program text: `core_node(3, 1)`, or
/// `cpu(0, "AuthenticAMD", 25, 17, 1)`.
///
/// Followed by a period, the text loads back as the same fact, provided the
/// predicate is a name in the language (one starting with a lower-case
/// letter, as every predicate loaded from text is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fact<'a> {
    /// The predicate's name.
    pub predicate: &'a str,
    /// Its arguments.
    pub values: &'a [Value],
}

impl fmt::Display for Fact<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.predicate)?;
        for (index, value) in self.values.iter().enumerate() {
            if index > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{value}")?;
        }
        write!(f, ")")
    }
}

/// One answer to a query: a value for each named variable in it.
/// The anonymous variable `_` gets none.
pub type Answer = BTreeMap<String, Value>;

/// The limit on stored and derived facts that [`KnowledgeBase::new`] uses.
///
/// Generous, for hosted use; a kernel with a few MiB of heap should use a
/// far lower one (see [the crate documentation](crate#limits)).
pub const DEFAULT_FACT_LIMIT: usize = 1 << 20;

/// The limit on a query's answers that [`KnowledgeBase::new`] uses: enough
/// for every ordered pair of cores of a 64-core machine.
pub const DEFAULT_ANSWER_LIMIT: usize = 4096;

/// The limit on a query's steps that [`KnowledgeBase::new`] uses: several
/// times what a join of three relations of a few hundred facts each takes
/// when its later atoms look up bound arguments, and a small part of one
/// that scans them.
pub const DEFAULT_STEP_LIMIT: usize = 1 << 20;

/// What a knowledge base may hold and a query may cost; see [the crate
/// documentation](crate#limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most facts, stored and derived, that evaluation may hold before
    /// it fails with [`Error::TooManyFacts`].
    pub facts: usize,
    /// The most distinct answers a query may have before it fails with
    /// [`Error::TooManyAnswers`].
    pub answers: usize,
    /// The most steps a query's join may take before it fails with
    /// [`Error::QueryTooExpensive`]. A step is one literal tried on one
    /// partial binding, or one tuple examined for an atom or a negated one.
    pub steps: usize,
}

impl Limits {
    /// [`DEFAULT_FACT_LIMIT`], [`DEFAULT_ANSWER_LIMIT`] and
    /// [`DEFAULT_STEP_LIMIT`].
    pub const DEFAULT: Limits = Limits {
        facts: DEFAULT_FACT_LIMIT,
        answers: DEFAULT_ANSWER_LIMIT,
        steps: DEFAULT_STEP_LIMIT,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Facts, rules, and the answers to queries over them.
#[derive(Clone, Debug)]
pub struct KnowledgeBase {
    /// How many arguments each predicate loaded so far takes, in facts, rule
    /// heads and rule bodies alike, so a misspelt arity is caught at load.
    /// Queries only read it.
    arities: BTreeMap<String, usize>,
    facts: Relations,
    /// The rules, grouped so that each group only negates predicates the
    /// groups before it complete.
    strata: Vec<Vec<Rule>>,
    limits: Limits,
    /// The predicates the last evaluation derived (with every predicate
    /// they depend on), and every stored fact with what it derived for
    /// them; dropped when a fact or a rule is added.
    model: Option<(BTreeSet<String>, Relations)>,
}

impl Default for KnowledgeBase {
    fn default() -> Self {
        Self::new()
    }
}

impl KnowledgeBase {
    /// An empty knowledge base with the default [`Limits`].
    pub fn new() -> Self {
        Self::with_limits(Limits::DEFAULT)
    }

    /// An empty knowledge base whose evaluation fails with
    /// [`Error::TooManyFacts`] once it holds more than `limit` facts, with
    /// the default limits on queries.
    pub fn with_fact_limit(limit: usize) -> Self {
        Self::with_limits(Limits {
            facts: limit,
            ..Limits::DEFAULT
        })
    }

    /// An empty knowledge base with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        KnowledgeBase {
            arities: BTreeMap::new(),
            facts: Relations::new(),
            strata: Vec::new(),
            limits,
            model: None,
        }
    }

    /// The knowledge base's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Changes the knowledge base's limits; the next query or listing
    /// evaluates the rules again if the fact limit changed.
    pub fn set_limits(&mut self, limits: Limits) {
        if limits.facts != self.limits.facts {
            self.model = None;
        }
        self.limits = limits;
    }

    /// Adds the facts and rules of `program`, each ended by a period, such
    /// as `core_node(0, 0).` or `same_node(A, B) :- core_node(A, N),
    /// core_node(B, N), A != B.`
    ///
    /// Either all of the program is added or, on error, none of it.
    pub fn load(&mut self, program: &str) -> Result<(), Error> {
        let rules = syntax::parse_program(program)?;
        let mut arities = self.arities.clone();
        for rule in &rules {
            check_arity(&mut arities, &rule.head)?;
            for atom in rule.body.atoms() {
                check_arity(&mut arities, atom)?;
            }
        }
        let mut facts = Vec::new();
        let mut all_rules = self.strata.concat();
        let mut strata = self.strata.clone();
        for rule in rules {
            match rule.ground_head() {
                Some(fact) if rule.body.literals.is_empty() => {
                    facts.push((rule.head.predicate, fact))
                }
                _ => {
                    let position = rule.head.position;
                    let predicate = rule.head.predicate.clone();
                    all_rules.push(rule);
                    // Checking after each rule finds the one that closes a
                    // cycle, so the error points at it.
                    strata = eval::stratify(&all_rules).ok_or_else(|| SyntaxError {
                        position,
                        reason: alloc::format!(
                            "this rule makes `{predicate}` depend on its own negation"
                        ),
                    })?;
                }
            }
        }
        self.arities = arities;
        self.strata = strata;
        for (predicate, fact) in facts {
            self.facts.entry(predicate).or_default().insert(fact);
        }
        self.model = None;
        Ok(())
    }

    /// Adds one fact, for facts gathered by Rust code rather than written as
    /// text. `predicate` need not be a valid name in the language, but only
    /// one that is can be queried.
    pub fn add_fact(&mut self, predicate: &str, values: Vec<Value>) -> Result<(), Error> {
        let expected = *self.arities.entry(predicate.into()).or_insert(values.len());
        if expected != values.len() {
            return Err(Error::Arity {
                predicate: predicate.into(),
                expected,
                found: values.len(),
            });
        }
        // A fact already held changes nothing, so the model stays.
        if self
            .facts
            .entry(predicate.into())
            .or_default()
            .insert(values)
        {
            self.model = None;
        }
        Ok(())
    }

    /// Answers a query: a rule body such as `same_node(0, X), X < 4`,
    /// optionally preceded by `?-` and followed by a period. Returns each
    /// distinct binding of its named variables that makes the body hold, in
    /// ascending order; a query without variables that holds has one empty
    /// answer.
    ///
    /// Each atom, negated or not, must name a predicate that a fact or rule
    /// has mentioned, with the same number of arguments; otherwise the query
    /// fails with an [`Error::Syntax`] at the atom, which suggests the known
    /// predicates it may have meant. A query with more than
    /// [`Limits::answers`] answers fails with [`Error::TooManyAnswers`], and
    /// one whose join takes more than [`Limits::steps`] steps with
    /// [`Error::QueryTooExpensive`]; either stops the search at once.
    ///
    /// A query changes nothing in the knowledge base but its cache of
    /// derived facts, which it fills if a fact or rule was added since the
    /// last evaluation (which may fail with [`Error::TooManyFacts`]).
    pub fn query(&mut self, body: &str) -> Result<Vec<Answer>, Error> {
        let query = syntax::parse_query(body)?;
        for atom in query.atoms() {
            match self.arities.get(&atom.predicate) {
                Some(&expected) if expected != atom.terms.len() => {
                    return Err(arity_error(atom, expected).into());
                }
                Some(_) => {}
                None => return Err(self.unknown_in_query(atom).into()),
            }
        }
        let Limits {
            answers: limit,
            steps,
            ..
        } = self.limits;
        let model = self.model(query.atoms().map(|atom| atom.predicate.as_str()))?;
        let mut answers = BTreeSet::new();
        let outcome = eval::for_each_match(&query, model, None, steps, &mut |slots| {
            let answer: Answer = query
                .variables
                .iter()
                .zip(slots)
                .filter(|(name, _)| !syntax::is_anonymous(name))
                .filter_map(|(name, value)| Some((name.clone(), value.clone()?)))
                .collect();
            answers.insert(answer);
            if answers.len() > limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        match outcome {
            ControlFlow::Continue(()) => Ok(answers.into_iter().collect()),
            ControlFlow::Break(eval::Halt::Stopped) => Err(Error::TooManyAnswers { limit }),
            ControlFlow::Break(eval::Halt::OutOfSteps) => {
                Err(Error::QueryTooExpensive { limit: steps })
            }
        }
    }

    /// The error for a query atom whose predicate no fact or rule mentions.
    fn unknown_in_query(&self, atom: &Atom) -> SyntaxError {
        let mut reason = alloc::format!("unknown predicate `{}`", atom.predicate);
        // Writing to a string cannot fail.
        let _ = suggest(
            &mut reason,
            &atom.predicate,
            self.arities.keys().map(String::as_str),
        );
        SyntaxError {
            position: atom.position,
            reason,
        }
    }

    /// The facts of `predicate` in the evaluated model, stored and derived,
    /// in ascending order; with `None`, every stored fact (none derived),
    /// ordered by predicate and then by arguments.
    ///
    /// Fails with [`Error::UnknownPredicate`] for a predicate that no fact
    /// or rule has mentioned (queries make none known); one that is known
    /// but holds for nothing has no facts. Each fact prints as program text with [`Fact`].
    pub fn facts(&mut self, predicate: Option<&str>) -> Result<Vec<(String, Vec<Value>)>, Error> {
        let Some(predicate) = predicate else {
            return Ok(flatten(self.facts.iter()));
        };
        self.known(predicate)?;
        Ok(flatten(
            self.model([predicate])?
                .get_key_value(predicate)
                .into_iter(),
        ))
    }

    /// Derives `predicates` (and what they depend on), so that
    /// [`Self::relation`] can read them; fails as a query of them would.
    pub fn derive(&mut self, predicates: &[&str]) -> Result<(), Error> {
        for &predicate in predicates {
            self.known(predicate)?;
        }
        self.model(predicates.iter().copied()).map(drop)
    }

    /// Fails with [`Error::UnknownPredicate`] unless a fact or rule has
    /// mentioned `predicate`.
    fn known(&self, predicate: &str) -> Result<(), Error> {
        match self.arities.contains_key(predicate) {
            true => Ok(()),
            false => Err(Error::UnknownPredicate {
                predicate: predicate.into(),
                known: self.arities.keys().cloned().collect(),
            }),
        }
    }

    /// Every fact of `predicate`, stored and derived, as [`Self::derive`]
    /// last derived it: in ascending order, without copying them (a helper
    /// that reads a whole relation, such as every root's tree, would
    /// otherwise build an answer per fact). Empty if it was not derived
    /// since a fact or rule was last added.
    pub fn relation(&self, predicate: &str) -> impl Iterator<Item = &[Value]> + '_ {
        self.model
            .as_ref()
            .filter(|(derived, _)| derived.contains(predicate))
            .and_then(|(_, model)| model.get(predicate))
            .into_iter()
            .flatten()
            .map(Vec::as_slice)
    }

    /// Whether some rule derives `predicate`, for helpers that need their
    /// rules loaded to give meaningful answers.
    pub(crate) fn derives(&self, predicate: &str) -> bool {
        self.strata
            .iter()
            .flatten()
            .any(|rule| rule.head.predicate == predicate)
    }

    /// Every stored fact, and every fact the rules derive for `wanted` and
    /// what it depends on; evaluated again if a fact or a rule was added
    /// since, or if `wanted` needs predicates the last evaluation left out.
    ///
    /// Only the rules a question needs run: a predicate no question has
    /// asked about, nor any it depends on, is never derived. So a helper
    /// relation that grows with the square of the cores (`same_node` on a
    /// machine of one node) costs memory only once it is asked for, and
    /// the fact limit applies to what the question needs.
    fn model<'a>(
        &mut self,
        wanted: impl IntoIterator<Item = &'a str>,
    ) -> Result<&Relations, Error> {
        let mut needed: BTreeSet<String> = wanted.into_iter().map(String::from).collect();
        // Close over the bodies of the rules that derive what is needed.
        loop {
            let more: Vec<String> = self
                .strata
                .iter()
                .flatten()
                .filter(|rule| needed.contains(&rule.head.predicate))
                .flat_map(|rule| rule.body.atoms().map(|atom| atom.predicate.clone()))
                .filter(|predicate| !needed.contains(predicate))
                .collect();
            if more.is_empty() {
                break;
            }
            needed.extend(more);
        }
        let covered = match &self.model {
            Some((covered, _)) if needed.is_subset(covered) => true,
            Some((covered, _)) => {
                needed.extend(covered.iter().cloned());
                false
            }
            None => false,
        };
        if !covered {
            let strata: Vec<Vec<Rule>> = self
                .strata
                .iter()
                .map(|rules| {
                    rules
                        .iter()
                        .filter(|rule| needed.contains(&rule.head.predicate))
                        .cloned()
                        .collect()
                })
                .collect();
            let limit = self.limits.facts;
            let model = eval::evaluate(&self.facts, &strata, limit)
                .map_err(|eval::TooManyFacts| Error::TooManyFacts { limit })?;
            self.model = Some((needed, model));
        }
        Ok(&self.model.as_ref().expect("evaluated above").1)
    }
}

/// Relations' facts as predicate and values.
fn flatten<'a>(
    relations: impl Iterator<Item = (&'a String, &'a BTreeSet<Vec<Value>>)>,
) -> Vec<(String, Vec<Value>)> {
    relations
        .flat_map(|(predicate, tuples)| {
            tuples
                .iter()
                .map(move |values| (predicate.clone(), values.clone()))
        })
        .collect()
}

fn check_arity(arities: &mut BTreeMap<String, usize>, atom: &Atom) -> Result<(), SyntaxError> {
    let expected = *arities
        .entry(atom.predicate.clone())
        .or_insert(atom.terms.len());
    if expected == atom.terms.len() {
        Ok(())
    } else {
        Err(arity_error(atom, expected))
    }
}

fn arity_error(atom: &Atom, expected: usize) -> SyntaxError {
    SyntaxError {
        position: atom.position,
        reason: alloc::format!(
            "predicate `{}` has {expected} arguments elsewhere, {} here",
            atom.predicate,
            atom.terms.len()
        ),
    }
}
