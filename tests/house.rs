//! The house is one-way (ARCHITECTURE.md): no source file imports one that
//! imports it back, directly or round a loop. This test reads `src/`'s
//! paths (`crate::…`, `super::…`, `self::…`, groups included), draws an
//! arrow from each file to each file it names, and fails on a loop with
//! the files that close it. A folder's `mod.rs` (and `lib.rs`) is no node:
//! it declares its children and hands names on.
//!
//! It does not link the library, so it builds in seconds. What it cannot
//! see: an import through a `mod.rs` re-export (the arrow lands on the
//! folder, not the file that defines the name), code in `#[cfg(test)]`
//! modules (tests may reach anywhere) and comments.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Circles that another branch removes; each names where and why. Empty
/// when the house has none.
const KNOWN: &[&str] = &[];

type Module = Vec<String>;

#[test]
fn no_import_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    // Each crate is a house of its own: `actforge` (src/) and the formula
    // core (src/formula/, whose `crate::` is itself).
    no_circles_in(&src);
    no_circles_in(&src.join("formula"));
}

/// The formula core is the left end of the house: it names no tensor
/// library, no CUDA and nothing of `actforge`, so a change there builds
/// and tests without them.
#[test]
fn the_formula_core_depends_on_nothing_of_actforge() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/formula");
    let manifest: String = std::fs::read_to_string(core.join("Cargo.toml"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for dep in ["candle", "cudarc", "actforge ", "actforge=", "path = \"../"] {
        assert!(
            !manifest.contains(dep),
            "src/formula/Cargo.toml names {dep}"
        );
    }
    let mut files = Vec::new();
    collect(&core, &mut files);
    assert!(files.len() > 10, "{files:?}");
    for f in files {
        let code = code_of(&std::fs::read_to_string(&f).unwrap());
        for word in ["candle", "cudarc", "actforge::"] {
            assert!(!code.contains(word), "{} names {word}", f.display());
        }
    }
}

fn no_circles_in(src: &Path) {
    let mut files = Vec::new();
    collect(src, &mut files);
    let modules: BTreeMap<Module, PathBuf> = files
        .iter()
        .filter_map(|f| module_of(src, f).map(|m| (m, f.clone())))
        .collect();
    // Every import, as (importing module, imported module).
    let mut arrows = BTreeSet::new();
    for (m, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        for path in paths_in(&code_of(&text)) {
            if let Some(target) = resolve(m, &path, &modules) {
                arrows.insert((m.clone(), target));
            }
        }
    }
    // Files only: a folder's `mod.rs` declares its children and hands
    // names on, so arrows to and from it say nothing about the order.
    let folders: BTreeSet<&Module> = modules
        .iter()
        .filter(|(_, f)| {
            f.file_name()
                .is_some_and(|n| n == "mod.rs" || n == "lib.rs")
        })
        .map(|(m, _)| m)
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in &arrows {
        if a != b && !folders.contains(a) && !folders.contains(b) {
            graph.entry(a.join("/")).or_default().insert(b.join("/"));
        }
    }
    let circles: Vec<String> = strongly_connected(&graph)
        .iter()
        .map(|c| c.join(" <-> "))
        .collect();
    let unknown: Vec<&String> = circles
        .iter()
        .filter(|c| !KNOWN.contains(&c.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "import circles (a file imports one that imports it back, maybe round a \
         loop): {unknown:#?}\nMove what both need into a room below them."
    );
    let gone: Vec<&&str> = KNOWN
        .iter()
        .filter(|k| !circles.iter().any(|c| c == *k))
        .collect();
    assert!(
        gone.is_empty(),
        "these known circles are gone; strike them from KNOWN: {gone:?}"
    );
}

/// The terminal is the cli's trade: the library reports through observer
/// callbacks and draws no bar itself.
#[test]
fn indicatif_is_only_in_cli() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    let outside: Vec<String> = files
        .iter()
        .filter(|f| !f.starts_with(src.join("cli")))
        .filter(|f| code_of(&std::fs::read_to_string(f).unwrap()).contains("indicatif"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        outside.is_empty(),
        "indicatif outside src/cli/: {outside:?}"
    );
}

/// The oracle for the parser below, on a few shapes of `use`.
#[test]
fn use_paths_are_read_with_their_groups() {
    let code = code_of(
        "//! a doc naming crate::doc::x\nuse super::{a, b::{C, D}, self};\n\
         use crate::x::y::{self as z};\nfn f() { crate::q::r(); }\n#[cfg(test)]\nmod t { use super::gone; }\n",
    );
    let got: Vec<String> = paths_in(&code).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        got,
        [
            "super::a",
            "super::b::C",
            "super::b::D",
            "super",
            "crate::x::y",
            "crate::q::r"
        ]
    );
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        // A folder with a Cargo.toml is a crate of its own.
        if p.is_dir() && !p.join("Cargo.toml").exists() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` is `[a, b]`, `src/a/mod.rs` is `[a]`, `src/lib.rs` is `[]`;
/// `src/main.rs` is the binary, not a module of the library.
fn module_of(src: &Path, file: &Path) -> Option<Module> {
    let rel = file.strip_prefix(src).ok()?;
    let mut m: Module = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let last = m.pop()?;
    match last.as_str() {
        "main.rs" if m.is_empty() => None,
        "lib.rs" if m.is_empty() => Some(m),
        "mod.rs" => Some(m),
        _ => {
            m.push(last.trim_end_matches(".rs").to_string());
            Some(m)
        }
    }
}

/// The code of a file without comments and without what follows its first
/// `#[cfg(test)]` (the test modules stand at the end of a file).
fn code_of(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Every path that starts with `crate`, `super` or `self`, groups expanded.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let boundary = i == 0
            || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == ':');
        if boundary && (chars[i].is_alphabetic() || chars[i] == '_') {
            let (word, end) = ident(&chars, i);
            if ["crate", "super", "self"].contains(&word.as_str()) && starts(&chars, end, "::") {
                i = path(&chars, i, Vec::new(), &mut out);
                continue;
            }
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

fn ident(chars: &[char], mut i: usize) -> (String, usize) {
    let start = i;
    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
        i += 1;
    }
    (chars[start..i].iter().collect(), i)
}

fn starts(chars: &[char], i: usize, s: &str) -> bool {
    s.chars()
        .enumerate()
        .all(|(k, c)| chars.get(i + k) == Some(&c))
}

fn skip_space(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

/// Read one path (maybe a `{…}` group) at `i` under `prefix`; push each
/// full path; return where it ends.
fn path(
    chars: &[char],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    loop {
        i = skip_space(chars, i);
        if chars.get(i) == Some(&'{') {
            i += 1;
            loop {
                i = skip_space(chars, i);
                match chars.get(i) {
                    Some('}') => return i + 1,
                    Some(',') => i += 1,
                    Some(c) if c.is_alphabetic() || *c == '_' || *c == '{' => {
                        if ident(chars, i).0 == "as" {
                            // `name as alias`: the alias is no path.
                            let after = skip_space(chars, ident(chars, i).1);
                            i = ident(chars, after).1;
                        } else {
                            i = path(chars, i, prefix.clone(), out);
                        }
                    }
                    Some(_) => i += 1,
                    None => return i,
                }
            }
        }
        let (word, end) = ident(chars, i);
        if word.is_empty() {
            out.push(prefix);
            return i;
        }
        i = end;
        if word != "self" || prefix.is_empty() {
            prefix.push(word);
        }
        if starts(chars, i, "::") {
            i += 2;
        } else {
            out.push(prefix);
            return i;
        }
    }
}

/// The module a path lands in: its longest prefix that is a module file.
fn resolve(from: &Module, path: &[String], modules: &BTreeMap<Module, PathBuf>) -> Option<Module> {
    let mut abs: Module = from.clone();
    let mut rest = &path[1..];
    match path.first()?.as_str() {
        "crate" => abs.clear(),
        "self" => {}
        "super" => {
            abs.pop()?;
            while rest.first().is_some_and(|s| s == "super") {
                abs.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    let mut best = abs.clone();
    for seg in rest {
        abs.push(seg.clone());
        if modules.contains_key(&abs) {
            best = abs.clone();
        } else {
            break;
        }
    }
    Some(best)
}

/// The strongly connected parts of more than one node (Tarjan), each sorted.
fn strongly_connected(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut part = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                part.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if part.len() > 1 {
                part.sort();
                s.out.push(part);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}
