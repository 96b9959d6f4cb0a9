//! InvertedDoublePendulum-v5: MuJoCo's cart with two poles in series, from the MJCF file
//! `inverted_double_pendulum.xml` through rapier3d-mjcf.
//!
//! Faithful to Gymnasium 1.4.0's `inverted_double_pendulum_v5.py` on MuJoCo 4.0.0; pinned by
//! `tests/inverted_double_pendulum.rs` against reference rollouts of the real MuJoCo.
//!
//! ## Model (`models/inverted_double_pendulum.xml`)
//! | part | value |
//! |---|---|
//! | cart | slide joint `slider` along x, range ±1 m; capsule r = 0.1, half-length 0.1 (10.472 kg) |
//! | poles | hinges `hinge`, `hinge2` about +y (unlimited), capsules 0.6 m long, r = 0.045 (4.2 kg each); the second on the first's tip |
//! | damping | 0.05 on every joint; armature 0 |
//! | actuator | F = 500 · clip(a, −1, 1) N on the slider |
//! | gravity | (1e-5, 0, −9.81): the tiny x part makes the exact upright rest state fall |
//! | tip | the site at 0.6 m along the second pole: (x, y) = cart + 0.6 (sin θ1 + sin(θ1+θ2), cos θ1 + cos(θ1+θ2)) |
//! | time | timestep 0.01 s (MuJoCo: RK4), `frame_skip` = 5 → dt = 0.05 s |
//!
//! ## Spaces
//! action (1,) in [−1, 1]; observation (9,): qpos[0], sin qpos[1..3], cos qpos[1..3],
//! clip(qvel, −10, 10), clip(qfrc_constraint[0], −10, 10).
//!
//! `qfrc_constraint[0]` is the slider's limit force, zero unless the cart is within MuJoCo's
//! limit margin (0.01 m) of the rail's end. On MuJoCo's RK4 step (the default since session 30) it is the soft
//! limit's force of the step's last stage, as MuJoCo's. On Rapier's step (`rk4_integrator = false`), which does
//! not report constraint forces, it is measured near the limit: the same step is taken a second time without the
//! slider limit, and the difference of the two velocity changes, times the joint-space mass, is the constraint force.
//!
//! ## Reward and end
//! `reward = healthy_reward · (not terminated) − (0.01 x² + (y − 2)²) − (1e-3 v1² + 5e-3 v2²)` with
//! (x, y) the tip and v1, v2 = qvel[1], qvel[2]; info: `reward_survive`, `distance_penalty`,
//! `velocity_penalty`. `terminated` when y ≤ 1. The registry's `TimeLimit` truncates after 1000
//! steps.
//!
//! ## Start
//! `reset`: qpos = U(−s, s)³, qvel = s · N(0, 1)³, `s = reset_noise_scale` (0.1).
//!
//! ## Options (`make("InvertedDoublePendulum-v5", config)`)
//! | key | default | meaning |
//! |---|---|---|
//! | `xml_file` | `"inverted_double_pendulum.xml"` | a shipped model's name or a path to an MJCF file (a slider and two hinges, one actuator, in that order) |
//! | `frame_skip` | 5 | physics steps of `timestep` per env step |
//! | `healthy_reward` | 10.0 | reward per step while the tip is above y = 1 |
//! | `reset_noise_scale` | 0.1 | scale of the reset noise |
//! | `timestep` | 0.01 | MuJoCo's `opt.timestep` (s) |
//! | `substeps` | 1 | Rapier steps per `timestep` |
//! | `solver_iterations` | 4 | Rapier's solver substeps per Rapier step |
//! | `limit_natural_frequency` | 1e6 | Hz, softness of the slider's limit (practically hard) |
//! | `limit_damping_ratio` | 1.0 | damping ratio of the limit softness |
//! | `mujoco_limits` | true (false with `rk4_integrator = false`) | MuJoCo's soft limit on the slider (its soft-constraint law from the model's `solref`/`solimp`, acting from the joint's `margin`, 0.01 m, on; [`MjcfWorld::set_mujoco_limits`]) instead of Rapier's constraint; on Rapier's step (`rk4_integrator = false`) `qfrc_constraint[0]` is then that limit's force at the start of the last physics step, which the step applies |
//! | `rk4_integrator` | true (since session 30; dynamics revision 2) | each `timestep` MuJoCo's own `RK4` step, the model's integrator, without Rapier's step (the soft limit's force recomputed at each of its four stages; [`MjcfWorld::set_rk4_integrator`]); `qfrc_constraint[0]` is then the soft limit's force of the step's last stage, as MuJoCo's is after an RK4 `mj_step`, instead of a twin step's measurement; `substeps` RK4 steps per `timestep`, `solver_iterations` unused; needs `mujoco_limits` (its default then) |
//!
//! Gymnasium's `default_camera_config` and rendering arguments have no counterpart: pictures come
//! from [`Env::planar_scene`].

