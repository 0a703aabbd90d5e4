//! The import graph of a crate's modules, read from its source, and the
//! check that it has no cycle: the house rule that layers run one way
//! holds inside each crate too.
//!
//! A module is a file (`src/a/b.rs` or `src/a/b/mod.rs` is `a::b`; the crate
//! root is `crate`). It depends on every module its `use` items and paths
//! name: `crate::a::b::Item` is a dependency on `a::b` if that module
//! exists, else on `a`; `super::x` and `self::x` are resolved the same way
//! from where they are written. A module that declares another (`mod x;`)
//! does not depend on it for that alone, nor for re-exporting what the
//! other declares (`pub use x::Item;`): that is part of declaring it, and a
//! crate root that re-exports its modules' items while they use its own
//! would otherwise always be a cycle. Items under `#[cfg(test)]` (unit
//! tests may reach anything) are not read. Macros defined with
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

/// A named path: where it is anchored (`crate`, `super` or `self`), its
/// segments, and whether it is re-exported (`pub use`).
#[derive(Debug, PartialEq)]
struct Named {
    anchor: String,
    segments: Vec<String>,
    reexport: bool,
}

/// `source` without comments and without the items under `#[cfg(test)]`:
/// the attribute's item runs to the `;` or the closing brace that ends it.
fn code_outside_tests(source: &str) -> String {
    let mut kept = Vec::new();
    let mut skipping = false;
    let mut depth = 0i32;
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or_default();
        if !skipping && code.trim() == "#[cfg(test)]" {
            skipping = true;
            depth = 0;
            continue;
        }
        if skipping {
            depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
            let trimmed = code.trim_end();
            if depth <= 0 && (trimmed.ends_with(';') || trimmed.ends_with('}')) {
                skipping = false;
            }
            continue;
        }
        kept.push(code);
    }
    kept.join("\n")
}

/// The paths a source text names after `crate::`, `super::` or `self::`
/// (or after the name of one of `children`, the modules declared in it, as
/// `use child::x` names them), with `{...}` groups of `use` items expanded.
fn named_paths(source: &str, children: &[String]) -> Vec<Named> {
    let code = code_outside_tests(source);
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
        let mut offset = 0;
        while let Some(found) = code[offset..].find(&root) {
            let at = offset + found;
            offset = at + root.len();
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
                continue;
            }
            // The statement this path is in starts after the last `;`, `{`
            // or `}` before it.
            let statement_start = code[..at]
                .rfind([';', '{', '}'])
                .map_or(0, |index| index + 1);
            let statement = code[statement_start..at].trim_start();
            let reexport = ["pub use ", "pub(crate) use ", "pub(super) use "]
                .iter()
                .any(|start| statement.starts_with(start));
            let prefix: Vec<String> = first.iter().cloned().collect();
            let mut expanded = Vec::new();
            expand(&anchor, &code[offset..], &prefix, &mut expanded);
            paths.extend(expanded.into_iter().map(|(anchor, segments)| Named {
                anchor,
                segments,
                reexport,
            }));
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
        for named in named_paths(&source, &children) {
            let base: Vec<String> = match named.anchor.as_str() {
                "crate" => Vec::new(),
                "self" => own.clone(),
                _ => own[..own.len().saturating_sub(1)].to_vec(),
            };
            let Some(target) = target(&modules, &base, &named.segments) else {
                continue;
            };
            let descendant = module == "crate" || target.starts_with(&format!("{module}::"));
            if target != module
                && !own.join("::").starts_with(&format!("{target}::"))
                && !(named.reexport && descendant)
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
        let source = "#[cfg(test)]\n\
                      extern crate std;\n\
                      use crate::shell::ask::{ask, ask_all};\n\
                      use super::{skb::show_tree, vm};\n\
                      // use crate::commented::out;\n\
                      let x = crate::shared::BOARD.core(1);\n\
                      use vm::Vm;\n\
                      pub use vm::{Map, Unmap};\n\
                      assert!(a_crate::other);\n\
                      #[cfg(test)]\n\
                      mod tests {\n\
                          use crate::tests_reach_anything;\n\
                      }\n\
                      fn after_the_tests() { crate::after::it(); }\n";
        let paths = named_paths(source, &["vm".to_owned()]);
        let expected = [
            ("crate", vec!["shell", "ask", "ask"], false),
            ("crate", vec!["shell", "ask", "ask_all"], false),
            ("crate", vec!["shared", "BOARD"], false),
            ("crate", vec!["after", "it"], false),
            ("super", vec!["skb", "show_tree"], false),
            ("super", vec!["vm"], false),
            ("self", vec!["vm", "Vm"], false),
            ("self", vec!["vm", "Map"], true),
            ("self", vec!["vm", "Unmap"], true),
        ];
        for (anchor, segments, reexport) in expected.clone() {
            let named = Named {
                anchor: anchor.to_owned(),
                segments: segments.iter().map(|s| s.to_string()).collect(),
                reexport,
            };
            assert!(paths.contains(&named), "{named:?} not in {paths:?}");
        }
        assert_eq!(paths.len(), expected.len(), "{paths:?}");
    }

    #[test]
    fn a_re_export_of_a_child_is_no_dependency_but_a_use_is() {
        let dir = std::env::temp_dir().join(format!("atoll-modules-{}", std::process::id()));
        let src = dir.join("src");
        fs::create_dir_all(&src).unwrap();
        fs::write(
            src.join("lib.rs"),
            "mod a;\nmod b;\npub use a::Thing;\npub struct Root;\nfn f() { b::g(); }\n",
        )
        .unwrap();
        fs::write(src.join("a.rs"), "use crate::Root;\npub struct Thing;\n").unwrap();
        fs::write(src.join("b.rs"), "use crate::Root;\npub fn g() {}\n").unwrap();
        let graph = graph(&src);
        fs::remove_dir_all(&dir).unwrap();
        let graph = graph.unwrap();
        assert!(!graph["crate"].contains("a"), "{graph:?}");
        assert_eq!(
            find_cycle(&graph),
            Some(vec!["crate".into(), "b".into(), "crate".into()])
        );
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
