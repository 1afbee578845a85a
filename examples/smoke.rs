use wgsample::*;
fn main() {
    let l: Vec<f32> = vec![0.0, 2f32.ln(), 3f32.ln(), 4f32.ln(), f32::NEG_INFINITY];
    for p in [
        SamplingParams {
            top_k: 2,
            ..Default::default()
        },
        SamplingParams {
            top_p: 0.5,
            ..Default::default()
        },
        SamplingParams {
            min_p: 0.5,
            ..Default::default()
        },
        SamplingParams::greedy(),
        SamplingParams::default(),
    ] {
        let d = filtered_distribution(Logits::F32(&l), &p, &RowState::default()).unwrap();
        println!("{:?} {:?}", d.tokens, d.probs);
    }
    let mut s = CpuSampler::new();
    let mut counts = [0u32; 5];
    let mut st = vec![RowState::default()];
    for _ in 0..10000 {
        let o = s
            .sample(Logits::F32(&l), 5, &[SamplingParams::default()], &mut st)
            .unwrap();
        counts[o[0].token as usize] += 1;
    }
    println!(
        "{counts:?} lp {:?}",
        s.sample(Logits::F32(&l), 5, &[SamplingParams::greedy()], &mut st)
            .unwrap()
    );
    // big top-p
    let v = 200000;
    let big: Vec<f32> = (0..v).map(|i| ((i * 7919) % 1000) as f32 * 0.001).collect();
    let p = SamplingParams {
        top_p: 0.3,
        ..Default::default()
    };
    let d = filtered_distribution(Logits::F32(&big), &p, &RowState::default()).unwrap();
    let mut zs: Vec<f32> = big.clone();
    zs.sort_by(|a, b| b.total_cmp(a));
    let tot: f64 = zs.iter().map(|&x| ((x - 0.999) as f64).exp()).sum();
    let mut run = 0.0;
    let mut cut = 0.0;
    for &x in &zs {
        run += ((x - 0.999) as f64).exp();
        if run >= 0.3 * tot {
            cut = x;
            break;
        }
    }
    println!(
        "top-p big: {} survivors, min z {}, naive cut {cut}, naive count {}",
        d.tokens.len(),
        big[*d.tokens.last().unwrap() as usize],
        big.iter().filter(|&&x| x >= cut).count()
    );
}
