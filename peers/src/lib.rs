//! Helpers shared by the peer benchmark (`benches/peers.rs`) and the plot
//! tool (`src/bin/bench_plot.rs`): the logits every bench samples, where
//! criterion writes its results and how to read a median back, and a parser
//! for the plain tables the benches print.
//!
//! This crate is a workspace member that the root crate's `cargo test` does
//! not build; it exists so that candle (and its dependency tree) is compiled
//! only by `cargo bench -p wgsample-peers`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The root benches' reference logits (`scale * N(0, 1)`, Box-Muller,
/// deterministic), shared so that peers and wgsample sample the same rows.
#[path = "../../benches/common/mod.rs"]
mod common;
pub use common::normal_logits;

/// Where criterion writes: `CRITERION_HOME`, else `CARGO_TARGET_DIR`'s
/// `criterion`, else the workspace's `target/criterion` when it exists
/// (built here), else `target/criterion` under the working directory.
pub fn criterion_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(h);
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t).join("criterion");
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    if ws.is_dir() {
        return ws.join("criterion");
    }
    PathBuf::from("target/criterion")
}

/// The median (in µs) of criterion benchmark `group/func/value` from its
/// `new/estimates.json`, if that file was written at or after `since` (so a
/// stale result of an earlier run is never read).
pub fn criterion_median_us(
    dir: &Path,
    group: &str,
    func: &str,
    value: Option<&str>,
    since: SystemTime,
) -> Option<f64> {
    let mut file = dir.join(group).join(func);
    if let Some(v) = value {
        file.push(v);
    }
    file.push("new/estimates.json");
    let meta = std::fs::metadata(&file).ok()?;
    if meta.modified().ok()? < since {
        return None;
    }
    let text = std::fs::read_to_string(&file).ok()?;
    let rest = &text[text.find("\"median\"")?..];
    let key = "\"point_estimate\":";
    let p = rest.find(key)? + key.len();
    let num: String = rest[p..]
        .chars()
        .skip_while(|c| c.is_whitespace())
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        .collect();
    num.parse::<f64>().ok().map(|ns| ns / 1000.0)
}

/// One table of the benches' plain format: a header line whose first three
/// words are `batch vocab strategy`, then rows of whitespace-separated
/// fields (`-` = not measured), comment lines (`#`) anywhere.
#[derive(Debug, Default, Clone)]
pub struct Table {
    /// The `# adapter: ...` / `# device: ...` comments seen with the table.
    pub notes: Vec<String>,
    /// Column names after `batch vocab strategy`.
    pub columns: Vec<String>,
    /// `(batch, vocab, strategy)` -> column -> median µs.
    pub rows: BTreeMap<(u64, u64, String), BTreeMap<String, f64>>,
}

/// Every table found in `text` (a log may hold ours and the PyTorch peer's).
pub fn parse_tables(text: &str) -> Vec<Table> {
    let mut out: Vec<Table> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut cur: Option<Table> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(c) = t.strip_prefix('#') {
            notes.push(c.trim().to_string());
            continue;
        }
        let f: Vec<&str> = t.split_whitespace().collect();
        if f.len() >= 4 && f[0] == "batch" && f[1] == "vocab" && f[2] == "strategy" {
            if let Some(done) = cur.take() {
                out.push(done);
            }
            cur = Some(Table {
                notes: std::mem::take(&mut notes),
                columns: f[3..].iter().map(|s| s.to_string()).collect(),
                rows: BTreeMap::new(),
            });
            continue;
        }
        let Some(tab) = cur.as_mut() else { continue };
        let (Ok(b), Ok(v)) = (
            f.first().unwrap_or(&"").parse::<u64>(),
            f.get(1).unwrap_or(&"").parse::<u64>(),
        ) else {
            if let Some(done) = cur.take() {
                out.push(done);
            }
            continue;
        };
        if f.len() < 3 {
            continue;
        }
        let row = tab.rows.entry((b, v, f[2].to_string())).or_default();
        for (name, val) in tab.columns.iter().zip(&f[3..]) {
            if let Ok(x) = val.parse::<f64>() {
                row.insert(name.clone(), x);
            }
        }
    }
    if let Some(done) = cur.take() {
        out.push(done);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_two_tables() {
        let text = "noise\n# adapter: x\nbatch vocab strategy gpu_ts cpu_1t match\n\
                    1 32000 greedy 1.5 - 1/1\n== end ==\n\
                    batch vocab strategy torch_ts\n1 32000 greedy 9\n";
        let t = parse_tables(text);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].notes, vec!["adapter: x".to_string()]);
        let r = &t[0].rows[&(1, 32000, "greedy".to_string())];
        assert_eq!(r.get("gpu_ts"), Some(&1.5));
        assert_eq!(r.get("cpu_1t"), None);
        assert_eq!(
            t[1].rows[&(1, 32000, "greedy".to_string())]["torch_ts"],
            9.0
        );
    }
}
