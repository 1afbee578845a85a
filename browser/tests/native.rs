//! The browser checks, natively: the same configurations, decode loops and
//! beam searches on the adapter `open_device` finds (lavapipe in CI), so a
//! change that breaks the harness itself shows up in `cargo test -p
//! wgsample-browser` without a browser. With no adapter at all the tests
//! are skipped with a message (the main crate's GPU tests already fail
//! loudly for that).

use wgsample::gpu::{GpuContext, open_device};
use wgsample_browser::checks::{cases, run_all};

fn ctx() -> Option<GpuContext> {
    match open_device() {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("skipped: no GPU adapter: {e}");
            None
        }
    }
}

#[test]
fn gpu_agrees_with_cpu_in_every_configuration() {
    let Some(ctx) = ctx() else { return };
    assert!(cases().len() >= 20);
    let mut lines = Vec::new();
    let (passed, total) = pollster::block_on(run_all(&ctx, false, &mut |l| {
        eprintln!("{l}");
        lines.push(l.to_string());
    }));
    assert_eq!(passed, total, "failures:\n{}", lines.join("\n"));
    assert_eq!(total, cases().len() + 4);
}

#[test]
fn corrupt_run_names_the_failing_configuration() {
    let Some(ctx) = ctx() else { return };
    let mut lines = Vec::new();
    let (passed, total) =
        pollster::block_on(run_all(&ctx, true, &mut |l| lines.push(l.to_string())));
    assert_eq!(passed + 1, total);
    let fails: Vec<&String> = lines.iter().filter(|l| l.starts_with("FAIL ")).collect();
    assert_eq!(fails.len(), 1, "{lines:#?}");
    assert!(
        fails[0].starts_with("FAIL greedy: step 0 row 0: GPU token"),
        "{}",
        fails[0]
    );
}
