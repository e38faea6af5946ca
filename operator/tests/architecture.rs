//! The shape of the crate, checked from its sources (docs/architecture.md):
//!
//! - no import cycle among the modules of `engine/`, nor among those of `api/`;
//! - `aws/` (the adapters) imports nothing from `engine/`: the arrows run down the layers;
//! - no source file of the engine, the CLI or the controller is over 600 lines unless its first lines
//!   say why.
//!
//! Edges are read from the paths a module's code names (`use` lines and inline paths such as
//! `super::names::owned_tags`), comments and `#[cfg(test)]` modules excepted, each resolved to the
//! deepest module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// A module path: `["engine", "resources", "alarms"]` (the crate root is empty).
type Module = Vec<String>;

fn module_of(file: &Path) -> Module {
    let rel = file.strip_prefix(SRC).expect("under src");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().expect("file name");
    match last.as_str() {
        "lib.rs" | "main.rs" | "mod.rs" => {}
        other => parts.push(other.trim_end_matches(".rs").to_string()),
    }
    parts
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comment lines and without its `#[cfg(test)]` module.
fn code(text: &str) -> String {
    let mut kept = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") && lines.get(i + 1).is_some_and(|n| n.trim_start().starts_with("mod ")) {
            break;
        }
        if !t.starts_with("//") {
            kept.push(*line);
        }
    }
    kept.join("\n")
}

/// Every path the code names, relative to `module`, made absolute (`crate::a::b` -> `[a, b]`).
fn named_paths(module: &Module, is_dir_module: bool, children: &BTreeSet<String>, code: &str) -> Vec<Module> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        // A path starts at a word boundary.
        if (i == 0 || !is_ident(bytes[i - 1]) && bytes[i - 1] != b':') && is_ident(bytes[i]) {
            let (segments, end, group) = read_path(code, i);
            if (segments.len() > 1 || group.is_some())
                && let Some(base) = absolute(module, is_dir_module, children, &segments)
            {
                match group {
                    Some(items) => {
                        for item in items {
                            let mut p = base.clone();
                            if item.first().map(String::as_str) != Some("self") {
                                p.extend(item);
                            }
                            out.push(p);
                        }
                    }
                    None => out.push(base),
                }
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The path at `start`: its segments, where it ends, and the items of a trailing `::{...}` group.
fn read_path(code: &str, start: usize) -> (Vec<String>, usize, Option<Vec<Vec<String>>>) {
    let bytes = code.as_bytes();
    let mut segments = Vec::new();
    let mut i = start;
    loop {
        let s = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        segments.push(code[s..i].to_string());
        if code[i..].starts_with("::{") {
            let open = i + 2;
            let close = matching_brace(code, open);
            let items = split_top_level(&code[open + 1..close])
                .into_iter()
                .flat_map(|item| {
                    let item = item.split(" as ").next().unwrap_or("").trim().to_string();
                    if item.is_empty() {
                        return Vec::new();
                    }
                    let (inner, _, group) = read_path(&item, 0);
                    match group {
                        Some(nested) => nested
                            .into_iter()
                            .map(|n| {
                                let mut p = inner.clone();
                                if n.first().map(String::as_str) != Some("self") {
                                    p.extend(n);
                                }
                                p
                            })
                            .collect(),
                        None => vec![inner],
                    }
                })
                .collect();
            return (segments, close + 1, Some(items));
        }
        if code[i..].starts_with("::") && i + 2 < bytes.len() && is_ident(bytes[i + 2]) {
            i += 2;
        } else {
            return (segments, i, None);
        }
    }
}

fn matching_brace(code: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in code[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + i;
                }
            }
            _ => {}
        }
    }
    code.len() - 1
}

fn split_top_level(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0);
    for c in s.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// `segments` as an absolute module path, when they start with `crate`, `super`, `self`, or (in a
/// directory module) the name of a child module.
fn absolute(module: &Module, is_dir_module: bool, children: &BTreeSet<String>, segments: &[String]) -> Option<Module> {
    let mut base = module.clone();
    let mut rest = segments;
    match segments.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &segments[1..];
        }
        Some("self") => rest = &segments[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        Some(first) if is_dir_module && children.contains(first) => {}
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The import graph of the crate: module -> modules its code names.
fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = Vec::new();
    sources(Path::new(SRC), &mut files);
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(file);
        let is_dir_module = matches!(file.file_name().and_then(|n| n.to_str()), Some("mod.rs" | "lib.rs" | "main.rs"));
        let children: BTreeSet<String> = modules
            .iter()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(&module))
            .filter_map(|m| m.last().cloned())
            .collect();
        let text = std::fs::read_to_string(file).expect("read source");
        let mut edges = BTreeSet::new();
        for path in named_paths(&module, is_dir_module, &children, &code(&text)) {
            // The deepest module the path names.
            let target = (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains(p));
            if let Some(t) = target.filter(|t| t != &module) {
                edges.insert(t);
            }
        }
        graph.insert(module, edges);
    }
    graph
}

