//! The knowledge base's lines: the boot summary, and the output of
//! `skb facts`, `skb query` and `skb tree`.

use std::collections::BTreeMap;

use super::{PROMPT, kernel_messages, lines};

/// The boot line `atoll: skb: <facts> facts, replicas equal on <equal> of
/// <cores> cores (hash <hex>); <outcome>; <ms> ms`.
#[derive(Debug, PartialEq, Eq)]
pub struct BootSummary<'t> {
    pub facts: u32,
    pub equal: u32,
    pub cores: u32,
    pub outcome: &'t str,
}

pub fn boot_summary(text: &str) -> Option<BootSummary<'_>> {
    kernel_messages(text).find_map(|message| {
        let rest = message.strip_prefix("skb: ")?;
        let (facts, rest) = rest.split_once(" facts, replicas equal on ")?;
        let (equal, rest) = rest.split_once(" of ")?;
        let (cores, rest) = rest.split_once(" cores (hash ")?;
        let (_, rest) = rest.split_once("); ")?;
        let (outcome, _) = rest.rsplit_once("; ")?;
        Some(BootSummary {
            facts: facts.parse().ok()?,
            equal: equal.parse().ok()?,
            cores: cores.parse().ok()?,
            outcome,
        })
    })
}

/// The lines a command printed: after its echo (`atoll> <command>`) up to
/// the next prompt or the exec summary. `None` when it was never run.
pub fn command_output<'t>(text: &'t str, command: &str) -> Option<Vec<&'t str>> {
    let echo = format!("{PROMPT}{command}");
    let mut lines = lines(text).skip_while(|line| *line != echo);
    lines.next()?;
    Some(
        lines
            .take_while(|line| !line.starts_with(PROMPT) && !line.starts_with("atoll: exec: "))
            .collect(),
    )
}

/// `(predicate, arguments)` of each `  pred(a, b).` line; symbols keep
/// their quotes.
pub fn facts(output: &[&str]) -> Vec<(String, Vec<String>)> {
    output
        .iter()
        .filter_map(|line| {
            let fact = line.strip_prefix("  ")?.strip_suffix(").")?;
            let (predicate, arguments) = fact.split_once('(')?;
            Some((
                predicate.to_owned(),
                arguments.split(", ").map(str::to_owned).collect(),
            ))
        })
        .collect()
}

/// The arguments of the facts of `predicate`, as integers; facts with a
/// symbol argument are left out.
pub fn int_facts(output: &[&str], predicate: &str) -> Vec<Vec<i64>> {
    facts(output)
        .into_iter()
        .filter(|(name, _)| name == predicate)
        .filter_map(|(_, arguments)| arguments.iter().map(|a| a.parse().ok()).collect())
        .collect()
}

/// The count in the closing `skb: <n> facts` or `skb: <n> answers` line.
pub fn count(output: &[&str], noun: &str) -> Option<usize> {
    output.iter().find_map(|line| {
        line.strip_prefix("skb: ")?
            .strip_suffix(noun)?
            .trim()
            .parse()
            .ok()
    })
}

/// Each answer of `skb query`: `  X = 1, Y = "a"` as variable → value.
pub fn answers(output: &[&str]) -> Vec<BTreeMap<String, String>> {
    output
        .iter()
        .filter_map(|line| line.strip_prefix("  "))
        .map(|answer| {
            answer
                .split(", ")
                .filter_map(|binding| binding.split_once(" = "))
                .map(|(variable, value)| (variable.to_owned(), value.to_owned()))
                .collect()
        })
        .collect()
}

/// One group of `skb tree`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeGroup {
    pub node: u32,
    pub aggregator: u32,
    /// The round trip from the root to the aggregator; `None` for the root.
    pub rtt: Option<u64>,
    /// Members, with the aggregator's round trip to each when measured.
    pub members: Vec<(u32, Option<u64>)>,
}

impl TreeGroup {
    /// The aggregator and the members.
    pub fn cores(&self) -> Vec<u32> {
        let mut cores: Vec<u32> = self.members.iter().map(|member| member.0).collect();
        cores.push(self.aggregator);
        cores.sort_unstable();
        cores
    }
}

