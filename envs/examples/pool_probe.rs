//! Where the vectorised env's second thread loses time: steps `N` environments (the Swimmer unless
//! named) on one thread, then on the pool of two threads, reporting per call the wall time, each
//! thread's busy time and the mean time of one environment's step, then as two independent one-thread
//! loops of `N / 2` (no pool, no barrier), which is what the machine gives two threads.
//!
//!     taskset -c 0,1 cargo run --release -p rebel-envs --example pool_probe -- [N] [CALLS] [ENV_ID]
use rebel_envs::{EnvConfig, VecEnv};
use std::sync::Mutex;
use std::time::Instant;

fn actions(v: &VecEnv) -> Vec<f32> {
    (0..v.num_envs() * v.act_dim()).map(|i| (i as f32 * 0.37).sin()).collect()
}

fn make(n: usize, threads: usize) -> VecEnv {
    let id = std::env::args().nth(3).unwrap_or_else(|| "Swimmer-v5".into());
    let mut v = VecEnv::make(&id, &EnvConfig::default(), n, threads).expect("a registered environment");
    v.reset(Some(1)).expect("reset");
    v
}

/// Per call on the pool: (wall, busiest thread, mean busy per thread, mean env step), in µs.
fn on_pool(n: usize, calls: usize) -> [f64; 4] {
    let mut v = make(n, 2);
    let (a, d) = (actions(&v), v.act_dim());
    let mut sum = [0.0; 4];
    for _ in 0..calls {
        let spans: Mutex<Vec<(bool, f64)>> = Mutex::new(Vec::with_capacity(n));
        let t0 = Instant::now();
        v.par_map(|i, env| {
            let start = Instant::now();
            if env.step(&a[i * d..(i + 1) * d]).expect("step").done() {
                env.reset(None).expect("reset");
            }
            let worker = std::thread::current().name().is_some_and(|s| s.starts_with("rebel-vecenv"));
            spans.lock().unwrap().push((worker, start.elapsed().as_secs_f64()));
        });
        let wall = t0.elapsed().as_secs_f64();
        let spans = spans.into_inner().unwrap();
        let busy = |w: bool| spans.iter().filter(|s| s.0 == w).map(|s| s.1).sum::<f64>();
        let (b0, b1) = (busy(false), busy(true));
        for (k, x) in [wall, b0.max(b1), (b0 + b1) / 2.0, (b0 + b1) / n as f64].into_iter().enumerate() {
            sum[k] += x * 1e6 / calls as f64;
        }
    }
    sum
}

/// µs per env step of `calls` steps of `v` (all its environments at once).
fn us_per_step(mut v: VecEnv, calls: usize) -> f64 {
    let a = actions(&v);
    let t0 = Instant::now();
    for _ in 0..calls {
        v.step(&a).expect("step");
    }
    t0.elapsed().as_secs_f64() * 1e6 / (calls * v.num_envs()) as f64
}

/// µs per env step of each of two threads stepping `n / 2` environments on their own.
fn independent(n: usize, calls: usize) -> Vec<f64> {
    std::thread::scope(|s| {
        let h: Vec<_> = (0..2).map(|_| s.spawn(|| us_per_step(make(n / 2, 1), calls))).collect();
        h.into_iter().map(|h| h.join().expect("a probe thread")).collect()
    })
}

fn main() {
    let arg = |k: usize, d: usize| std::env::args().nth(k).map_or(d, |s| s.parse().expect("a number"));
    let (n, calls) = (arg(1, 8), arg(2, 4000));
    let one = us_per_step(make(n, 1), calls);
    let [wall, max, mean, step] = on_pool(n, calls);
    println!("{n} envs, one thread: {one:.1} µs per env step");
    println!("pool of two threads, per call: wall {wall:.1} µs, busiest thread {max:.1}, mean busy {mean:.1}; one env step {step:.1} µs");
    let ind = independent(n, calls);
    println!("two independent threads of {} envs: {:.1} and {:.1} µs per env step", n / 2, ind[0], ind[1]);
}
