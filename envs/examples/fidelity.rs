//! Prints how closely the Swimmer follows MuJoCo on the reference rollouts.
//! `cargo run --release -p rebel-envs --example fidelity -- [key=value ...]` (Swimmer options).
use rebel_envs::{csvio, fidelity, swimmer::SwimmerConfig, EnvConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = SwimmerConfig::from_env_config(&EnvConfig::from_pairs(&args)?)?;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mujoco");
    for (file, steps) in [
        ("swimmer_v5_a_zeros.csv", None),
        ("swimmer_v5_b_const_p1_m1.csv", None),
        ("swimmer_v5_c1_sin_w2.9_phi-25deg_goodgait.csv", None),
        ("swimmer_v5_c3_sin_w4.0_phi180deg_antiphase.csv", Some(600)),
        ("swimmer_v5_d_uniform_random_seed20240607.csv", None),
    ] {
        let t = csvio::read_table(&dir.join(file))?;
        let t0 = std::time::Instant::now();
        let r = fidelity::compare(&cfg, &t, steps)?;
        println!(
            "{file:50} contact@{:>4} err_before={:.2e} err_all={:.2e} return ours={:9.3} mujoco={:9.3} diff={:+7.3} ({:.2}s)",
            r.first_limit_contact.map(|c| c.to_string()).unwrap_or("-".into()),
            r.max_qpos_err_before_contact, r.max_qpos_err, r.return_ours, r.return_mujoco,
            r.return_ours - r.return_mujoco, t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
