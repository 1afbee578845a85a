use std::time::Instant;
fn main() {
    let v = 128256;
    let x: Vec<f32> = (0..v)
        .map(|i| ((i * 7919 % 1000) as f32) * 0.006 - 3.0)
        .collect();
    for _ in 0..3 {
        let t = Instant::now();
        let mut s = 0.0;
        for _ in 0..100 {
            s += wgsample::probe::sum_exp(&x, 3.0);
        }
        let t1 = t.elapsed() / 100;
        let t = Instant::now();
        let mut m = 0.0;
        for _ in 0..100 {
            m += wgsample::probe::max_and_check(&x).0;
        }
        let t2 = t.elapsed() / 100;
        println!("sum_exp {t1:?} max {t2:?} {s} {m}");
    }
}
