//! The crate's main demo: a character-level model of the project's own
//! documentation (README.md and SPEC.md, built in) writes text with each
//! decoding strategy, its next-character logits computed on the GPU and
//! sampled there, the state on the device.
//!
//! ```text
//! cargo run --release --example demo                       # every strategy
//! cargo run --release --example demo -- --strategy top-p --top-p 0.8 --temperature 0.9
//! cargo run --release --example demo -- --prompt "The " --max-new-tokens 300 --backend cpu
//! ```
//!
//! The model is a character bigram: row `c` of a `[V, V]` table holds the
//! log-frequencies of the character after `c` in the docs. On the GPU the
//! model step is a gather pass (`wgsample::decode::BigramModel`) reading the
//! previous token from the sampler's output buffer, so nothing but the
//! sampled ids comes back to the host. Text stops at a blank line (a stop
//! string, held back while streaming) or after `--max-new-tokens`.
//! Without a GPU adapter the demo says so and runs the CPU backend.
use std::collections::BTreeMap;
use std::time::Instant;
use wgsample::SamplingParams;
use wgsample::beam::{BeamBackend, BeamConfig, EarlyStopping, beam_search_bigram};
use wgsample::decode::{Backend, generate};
use wgsample::decode::{DecodeSpec, StopCriteria};

const CORPUS: &str = concat!(
    include_str!("../README.md"),
    "\n\n",
    include_str!("../SPEC.md")
);

/// Characters of the corpus (non-ASCII folded to `?`), and the bigram table.
struct CharModel {
    chars: Vec<char>,
    index: BTreeMap<char, u32>,
    table: Vec<f32>,
}

fn fold(c: char) -> char {
    if c.is_ascii() { c } else { '?' }
}

impl CharModel {
    fn build(text: &str) -> CharModel {
        let mut chars: Vec<char> = text.chars().map(fold).collect();
        chars.sort_unstable();
        chars.dedup();
        let index: BTreeMap<char, u32> = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u32))
            .collect();
        let v = chars.len();
        let mut counts = vec![0.0f64; v * v];
        let ids: Vec<usize> = text.chars().map(|c| index[&fold(c)] as usize).collect();
        for w in ids.windows(2) {
            counts[w[0] * v + w[1]] += 1.0;
        }
        let mut table = vec![0.0f32; v * v];
        for a in 0..v {
            let row = &counts[a * v..(a + 1) * v];
            let total: f64 = row.iter().sum::<f64>() + 0.01 * v as f64;
            for b in 0..v {
                table[a * v + b] = ((row[b] + 0.01) / total).ln() as f32;
            }
        }
        CharModel {
            chars,
            index,
            table,
        }
    }
    fn vocab(&self) -> usize {
        self.chars.len()
    }
    fn text(&self, tokens: &[u32]) -> String {
        tokens
            .iter()
            .map(|&t| self.chars.get(t as usize).copied().unwrap_or('?'))
            .collect()
    }
}

struct Options {
    strategy: String,
    temperature: Option<f32>,
    top_k: Option<u32>,
    top_p: Option<f32>,
    min_p: Option<f32>,
    repetition_penalty: Option<f32>,
    beams: u32,
    max_new_tokens: u32,
    seed: u64,
    prompt: String,
    backend: String,
}

fn usage() -> ! {
    eprintln!(
        "usage: demo [--strategy all|greedy|temperature|top-k|top-p|min-p|beam] [--temperature F] \
         [--top-k N] [--top-p F] [--min-p F] [--repetition-penalty F] [--beams B] \
         [--max-new-tokens N] [--seed S] [--prompt TEXT] [--backend gpu|cpu]"
    );
    std::process::exit(2)
}

