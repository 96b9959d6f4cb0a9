//! Square-wave ("bang-bang") gaits that slam both Swimmer joints into their ±100° limits, from
//! rest: the return here for several joint-limit settings, to set beside MuJoCo's
//! (`scripts/bang_bang_mujoco.py` prints the same gaits in MuJoCo).
//! `cargo run --release -p rebel-envs --example bang_bang`
use rebel_envs::{swimmer::Swimmer, ConfigValue, Env, EnvConfig};

fn run(w: f64, phi_deg: f64, opts: &[(&str, ConfigValue)]) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    // Rapier's step (revision 1) unless a row asks for MuJoCo's RK4 step
    let mut cfg = EnvConfig::new().with("reset_noise_scale", ConfigValue::Float(0.0)).with("rk4_integrator", ConfigValue::Bool(false));
    for (k, v) in opts {
        cfg.set(k, v.clone());
    }
    let mut env = Swimmer::new(&cfg)?;
    env.reset(Some(0))?;
    let (mut ret, mut qmax) = (0.0, 0.0f64);
    let phi = phi_deg.to_radians();
    for k in 0..1000 {
        let t = k as f64 * env.dt();
        let a = [(w * t).sin().signum() as f32, (w * t + phi).sin().signum() as f32];
        ret += env.step(&a)?.reward;
        let q = env.qpos();
        qmax = qmax.max(q[3].abs()).max(q[4].abs());
    }
    Ok((ret, qmax.to_degrees()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings: Vec<(&str, Vec<(&str, ConfigValue)>)> = vec![
        ("Rapier's step (hard limits, 1e6 Hz)", vec![]),
        ("substeps=4", vec![("substeps", ConfigValue::Int(4))]),
        ("limit 25 Hz, ζ=1", vec![("limit_natural_frequency", ConfigValue::Float(25.0))]),
        ("limit 8 Hz, ζ=1", vec![("limit_natural_frequency", ConfigValue::Float(8.0))]),
        ("limit 8 Hz, ζ=0.3", vec![("limit_natural_frequency", ConfigValue::Float(8.0)), ("limit_damping_ratio", ConfigValue::Float(0.3))]),
        ("MuJoCo's soft limits", vec![("mujoco_limits", ConfigValue::Bool(true))]),
        ("MuJoCo's soft limits, 1 iteration", vec![("mujoco_limits", ConfigValue::Bool(true)), ("solver_iterations", ConfigValue::Int(1))]),
        ("MuJoCo's soft limits, 4 × 1", vec![("mujoco_limits", ConfigValue::Bool(true)), ("substeps", ConfigValue::Int(4)), ("solver_iterations", ConfigValue::Int(1))]),
        ("MuJoCo's RK4 step (and soft limits)", vec![("rk4_integrator", ConfigValue::Bool(true))]),
    ];
    for (w, phi) in [(2.125, -7.5), (2.9, -25.0), (1.5, 0.0)] {
        for (name, opts) in &settings {
            let (ret, qmax) = run(w, phi, opts)?;
            println!("w={w:<5} phi={phi:>6}°  {name:32} return {ret:8.2}  max |q| {qmax:6.2}°");
        }
    }
    Ok(())
}
