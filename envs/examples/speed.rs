//! Quick single-env speed probe: `cargo run --release -p rebel-envs --example speed -- [steps] [key=value ...]`.
use rebel_envs::{swimmer::Swimmer, Env, EnvConfig};
fn main() {
    let mut args = std::env::args().skip(1);
    let steps: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(20000);
    let rest: Vec<String> = args.collect();
    let mut env = Swimmer::new(&EnvConfig::from_pairs(&rest).unwrap()).unwrap();
    env.reset(Some(0)).unwrap();
    let t = std::time::Instant::now();
    let mut x = 0.1f32;
    for k in 0..steps {
        x = (x * 3.9 * (1.0 - x)).clamp(0.01, 0.99);
        env.step(&[2.0 * x - 1.0, 1.0 - 2.0 * x]).unwrap();
        if k % 1000 == 999 { env.reset(None).unwrap(); }
    }
    let s = t.elapsed().as_secs_f64();
    println!("{steps} steps in {s:.3}s = {:.0} env steps/s", steps as f64 / s);
}
