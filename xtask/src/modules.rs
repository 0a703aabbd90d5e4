//! The import graph of a crate's modules, read from its source, and the
//! check that it has no cycle: the house rule that layers run one way
//! holds inside each crate too.
//!
//! A module is a file (`src/a/b.rs` or `src/a/b/mod.rs` is `a::b`; the crate
//! root is `crate`). It depends on every module its `use` items and paths
//! name: `crate::a::b::Item` is a dependency on `a::b` if that module
//! exists, else on `a`; `super::x` and `self::x` are resolved the same way
//! from where they are written. A module that declares another (`mod x;`)
//! does not depend on it for that alone. Macros defined with
//! `#[macro_use]` are not seen, so a crate's macros belong in a module that
//! depends on nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub type Graph = BTreeMap<String, BTreeSet<String>>;

/// The module path of the file `file` in the crate whose source is `src`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap_or(file);
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
        return "crate".to_owned();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The paths a source text names after `crate::`, `super::` or `self::`
/// (or after the name of one of `children`, the modules declared in it, as
/// `use child::x` names them), each as its segments, with `{...}` groups of
/// `use` items expanded. A
/// module's unit tests (from `#[cfg(test)]` on, where this project puts
/// them: at the end of the file) may reach anything, and are not read.
fn named_paths(source: &str, children: &[String]) -> Vec<(String, Vec<String>)> {
    let code: String = source
        .lines()
        .take_while(|line| line.trim() != "#[cfg(test)]")
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut paths = Vec::new();
    let roots = ["crate", "super", "self"]
        .into_iter()
        .map(|root| (format!("{root}::"), root.to_owned(), None))
        .chain(
            children
                .iter()
                .map(|child| (format!("{child}::"), "self".to_owned(), Some(child.clone()))),
        );
    for (root, anchor, first) in roots {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(&root) {
            let before = rest[..at].chars().last();
            rest = &rest[at + root.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
                continue;
            }
            let prefix: Vec<String> = first.iter().cloned().collect();
            expand(&anchor, rest, &prefix, &mut paths);
        }
    }
    paths
}

/// Reads one path from `text` (after its anchor and `::`), expanding a
/// group `{a, b::c}` into its members.
fn expand(anchor: &str, text: &str, prefix: &[String], out: &mut Vec<(String, Vec<String>)>) {
    let mut segments = prefix.to_vec();
    let mut rest = text;
    loop {
        let rest_trimmed = rest.trim_start();
        if let Some(group) = rest_trimmed.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(group.len(), |(index, _)| index);
            let mut member_depth = 0;
            let mut start = 0;
            let inner = &group[..end];
            for (index, c) in inner.char_indices().chain([(inner.len(), ',')]) {
                match c {
                    '{' => member_depth += 1,
                    '}' => member_depth -= 1,
                    ',' if member_depth == 0 => {
                        let member = inner[start..index].trim();
                        if !member.is_empty() {
                            expand(anchor, member, &segments, out);
                        }
                        start = index + 1;
                    }
                    _ => {}
                }
            }
            return;
        }
        let word: String = rest_trimmed
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if word.is_empty() {
            break;
        }
        segments.push(word.clone());
        rest = &rest_trimmed[word.len()..];
        match rest.strip_prefix("::") {
            Some(next) => rest = next,
            None => break,
        }
    }
    out.push((anchor.to_owned(), segments));
}

/// The module a path names: the longest prefix of it that is a module.
fn target(modules: &BTreeSet<String>, base: &[String], segments: &[String]) -> Option<String> {
    let mut path: Vec<String> = base.to_vec();
    let mut found = None;
    for segment in segments {
        path.push(segment.clone());
        let name = path.join("::");
        if modules.contains(&name) {
            found = Some(name);
        }
    }
    found.or_else(|| {
        Some(if base.is_empty() {
            "crate".to_owned()
        } else {
            base.join("::")
        })
    })
}

