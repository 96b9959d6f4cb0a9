//! What building a step's `info` costs: the Swimmer's seven values into `rebel_envs::Info` against the
//! `BTreeMap<String, f64>` it replaced, interleaved in one process (run it pinned to one core):
//!
//!     taskset -c 1 cargo run --release -p rebel-envs --example info_cost
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use rebel_envs::Info;

const NAMES: [&str; 7] = ["x_position", "y_position", "distance_from_origin", "x_velocity", "y_velocity", "reward_forward", "reward_ctrl"];

fn main() {
    let n = 2_000_000u32;
    for round in 1..=3 {
        let t = Instant::now();
        for i in 0..n {
            let mut m: BTreeMap<String, f64> = BTreeMap::new();
            for (j, k) in NAMES.iter().enumerate() {
                m.insert((*k).to_string(), black_box(f64::from(i) + j as f64));
            }
            black_box(&m);
        }
        let map_ns = t.elapsed().as_nanos() as f64 / f64::from(n);
        let t = Instant::now();
        for i in 0..n {
            let mut info = Info::with_capacity(8);
            for (j, k) in NAMES.iter().enumerate() {
                info.insert(k, black_box(f64::from(i) + j as f64));
            }
            black_box(&info);
        }
        let info_ns = t.elapsed().as_nanos() as f64 / f64::from(n);
        println!("round {round}: BTreeMap<String, f64> {map_ns:.0} ns, Info {info_ns:.0} ns per step's seven values");
    }
}
