//! The JavaScript interface (wasm32 only): what `wasm-bindgen` exports to
//! the check page, the node runner and the web page example.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;
use wgsample::gpu::{GpuContext, GpuSampler, open_device_async};

use crate::{checks, demo};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    fn console_log(s: &str);
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(s: &str);
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn perf_now() -> f64;
}

/// `performance.now()`.
pub(crate) fn performance_now() -> f64 {
    perf_now()
}

/// The prefix of every console line the checks write (the test script
/// reads them from Chromium's stderr).
pub const PREFIX: &str = "wgsample-browser: ";

fn log(line: &str) {
    console_log(&format!("{PREFIX}{line}"));
}

/// Runs when the module is instantiated: panics go to `console.error`
/// with their message (the default is a bare `unreachable` trap).
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error(&format!("{PREFIX}panic: {info}"));
    }));
}

fn js_err(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&e.to_string())
}

/// Opens the WebGPU device, samples every configuration of
/// [`checks::cases`] with the GPU and the CPU sampler, then the decode
/// loops and beam searches, and logs one line per configuration
/// (`ok   NAME ...` or `FAIL NAME: first mismatch`) and a last line
/// `summary: P/T configurations agree`. Resolves to `"P/T"`; rejects only
/// when no device opens.
///
/// `corrupt` flips the expected token of the first configuration's first
/// row at its first step: the run must then report `FAIL greedy: ...`.
#[wasm_bindgen]
pub async fn run_checks(corrupt: bool) -> Result<String, JsValue> {
    let ctx = open_device_async().await.map_err(js_err)?;
    log(&format!(
        "adapter (wgpu): {} [vendor {:#x}, device {:#x}, driver {:?} {:?}]",
        ctx.describe(),
        ctx.adapter_info.vendor,
        ctx.adapter_info.device,
        ctx.adapter_info.driver,
        ctx.adapter_info.driver_info
    ));
    if corrupt {
        log("corrupt: the first configuration's expected token is flipped");
    }
    let t0 = crate::now_ms();
    let (passed, total) = checks::run_all(&ctx, corrupt, &mut |l| log(l)).await;
    log(&format!(
        "summary: {passed}/{total} configurations agree ({:.1} s)",
        (crate::now_ms() - t0) / 1e3
    ));
    Ok(format!("{passed}/{total}"))
}

thread_local! {
    /// The page's device and its last sampler (reused while the
    /// vocabulary and batch fit).
    static DEMO: RefCell<Option<(GpuContext, Option<GpuSampler>)>> = const { RefCell::new(None) };
}

/// Opens the WebGPU device for the page example and returns the adapter's
/// description (Chrome leaves the name empty).
#[wasm_bindgen]
pub async fn demo_open() -> Result<String, JsValue> {
    let ctx = open_device_async().await.map_err(js_err)?;
    let line = ctx.describe();
    DEMO.with(|d| *d.borrow_mut() = Some((ctx, None)));
    Ok(line)
}

/// The names of the page's strategies; `demo_run`'s `index` picks one.
#[wasm_bindgen]
pub fn demo_strategies() -> Vec<String> {
    demo::strategies()
        .into_iter()
        .map(|(n, _)| n.to_string())
        .collect()
}

/// Samples `steps` steps of synthetic `[batch, vocab]` logits with
/// strategy `index` on the GPU and the CPU (see [`demo::run`]). Resolves
/// to JSON: `{"tokens": [[..row tokens..], ..per step], "gpu_ms": [..],
/// "cpu_ms": [..], "agree": bool}`; a row without a token shows as `-1`.
/// Call [`demo_open`] first.
#[wasm_bindgen]
pub async fn demo_run(
    index: u32,
    vocab: u32,
    batch: u32,
    steps: u32,
    seed: u32,
) -> Result<String, JsValue> {
    // Taken out for the await (nothing else may borrow it meanwhile), put
    // back afterwards.
    let (ctx, mut sampler) = DEMO
        .with(|d| d.borrow_mut().take())
        .ok_or_else(|| js_err("call demo_open first"))?;
    let r = demo::run(
        &ctx,
        &mut sampler,
        index as usize,
        vocab,
        batch,
        steps,
        seed,
    )
    .await;
    DEMO.with(|d| *d.borrow_mut() = Some((ctx, sampler)));
    let run = r.map_err(js_err)?;
    let tokens: Vec<String> = run
        .tokens
        .iter()
        .map(|row| {
            let t: Vec<String> = row
                .iter()
                .map(|&t| {
                    if t == wgsample::NO_TOKEN {
                        "-1".into()
                    } else {
                        t.to_string()
                    }
                })
                .collect();
            format!("[{}]", t.join(","))
        })
        .collect();
    let ms = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.3}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    Ok(format!(
        "{{\"tokens\":[{}],\"gpu_ms\":[{}],\"cpu_ms\":[{}],\"agree\":{}}}",
        tokens.join(","),
        ms(&run.gpu_ms),
        ms(&run.cpu_ms),
        run.agree
    ))
}