use rand::rngs::Xoshiro256PlusPlus as StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

use crate::config::EnvConfig;
use crate::env::{check_action, BoxSpace, Capsule2, Env, Info, PlanarScene, Snapshot, Step};
use crate::error::EnvError;
use crate::mjcf::{actuator_forces, JointKind, MjcfModel, MjcfWorld, RapierSettings};
use crate::rapier_world::{validate_rapier_options, WorldState};

/// Registry id.
pub const ID: &str = "InvertedDoublePendulum-v5";
/// Episode length of the registered environment (Gymnasium's `max_episode_steps`).
pub const MAX_EPISODE_STEPS: usize = 1000;

/// The history of this environment's dynamics, one line per revision (see
/// [`crate::registry::register_with_history`]): add a line when a change makes the same options step differently
/// (`envs/tests/dynamics_revisions.rs` fails until one is added).
pub const DYNAMICS_HISTORY: &[&str] = &[
    crate::registry::FIRST_REVISION,
    "session 30: MuJoCo's own RK4 step and soft slider limit by default (rk4_integrator = true, mujoco_limits \
     following it; qfrc_constraint[0] the last RK4 stage's limit force), the model's integrator, where revision 1 took \
     Rapier's semi-implicit step, its hard limit and a twin step's measurement; --env-opt rk4_integrator=false steps \
     as revision 1 did",
];
/// Length of each pole (hinge to tip), m.
pub const POLE_LENGTH: f64 = 0.6;
/// The episode ends when the tip's height is at or below this, m.
pub const MIN_TIP_HEIGHT: f64 = 1.0;
/// MuJoCo's margin of the slider's limit, m: `qfrc_constraint` can be non-zero within it.
pub const SLIDER_MARGIN: f64 = 0.01;

/// Constructor options (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct InvertedDoublePendulumConfig {
    pub xml_file: String,
    pub frame_skip: usize,
    pub healthy_reward: f64,
    pub reset_noise_scale: f64,
    pub timestep: f64,
    pub substeps: usize,
    pub solver_iterations: usize,
    pub limit_natural_frequency: f64,
    pub limit_damping_ratio: f64,
    /// MuJoCo's soft joint limits instead of Rapier's (see [`MjcfWorld::set_mujoco_limits`]).
    pub mujoco_limits: bool,
    /// Each `timestep` MuJoCo's own RK4 step, without Rapier's (see [`MjcfWorld::set_rk4_integrator`]).
    pub rk4_integrator: bool,
}

impl Default for InvertedDoublePendulumConfig {
    fn default() -> Self {
        InvertedDoublePendulumConfig {
            xml_file: "inverted_double_pendulum.xml".into(),
            frame_skip: 5,
            healthy_reward: 10.0,
            reset_noise_scale: 0.1,
            timestep: 0.01,
            substeps: 1,
            solver_iterations: 4,
            limit_natural_frequency: 1.0e6,
            limit_damping_ratio: 1.0,
            mujoco_limits: true,
            rk4_integrator: true,
        }
    }
}

