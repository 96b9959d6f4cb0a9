//! `replay`, `bench` and `render`: the environment-only subcommands.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rebel_envs::csvio::{g17, read_actions};
use rebel_envs::registry;
use rebel_envs::render::GifRecorder;
use rebel_envs::vec_env::VecEnv;
use rebel_envs::{Env, EnvConfig};

use super::{checkpoint_env, env_config, EnvArgs};

/// `replay`: run an action sequence from the exact rest state and write every state.
#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// CSV with the header `action0,action1,...`, one row per step.
    #[arg(long)]
    pub actions: PathBuf,
    /// Where to write the states: `step,qpos..,qvel..,obs..,reward,x_velocity` (17 significant digits).
    #[arg(long)]
    pub output: PathBuf,
    /// Reset noise scale (0: the exact rest state).
    #[arg(long, default_value_t = 0.0)]
    pub reset_noise: f64,
    /// Seed of the reset (matters only with reset noise).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Makes the environment `id` with options `cfg`.
fn make_env(id: &str, cfg: &EnvConfig) -> Result<Box<dyn Env>> {
    registry::make(id, cfg).with_context(|| format!("cannot make environment {id}"))
}

/// `args` with `--reset-noise` as one more (the last, so winning) `--env-opt reset_noise_scale`.
fn with_reset_noise(args: &EnvArgs, scale: f64) -> EnvArgs {
    let mut args = args.clone();
    args.env_opts.push(format!("reset_noise_scale={scale}"));
    args
}

/// Writes `text` to `path` through a temporary file and a rename (no half-written outputs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    rebel_agents::io::write_atomic(path, bytes)
        .with_context(|| format!("cannot write {} (is the disk full or the folder read-only?)", path.display()))
}

/// Runs `replay`.
pub fn replay(env_args: &EnvArgs, a: &ReplayArgs) -> Result<()> {
    let args = with_reset_noise(env_args, a.reset_noise);
    let mut env = make_env(&args.env, &env_config(&args)?)?;
    let act_dim = env.action_space().dim();
    let actions = read_actions(&a.actions, act_dim)?;
    let limit = env.max_episode_steps().or_else(|| registry::registered_max_episode_steps(&env_args.env).ok().flatten());
    if let Some(max) = limit {
        if actions.len() > max {
            bail!(
                "{}: {} action rows but an episode of {} ends after {max} steps (rows from line {} on would run past the time limit); trim the file to {max} rows",
                a.actions.display(), actions.len(), env_args.env, max + 2
            );
        }
    }
    let (obs0, _) = env.reset(Some(a.seed))?;
    let (qp, qv) = env.qpos_qvel().unwrap_or_default();
    let mut header = vec!["step".to_string()];
    header.extend((0..qp.len()).map(|i| format!("qpos{i}")));
    header.extend((0..qv.len()).map(|i| format!("qvel{i}")));
    header.extend((0..obs0.len()).map(|i| format!("obs{i}")));
    header.push("reward".into());
    header.push("x_velocity".into());
    let mut rows = Vec::with_capacity(actions.len());
    for (k, act) in actions.iter().enumerate() {
        let s = env.step(act).with_context(|| format!("{}: step {k} (line {})", a.actions.display(), k + 2))?;
        let (qp, qv) = env.qpos_qvel().unwrap_or_default();
        let mut row = vec![k.to_string()];
        row.extend(qp.iter().chain(qv.iter()).map(|v| g17(*v)));
        row.extend(s.obs.iter().map(|v| g17(*v as f64)));
        row.push(g17(s.reward));
        row.push(g17(s.info.get("x_velocity").copied().unwrap_or(f64::NAN)));
        rows.push(row);
        if s.done() && k + 1 < actions.len() {
            bail!("the episode ended at step {k} (terminated={}, truncated={}) before the actions did", s.terminated, s.truncated);
        }
    }
    write_atomic(&a.output, rebel_envs::csvio::to_csv(&header, &rows)?.as_bytes())?;
    eprintln!("wrote {} steps to {}", actions.len(), a.output.display());
    Ok(())
}

