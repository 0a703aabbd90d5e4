//! The shell's `skb` commands: questions to this core's replica of the
//! knowledge base, which answers them on its own.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use atoll_skb::topology;

use super::ask::check_running;
use crate::host::Core;

/// `skb facts [<predicate>]`.
pub fn show_facts(core: &Core, predicate: Option<&str>) -> Result<(), String> {
    let facts = core
        .with_monitor(|monitor| monitor.knowledge().facts(predicate))
        .map_err(|error| format!("skb facts: {error}"))?;
    for (predicate, values) in &facts {
        println!("  {}.", topology::format_fact(predicate, values));
    }
    println!("skb: {} facts", facts.len());
    Ok(())
}

/// `skb query "<rule body>"`.
pub fn query(core: &Core, body: &str) -> Result<(), String> {
    let answers = core
        .with_monitor(|monitor| monitor.knowledge().query(body))
        .map_err(|error| format!("skb query: {error}"))?;
    for answer in &answers {
        let bindings: Vec<String> = answer
            .iter()
            .map(|(variable, value)| format!("{variable} = {value}"))
            .collect();
        if bindings.is_empty() {
            println!("  true");
        } else {
            println!("  {}", bindings.join(", "));
        }
    }
    println!("skb: {} answers", answers.len());
    Ok(())
}

fn rtt_text(rtt: Option<i64>) -> String {
    rtt.map_or_else(|| String::from("unmeasured"), |cycles| format!("{cycles}"))
}

/// `skb tree <root>`: the groups in the order the root sends to them.
pub fn show_tree(core: &Core, root: usize) -> Result<(), String> {
    // Only running cores start rounds.
    check_running(core, "skb tree", root)?;
    let (groups, fan_out) = core
        .with_monitor(|monitor| {
            let kb = monitor.knowledge();
            Ok::<_, atoll_skb::Error>((
                topology::multicast_groups(kb, root as i64)?,
                topology::fan_out(kb)?,
            ))
        })
        .map_err(|error| format!("skb tree: {error}"))?;
    println!(
        "skb tree from core {root}: {} groups, farthest first (rtt in cycles)",
        groups.len()
    );
    for group in &groups {
        let members: Vec<String> = group
            .members
            .iter()
            .map(|&(core, rtt)| format!("{core} (rtt {})", rtt_text(rtt)))
            .collect();
        let lead = if group.aggregator == root as i64 {
            format!("aggregator {} (root)", group.aggregator)
        } else {
            format!(
                "aggregator {} (rtt {})",
                group.aggregator,
                rtt_text(group.rtt)
            )
        };
        println!(
            "  node {}: {lead}; members: {}",
            group.node,
            if members.is_empty() {
                String::from("none")
            } else {
                members.join(", ")
            }
        );
    }
    println!(
        "skb tree: fan-out {fan_out}: a group of more than {} cores forwards through subgroups",
        fan_out + 1
    );
    Ok(())
}