impl InvertedDoublePendulumConfig {
    /// Reads the options from `config`; unknown keys and bad values are errors.
    pub fn from_env_config(config: &EnvConfig) -> Result<Self, EnvError> {
        let d = Self::default();
        let mut r = config.reader(ID);
        let rk4_integrator = r.bool("rk4_integrator", d.rk4_integrator)?;
        let c = InvertedDoublePendulumConfig {
            xml_file: r.string("xml_file", &d.xml_file)?,
            frame_skip: r.usize_in("frame_skip", d.frame_skip, 1, 1000)?,
            healthy_reward: r.f64("healthy_reward", d.healthy_reward)?,
            reset_noise_scale: r.nonneg_f64("reset_noise_scale", d.reset_noise_scale)?,
            timestep: r.nonneg_f64("timestep", d.timestep)?,
            substeps: r.usize_in("substeps", d.substeps, 1, 100)?,
            solver_iterations: r.usize_in("solver_iterations", d.solver_iterations, 1, 100)?,
            limit_natural_frequency: r.nonneg_f64("limit_natural_frequency", d.limit_natural_frequency)?,
            limit_damping_ratio: r.nonneg_f64("limit_damping_ratio", d.limit_damping_ratio)?,
            // MuJoCo's RK4 step needs MuJoCo's limits: they follow it unless given
            mujoco_limits: r.bool("mujoco_limits", rk4_integrator)?,
            rk4_integrator,
        };
        r.finish()?;
        validate_rapier_options(ID, c.timestep, c.limit_natural_frequency)?;
        Ok(c)
    }
}

#[derive(Clone)]
struct State {
    world: WorldState,
    rng: StdRng,
    steps: Option<usize>,
    qfrc_constraint: f64,
}

/// The InvertedDoublePendulum-v5 environment (see the module docs).
pub struct InvertedDoublePendulum {
    cfg: InvertedDoublePendulumConfig,
    model: MjcfModel,
    settings: RapierSettings,
    obs_space: BoxSpace,
    act_space: BoxSpace,
    sim: MjcfWorld,
    /// The same model without the slider's limit, for measuring the limit's force on Rapier's step with its own
    /// limit (the only one that needs it).
    free: Option<MjcfWorld>,
    rng: StdRng,
    steps: Option<usize>,
    /// The slider's constraint force of the last physics step (MuJoCo's `qfrc_constraint[0]`).
    qfrc_constraint: f64,
}

impl InvertedDoublePendulum {
    /// An environment with the given options; the state is the rest pose until `reset`.
    pub fn new(config: &EnvConfig) -> Result<Self, EnvError> {
        Self::with_config(InvertedDoublePendulumConfig::from_env_config(config)?)
    }

    /// An environment from typed options.
    pub fn with_config(cfg: InvertedDoublePendulumConfig) -> Result<Self, EnvError> {
        let model = MjcfModel::load(&cfg.xml_file)?;
        model.expect_shape(ID, Some(3), 1)?;
        let kinds: Vec<JointKind> = model.joints.iter().map(|j| j.kind).collect();
        if kinds != [JointKind::Slide, JointKind::Hinge, JointKind::Hinge] {
            return Err(EnvError::BadOption {
                env: ID.into(),
                key: "xml_file".into(),
                msg: format!("{}: the joints must be a slide then two hinges, got {kinds:?}", model.source),
            });
        }
        let settings = RapierSettings {
            timestep: cfg.timestep,
            substeps: cfg.substeps,
            solver_iterations: cfg.solver_iterations,
            limit_natural_frequency: cfg.limit_natural_frequency,
            limit_damping_ratio: cfg.limit_damping_ratio,
            limit_projection: false,
            contact: None,
        };
        let [lo, hi] = model.actuators[0].ctrl_range.unwrap_or([-1.0, 1.0]);
        let mut sim = MjcfWorld::build(&model, &settings);
        if cfg.mujoco_limits {
            sim.set_mujoco_limits(&model, cfg.timestep);
        }
        sim.use_rk4_integrator(cfg.rk4_integrator, ID, "mujoco_limits=true")?;
        let free = (!cfg.rk4_integrator && !cfg.mujoco_limits).then(|| MjcfWorld::build(&model, &settings));
        Ok(InvertedDoublePendulum {
            obs_space: BoxSpace::uniform(9, f32::NEG_INFINITY, f32::INFINITY),
            act_space: BoxSpace::new(vec![lo as f32], vec![hi as f32]),
            sim,
            free,
            model,
            settings,
            rng: StdRng::seed_from_u64(rand::random()),
            steps: None,
            qfrc_constraint: 0.0,
            cfg,
        })
    }