/// `bench`: random actions through the vectorised env.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Total env steps (over all envs).
    #[arg(long, default_value_t = 100_000)]
    pub steps: u64,
    /// Number of environments.
    #[arg(long, default_value_t = 1)]
    pub envs: usize,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Seed of the actions and resets.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs `bench`; the last stdout line is one JSON object.
pub fn bench(env_args: &EnvArgs, a: &BenchArgs) -> Result<()> {
    if a.envs == 0 || a.threads == 0 || a.steps == 0 {
        bail!("--steps, --envs and --threads must be at least 1");
    }
    let cfg = env_config(env_args)?;
    let mut venv = VecEnv::make(&env_args.env, &cfg, a.envs, a.threads)?;
    let (n, ad) = (venv.num_envs(), venv.act_dim());
    let (lo, hi) = (venv.action_space().low.clone(), venv.action_space().high.clone());
    if lo.iter().chain(&hi).any(|x| !x.is_finite()) {
        bail!("bench draws actions uniformly from the action space, and {}'s is unbounded here (clip_actions=true makes it so): leave that option out", env_args.env);
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(a.seed);
    venv.reset(Some(a.seed))?;
    let iters = a.steps.div_ceil(n as u64);
    let mut actions = vec![0f32; n * ad];
    let t0 = Instant::now();
    for _ in 0..iters {
        for (i, x) in actions.iter_mut().enumerate() {
            let d = i % ad;
            *x = rng.random_range(lo[d]..=hi[d]);
        }
        venv.step(&actions)?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let steps = iters * n as u64;
    let sps = steps as f64 / secs;
    println!("{}: {steps} env steps, {n} envs, {} threads: {secs:.3} s, {sps:.0} env steps/s", env_args.env, a.threads);
    println!(
        "{}",
        serde_json::json!({"env": env_args.env, "steps": steps, "envs": n, "threads": a.threads,
                           "seconds": secs, "env_steps_per_sec": sps, "machine": rebel_agents::machine::Machine::current()})
    );
    Ok(())
}

/// `render`: an episode to an animated GIF (or the last frame to PNG).
#[derive(Args, Debug, Clone)]
pub struct RenderArgs {
    /// Output file: `.gif` (animation) or `.png` (the last frame).
    #[arg(long)]
    pub output: PathBuf,
    /// Actions to play, CSV with header `action0,action1,...`.
    #[arg(long, conflicts_with_all = ["gait", "checkpoint"])]
    pub actions: Option<PathBuf>,
    /// A checkpoint whose policy plays (mean action).
    #[arg(long, conflicts_with = "gait")]
    pub checkpoint: Option<PathBuf>,
    /// Open-loop sinusoid `W,PHI_DEG`: a_k = [sin(W t), sin(W t + PHI)] for every actuator pair.
    #[arg(long, value_name = "W,PHI_DEG")]
    pub gait: Option<String>,
    /// Episode steps to render (default: the whole action file, or the episode length).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Reset noise scale (0: the exact rest state).
    #[arg(long, default_value_t = 0.0)]
    pub reset_noise: f64,
    /// Reset seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Image width and height in pixels.
    #[arg(long, default_value_t = 320)]
    pub size: u32,
    /// Draw every k-th step as a frame.
    #[arg(long, default_value_t = 2)]
    pub every: usize,
}

/// Parses `W,PHI_DEG`.
fn parse_gait(s: &str) -> Result<(f64, f64)> {
    let parts: Vec<&str> = s.split(',').collect();
    let bad = || anyhow::anyhow!("--gait takes W,PHI_DEG (e.g. 2.125,-7.5), got '{s}'");
    if parts.len() != 2 {
        return Err(bad());
    }
    let w: f64 = parts[0].trim().parse().map_err(|_| bad())?;
    let p: f64 = parts[1].trim().parse().map_err(|_| bad())?;
    if !w.is_finite() || !p.is_finite() {
        return Err(bad());
    }
    Ok((w, p.to_radians()))
}

/// An open-loop action source for `render`.
pub enum Driver {
    /// Fixed action rows.
    Actions(Vec<Vec<f32>>),
    /// a_k = [sin(w t_k), sin(w t_k + phi)] with t_k = k dt.
    Gait { w: f64, phi: f64, dt: f64, act_dim: usize },
}

impl Driver {
    /// The action of step `k`, if the driver has one.
    pub fn action(&self, k: usize) -> Option<Vec<f32>> {
        match self {
            Driver::Actions(rows) => rows.get(k).cloned(),
            Driver::Gait { w, phi, dt, act_dim } => {
                let t = k as f64 * dt;
                Some((0..*act_dim).map(|i| (w * t + if i % 2 == 1 { *phi } else { 0.0 }).sin() as f32).collect())
            }
        }
    }
}

/// Plays `driver` in `env` for up to `steps` steps, drawing frames; writes GIF or PNG.
pub fn render_episode(
    env: &mut dyn Env,
    mut next_action: impl FnMut(usize, &[f32]) -> Option<Vec<f32>>,
    steps: usize,
    seed: u64,
    output: &Path,
    size: u32,
    every: usize,
) -> Result<(usize, f64)> {
    let (mut obs, _) = env.reset(Some(seed))?;
    let scene = env.planar_scene().with_context(|| format!("{} has no top-down view to render", env.id()))?;
    let is_png = output.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
    let is_gif = output.extension().is_some_and(|e| e.eq_ignore_ascii_case("gif"));
    if !is_png && !is_gif {
        bail!("--output must end in .gif or .png, got {}", output.display());
    }
    let mut rec = GifRecorder::new(size, size, env.dt(), every.max(1))?;
    rec.push(&scene)?;
    let (mut done, mut ret) = (0usize, 0.0);
    for k in 0..steps {
        let Some(a) = next_action(k, &obs) else { break };
        let s = env.step(&a)?;
        ret += s.reward;
        done += 1;
        obs = s.obs.clone();
        if is_gif {
            if let Some(sc) = env.planar_scene() {
                rec.push(&sc)?;
            }
        }
        if s.done() {
            break;
        }
    }
    if is_png {
        let sc = env.planar_scene().expect("checked above");
        rebel_envs::render::save_png(output, &sc, size, size)?;
    } else {
        rec.finish(output)?;
    }
    Ok((done, ret))
}

/// Runs `render` (open-loop actions, or a checkpoint's policy).
pub fn render(env_args: &EnvArgs, a: &RenderArgs) -> Result<()> {
    let checkpoint = match &a.checkpoint {
        Some(path) => Some((path, rebel_agents::eval::load_policy_and_meta(path, tch::Device::Cpu)?)),
        None => None,
    };
    // it replaces a recorded reset_noise_scale, and says so
    let args = with_reset_noise(env_args, a.reset_noise);
    let (id, cfg) = match &checkpoint {
        Some((path, (_, meta))) => checkpoint_env(&args, meta, path)?,
        None => (args.env.clone(), env_config(&args)?),
    };
    let mut env = make_env(&id, &cfg)?;
    let act_dim = env.action_space().dim();
    let steps = a.steps.or(env.max_episode_steps()).unwrap_or(1000);
    let (n, ret) = if let Some((path, (policy, meta))) = &checkpoint {
        if policy.obs_dim() != env.observation_space().dim() || policy.act_dim() != act_dim {
            bail!("{} holds a policy of other dimensions than {id} (trained on {})", path.display(), meta.env_id);
        }
        render_episode(env.as_mut(), |_, obs| Some(policy.act_mean(obs)), steps, a.seed, &a.output, a.size, a.every)?
    } else {
        let driver = match (&a.actions, &a.gait) {
            (Some(p), None) => Driver::Actions(read_actions(p, act_dim)?),
            (None, Some(g)) => {
                let (w, phi) = parse_gait(g)?;
                Driver::Gait { w, phi, dt: env.dt(), act_dim }
            }
            _ => bail!("give one of --actions FILE.csv, --gait W,PHI_DEG or --checkpoint FILE"),
        };
        render_episode(env.as_mut(), |k, _| driver.action(k), steps, a.seed, &a.output, a.size, a.every)?
    };
    eprintln!("rendered {n} steps (return {ret:.2}) to {}", a.output.display());
    Ok(())
}