/// The import graph of the crate whose source directory is `src`.
pub fn graph(src: &Path) -> Result<Graph> {
    let mut files = Vec::new();
    rust_files(src, &mut files)?;
    let modules: BTreeSet<String> = files.iter().map(|file| module_of(src, file)).collect();
    let mut graph = Graph::new();
    for file in &files {
        let module = module_of(src, file);
        let source =
            fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let own: Vec<String> = if module == "crate" {
            Vec::new()
        } else {
            module.split("::").map(str::to_owned).collect()
        };
        let children: Vec<String> = modules
            .iter()
            .filter_map(|other| {
                let rest = if module == "crate" {
                    Some(other.as_str())
                } else {
                    other.strip_prefix(&format!("{module}::"))
                };
                rest.filter(|rest| *rest != "crate" && !rest.contains("::"))
                    .map(str::to_owned)
            })
            .collect();
        let mut edges = BTreeSet::new();
        for (anchor, segments) in named_paths(&source, &children) {
            let base: Vec<String> = match anchor.as_str() {
                "crate" => Vec::new(),
                "self" => own.clone(),
                _ => own[..own.len().saturating_sub(1)].to_vec(),
            };
            if let Some(target) = target(&modules, &base, &segments)
                && target != module
                && !own.join("::").starts_with(&format!("{target}::"))
            {
                edges.insert(target);
            }
        }
        graph.insert(module, edges);
    }
    Ok(graph)
}

/// A cycle of `graph`, as the modules on it, if it has one.
pub fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|entry| entry == node).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Open);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut marks, &mut Vec::new()))
}

/// The `src` directory of every package under `root`: each directory with
/// a `Cargo.toml` and a `src`, outside `target`.
pub fn package_sources(root: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if dir.join("Cargo.toml").is_file() && dir.join("src").is_dir() {
            found.push(dir.join("src"));
        }
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() && !name.starts_with('.') && name != "target" && name != "src" {
                pending.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::Workspace;

    fn graph_of(pairs: &[(&str, &[&str])]) -> Graph {
        pairs
            .iter()
            .map(|(module, edges)| {
                (
                    (*module).to_owned(),
                    edges.iter().map(|edge| (*edge).to_owned()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn paths_and_groups_are_read() {
        let source = "use crate::shell::ask::{ask, ask_all};\n\
                      use super::{skb::show_tree, vm};\n\
                      // use crate::commented::out;\n\
                      let x = crate::shared::BOARD.core(1);\n\
                      use vm::Vm;\n\
                      assert!(a_crate::other);\n\
                      #[cfg(test)]\n\
                      use crate::tests_reach_anything;\n";
        let paths = named_paths(source, &["vm".to_owned()]);
        let expected = [
            ("crate", vec!["shell", "ask", "ask"]),
            ("crate", vec!["shell", "ask", "ask_all"]),
            ("crate", vec!["shared", "BOARD"]),
            ("super", vec!["skb", "show_tree"]),
            ("super", vec!["vm"]),
            ("self", vec!["vm", "Vm"]),
        ];
        for (anchor, segments) in expected {
            assert!(
                paths.contains(&(
                    anchor.to_owned(),
                    segments.iter().map(|s| s.to_string()).collect()
                )),
                "{anchor}::{segments:?} not in {paths:?}"
            );
        }
        assert_eq!(paths.len(), 6, "{paths:?}");
    }

    #[test]
    fn a_cycle_is_found_and_a_chain_is_not() {
        let chain = graph_of(&[("a", &["b"]), ("b", &["c"]), ("c", &[])]);
        assert_eq!(find_cycle(&chain), None);
        let cycle = graph_of(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])]);
        assert_eq!(
            find_cycle(&cycle),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
    }

    #[test]
    fn no_crate_s_modules_import_each_other_in_a_cycle() {
        let workspace = Workspace::locate().expect("the workspace");
        let sources = package_sources(&workspace.root).unwrap();
        assert!(sources.len() >= 15, "{sources:?}");
        for src in &sources {
            let graph = graph(src).unwrap();
            assert_eq!(find_cycle(&graph), None, "{}: {graph:#?}", src.display());
        }
        // The boot sequence reaches the shell, and the host reaches the
        // measurements; nothing below reaches back up.
        let kernel = graph(&workspace.root.join("kernel/src")).unwrap();
        assert!(kernel["boot"].contains("shell") && kernel["host"].contains("measure"));
        assert!(!kernel["host"].contains("shell") && !kernel["shared"].contains("host"));
    }
}