    /// The options in force.
    pub fn config(&self) -> &InvertedDoublePendulumConfig {
        &self.cfg
    }

    /// The MJCF model.
    pub fn model(&self) -> &MjcfModel {
        &self.model
    }

    /// Generalised positions `[cart x, θ1, θ2]` (MuJoCo's qpos; θ2 relative to the first pole).
    pub fn qpos(&self) -> [f64; 3] {
        let q = self.sim.qpos();
        [q[0], q[1], q[2]]
    }

    /// Generalised velocities (MuJoCo's qvel).
    pub fn qvel(&self) -> [f64; 3] {
        let v = self.sim.qvel();
        [v[0], v[1], v[2]]
    }

    /// The slider's constraint force in the last physics step (MuJoCo's `qfrc_constraint[0]`).
    pub fn qfrc_constraint(&self) -> f64 {
        self.qfrc_constraint
    }

    /// The tip of the second pole (MuJoCo's x, z), m.
    pub fn tip(&self) -> [f64; 2] {
        tip_position(&self.qpos())
    }

    /// Joint-space mass matrix (armature included, damping excluded), ordered like qvel.
    pub fn mass_matrix(&self) -> Option<[[f64; 3]; 3]> {
        let m = self.sim.mass_matrix()?;
        if m.len() != 3 {
            return None;
        }
        Some(std::array::from_fn(|i| std::array::from_fn(|j| m[i][j])))
    }

    /// Sets the state to MuJoCo's `qpos`, `qvel` (a fresh simulator state).
    pub fn set_state(&mut self, qpos: [f64; 3], qvel: [f64; 3]) {
        self.sim.reset_state(&qpos, &qvel);
        self.qfrc_constraint = 0.0;
    }

    /// The observation of the current state.
    pub fn observe(&self) -> Vec<f32> {
        let (q, v) = (self.qpos(), self.qvel());
        let c = |x: f64| x.clamp(-10.0, 10.0);
        [q[0], q[1].sin(), q[2].sin(), q[1].cos(), q[2].cos(), c(v[0]), c(v[1]), c(v[2]), c(self.qfrc_constraint)]
            .iter()
            .map(|x| *x as f32)
            .collect()
    }

    /// One physics step; near the slider's limit also measures the limit's force.
    fn physics_step(&mut self, tau: &[f64]) {
        if self.cfg.rk4_integrator {
            // MuJoCo's step: the soft limit's force of its last stage, as MuJoCo's qfrc_constraint
            self.sim.step(tau);
            self.qfrc_constraint = self.sim.limit_forces().map_or(0.0, |f| f[0]);
            return;
        }
        if self.cfg.mujoco_limits {
            // Rapier's step with MuJoCo's limit: the limit's force of this step, which the step applies
            self.qfrc_constraint = self.sim.constraint_forces(tau).map_or(0.0, |f| f[0]);
            self.sim.step(tau);
            return;
        }
        let x = self.sim.qpos()[0];
        let near_limit =
            self.model.joints[0].range.is_some_and(|[lo, hi]| x <= lo + SLIDER_MARGIN || x >= hi - SLIDER_MARGIN);
        if !near_limit {
            self.sim.step(tau);
            self.qfrc_constraint = 0.0;
            return;
        }
        let free = self.free.as_mut().expect("the twin world of Rapier's step and limit");
        WorldState::capture(&self.sim.world).restore_into(&mut free.world);
        free.set_limit_enabled(0, false);
        self.sim.step(tau);
        free.step(tau);
        let m = self.sim.mass_matrix();
        let (vc, vf) = (self.sim.qvel(), free.qvel());
        let h = self.settings.timestep / self.settings.substeps as f64;
        self.qfrc_constraint = match m {
            Some(m) => (0..3).map(|j| m[0][j] * (vc[j] - vf[j])).sum::<f64>() / h,
            None => 0.0,
        };
    }

    fn state(&self) -> State {
        State {
            world: WorldState::capture(&self.sim.world),
            rng: self.rng.clone(),
            steps: self.steps,
            qfrc_constraint: self.qfrc_constraint,
        }
    }
}

