//! Acting cost per batched step: the plain-Rust [`Actor`] against the libtorch policy (the path rollouts took
//! before: a tensor from the observations, the policy's sample, the actions back to a Vec), interleaved in one
//! process so that the machine's state is the same for both.
//!
//!     taskset -c 1 cargo run --release -p rebel-agents --example actor_speed [N_ENVS] [CALLS]
use rebel_agents::policy::{GaussianPolicy, PolicyConfig};
use rebel_agents::seeding::ChaCha8Rng;
use rand::SeedableRng;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let calls: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    tch::set_num_threads(1);
    let p = GaussianPolicy::new(PolicyConfig::new(8, 2), Device::Cpu, Kind::Float, 1);
    let actor = p.actor();
    let obs: Vec<f32> = (0..n * 8).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.2).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let torch = |rng: &mut ChaCha8Rng| {
        let o = Tensor::from_slice(&obs).view([n as i64, 8]);
        let a = p.sample(&o, rng);
        Vec::<f32>::try_from(a.to_kind(Kind::Float).view([-1])).unwrap()
    };
    let (mut t_torch, mut t_actor, mut sink) = (0.0, 0.0, 0f32);
    for round in 0..5 {
        let t0 = Instant::now();
        for _ in 0..calls / 5 {
            sink += torch(&mut rng)[0];
        }
        let t1 = Instant::now();
        for _ in 0..calls / 5 {
            sink += actor.act(&obs, n, Some(&mut rng))[0];
        }
        let t2 = Instant::now();
        if round > 0 {
            t_torch += (t1 - t0).as_secs_f64();
            t_actor += (t2 - t1).as_secs_f64();
        }
    }
    let per = |t: f64| 1e6 * t / (calls as f64 * 4.0 / 5.0);
    println!(
        "{n} envs: libtorch policy {:.1} µs per batched step, plain-Rust actor {:.1} µs ({:.2}×); per env step {:.2} vs {:.2} µs  [{sink:.1}]",
        per(t_torch),
        per(t_actor),
        t_torch / t_actor,
        per(t_torch) / n as f64,
        per(t_actor) / n as f64
    );
    println!("{}", serde_json::json!({"n_envs": n, "libtorch_us": per(t_torch), "actor_us": per(t_actor)}));
}
