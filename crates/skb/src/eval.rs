//! Evaluation: joining a body's literals against relations, and running
//! rules semi-naively to a fixpoint.
//!
//! Relations are sorted sets of tuples, so they need no separate index: an
//! atom whose leading arguments are bound when it is reached, such as
//! `urpc_rtt(R, B, L)` after `R` and `B` are, visits only the tuples that
//! start with those values, found by a range lookup. Later arguments are
//! checked tuple by tuple. Rules therefore run fastest when each atom leads
//! with arguments that earlier literals bind; the engine keeps the written
//! order, so that a rule's cost can be read off its text.

use alloc::collections::{BTreeMap, BTreeSet, btree_set};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::ControlFlow;

use crate::syntax::{Body, Comparison, Expr, Literal, Rule, Term};
use crate::value::Value;

/// Each predicate's tuples.
pub(crate) type Relations = BTreeMap<String, BTreeSet<Vec<Value>>>;

/// Evaluation would hold more facts than its limit allows.
#[derive(Debug)]
pub(crate) struct TooManyFacts;

/// Groups rules into strata, lowest first, so that a rule negates only
/// predicates that earlier strata complete. `None` when a predicate depends
/// on its own negation, which has no single meaning.
pub(crate) fn stratify(rules: &[Rule]) -> Option<Vec<Vec<Rule>>> {
    let mut levels: BTreeMap<&str, usize> = BTreeMap::new();
    let level = |levels: &BTreeMap<&str, usize>, predicate: &str| {
        levels.get(predicate).copied().unwrap_or(0)
    };
    loop {
        let mut changed = false;
        for rule in rules {
            let required = rule
                .body
                .literals
                .iter()
                .map(|literal| match literal {
                    Literal::Atom(atom) => level(&levels, &atom.predicate),
                    Literal::Negated(atom) => level(&levels, &atom.predicate) + 1,
                    _ => 0,
                })
                .max()
                .unwrap_or(0);
            if required > level(&levels, &rule.head.predicate) {
                // A stratifiable program needs at most one level per rule;
                // levels only climb past that around a negation cycle.
                if required > rules.len() {
                    return None;
                }
                levels.insert(&rule.head.predicate, required);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let count = levels.values().max().map_or(1, |top| top + 1);
    let mut strata = vec![Vec::new(); count];
    for rule in rules {
        strata[level(&levels, &rule.head.predicate)].push(rule.clone());
    }
    Some(strata)
}

/// Every fact that `facts` and the stratified rules imply, each stratum run
/// to its fixpoint before the next, which may negate what it derived.
pub(crate) fn evaluate(
    facts: &Relations,
    strata: &[Vec<Rule>],
    limit: usize,
) -> Result<Relations, TooManyFacts> {
    let mut all = facts.clone();
    if all.values().map(BTreeSet::len).sum::<usize>() > limit {
        return Err(TooManyFacts);
    }
    for rules in strata {
        all = evaluate_stratum(all, rules, limit)?;
    }
    Ok(all)
}

/// Runs one stratum's rules to their fixpoint over `all`.
///
/// Semi-naive: each round joins only derivations that use at least one fact
/// new in the round before (the delta), since any derivation from older
/// facts alone was already made. A rule with several body atoms is joined
/// once per atom, with that atom over the delta and the others over all
/// facts.
fn evaluate_stratum(
    mut all: Relations,
    rules: &[Rule],
    limit: usize,
) -> Result<Relations, TooManyFacts> {
    let count: usize = all.values().map(BTreeSet::len).sum();
    // How many more facts the limit allows: a round stops as soon as it
    // derives one more, so no round holds more than the limit in memory.
    let mut room = limit.checked_sub(count).ok_or(TooManyFacts)?;
    // Every fact is new to the first round, so the delta would be all of
    // them: one join of each rule over everything covers each of its atoms'
    // turns at once. It also runs rules without positive atoms, such as
    // `two(X) :- X = 1 + 1.`, which no later delta triggers.
    let mut new = Relations::new();
    for rule in rules {
        derive(rule, &all, None, &mut new, &mut room)?;
    }
    loop {
        // `derive` adds only facts that `all` lacks, each set non-empty.
        if new.is_empty() {
            return Ok(all);
        }
        for (predicate, tuples) in &new {
            all.entry(predicate.clone())
                .or_default()
                .extend(tuples.iter().cloned());
        }
        let delta = core::mem::take(&mut new);
        for rule in rules {
            for (index, literal) in rule.body.literals.iter().enumerate() {
                if let Literal::Atom(atom) = literal
                    && delta.contains_key(&atom.predicate)
                {
                    derive(rule, &all, Some((index, &delta)), &mut new, &mut room)?;
                }
            }
        }
    }
}

/// Adds to `into` the head of `rule` for each match of its body that `all`
/// does not hold yet, using up one of `room` for each fact that is new to
/// `into`; fails when `room` runs out.
fn derive(
    rule: &Rule,
    all: &Relations,
    delta: Option<(usize, &Relations)>,
    into: &mut Relations,
    room: &mut usize,
) -> Result<(), TooManyFacts> {
    let known = all.get(&rule.head.predicate);
    let outcome = for_each_match(&rule.body, all, delta, usize::MAX, &mut |slots| {
        let tuple: Option<Vec<Value>> = rule
            .head
            .terms
            .iter()
            .map(|term| resolve(term, slots))
            .collect();
        // The parser checks that the body binds every head variable, so the
        // tuple is always complete.
        let Some(tuple) = tuple else {
            return ControlFlow::Continue(());
        };
        if known.is_some_and(|known| known.contains(&tuple)) {
            return ControlFlow::Continue(());
        }
        // Looking up before inserting spares a copy of the name for each
        // match after the first.
        let added = match into.get_mut(&rule.head.predicate) {
            Some(tuples) if tuples.contains(&tuple) => false,
            Some(tuples) if *room > 0 => tuples.insert(tuple),
            None if *room > 0 => {
                into.insert(rule.head.predicate.clone(), BTreeSet::from([tuple]));
                true
            }
            _ => return ControlFlow::Break(()),
        };
        if added {
            *room -= 1;
        }
        ControlFlow::Continue(())
    });
    match outcome {
        ControlFlow::Continue(()) => Ok(()),
        // Evaluation has no step limit, so only the room runs out.
        ControlFlow::Break(_) => Err(TooManyFacts),
    }
}

/// Why a search stopped before it tried every way the body holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Halt {
    /// The callback asked it to.
    Stopped,
    /// It took its limit of steps.
    OutOfSteps,
}

/// Calls `found` with the variables' values for each way the body holds,
/// with body literal `delta.0` (an atom) ranging over `delta.1` and the other
/// atoms over `all`, until `found` breaks or the search has taken `steps`
/// steps.
///
/// A step is one literal tried on one partial binding, or one tuple an atom
/// or negated atom examines, so the steps bound the time a search takes
/// whether or not it finds anything. The search keeps its place in a stack
/// of its own, not in recursive calls, so a body of any length cannot
/// overflow the call stack; it holds one frame per literal.
pub(crate) fn for_each_match(
    body: &Body,
    all: &Relations,
    delta: Option<(usize, &Relations)>,
    steps: usize,
    found: &mut dyn FnMut(&[Option<Value>]) -> ControlFlow<()>,
) -> ControlFlow<Halt> {
    let literals = body.literals.as_slice();
    let mut slots = vec![None; body.variables.len()];
    let mut steps_left = steps;
    let mut step = || {
        if steps_left == 0 {
            return ControlFlow::Break(Halt::OutOfSteps);
        }
        steps_left -= 1;
        ControlFlow::Continue(())
    };
    // The frames of the literals matched so far, one per literal before
    // `frames.len()`; the next to try is `literals[frames.len()]`.
    let mut frames: Vec<Frame<'_>> = Vec::new();
    // Whether to try the next literal on the current bindings (true) or to
    // find the next way the last frame's literal holds (false).
    let mut descend = true;
    loop {
        if descend {
            step()?;
            let index = frames.len();
            match literals.get(index) {
                None => {
                    if found(&slots).is_break() {
                        return ControlFlow::Break(Halt::Stopped);
                    }
                    descend = false;
                }
                Some(Literal::Atom(atom)) => {
                    let relations = match delta {
                        Some((delta_index, delta)) if delta_index == index => delta,
                        _ => all,
                    };
                    match relations.get(&atom.predicate) {
                        Some(tuples) => frames.push(Frame::Scan {
                            terms: &atom.terms,
                            run: matching(tuples, &atom.terms, &slots),
                            newly_bound: Vec::with_capacity(atom.terms.len()),
                        }),
                        None => descend = false,
                    }
                }
                Some(Literal::Negated(atom)) => {
                    let mut matched = false;
                    if let Some(tuples) = all.get(&atom.predicate) {
                        let mut newly_bound = Vec::with_capacity(atom.terms.len());
                        for tuple in matching(tuples, &atom.terms, &slots) {
                            step()?;
                            matched = unify(&atom.terms, tuple, &mut slots, &mut newly_bound);
                            // Only `_` is free here; unbind it for the next
                            // tuple.
                            for slot in newly_bound.drain(..) {
                                slots[slot] = None;
                            }
                            if matched {
                                break;
                            }
                        }
                    }
                    if matched {
                        descend = false;
                    } else {
                        frames.push(Frame::Once {
                            tried: false,
                            bound: None,
                        });
                    }
                }
                Some(Literal::Compare {
                    left,
                    comparison,
                    right,
                }) => {
                    let holds = match (compute(left, &slots), compute(right, &slots)) {
                        (Some(left), Some(right)) => compare(&left, *comparison, &right),
                        _ => false,
                    };
                    if holds {
                        frames.push(Frame::Once {
                            tried: false,
                            bound: None,
                        });
                    } else {
                        descend = false;
                    }
                }
                Some(Literal::Assign { variable, value }) => match compute(value, &slots) {
                    Some(value) => {
                        slots[*variable] = Some(value);
                        frames.push(Frame::Once {
                            tried: false,
                            bound: Some(*variable),
                        });
                    }
                    None => descend = false,
                },
            }
            if !descend {
                continue;
            }
        }
        // The next way the last frame's literal holds, if there is one.
        let Some(frame) = frames.last_mut() else {
            return ControlFlow::Continue(());
        };
        match frame {
            Frame::Scan {
                terms,
                run,
                newly_bound,
            } => {
                // Unbind what the tuple before bound, then try the next ones.
                for slot in newly_bound.drain(..) {
                    slots[slot] = None;
                }
                descend = false;
                for tuple in run.by_ref() {
                    step()?;
                    if unify(terms, tuple, &mut slots, newly_bound) {
                        descend = true;
                        break;
                    }
                    for slot in newly_bound.drain(..) {
                        slots[slot] = None;
                    }
                }
            }
            Frame::Once { tried, bound } => {
                descend = !*tried;
                *tried = true;
                if !descend && let Some(slot) = bound {
                    slots[*slot] = None;
                }
            }
        }
        if !descend {
            frames.pop();
        }
    }
}

/// Where the search stands on one literal that held.
enum Frame<'a> {
    /// A positive atom, going through the tuples that may match it.
    Scan {
        terms: &'a [Term],
        run: Run<'a>,
        /// The variables the current tuple bound, to unbind before the next.
        newly_bound: Vec<usize>,
    },
    /// A literal that holds at most once: a negated atom, a comparison or an
    /// assignment.
    Once {
        /// Whether the search has gone past it once already.
        tried: bool,
        /// The variable it assigned, to unbind when the search backs out.
        bound: Option<usize>,
    },
}

/// The tuples of a relation that start with some values, in order.
pub(crate) struct Run<'a> {
    tuples: btree_set::Range<'a, Vec<Value>>,
    prefix: Vec<Value>,
}

