//! Every ```rust block of the README appears word for word (up to
//! indentation) in `examples/quickstart.rs`, which `cargo test` compiles,
//! so the README's quick start cannot drift from the API.

#[test]
fn every_readme_rust_block_is_compiled_by_the_quickstart_example() {
    let norm = |s: &str| {
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let readme = include_str!("../README.md");
    let example = norm(include_str!("../examples/quickstart.rs"));
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in readme.lines() {
        match (&mut cur, line.trim_start()) {
            (None, l) if l.starts_with("```rust") => cur = Some(String::new()),
            (Some(b), l) if l.starts_with("```") => {
                blocks.push(std::mem::take(b));
                cur = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    assert!(blocks.len() >= 4, "found only {} rust blocks", blocks.len());
    for (i, b) in blocks.iter().enumerate() {
        assert!(
            example.contains(&norm(b)),
            "README rust block {} is not in examples/quickstart.rs word for word:\n{b}",
            i + 1
        );
    }
}
