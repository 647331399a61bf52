//! The core in floors (issue 12): every top-level module of `core/src` (a directory by protocol
//! concept, or a leaf file) sits on a floor, and a module only uses (`crate::…`) modules on its
//! own floor or below. No arrow points up, so there is no
//! import cycle between floors. A new module must be given a floor here; a new upward import
//! fails this test with the file and the name it used.
//!
//! Unit tests inside a module (`#[cfg(test)] mod tests`) and comments are not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Floors, bottom first. Within a floor, modules may use each other.
const FLOORS: &[(&str, &[&str])] = &[
    // Vocabulary: frames, error shapes and codes, `Reply`, ids, limits, the CLI's flags.
    ("wire", &["wire", "ids", "limits", "cli", "markup"]),
    ("auth", &["auth"]),
    ("config", &["config"]),
    ("secrets", &["secrets"]),
    ("service", &["service"]),
    // The log file's lines, names and rolling, and `logs.tail`.
    ("logs", &["logs"]),
    // The OpenAI wire formats and the upstream exchange (`Turn`) that speaks them.
    ("openai", &["openai"]),
    ("sessions", &["sessions"]),
    ("tools", &["tools"]),
    ("agent", &["agent"]),
    // Cron jobs, their schedules and the scheduler (on virtual time).
    ("cron", &["cron"]),
    ("gateway", &["gateway"]),
    ("connection", &["connection"]),
    ("methods", &["methods"]),
    ("http", &["http"]),
    ("testkit", &["testkit"]),
];

/// `(floor index, floor name)` of a module.
fn floor_of(module: &str) -> Option<(usize, &'static str)> {
    FLOORS.iter().enumerate().find(|(_, (_, mods))| mods.contains(&module)).map(|(i, (name, _))| (i, *name))
}

/// The top-level modules a source file names through `crate::`.
fn crate_uses(src: &str) -> BTreeSet<String> {
    let code = src.split("#[cfg(test)]\nmod tests").next().unwrap_or(src);
    let code: String = code.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut out = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a, b::c, …}`
            let group = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(group.split(',').map(|item| ident(item.trim())).filter(|m| !m.is_empty()));
        } else {
            let m = ident(rest);
            if !m.is_empty() {
                out.insert(m);
            }
        }
    }
    out
}

/// Every `crate::` use that points to a higher floor: `(file, used module, from floor, to floor)`.
fn upward_uses(files: &[(String, String)]) -> Result<Vec<String>, String> {
    let mut up = Vec::new();
    for (rel, src) in files {
        let module = rel.split('/').next().unwrap_or(rel).trim_end_matches(".rs");
        if module == "lib" {
            continue;
        }
        let (from, from_name) = floor_of(module).ok_or_else(|| format!("core/src/{rel}: module `{module}` has no floor in FLOORS"))?;
        for used in crate_uses(src) {
            let Some((to, to_name)) = floor_of(&used) else {
                // `crate::VERSION` and other items of lib.rs.
                continue;
            };
            if to > from {
                up.push(format!("core/src/{rel} uses crate::{used}: floor `{from_name}` -> `{to_name}` (up)"));
            }
        }
    }
    Ok(up)
}

/// Cycles between floors in a module graph (`module -> used modules`), as strongly connected
/// components of more than one floor. With no upward arrow there can be none; this is the
/// check that says so in the words.
fn floor_cycles(edges: &BTreeMap<&str, BTreeSet<&str>>) -> Vec<BTreeSet<String>> {
    let floor = |m: &str| floor_of(m).map_or(m.to_string(), |(_, n)| n.to_string());
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, bs) in edges {
        for b in bs {
            let (fa, fb) = (floor(a), floor(b));
            if fa != fb {
                graph.entry(fa).or_default().insert(fb);
            }
        }
    }
    // Reachability closure (a dozen floors): a and b are on one cycle when each reaches the other.
    let nodes: BTreeSet<String> = graph.iter().flat_map(|(a, bs)| std::iter::once(a.clone()).chain(bs.iter().cloned())).collect();
    let reach = |start: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.to_string()];
        while let Some(n) = stack.pop() {
            for m in graph.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    stack.push(m.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> = nodes.iter().map(|n| (n, reach(n))).collect();
    let mut cycles: Vec<BTreeSet<String>> = Vec::new();
    for n in &nodes {
        let comp: BTreeSet<String> = nodes.iter().filter(|m| reaches[n].contains(*m) && reaches[*m].contains(n)).cloned().collect();
        if comp.len() > 1 && !cycles.contains(&comp) {
            cycles.push(comp);
        }
    }
    cycles
}

fn core_sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("read core/src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).expect("under core/src").to_string_lossy().replace('\\', "/");
                out.push((rel, std::fs::read_to_string(&path).expect("read a source file")));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

#[test]
fn every_import_points_down_a_floor() {
    let files = core_sources();
    assert!(files.len() > 30, "read {} files", files.len());
    let up = upward_uses(&files).unwrap_or_else(|e| panic!("{e}"));
    assert!(up.is_empty(), "imports that point up a floor (move the item down, or the user up):\n{}", up.join("\n"));
}

#[test]
fn there_is_no_cycle_between_floors() {
    let files = core_sources();
    let uses: Vec<(String, BTreeSet<String>)> = files
        .iter()
        .map(|(rel, src)| (rel.split('/').next().unwrap_or(rel).trim_end_matches(".rs").to_string(), crate_uses(src)))
        .collect();
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (m, used) in &uses {
        let entry = edges.entry(m.as_str()).or_default();
        entry.extend(used.iter().map(String::as_str).filter(|u| floor_of(u).is_some()));
    }
    edges.remove("lib");
    assert_eq!(floor_cycles(&edges), Vec::<BTreeSet<String>>::new());
}

/// The checks catch what they are for: a deliberate cycle (`wire` using `http`) is reported by
/// both, and a module without a floor is refused.
#[test]
fn a_deliberate_cycle_is_caught() {
    let files = vec![
        ("wire.rs".to_string(), "use crate::http::HttpResponse; // a cycle\n".to_string()),
        ("http/mod.rs".to_string(), "use crate::{wire::Reply, gateway};\n#[cfg(test)]\nmod tests { use crate::testkit; }".to_string()),
    ];
    assert_eq!(upward_uses(&files).unwrap(), ["core/src/wire.rs uses crate::http: floor `wire` -> `http` (up)"]);
    let edges: BTreeMap<&str, BTreeSet<&str>> = [("wire", BTreeSet::from(["http"])), ("http", BTreeSet::from(["wire", "gateway"]))].into();
    let cycles = floor_cycles(&edges);
    assert_eq!(cycles, [BTreeSet::from(["http".to_string(), "wire".to_string()])]);
    let unplaced = vec![("newthing.rs".to_string(), String::new())];
    assert!(upward_uses(&unplaced).unwrap_err().contains("`newthing` has no floor"));
    // Comments and unit tests do not count.
    assert_eq!(
        crate_uses("// crate::http\nuse crate::wire;\n#[cfg(test)]\nmod tests { use crate::http; }"),
        BTreeSet::from(["wire".into()])
    );
}