impl<'a> Iterator for Run<'a> {
    type Item = &'a Vec<Value>;

    fn next(&mut self) -> Option<Self::Item> {
        let tuple = self.tuples.next()?;
        if tuple.starts_with(&self.prefix) {
            Some(tuple)
        } else {
            // Nothing after it starts with the prefix either.
            self.tuples = btree_set::Range::default();
            None
        }
    }
}

/// The tuples that may match `terms`: those that start with the values of
/// its leading bound terms, or all of them when its first term is free.
fn matching<'a>(
    tuples: &'a BTreeSet<Vec<Value>>,
    terms: &[Term],
    slots: &[Option<Value>],
) -> Run<'a> {
    let prefix: Vec<Value> = terms
        .iter()
        .map_while(|term| resolve(term, slots))
        .collect();
    // A tuple sorts after every proper prefix of it, so the tuples that start
    // with `prefix` follow it in one run.
    let tuples = if prefix.is_empty() {
        tuples.range::<Vec<Value>, _>(..)
    } else {
        tuples.range::<Vec<Value>, _>(&prefix..)
    };
    Run { tuples, prefix }
}

/// Matches an atom's terms against a tuple, binding free variables and
/// recording them in `newly_bound`. A variable that appears twice, as in
/// `edge(X, X)`, is bound by its first use and checked by its second.
fn unify(
    terms: &[Term],
    tuple: &[Value],
    slots: &mut [Option<Value>],
    newly_bound: &mut Vec<usize>,
) -> bool {
    if terms.len() != tuple.len() {
        return false;
    }
    for (term, value) in terms.iter().zip(tuple) {
        match term {
            Term::Const(constant) if constant != value => return false,
            Term::Const(_) => {}
            Term::Var(slot) => match &slots[*slot] {
                Some(bound) if bound != value => return false,
                Some(_) => {}
                None => {
                    slots[*slot] = Some(value.clone());
                    newly_bound.push(*slot);
                }
            },
        }
    }
    true
}

