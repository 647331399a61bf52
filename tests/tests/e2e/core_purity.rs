//! `clawgate-core` stays sans-IO: no async runtime or network crate among its normal
//! dependencies, and no clock reads in its library code (time is always passed in).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clawgate_tests::run_command;

const FORBIDDEN_CRATES: &[&str] = &["tokio", "smol", "hyper", "async-tungstenite", "async-io", "async-net", "mio"];
const FORBIDDEN_CALLS: &[&str] = &["Instant::now()", "SystemTime::now()"];

fn core_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("core").join("src")
}

/// Crate names in `cargo tree` output (`├── name v1.2.3 (…)` → `name`).
fn tree_crates(tree: &str) -> Vec<String> {
    tree.lines()
        .filter_map(|l| {
            let start = l.find(|c: char| c.is_ascii_alphanumeric() || c == '_')?;
            l[start..].split_whitespace().next().map(str::to_string)
        })
        .collect()
}

/// `cargo tree -p <package> -e normal` → (crate names, raw output).
fn normal_deps(package: &str) -> (Vec<String>, String) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).args(["tree", "-p", package, "-e", "normal", "--prefix", "indent"]);
    let out = run_command(&mut cmd, Duration::from_secs(120));
    assert!(out.success(), "cargo tree -p {package} failed: {}\n{}", out.stderr, out.stdout);
    let crates = tree_crates(&out.stdout);
    assert!(crates.first().is_some_and(|c| c == package), "unexpected cargo tree output:\n{}", out.stdout);
    (crates, out.stdout)
}

#[test]
fn core_has_no_runtime_dependencies() {
    // Positive control: the same scan does see hyper under the driver.
    let (driver, _) = normal_deps("clawgate-driver");
    assert!(driver.iter().any(|c| c == "hyper"), "the dependency scan is broken: no hyper under clawgate-driver");
    let (crates, tree) = normal_deps("clawgate-core");
    let bad: Vec<&String> = crates.iter().filter(|c| FORBIDDEN_CRATES.contains(&c.as_str())).collect();
    assert!(bad.is_empty(), "clawgate-core depends on {bad:?}:\n{tree}");
}

/// Blank out `//` comments, keeping line numbers. Unit tests inside core/src count as code:
/// they run on virtual time too (the clock is read only under core/tests).
fn code_without_comments(src: &str) -> String {
    src.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn rust_files(dir: &Path, acc: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, acc);
        } else if p.extension().is_some_and(|x| x == "rs") {
            acc.push(p);
        }
    }
}

#[test]
fn core_library_never_reads_the_clock() {
    let mut files = Vec::new();
    rust_files(&core_src(), &mut files);
    assert!(!files.is_empty(), "no sources under {}", core_src().display());
    let mut hits = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        for (i, line) in code_without_comments(&src).lines().enumerate() {
            for call in FORBIDDEN_CALLS {
                if line.contains(call) {
                    hits.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(hits.is_empty(), "clock reads in clawgate-core sources:\n{}", hits.join("\n"));
}

#[test]
fn comment_filter_drops_only_comments() {
    let src = "fn a() { let t = Instant::now(); } // Instant::now() again\n// SystemTime::now()\n";
    let code = code_without_comments(src);
    assert_eq!(code.matches("Instant::now()").count(), 1);
    assert!(!code.contains("SystemTime::now()"));
}
