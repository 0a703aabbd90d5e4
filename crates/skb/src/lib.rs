//! The system knowledge base (SKB): what Atoll knows about the machine it
//! runs on, and the rules it asks questions with.
//!
//! Facts are named tuples of integers and symbols, such as `core(0, 0)`,
//! `core_node(3, 1)` or `latency(0, 1, 812)`. Questions about the topology
//! (which core aggregates a NUMA node, which cores can reach which) are
//! written as rules in a small Datalog-style language, not as Rust code:
//!
//! ```text
//! % Two distinct cores on the same NUMA node.
//! same_node(A, B) :- core_node(A, N), core_node(B, N), A != B.
//! % A node's aggregator is its lowest-numbered core.
//! has_lower(C) :- core_node(C, N), core_node(L, N), L < C.
//! aggregator(N, C) :- core_node(C, N), not has_lower(C).
//! % Hops through a latency matrix, with their total cost.
//! path(A, B, C) :- latency(A, B, C).
//! path(A, C, D) :- path(A, B, X), latency(B, C, Y), D = X + Y, D < 5000.
//! ```
//!
//! A rule's body joins atoms, negates them (`not p(X)`, stratified: no
//! predicate may depend on its own negation), compares values (`<`, `<=`,
//! `==`, `!=`, `>`, `>=`) and computes them (`D = X + Y`, with `+`, `-` and
//! `*`). Recursive rules are evaluated semi-naively to a fixpoint, one
//! stratum at a time. A query is a rule body whose bindings come back as
//! answers ([`KnowledgeBase::query`]). Malformed text is rejected with its
//! line, column and reason ([`SyntaxError`]); the parser does not panic on
//! any input.
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

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use eval::Relations;
use syntax::{Atom, Rule};

/// One argument of a fact: an integer or a symbol.
///
/// Integers order before symbols, so that a relation's tuples have one
/// total order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    /// A signed integer: a core number, a latency, an address.
    Int(i64),
    /// A name, written `intel` or `"GenuineIntel"` in program text.
    Sym(String),
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Value::Int(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::Sym(value.into())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(value) => write!(f, "{value}"),
            Value::Sym(name) => write!(f, "{name:?}"),
        }
    }
}

/// A place in program or query text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Bytes from the start of the text; at most the text's length.
    pub offset: usize,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why some program or query text was rejected, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the problem is; the end of the text when it ended too early.
    pub position: Position,
    /// What is wrong, in words.
    pub reason: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.position, self.reason)
    }
}

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
        }
    }
}

/// One answer to a query: a value for each named variable in it.
/// The anonymous variable `_` gets none.
pub type Answer = BTreeMap<String, Value>;

/// The limit on stored and derived facts that [`KnowledgeBase::new`] uses.
pub const DEFAULT_FACT_LIMIT: usize = 1 << 20;

/// Facts, rules, and the answers to queries over them.
#[derive(Clone, Debug)]
pub struct KnowledgeBase {
    /// How many arguments each predicate seen so far takes, in facts, rule
    /// heads and rule bodies alike, so a misspelt arity is caught at load.
    arities: BTreeMap<String, usize>,
    facts: Relations,
    /// The rules, grouped so that each group only negates predicates the
    /// groups before it complete.
    strata: Vec<Vec<Rule>>,
    fact_limit: usize,
    /// Every fact, stored or derived, from the last evaluation; dropped when
    /// a fact or a rule is added.
    model: Option<Relations>,
}

impl Default for KnowledgeBase {
    fn default() -> Self {
        Self::new()
    }
}

impl KnowledgeBase {
    /// An empty knowledge base that derives at most [`DEFAULT_FACT_LIMIT`]
    /// facts.
    pub fn new() -> Self {
        Self::with_fact_limit(DEFAULT_FACT_LIMIT)
    }

    /// An empty knowledge base whose evaluation fails with
    /// [`Error::TooManyFacts`] once it holds more than `limit` facts.
    pub fn with_fact_limit(limit: usize) -> Self {
        KnowledgeBase {
            arities: BTreeMap::new(),
            facts: Relations::new(),
            strata: Vec::new(),
            fact_limit: limit,
            model: None,
        }
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
        self.facts
            .entry(predicate.into())
            .or_default()
            .insert(values);
        self.model = None;
        Ok(())
    }

    /// Answers a query: a rule body such as `same_node(0, X), X < 4`,
    /// optionally preceded by `?-` and followed by a period. Returns each
    /// distinct binding of its named variables that makes the body hold, in
    /// ascending order; a query without variables that holds has one empty
    /// answer.
    pub fn query(&mut self, body: &str) -> Result<Vec<Answer>, Error> {
        let query = syntax::parse_query(body)?;
        for atom in query.atoms() {
            if let Some(&expected) = self.arities.get(&atom.predicate)
                && expected != atom.terms.len()
            {
                return Err(arity_error(atom, expected).into());
            }
        }
        let model = self.model()?;
        let mut answers = BTreeSet::new();
        eval::for_each_match(&query, model, None, &mut |slots| {
            let answer: Answer = query
                .variables
                .iter()
                .zip(slots)
                .filter(|(name, _)| !syntax::is_anonymous(name))
                .filter_map(|(name, value)| Some((name.clone(), value.clone()?)))
                .collect();
            answers.insert(answer);
        });
        Ok(answers.into_iter().collect())
    }

    /// Every stored and derived fact, evaluating the rules if a fact or a
    /// rule was added since they last were.
    fn model(&mut self) -> Result<&Relations, Error> {
        if self.model.is_none() {
            let model = eval::evaluate(&self.facts, &self.strata, self.fact_limit).map_err(
                |eval::TooManyFacts| Error::TooManyFacts {
                    limit: self.fact_limit,
                },
            )?;
            self.model = Some(model);
        }
        Ok(self.model.get_or_insert_default())
    }
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
