//! The shape of the code: no module of a crate imports another in a circle, and the core's
//! modules import only their own layer or those below it (the layers are drawn in
//! `crates/core/src/vault.rs` and ARCHITECTURE.md). Reads the sources, so a new `use` that
//! points upward fails here before review.
//!
//! An edge is a path `crate::X` (or `super::X` from a top-level module's file) outside
//! comments and before the first `#[cfg(test)]` of a file; files named `tests.rs` are tests.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Top-level modules of the crate whose sources are in `src`, with the modules each imports.
fn module_graph(src: &Path) -> Graph {
    let mut mods = BTreeSet::new();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if e.file_type().unwrap().is_dir() {
            mods.insert(name);
        } else if let Some(m) = name.strip_suffix(".rs")
            && m != "lib"
            && m != "main"
        {
            mods.insert(m.to_string());
        }
    }
    let mut graph: Graph = mods.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    let mut files = Vec::new();
    collect_rs(src, &mut files);
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let top = first.strip_suffix(".rs").unwrap_or(first).to_string();
        if !mods.contains(&top) || file.file_name().unwrap() == "tests.rs" {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        let code = strip_comments(text.split("#[cfg(test)]").next().unwrap());
        for target in imported_modules(&code, rel.components().count() == 1) {
            if target != top && mods.contains(&target) {
                graph.get_mut(&top).unwrap().insert(target);
            }
        }
    }
    graph
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect_rs(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code without `//` and `/* */` comments (doc comments included). String literals are
/// left alone: a `"crate::x"` in a string would count, which no source here has.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("//") {
            rest = r.find('\n').map_or("", |i| &r[i..]);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |i| &r[i + 2..]);
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The first segment after each `crate::` (and `super::` in a top-level module's file, where
/// `super` is the crate root), with `crate::{a, b::c}` groups expanded.
fn imported_modules(code: &str, top_level_file: bool) -> Vec<String> {
    let mut found = Vec::new();
    let mut prefixes = vec!["crate::"];
    if top_level_file {
        prefixes.push("super::");
    }
    for prefix in prefixes {
        let mut at = 0;
        while let Some(i) = code[at..].find(prefix) {
            let start = at + i;
            at = start + prefix.len();
            let before = code[..start].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // e.g. `testimony_core::` is another crate, `xcrate::` no path
            }
            let rest = &code[at..];
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            found.push(first_segment(&item));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
                found.push(first_segment(&item));
            } else {
                found.push(first_segment(rest));
            }
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

fn first_segment(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Groups of modules that import each other in a circle (Tarjan's strongly connected
/// components of more than one module).
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in &s.g[v] {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn crate_sources_in(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    dirs.push(root.join("src-tauri/src"));
    dirs.sort();
    dirs
}

fn crate_sources() -> Vec<PathBuf> {
    crate_sources_in(&root())
}

#[test]
fn no_crate_has_a_module_cycle() {
    let mut found = Vec::new();
    for src in crate_sources() {
        for c in cycles(&module_graph(&src)) {
            found.push(format!("{}: {}", src.display(), c.join(" ")));
        }
    }
    assert!(
        found.is_empty(),
        "modules import each other in a circle:\n{}",
        found.join("\n")
    );
}

/// The core's layers, lowest first. A module may import its own layer and those below.
const CORE_LAYERS: &[&[&str]] = &[
    &[
        "error",
        "reason",
        "partial_date",
        "process",
        "io_util",
        "keys",
        "schema",
        "model",
        "codebook",
        "form",
    ],
    &["store"],
    &["audit", "search"],
    &["records", "audio", "transcript"],
    &["bundle"],
    &["vault", "demo"],
];

#[test]
fn the_core_imports_only_downward() {
    let g = module_graph(&root().join("crates/core/src"));
    let layer_of = |m: &str| CORE_LAYERS.iter().position(|l| l.contains(&m));
    let mut wrong = Vec::new();
    for (m, targets) in &g {
        let Some(lm) = layer_of(m) else {
            wrong.push(format!("{m} is in no layer: add it to CORE_LAYERS"));
            continue;
        };
        for t in targets {
            if layer_of(t).is_some_and(|lt| lt > lm) {
                wrong.push(format!("{m} (layer {lm}) imports {t}, a layer above"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The checker itself: a circle it must see, and paths it must not mistake for imports.
#[test]
fn the_checker_finds_a_planted_cycle() {
    let dir = std::env::temp_dir().join(format!("testimony-layers-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("b")).unwrap();
    fs::write(dir.join("lib.rs"), "mod a; mod b; mod c;").unwrap();
    fs::write(
        dir.join("a.rs"),
        "use crate::{b::X, c};\n// crate::c in a comment",
    )
    .unwrap();
    fs::write(dir.join("b/mod.rs"), "mod inner;").unwrap();
    fs::write(dir.join("b/inner.rs"), "fn f() { crate::a::g(); }").unwrap();
    fs::write(
        dir.join("c.rs"),
        "use testimony_core::a;\n#[cfg(test)]\nuse crate::a;",
    )
    .unwrap();
    let g = module_graph(&dir);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(cycles(&g), vec![vec!["a".to_string(), "b".to_string()]]);
    assert!(g["c"].is_empty(), "{g:?}");
}

/// `cargo test -p testimony-scenarios --test layers -- --ignored --nocapture print_graph`
/// prints every crate's module graph and its cycles; with `TESTIMONY_GRAPH_ROOT=DIR`, those of
/// another checkout (e.g. `git worktree add /tmp/before OLD_COMMIT`): the before/after
/// picture of a refactoring.
#[test]
#[ignore = "prints the module graph on request"]
fn print_graph() {
    let root = std::env::var_os("TESTIMONY_GRAPH_ROOT").map_or_else(root, PathBuf::from);
    for src in crate_sources_in(&root) {
        println!("{}", src.strip_prefix(&root).unwrap_or(&src).display());
        let g = module_graph(&src);
        for (m, t) in &g {
            let t: Vec<_> = t.iter().map(String::as_str).collect();
            println!("  {m} -> {}", t.join(", "));
        }
        for c in cycles(&g) {
            println!("  CYCLE: {}", c.join(" "));
        }
    }
}
