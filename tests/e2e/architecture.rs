//! Architecture invariants and generated artifacts, checked so they cannot rot.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The workspace's own crates and, for each, the workspace crates it depends on (normal,
/// dev and build dependencies alike), read from `cargo metadata` — what Cargo resolves,
/// not how a Cargo.toml happens to spell it.
fn workspace_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let ours: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .filter(|d| ours.contains(d))
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

#[test]
fn crates_depend_only_downward() {
    let deps = workspace_dependencies();
    let expect = |krate: &str, allowed: &[&str]| {
        let found = deps
            .get(krate)
            .unwrap_or_else(|| panic!("{krate} is not a workspace member"));
        let extra: Vec<_> = found
            .iter()
            .filter(|d| !allowed.contains(&d.as_str()))
            .collect();
        assert!(
            extra.is_empty(),
            "{krate} may depend only on {allowed:?} of ours, but depends on {extra:?} (ARCHITECTURE.md)"
        );
    };
    expect("rivet-schema", &[]);
    expect("rivet-sources", &["rivet-schema"]);
    expect("rivet-planner", &["rivet-schema", "rivet-sources"]);
    expect("rivet-executor", &["rivet-schema", "rivet-sources"]);
    let libraries = [
        "rivet-schema",
        "rivet-sources",
        "rivet-planner",
        "rivet-executor",
    ];
    // The two binaries use the libraries and never each other.
    expect("rivet", &libraries);
    expect("rivet-mcp", &libraries);
    assert_eq!(
        deps.len(),
        6,
        "a new workspace crate needs its rule here and in ARCHITECTURE.md: {:?}",
        deps.keys()
    );
}

/// Top-level modules of a crate and the sibling modules each one uses (`crate::x`), from
/// the source text. The crate root (lib.rs), which declares the modules and holds the
/// crate's shared vocabulary, is not a node.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut all = Vec::new();
    files(src, &mut all);
    let top = |path: &Path| -> Option<String> {
        let rel = path.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()?
            .as_os_str()
            .to_string_lossy()
            .into_owned();
        let name = first.trim_end_matches(".rs").to_owned();
        (name != "lib" && name != "main").then_some(name)
    };
    let modules: BTreeSet<String> = all.iter().filter_map(|p| top(p)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for path in &all {
        let Some(from) = top(path) else { continue };
        let text = std::fs::read_to_string(path).unwrap();
        // Code only: not tests, not comments (doc links name modules too).
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let braced = rest.starts_with('{');
            let named: Vec<String> = if braced {
                let inner = &rest[1..rest.find('}').unwrap_or(rest.len())];
                inner
                    .split(',')
                    .map(|p| p.trim().split("::").next().unwrap_or("").to_owned())
                    .collect()
            } else {
                vec![name]
            };
            for to in named {
                if modules.contains(&to) && to != from {
                    graph.get_mut(&from).unwrap().insert(to);
                }
            }
        }
    }
    graph
}

/// A cycle in `graph`, as the modules on it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(n.to_owned());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_owned());
        for next in &graph[n] {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_a_cycle_between_its_modules() {
    for krate in ["schema", "sources", "planner", "executor", "mcp", "src"] {
        let src = if krate == "src" {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(krate)
                .join("src")
        };
        let graph = module_graph(&src);
        if let Some(cycle) = find_cycle(&graph) {
            panic!("{krate}: modules import each other: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(find_cycle(&g).unwrap(), vec!["a", "b", "c", "a"]);
}

/// Regenerate with `RIVET_UPDATE_SCHEMAS=1 cargo nextest run -E 'test(committed_json_schemas)'`.
#[test]
fn committed_json_schemas_match_the_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    for (file, schema) in [
        ("config.schema.json", rivet_schema::config_json_schema()),
        ("plan.schema.json", rivet_schema::plan_json_schema()),
        ("../docs/config-reference.md", serde_json::Value::Null),
    ] {
        let text = if schema.is_null() {
            rivet_schema::reference::config_reference_markdown()
        } else {
            serde_json::to_string_pretty(&schema).unwrap() + "\n"
        };
        let path = root.join(file);
        if std::env::var("RIVET_UPDATE_SCHEMAS").is_ok() {
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "schema/{file} is stale; regenerate it with RIVET_UPDATE_SCHEMAS=1 cargo nextest run -E 'test(committed_json_schemas)'"
        );
    }
}

#[test]
fn the_schema_command_prints_the_committed_config_schema() {
    let out = assert_cmd::Command::cargo_bin("rivet")
        .unwrap()
        .args(["schema", "config"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, rivet_schema::config_json_schema());
}