/// `(root, groups in sending order)` from `skb tree`'s output:
/// `skb tree from core <root>: ...` then
/// `  node <n>: aggregator <a> (rtt <c>|root); members: <m> (rtt <c>|unmeasured), ...|none`.
pub fn tree(output: &[&str]) -> Option<(u32, Vec<TreeGroup>)> {
    let header = output
        .iter()
        .find_map(|line| line.strip_prefix("skb tree from core "))?;
    let root = header.split_once(':')?.0.parse().ok()?;
    let groups = output
        .iter()
        .filter_map(|line| line.strip_prefix("  node "))
        .map(parse_group)
        .collect::<Option<Vec<_>>>()?;
    Some((root, groups))
}

/// `<core> (rtt <cycles>|root|unmeasured)`.
fn core_and_rtt(text: &str) -> Option<(u32, Option<u64>)> {
    let (core, rtt) = text.split_once(" (")?;
    let rtt = rtt.strip_suffix(')')?;
    let rtt = match rtt.strip_prefix("rtt ")? {
        "unmeasured" => None,
        cycles => Some(cycles.parse().ok()?),
    };
    Some((core.parse().ok()?, rtt))
}

fn parse_group(line: &str) -> Option<TreeGroup> {
    let (node, rest) = line.split_once(": aggregator ")?;
    let (aggregator, members) = rest.split_once("; members: ")?;
    let (aggregator, rtt) = match aggregator.strip_suffix(" (root)") {
        Some(root) => (root.parse().ok()?, None),
        None => core_and_rtt(aggregator)?,
    };
    let members = if members == "none" {
        Vec::new()
    } else {
        members
            .split(", ")
            .map(core_and_rtt)
            .collect::<Option<Vec<_>>>()?
    };
    Some(TreeGroup {
        node: node.parse().ok()?,
        aggregator,
        rtt,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERIAL: &str = "atoll: 4 of 4 cores up\r\n\
        atoll: skb: 77 facts, replicas equal on 4 of 4 cores (hash 0x1); multicast trees from the knowledge base; 12 ms\r\n\
        atoll> skb facts core_node\r\n  core_node(0, 0).\r\n  core_node(1, 1).\r\nskb: 2 facts\r\n\
        atoll> skb query \"cpu(C, V, _, _, _)\"\r\n  C = 0, V = \"AuthenticAMD\"\r\nskb: 1 answers\r\n\
        atoll> skb tree 1\r\nskb tree from core 1: 2 groups, farthest first (rtt in cycles)\r\n\
        \x20 node 0: aggregator 0 (rtt 900); members: 2 (rtt unmeasured), 3 (rtt 12)\r\n\
        \x20 node 1: aggregator 1 (root); members: none\r\n\
        atoll: exec: 3 commands, 0 failed\r\n";

    #[test]
    fn reads_each_command_of_a_run() {
        assert_eq!(
            boot_summary(SERIAL),
            Some(BootSummary {
                facts: 77,
                equal: 4,
                cores: 4,
                outcome: "multicast trees from the knowledge base",
            })
        );
        let output = command_output(SERIAL, "skb facts core_node").unwrap();
        assert_eq!(int_facts(&output, "core_node"), [[0, 0], [1, 1]]);
        assert_eq!(count(&output, "facts"), Some(2));
        let output = command_output(SERIAL, "skb query \"cpu(C, V, _, _, _)\"").unwrap();
        let answers = answers(&output);
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0]["V"], "\"AuthenticAMD\"");
        let output = command_output(SERIAL, "skb tree 1").unwrap();
        let (root, groups) = tree(&output).unwrap();
        assert_eq!(root, 1);
        assert_eq!(
            groups[0],
            TreeGroup {
                node: 0,
                aggregator: 0,
                rtt: Some(900),
                members: vec![(2, None), (3, Some(12))],
            }
        );
        assert_eq!(groups[1].cores(), [1]);
        assert!(command_output(SERIAL, "skb tree 2").is_none());
    }
}