fn parse() -> Options {
    let mut o = Options {
        strategy: "all".into(),
        temperature: None,
        top_k: None,
        top_p: None,
        min_p: None,
        repetition_penalty: None,
        beams: 4,
        max_new_tokens: 200,
        seed: 7,
        prompt: "The s".into(),
        backend: "gpu".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    fn num<T: std::str::FromStr>(flag: &str, v: Option<&String>) -> T {
        match v.and_then(|s| s.parse().ok()) {
            Some(x) => x,
            None => {
                eprintln!("error: {flag} needs a number");
                std::process::exit(2)
            }
        }
    }
    while i < args.len() {
        let v = args.get(i + 1);
        match args[i].as_str() {
            "--strategy" => o.strategy = v.cloned().unwrap_or_else(|| usage()),
            "--temperature" => o.temperature = Some(num("--temperature", v)),
            "--top-k" => o.top_k = Some(num("--top-k", v)),
            "--top-p" => o.top_p = Some(num("--top-p", v)),
            "--min-p" => o.min_p = Some(num("--min-p", v)),
            "--repetition-penalty" => o.repetition_penalty = Some(num("--repetition-penalty", v)),
            "--beams" => o.beams = num("--beams", v),
            "--max-new-tokens" => o.max_new_tokens = num("--max-new-tokens", v),
            "--seed" => o.seed = num("--seed", v),
            "--prompt" => o.prompt = v.cloned().unwrap_or_else(|| usage()),
            "--backend" => o.backend = v.cloned().unwrap_or_else(|| usage()),
            "-h" | "--help" => usage(),
            other => {
                eprintln!("error: unknown flag {other}");
                usage()
            }
        }
        i += 2;
    }
    o
}

fn show(s: &str) -> String {
    s.replace('\n', "\u{23ce}")
}

fn main() {
    let o = parse();
    if o.backend != "cpu" {
        // Without XDG_RUNTIME_DIR, re-run once with a private one so that
        // Mesa's Vulkan layer prints no "error: XDG_RUNTIME_DIR" line.
        if let Some(code) = wgsample::gpu::rerun_with_runtime_dir() {
            std::process::exit(code);
        }
    }
    let model = CharModel::build(CORPUS);
    let v = model.vocab();
    let ctx = if o.backend == "cpu" {
        None
    } else {
        match wgsample::gpu::open_device() {
            Ok(ctx) => Some(ctx),
            Err(e) => {
                println!("no GPU adapter ({e}); running the CPU backend instead");
                None
            }
        }
    };
    match &ctx {
        Some(c) => println!("backend: GPU, {}", c.describe()),
        None => println!("backend: CPU"),
    }
    println!(
        "model: character bigram of README.md + SPEC.md ({} characters, vocabulary {v})",
        CORPUS.len()
    );
    let prompt: Vec<u32> = o
        .prompt
        .chars()
        .map(|c| *model.index.get(&fold(c)).unwrap_or(&0))
        .collect();
    let Some(&start) = prompt.last() else {
        eprintln!("error: --prompt must not be empty");
        std::process::exit(2)
    };
    println!(
        "prompt: {:?}; stop at a blank line or {} characters\n",
        o.prompt, o.max_new_tokens
    );

    let base = |t: f32| SamplingParams {
        temperature: t,
        seed: o.seed,
        ..Default::default()
    };
    let mut runs: Vec<(String, SamplingParams)> = vec![
        ("greedy".into(), base(0.0)),
        ("temperature 0.2".into(), base(0.2)),
        ("temperature 1.0".into(), base(1.0)),
        ("temperature 1.5".into(), base(1.5)),
        (
            "top-k 40".into(),
            SamplingParams {
                top_k: 40,
                ..base(1.0)
            },
        ),
        (
            "top-p 0.9, T 1.0".into(),
            SamplingParams {
                top_p: 0.9,
                ..base(1.0)
            },
        ),
        (
            "min-p 0.05".into(),
            SamplingParams {
                min_p: 0.05,
                ..base(1.0)
            },
        ),
        (
            "greedy + repetition penalty 1.3".into(),
            SamplingParams {
                repetition_penalty: 1.3,
                ..base(0.0)
            },
        ),
        (
            "top-p 0.9 + presence 0.5, frequency 0.3".into(),
            SamplingParams {
                top_p: 0.9,
                presence_penalty: 0.5,
                frequency_penalty: 0.3,
                ..base(1.0)
            },
        ),
    ];
    let custom = o.temperature.is_some()
        || o.top_k.is_some()
        || o.top_p.is_some()
        || o.min_p.is_some()
        || o.repetition_penalty.is_some();
    if o.strategy != "all" || custom {
        let key = o.strategy.as_str();
        runs.retain(|(name, _)| key == "all" || name.starts_with(key));
        if custom {
            let p = SamplingParams {
                temperature: o.temperature.unwrap_or(1.0),
                top_k: o.top_k.unwrap_or(0),
                top_p: o.top_p.unwrap_or(1.0),
                min_p: o.min_p.unwrap_or(0.0),
                repetition_penalty: o.repetition_penalty.unwrap_or(1.0),
                seed: o.seed,
                ..Default::default()
            };
            runs = vec![("custom".into(), p)];
        }
    }
    let detok = |t: u32| {
        model
            .chars
            .get(t as usize)
            .map(|c| c.to_string())
            .unwrap_or_default()
    };
    let criteria = StopCriteria::new(o.max_new_tokens).with_stop_string("\n\n");
    let states = [wgsample::RowState::new(&prompt)];
    let t_all = Instant::now();
    for (name, p) in &runs {
        if let Err(e) = p.validate(0, v) {
            eprintln!("error: {e}");
            std::process::exit(2)
        }
        let params = [p.clone()];
        let mut spec = DecodeSpec::new(&params, &criteria);
        spec.detokenizer = Some(&detok);
        spec.states = Some(&states);
        let backend = match &ctx {
            Some(c) => Backend::Gpu(c),
            None => Backend::Cpu,
        };
        let t = Instant::now();
        let out = match generate(&model.table, v, &[start], &spec, backend, |_| {}) {
            Ok(out) => out,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1)
            }
        };
        let el = t.elapsed();
        let seq = &out.sequences[0];
        let n = seq.tokens.len().max(1);
        println!(
            "== {name}: {} chars, {:.0} us/step ({}), read back {} bytes\n{}{}\n",
            seq.tokens.len(),
            el.as_secs_f64() * 1e6 / n as f64,
            seq.stop_reason.as_str(),
            out.stats.bytes_mapped,
            o.prompt,
            show(&seq.text)
        );
    }
    if o.strategy == "all" || o.strategy == "beam" {
        let cfg = BeamConfig {
            num_beams: o.beams,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::True,
            eos_token_ids: model.index.get(&'.').copied().into_iter().collect(),
            max_new_tokens: o.max_new_tokens.min(60),
            num_return_sequences: o.beams.min(2),
        };
        let backend = match &ctx {
            Some(c) => BeamBackend::Gpu(c),
            None => BeamBackend::Cpu,
        };
        let t = Instant::now();
        match beam_search_bigram(&model.table, v, start, &cfg, backend) {
            Ok(hyps) => {
                println!(
                    "== beam search, {} beams, until '.' ({:.1} ms)",
                    o.beams,
                    t.elapsed().as_secs_f64() * 1e3
                );
                for h in hyps {
                    println!(
                        "{}{}   (score {:.3})",
                        o.prompt,
                        show(&model.text(&h.tokens)),
                        h.score
                    );
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1)
            }
        }
    }
    println!("\ntotal {:.2} s", t_all.elapsed().as_secs_f64());
}