/// A cycle among the modules under `root`, if there is one.
fn cycle_under(graph: &BTreeMap<Module, BTreeSet<Module>>, root: &[&str]) -> Option<Vec<Module>> {
    let inside = |m: &Module| m.len() >= root.len() && m.iter().zip(root).all(|(a, b)| a == b);
    let nodes: Vec<&Module> = graph.keys().filter(|m| inside(m)).collect();
    // Depth-first search with colours; the stack is the path when a back edge is found.
    fn visit<'a>(
        node: &'a Module,
        graph: &'a BTreeMap<Module, BTreeSet<Module>>,
        inside: &dyn Fn(&Module) -> bool,
        state: &mut BTreeMap<&'a Module, u8>,
        stack: &mut Vec<&'a Module>,
    ) -> Option<Vec<Module>> {
        state.insert(node, 1);
        stack.push(node);
        for next in graph.get(node).into_iter().flatten().filter(|n| inside(n)) {
            match state.get(next).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|m| *m == next).unwrap_or(0);
                    let mut cycle: Vec<Module> = stack[from..].iter().map(|m| (*m).clone()).collect();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(next, graph, inside, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node, 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in nodes {
        if state.get(node).copied().unwrap_or(0) == 0
            && let Some(c) = visit(node, graph, &inside, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

fn show(cycle: &[Module]) -> String {
    cycle.iter().map(|m| m.join("::")).collect::<Vec<_>>().join(" -> ")
}

#[test]
fn the_graph_sees_the_imports_it_should() {
    let g = graph();
    let edges = |m: &str| g.get(&m.split("::").map(String::from).collect::<Module>()).cloned().unwrap_or_default();
    let has = |from: &str, to: &str| edges(from).contains(&to.split("::").map(String::from).collect::<Module>());
    // A `use super::{a, b}` group, a `use crate::` path, an inline `super::` path and a child module of
    // a directory module are all edges.
    assert!(has("engine::plan", "engine::gates"), "{:?}", edges("engine::plan"));
    assert!(has("engine::plan", "engine::resources"), "{:?}", edges("engine::plan"));
    assert!(has("engine::resources::alarms", "engine::resources::kind"), "{:?}", edges("engine::resources::alarms"));
    assert!(has("engine::resources", "engine::resources::alarms"), "{:?}", edges("engine::resources"));
    assert!(has("engine::resources::service", "aws"), "{:?}", edges("engine::resources::service"));
    assert!(has("engine", "engine::act"), "{:?}", edges("engine"));
    assert!(has("api::validate", "api::openapi"), "{:?}", edges("api::validate"));
}

#[test]
fn a_cycle_is_found_when_there_is_one() {
    let m = |s: &str| s.split("::").map(String::from).collect::<Module>();
    let mut g: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    g.insert(m("engine::a"), BTreeSet::from([m("engine::b")]));
    g.insert(m("engine::b"), BTreeSet::from([m("engine::c"), m("aws")]));
    g.insert(m("engine::c"), BTreeSet::new());
    assert_eq!(cycle_under(&g, &["engine"]), None);
    g.insert(m("engine::c"), BTreeSet::from([m("engine::a")]));
    let cycle = cycle_under(&g, &["engine"]).expect("a cycle");
    assert_eq!(show(&cycle), "engine::a -> engine::b -> engine::c -> engine::a");
    // A cycle through a module outside the root does not count for it.
    assert_eq!(cycle_under(&g, &["api"]), None);
}

#[test]
fn the_engine_has_no_import_cycle() {
    let g = graph();
    assert!(g.keys().filter(|m| m.first().map(String::as_str) == Some("engine")).count() > 10, "{:?}", g.keys());
    if let Some(cycle) = cycle_under(&g, &["engine"]) {
        panic!("import cycle in the engine: {}", show(&cycle));
    }
}

#[test]
fn the_api_has_no_import_cycle() {
    let g = graph();
    if let Some(cycle) = cycle_under(&g, &["api"]) {
        panic!("import cycle in api/: {}", show(&cycle));
    }
}

#[test]
fn the_adapters_import_nothing_from_the_engine() {
    let g = graph();
    let mut wrong = Vec::new();
    for (module, edges) in &g {
        if module.first().map(String::as_str) == Some("aws") {
            for e in edges.iter().filter(|e| e.first().map(String::as_str) == Some("engine")) {
                wrong.push(format!("{} -> {}", module.join("::"), e.join("::")));
            }
        }
    }
    assert!(wrong.is_empty(), "aws/ must not import engine/: {wrong:?}");
}

#[test]
fn engine_cli_and_controller_files_stay_small_or_say_why() {
    let mut files = Vec::new();
    for dir in ["engine", "cli", "controller"] {
        sources(&Path::new(SRC).join(dir), &mut files);
    }
    let mut too_long = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        let lines = text.lines().count();
        // The reason, when there is one, is said in the module docs: "Longer than 600 lines because ...".
        let says_why = text.lines().take(30).any(|l| l.contains("Longer than 600 lines because"));
        if lines > 600 && !says_why {
            too_long.push(format!("{} ({lines} lines)", file.display()));
        }
    }
    assert!(too_long.is_empty(), "split these, or say why at the top: {too_long:?}");
}
