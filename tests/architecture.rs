//! The shape of the code: the top-level modules of the library import each other without a
//! cycle, data flows one way (config → data → model/train → store → analysis → views / TUI),
//! and no SQL or rusqlite appears outside `store/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level library module a source file belongs to (`None` for lib.rs, main.rs, cli/).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .to_string();
    let name = first.trim_end_matches(".rs").to_string();
    (!matches!(name.as_str(), "lib" | "main" | "cli")).then_some(name)
}

/// Source without `#[cfg(test)]` modules (tests may reach anywhere).
fn non_test(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |i| &text[..i])
}

/// A `tests.rs` file that its parent module includes only as `#[cfg(test)] mod tests;`.
fn is_test_file(file: &Path) -> bool {
    if file.file_name().is_none_or(|n| n != "tests.rs") {
        return false;
    }
    let Some(dir) = file.parent() else {
        return false;
    };
    [dir.with_extension("rs"), dir.join("mod.rs")]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .any(|parent| parent.contains("#[cfg(test)]\nmod tests;"))
}

/// module → the crate modules its non-test code refers to.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let Some(m) = module_of(&src, f) else {
            continue;
        };
        if is_test_file(f) {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        let deps = g.entry(m.clone()).or_default();
        for (i, _) in non_test(&text).match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            let dep: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !dep.is_empty() && dep != m {
                deps.insert(dep);
            }
        }
    }
    g
}

fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut c = stack[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in g.keys() {
        if let Some(c) = visit(n, g, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn modules_form_no_cycle_and_data_flows_one_way() {
    let g = graph();
    for (m, deps) in &g {
        eprintln!(
            "{m:<10} -> {}",
            deps.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    assert_eq!(find_cycle(&g), None, "import cycle");
    // the leaves import nothing of the crate but the spec vocabulary
    for leaf in ["spec", "curve", "liveness", "simd", "threads"] {
        assert!(g[leaf].is_empty(), "{leaf} imports {:?}", g[leaf]);
    }
    assert!(
        g["masking"].iter().all(|d| d == "spec"),
        "{:?}",
        g["masking"]
    );
    // nothing upstream of the store reads it, and the store knows no analysis, sweep or TUI
    for m in [
        "config", "data", "model", "train", "probe", "masking", "spec",
    ] {
        assert!(!g[m].contains("store"), "{m} imports the store");
    }
    for d in [
        "analysis", "sweep", "tui", "views", "bench", "probe", "train",
    ] {
        assert!(!g["store"].contains(d), "store imports {d}");
    }
    // training does not run analyses: they come back through the observer
    assert!(!g["train"].contains("analysis"), "{:?}", g["train"]);
}

#[test]
fn no_sql_outside_the_store() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for f in files {
        if f.starts_with(src.join("store")) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let code: String = non_test(&text)
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for needle in [
            "rusqlite",
            "SELECT ",
            "INSERT ",
            "UPDATE ",
            "DELETE FROM",
            "PRAGMA ",
        ] {
            assert!(!code.contains(needle), "{} holds `{needle}`", f.display());
        }
    }
}
