//! Draws time against vocabulary size, one line per path, from the plain
//! tables the benches print (`benches/matrix.rs`, `scripts/torch_peer.py`):
//!
//! ```sh
//! cargo run -p wgsample-peers --release --bin bench_plot -- \
//!     --out docs/bench_vocab.svg [--strategy topk50+topp0.9] [--title T] LOG...
//! ```
//!
//! Every table in every log is read and merged by (batch, vocab, strategy);
//! one panel per batch size, log-scale time axis, SVG only (plotters' SVG
//! backend, no fonts needed).
use std::collections::{BTreeMap, BTreeSet};

use plotters::prelude::*;
use wgsample_peers::parse_tables;

fn main() {
    let mut out = String::from("docs/bench_vocab.svg");
    let mut strategy = String::from("topk50+topp0.9");
    let mut title: Option<String> = None;
    let mut logs: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = args.next().expect("--out FILE"),
            "--strategy" => strategy = args.next().expect("--strategy NAME"),
            "--title" => title = Some(args.next().expect("--title TEXT")),
            "-h" | "--help" => {
                eprintln!("bench_plot --out FILE.svg [--strategy NAME] [--title TEXT] LOG...");
                return;
            }
            _ => logs.push(a),
        }
    }
    assert!(
        !logs.is_empty(),
        "give at least one log holding a bench table"
    );

    // series name -> batch -> [(vocab, µs)]
    let mut series: BTreeMap<String, BTreeMap<u64, Vec<(u64, f64)>>> = BTreeMap::new();
    let mut notes: Vec<String> = Vec::new();
    for log in &logs {
        let text = std::fs::read_to_string(log).unwrap_or_else(|e| panic!("{log}: {e}"));
        for t in parse_tables(&text) {
            notes.extend(
                t.notes
                    .iter()
                    .filter(|n| n.starts_with("adapter") || n.starts_with("device"))
                    .cloned(),
            );
            for ((b, v, s), cols) in &t.rows {
                if *s != strategy {
                    continue;
                }
                for (name, us) in cols {
                    series
                        .entry(name.clone())
                        .or_default()
                        .entry(*b)
                        .or_default()
                        .push((*v, *us));
                }
            }
        }
    }
    let batches: BTreeSet<u64> = series.values().flat_map(|m| m.keys().copied()).collect();
    assert!(
        !batches.is_empty(),
        "no rows for strategy {strategy:?} in {logs:?}"
    );
    let all: Vec<(u64, f64)> = series
        .values()
        .flat_map(|m| m.values().flatten().copied())
        .collect();
    let (vmin, vmax) = all
        .iter()
        .fold((u64::MAX, 0), |(a, b), &(v, _)| (a.min(v), b.max(v)));
    let (ymin, ymax) = all
        .iter()
        .fold((f64::MAX, 0f64), |(a, b), &(_, y)| (a.min(y), b.max(y)));
    let x0 = vmin as f64 * 0.8 / 1000.0;
    let x1 = vmax as f64 * 1.1 / 1000.0;
    let y0 = ymin / 2.0;
    let y1 = ymax * 12.0; // headroom for the legend

    let colours = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    let names: Vec<&String> = series.keys().collect();
    let nb = batches.len() as u32;
    let root = SVGBackend::new(&out, (900, 80 + 440 * nb)).into_drawing_area();
    root.fill(&WHITE).unwrap();
    let heading = title.unwrap_or_else(|| {
        let dev = notes.first().cloned().unwrap_or_default();
        format!("{strategy}: median time per sampling step ({dev})")
    });
    let (top, body) = root.split_vertically(60);
    top.titled(&heading, ("sans-serif", 18)).unwrap();
    for (panel, b) in body.split_evenly((nb as usize, 1)).iter().zip(&batches) {
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("batch {b}"), ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .unwrap();
        chart
            .configure_mesh()
            .x_desc("vocabulary size (tokens)")
            .y_desc("µs per step (log)")
            .light_line_style(RGBColor(238, 238, 238))
            .x_label_formatter(&|x| format!("{x:.0}k"))
            .y_label_formatter(&|y| {
                if *y >= 1.0 {
                    format!("{y:.0}")
                } else {
                    format!("{y:.2}")
                }
            })
            .draw()
            .unwrap();
        for (i, name) in names.iter().enumerate() {
            let Some(pts) = series[*name].get(b) else {
                continue;
            };
            let mut pts: Vec<(f64, f64)> =
                pts.iter().map(|&(v, y)| (v as f64 / 1000.0, y)).collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let c = colours[i % colours.len()];
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .unwrap()
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
                .unwrap();
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .unwrap();
    }
    root.present().unwrap();
    eprintln!("bench_plot: wrote {out}");
}
