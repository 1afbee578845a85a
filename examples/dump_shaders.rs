//! Writes every compute shader the crate dispatches, exactly as it is
//! compiled, into a folder (default `target/shaders`) with a `list.tsv` of
//! `file<TAB>entry point<TAB>name`: the input of the browser-rules check
//! (`scripts/check_shaders.mjs`, run by `.ci/run`).
fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/shaders".into());
    std::fs::create_dir_all(&dir)?;
    let mut list = String::new();
    for (i, (name, src, entry)) in wgsample::shader_sources().into_iter().enumerate() {
        let file = format!("{i:02}.wgsl");
        std::fs::write(format!("{dir}/{file}"), src)?;
        list.push_str(&format!("{file}\t{entry}\t{name}\n"));
    }
    std::fs::write(format!("{dir}/list.tsv"), list)?;
    println!("wrote {dir}/list.tsv");
    Ok(())
}