fn resolve(term: &Term, slots: &[Option<Value>]) -> Option<Value> {
    match term {
        Term::Const(value) => Some(value.clone()),
        Term::Var(slot) => slots[*slot].clone(),
    }
}

/// An expression's value, or `None` when it cannot be computed: on overflow,
/// or arithmetic on a symbol. A literal that cannot be computed does not
/// hold. A lone term keeps its value, so `V == intel` compares symbols.
fn compute(expr: &Expr, slots: &[Option<Value>]) -> Option<Value> {
    if let [summand] = expr.summands.as_slice()
        && let ([term], false) = (summand.factors.as_slice(), summand.negated)
    {
        return resolve(term, slots);
    }
    let mut sum: i64 = 0;
    for summand in &expr.summands {
        let mut product: i64 = 1;
        for factor in &summand.factors {
            let Value::Int(factor) = resolve(factor, slots)? else {
                return None;
            };
            product = product.checked_mul(factor)?;
        }
        sum = if summand.negated {
            sum.checked_sub(product)?
        } else {
            sum.checked_add(product)?
        };
    }
    Some(Value::Int(sum))
}

/// Equality holds between any two values; an ordering only between two
/// integers or two symbols.
fn compare(left: &Value, comparison: Comparison, right: &Value) -> bool {
    let same_kind = matches!(
        (left, right),
        (Value::Int(_), Value::Int(_)) | (Value::Sym(_), Value::Sym(_))
    );
    match comparison {
        Comparison::Equal => left == right,
        Comparison::NotEqual => left != right,
        Comparison::Less => same_kind && left < right,
        Comparison::LessOrEqual => same_kind && left <= right,
        Comparison::Greater => same_kind && left > right,
        Comparison::GreaterOrEqual => same_kind && left >= right,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parse_program;
    use alloc::format;
    use alloc::string::ToString;
    use proptest::prelude::*;

    /// The reference: every rule over every fact, each round, until a round
    /// adds nothing.
    fn evaluate_naively(facts: &Relations, rules: &[Rule]) -> Relations {
        let mut all = facts.clone();
        for stratum in stratify(rules).unwrap() {
            loop {
                let mut next = all.clone();
                let mut room = usize::MAX;
                for rule in &stratum {
                    derive(rule, &all, None, &mut next, &mut room).unwrap();
                }
                if next == all {
                    break;
                }
                all = next;
            }
        }
        all
    }

    /// Splits a program into its stored facts and its rules, as the
    /// knowledge base does.
    fn facts_and_rules(program: &str) -> (Relations, Vec<Rule>) {
        let mut facts = Relations::new();
        let mut rules = Vec::new();
        for rule in parse_program(program).unwrap() {
            match rule.ground_head() {
                Some(fact) if rule.body.literals.is_empty() => {
                    facts
                        .entry(rule.head.predicate.clone())
                        .or_default()
                        .insert(fact);
                }
                _ => rules.push(rule),
            }
        }
        (facts, rules)
    }

    const GRAPH_RULES: &str = "
        path(X, Y) :- edge(X, Y).
        path(X, Z) :- path(X, Y), edge(Y, Z).
        long(X, Z) :- path(X, Y), path(Y, Z), X != Z.
        hops(X, Y, 1) :- edge(X, Y).
        hops(X, Z, N) :- hops(X, Y, M), edge(Y, Z), N = M + 1, N <= 4.
        two(N) :- N = 1 + 1.
        node(X) :- edge(X, _).
        node(Y) :- edge(_, Y).
        unreached(X, Y) :- node(X), node(Y), not path(X, Y).
        sink(X) :- node(X), not edge(X, _).
        lonely(N) :- N = 0, not edge(0, _).
    ";

    proptest! {
        #[test]
        fn semi_naive_matches_naive_on_random_graphs(
            edges in proptest::collection::vec((0..8i64, 0..8i64), 0..24)
        ) {
            let mut program = GRAPH_RULES.to_string();
            for (from, to) in &edges {
                program.push_str(&format!("edge({from}, {to}).\n"));
            }
            let (facts, rules) = facts_and_rules(&program);
            let strata = stratify(&rules).unwrap();
            prop_assert_eq!(strata.len(), 2);
            let semi_naive = evaluate(&facts, &strata, usize::MAX).unwrap();
            prop_assert_eq!(&semi_naive, &evaluate_naively(&facts, &rules));
            // The seeded atom-free rule fired, so the comparison covers it.
            prop_assert!(semi_naive["two"].contains(&vec![Value::Int(2)]));
            // Negation is the complement of the closure among the nodes.
            let nodes = semi_naive.get("node").map_or(0, BTreeSet::len);
            let paths = semi_naive.get("path").map_or(0, BTreeSet::len);
            let unreached = semi_naive.get("unreached").map_or(0, BTreeSet::len);
            prop_assert_eq!(paths + unreached, nodes * nodes);
        }
    }

    proptest! {
        #[test]
        fn lookups_find_what_a_scan_finds(
            tuples in proptest::collection::btree_set(
                proptest::collection::vec(0..3i64, 3), 0..27
            ),
            pattern in proptest::collection::vec(proptest::option::of(0..3i64), 3),
        ) {
            let tuples: BTreeSet<Vec<Value>> = tuples
                .into_iter()
                .map(|tuple| tuple.into_iter().map(Value::Int).collect())
                .collect();
            // Bound slots for the pattern's values, free ones elsewhere.
            let slots: Vec<Option<Value>> =
                pattern.iter().map(|value| value.map(Value::Int)).collect();
            let terms: Vec<Term> = (0..3).map(Term::Var).collect();
            let fits = |tuple: &&Vec<Value>| {
                tuple
                    .iter()
                    .zip(&slots)
                    .all(|(value, slot)| slot.as_ref().is_none_or(|slot| slot == value))
            };
            let found: Vec<_> = matching(&tuples, &terms, &slots).filter(fits).collect();
            let scanned: Vec<_> = tuples.iter().filter(fits).collect();
            prop_assert_eq!(found, scanned);
        }
    }

    #[test]
    fn stratify_orders_negation_and_rejects_its_cycles() {
        let (_, rules) = facts_and_rules(
            "c(X) :- e(X), not b(X), not a(X). a(X) :- e(X). b(X) :- e(X), not d(X). d(X) :- e(X).",
        );
        let strata = stratify(&rules).unwrap();
        let heads: Vec<Vec<&str>> = strata
            .iter()
            .map(|stratum| {
                stratum
                    .iter()
                    .map(|rule| rule.head.predicate.as_str())
                    .collect()
            })
            .collect();
        assert_eq!(heads, [vec!["a", "d"], vec!["b"], vec!["c"]]);
        let (_, rules) = facts_and_rules("p(X) :- e(X), not q(X). q(X) :- e(X), not p(X).");
        assert!(stratify(&rules).is_none());
        let (_, rules) = facts_and_rules("p(X) :- e(X), not p(X).");
        assert!(stratify(&rules).is_none());
    }

    #[test]
    fn limit_stops_an_infinite_relation() {
        let (facts, rules) = facts_and_rules("n(0). n(Y) :- n(X), Y = X + 1.");
        assert!(evaluate(&facts, &stratify(&rules).unwrap(), 100).is_err());
    }

    #[test]
    fn arithmetic_that_overflows_does_not_hold() {
        let (facts, rules) =
            facts_and_rules("big(9223372036854775807). next(Y) :- big(X), Y = X + 1.");
        let all = evaluate(&facts, &stratify(&rules).unwrap(), usize::MAX).unwrap();
        assert!(!all.contains_key("next"));
    }
}