/// The second pole's tip for MuJoCo's qpos (x, z in MuJoCo's vertical plane).
pub fn tip_position(q: &[f64; 3]) -> [f64; 2] {
    let (a, b) = (q[1], q[1] + q[2]);
    [q[0] + POLE_LENGTH * (a.sin() + b.sin()), POLE_LENGTH * (a.cos() + b.cos())]
}

impl Env for InvertedDoublePendulum {
    fn id(&self) -> &str {
        ID
    }
    fn observation_space(&self) -> &BoxSpace {
        &self.obs_space
    }
    fn action_space(&self) -> &BoxSpace {
        &self.act_space
    }
    fn dt(&self) -> f64 {
        self.cfg.timestep * self.cfg.frame_skip as f64
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError> {
        if let Some(s) = seed {
            self.rng = StdRng::seed_from_u64(s);
        }
        let s = self.cfg.reset_noise_scale;
        let qpos: [f64; 3] = std::array::from_fn(|_| if s > 0.0 { self.rng.random_range(-s..s) } else { 0.0 });
        let qvel: [f64; 3] = std::array::from_fn(|_| {
            let n: f64 = self.rng.sample(StandardNormal);
            n * s
        });
        self.set_state(qpos, qvel);
        self.steps = Some(0);
        Ok((self.observe(), Info::new()))
    }

    fn step(&mut self, action: &[f32]) -> Result<Step, EnvError> {
        check_action(&self.act_space, action)?;
        let Some(steps) = self.steps else {
            return Err(EnvError::NeedsReset("before reset() or after a non-finite state"));
        };
        let tau = actuator_forces(&self.model, &[action[0] as f64]);
        for _ in 0..self.cfg.frame_skip * self.cfg.substeps {
            self.physics_step(&tau);
        }
        let obs = self.observe();
        let (q, v) = (self.qpos(), self.qvel());
        if !q.iter().chain(v.iter()).all(|x| x.is_finite()) {
            self.steps = None;
            return Err(EnvError::PhysicsBlowUp { step: steps, what: format!("qpos = {q:?}, qvel = {v:?}") });
        }
        self.steps = Some(steps + 1);
        let [x, y] = tip_position(&q);
        let terminated = y <= MIN_TIP_HEIGHT;
        let dist_penalty = 0.01 * x * x + (y - 2.0).powi(2);
        let vel_penalty = 1e-3 * v[1] * v[1] + 5e-3 * v[2] * v[2];
        let alive = if terminated { 0.0 } else { self.cfg.healthy_reward };
        let mut info = Info::with_capacity(8);
        info.insert("reward_survive", alive);
        info.insert("distance_penalty", -dist_penalty);
        info.insert("velocity_penalty", -vel_penalty);
        Ok(Step { obs, reward: alive - dist_penalty - vel_penalty, terminated, truncated: false, info })
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new(ID, self.state())
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), EnvError> {
        let s: &State = snapshot.get(ID)?;
        let s = s.clone();
        s.world.restore_into(&mut self.sim.world);
        self.rng = s.rng;
        self.steps = s.steps;
        self.qfrc_constraint = s.qfrc_constraint;
        Ok(())
    }

    /// Side view (MuJoCo's x–z plane): the rail, the cart, the two poles.
    fn planar_scene(&self) -> Option<PlanarScene> {
        let q = self.qpos();
        let p1 = [q[0] + POLE_LENGTH * q[1].sin(), POLE_LENGTH * q[1].cos()];
        let tip = tip_position(&q);
        let capsules = vec![
            Capsule2 { a: [-1.0, 0.0], b: [1.0, 0.0], radius: 0.02 },
            Capsule2 { a: [q[0] - 0.1, 0.0], b: [q[0] + 0.1, 0.0], radius: 0.1 },
            Capsule2 { a: [q[0], 0.0], b: p1, radius: 0.045 },
            Capsule2 { a: p1, b: tip, radius: 0.045 },
        ];
        Some(PlanarScene { capsules, markers: vec![], focus: [0.0, 0.6], view_half_width: 1.4 })
    }

    fn max_episode_steps(&self) -> Option<usize> {
        None
    }

    fn qpos_qvel(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        Some((self.qpos().to_vec(), self.qvel().to_vec()))
    }
}
