//! Swimmer-v5: MuJoCo's three-segment swimmer in a viscous fluid, simulated with Rapier from the
//! MJCF file `envs/models/swimmer.xml` (through rapier3d-mjcf, [`crate::mjcf`]).
//!
//! Any planar chain loads through `xml_file` (root: slide x, slide y, hinge; any number of
//! actuated hinges, e.g. `experiments/swimmer4.xml`): the observation is `qpos[2..] ++ qvel`, the
//! action one value per `<motor>`. The tables below are the shipped model.
//!
//! Faithful to Gymnasium 1.4.0's `swimmer_v5.py` on MuJoCo 4.0.0 (`swimmer.xml`); every number
//! below is pinned by a test.
//!
//! ## Model
//! | part | value |
//! |---|---|
//! | segments | 3 capsules r = 0.1 m, cylinder length 1.0 m, density 1000 → 35.604716740684324 kg each |
//! | segment inertia (COM) | 3.9175660390264717 kg·m² about any axis normal to the capsule, 0.17383479349863523 about it |
//! | torso | body frame at (x, y) = qpos[0..2], heading qpos[2]; COM 1.0 m ahead of the frame origin |
//! | mid | hinge `motor1_rot` at torso-frame (0.5, 0), COM 0.5 m behind it; angle qpos[3] (relative) |
//! | back | hinge `motor2_rot` 1.0 m behind the first, COM 0.5 m behind it; angle qpos[4] (relative) |
//! | root | planar: slide x, slide y, hinge yaw (three multibody links, the loader's two massless intermediate bodies between them) |
//! | joint limits | motor1_rot, motor2_rot: ±100° (MuJoCo's soft limits since session 30, `mujoco_limits`; Rapier's limit constraints with `rk4_integrator = false`, see `limit_natural_frequency`) |
//! | armature | 0.1 on all five degrees of freedom (Rapier multibody armature) |
//! | damping | 0 (Rapier's default multibody angular damping of 0.1 is removed) |
//! | actuators | τ = 150 · clip(a, −1, 1) N·m on each hinge, equal and opposite on the two bodies |
//! | fluid | MuJoCo inertia-box model, ρ = 4000, β = 0.1 (`<option density viscosity>`), recomputed at every RK4 stage (every Rapier step with `rk4_integrator = false`) from each body's velocity ([`crate::fluid`], [`crate::mjcf`]) |
//! | contacts, gravity | none (all motion is in the plane; gravity has no planar component) |
//! | time | timestep 0.01 s (MuJoCo's RK4 step; Rapier's semi-implicit step with `rk4_integrator = false`), `frame_skip` = 4 → dt = 0.04 s per env step |
//!
//! ## Spaces
//! | space | shape | content |
//! |---|---|---|
//! | action | (2,) in [−1, 1] | torques of motor1_rot, motor2_rot (values outside are clipped by the actuator, as MuJoCo's ctrlrange) |
//! | observation | (8,) | qpos[2], qpos[3], qpos[4], qvel[0..5] (with `exclude_current_positions_from_observation = false`: (10,) = qpos ++ qvel) |
//!
//! ## Reward
//! `forward_reward_weight · x_velocity − ctrl_cost_weight · Σ a²` with
//! `x_velocity = (x_after − x_before) / dt` of the torso frame origin and the *unclipped* action in
//! the cost. info: `x_position`, `y_position`, `distance_from_origin`, `x_velocity`, `y_velocity`,
//! `reward_forward`, `reward_ctrl` (`reward = reward_forward + reward_ctrl`).
//!
//! ## Start and end
//! `reset`: qpos = U(−s, s)⁵ then qvel = U(−s, s)⁵ in that order, `s = reset_noise_scale` (0.1);
//! s = 0 gives the exact rest state. `terminated` is always false; the registry's `TimeLimit`
//! truncates after 1000 steps.
//!
//! ## Options (`make("Swimmer-v5", config)`)
//! | key | default | meaning |
//! |---|---|---|
//! | `xml_file` | `"swimmer.xml"` | the shipped model (`envs/models/swimmer.xml`), or a path to an MJCF file (Gymnasium's own file loads as it is; see [`crate::mjcf`] for what is supported) |
//! | `frame_skip` | 4 | physics steps of `timestep` per env step |
//! | `forward_reward_weight` | 1.0 | weight of x_velocity |
//! | `ctrl_cost_weight` | 1e-4 | weight of Σa² |
//! | `reset_noise_scale` | 0.1 | half-width of the uniform reset noise |
//! | `exclude_current_positions_from_observation` | true | drop x, y from the observation |
//! | `timestep` | 0.01 | MuJoCo's `opt.timestep` (s) |
//! | `substeps` | 1 | RK4 (or Rapier) steps per `timestep` (fluid forces are recomputed at each) |
//! | `solver_iterations` | 4 | Rapier's solver substeps per Rapier step (Rapier's step only) |
//! | `limit_natural_frequency` | 1e6 | Hz, Rapier softness of the joint limits (Rapier's limits only; practically hard: on Rapier's step they matched MuJoCo's returns best, see README) |
//! | `limit_damping_ratio` | 1.0 | damping ratio of the joint-limit softness |
//! | `limit_projection` | false | hard joint limits of ours (a projection in the mass metric after each Rapier step, [`crate::mjcf::RapierSettings::limit_projection`]) instead of Rapier's constraints; with `solver_iterations = 2` the Swimmer steps 1.8× faster within the fidelity tests' tolerances (README, Speed) |
//! | `mujoco_limits` | true (false with `rk4_integrator = false`) | MuJoCo's soft joint limits (its soft-constraint law from the model's `solref`/`solimp`, [`MjcfWorld::set_mujoco_limits`]) instead of Rapier's constraints (README, Speed) |
//! | `rk4_integrator` | true (since session 30; dynamics revision 2) | each `timestep` MuJoCo's own `RK4` step, the model's integrator, without Rapier's step (the fluid's and the soft limits' forces recomputed at each of its four stages; [`MjcfWorld::set_rk4_integrator`]); `substeps` RK4 steps per `timestep`, `solver_iterations` unused; needs `mujoco_limits` (its default then) |

use rand::rngs::Xoshiro256PlusPlus as StdRng;
use rand::{RngExt, SeedableRng};

use crate::config::EnvConfig;
use crate::env::{check_action, BoxSpace, Capsule2, Env, Info, PlanarScene, Snapshot, Step};
use crate::error::EnvError;
use crate::mjcf::{actuator_forces, MjcfModel, MjcfWorld, RapierSettings};
use crate::rapier_world::{validate_rapier_options, WorldState};

/// Registry id.
pub const ID: &str = "Swimmer-v5";
/// Episode length of the registered environment (Gymnasium's `max_episode_steps`).
pub const MAX_EPISODE_STEPS: usize = 1000;

/// The history of this environment's dynamics, one line per revision (see
/// [`crate::registry::register_with_history`]): add a line when a change makes the same options step differently
/// (`envs/tests/dynamics_revisions.rs` fails until one is added).
pub const DYNAMICS_HISTORY: &[&str] = &[
    crate::registry::FIRST_REVISION,
    "session 30: MuJoCo's own RK4 step and soft limits by default (rk4_integrator = true, mujoco_limits following it), \
     the model's integrator, where revision 1 took Rapier's semi-implicit step with Rapier's hard limits; --env-opt \
     rk4_integrator=false steps as revision 1 did",
];
/// Mass of one segment, kg (MuJoCo `body_mass`).
pub const SEGMENT_MASS: f64 = 35.604716740684324;
/// Moment of inertia of a segment about an axis normal to it through its COM, kg·m².
pub const SEGMENT_I_PERP: f64 = 3.9175660390264717;
/// Moment of inertia of a segment about its own axis, kg·m².
pub const SEGMENT_I_AXIS: f64 = 0.17383479349863523;
/// Capsule radius, m.
pub const SEGMENT_RADIUS: f64 = 0.1;
/// Joint range of both hinges, rad (±100°).
pub const JOINT_LIMIT: f64 = 100.0 * std::f64::consts::PI / 180.0;
/// Actuator gear, N·m per unit control.
pub const GEAR: f64 = 150.0;
/// Armature of every degree of freedom.
pub const ARMATURE: f64 = 0.1;
/// Fluid density ρ (MuJoCo `opt.density`).
pub const DENSITY: f64 = 4000.0;
/// Fluid viscosity β (MuJoCo `opt.viscosity`).
pub const VISCOSITY: f64 = 0.1;

/// Largest |qvel| entry accepted as physical (m/s or rad/s); beyond it the step fails with
/// [`EnvError::PhysicsBlowUp`].
pub const MAX_SANE_SPEED: f64 = 1.0e4;

/// Constructor options of the Swimmer (see the module docs for meanings and defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct SwimmerConfig {
    /// The model: a shipped file's name (`swimmer.xml`) or a path to an MJCF file.
    pub xml_file: String,
    pub frame_skip: usize,
    pub forward_reward_weight: f64,
    pub ctrl_cost_weight: f64,
    pub reset_noise_scale: f64,
    pub exclude_current_positions_from_observation: bool,
    pub timestep: f64,
    pub substeps: usize,
    pub solver_iterations: usize,
    pub limit_natural_frequency: f64,
    pub limit_damping_ratio: f64,
    pub limit_projection: bool,
    /// MuJoCo's soft joint limits instead of Rapier's (see [`MjcfWorld::set_mujoco_limits`]).
    pub mujoco_limits: bool,
    /// Each `timestep` MuJoCo's own RK4 step, without Rapier's (see [`MjcfWorld::set_rk4_integrator`]).
    pub rk4_integrator: bool,
}

impl Default for SwimmerConfig {
    fn default() -> Self {
        SwimmerConfig {
            xml_file: "swimmer.xml".into(),
            frame_skip: 4,
            forward_reward_weight: 1.0,
            ctrl_cost_weight: 1e-4,
            reset_noise_scale: 0.1,
            exclude_current_positions_from_observation: true,
            timestep: 0.01,
            substeps: 1,
            solver_iterations: 4,
            limit_natural_frequency: 1.0e6,
            limit_damping_ratio: 1.0,
            limit_projection: false,
            mujoco_limits: true,
            rk4_integrator: true,
        }
    }
}

impl SwimmerConfig {
    /// Reads the options from `config`; unknown keys and bad values are errors.
    pub fn from_env_config(config: &EnvConfig) -> Result<Self, EnvError> {
        let d = SwimmerConfig::default();
        let mut r = config.reader(ID);
        let rk4_integrator = r.bool("rk4_integrator", d.rk4_integrator)?;
        let c = SwimmerConfig {
            xml_file: r.string("xml_file", &d.xml_file)?,
            frame_skip: r.usize_in("frame_skip", d.frame_skip, 1, 1000)?,
            forward_reward_weight: r.f64("forward_reward_weight", d.forward_reward_weight)?,
            ctrl_cost_weight: r.f64("ctrl_cost_weight", d.ctrl_cost_weight)?,
            reset_noise_scale: r.nonneg_f64("reset_noise_scale", d.reset_noise_scale)?,
            exclude_current_positions_from_observation: r
                .bool("exclude_current_positions_from_observation", d.exclude_current_positions_from_observation)?,
            timestep: r.nonneg_f64("timestep", d.timestep)?,
            substeps: r.usize_in("substeps", d.substeps, 1, 100)?,
            solver_iterations: r.usize_in("solver_iterations", d.solver_iterations, 1, 100)?,
            limit_natural_frequency: r.nonneg_f64("limit_natural_frequency", d.limit_natural_frequency)?,
            limit_damping_ratio: r.nonneg_f64("limit_damping_ratio", d.limit_damping_ratio)?,
            limit_projection: r.bool("limit_projection", d.limit_projection)?,
            // MuJoCo's RK4 step needs MuJoCo's limits: they follow it unless given
            mujoco_limits: r.bool("mujoco_limits", rk4_integrator)?,
            rk4_integrator,
        };
        r.finish()?;
        validate_rapier_options(ID, c.timestep, c.limit_natural_frequency)?;
        Ok(c)
    }
}

/// Everything that evolves: the physics state sets, the random generator and counters.
#[derive(Clone)]
struct State {
    world: WorldState,
    rng: StdRng,
    /// Steps since the last reset; `None` before the first reset or after a blow-up.
    steps: Option<usize>,
}

/// The Swimmer-v5 environment (see the module docs).
pub struct Swimmer {
    cfg: SwimmerConfig,
    model: MjcfModel,
    obs_space: BoxSpace,
    act_space: BoxSpace,
    sim: MjcfWorld,
    rng: StdRng,
    steps: Option<usize>,
}

impl Swimmer {
    /// A Swimmer with the given options; the state is the rest pose until `reset`.
    pub fn new(config: &EnvConfig) -> Result<Self, EnvError> {
        Self::with_config(SwimmerConfig::from_env_config(config)?)
    }

    /// A Swimmer from typed options. The model must have a planar root (slide x, slide y,
    /// hinge: qpos[0..3]) and at least one actuator; any number of segments works.
    pub fn with_config(cfg: SwimmerConfig) -> Result<Self, EnvError> {
        if cfg.rk4_integrator && cfg.limit_projection {
            return Err(EnvError::BadOption {
                env: ID.into(),
                key: "rk4_integrator".into(),
                msg: "MuJoCo's RK4 step keeps MuJoCo's soft limits, not projected ones: set limit_projection=false, or rk4_integrator=false".into(),
            });
        }
        if cfg.mujoco_limits && cfg.limit_projection {
            return Err(EnvError::BadOption {
                env: ID.into(),
                key: "mujoco_limits".into(),
                msg: "and limit_projection = true are two replacements of Rapier's joint limits: choose one".into(),
            });
        }
        let model = MjcfModel::load(&cfg.xml_file)?;
        if model.free_root.is_some() {
            model.expect_shape(ID, None, model.nu())?; // refuses it, saying why
        }
        if model.nq() < 3 || model.nu() == 0 {
            return Err(EnvError::BadOption {
                env: ID.into(),
                key: "xml_file".into(),
                msg: format!(
                    "{} has {} hinge/slide joints and {} actuators; a swimmer needs a planar root (slide x, slide y, hinge) and at least one actuated joint (start from the shipped swimmer.xml)",
                    model.source,
                    model.nq(),
                    model.nu()
                ),
            });
        }
        let settings = RapierSettings {
            timestep: cfg.timestep,
            substeps: cfg.substeps,
            solver_iterations: cfg.solver_iterations,
            limit_natural_frequency: cfg.limit_natural_frequency,
            limit_damping_ratio: cfg.limit_damping_ratio,
            limit_projection: cfg.limit_projection,
            contact: None,
        };
        let nq = model.nq();
        let obs_dim = if cfg.exclude_current_positions_from_observation { 2 * nq - 2 } else { 2 * nq };
        let mut sim = MjcfWorld::build(&model, &settings);
        if cfg.mujoco_limits {
            sim.set_mujoco_limits(&model, cfg.timestep);
        }
        sim.use_rk4_integrator(cfg.rk4_integrator, ID, "mujoco_limits=true and limit_projection=false")?;
        Ok(Swimmer {
            obs_space: BoxSpace::uniform(obs_dim, f32::NEG_INFINITY, f32::INFINITY),
            act_space: BoxSpace::uniform(model.nu(), -1.0, 1.0),
            sim,
            rng: StdRng::seed_from_u64(rand::random()),
            steps: None,
            model,
            cfg,
        })
    }

    /// The options in force.
    pub fn config(&self) -> &SwimmerConfig {
        &self.cfg
    }

    /// The MJCF model.
    pub fn model(&self) -> &MjcfModel {
        &self.model
    }

    /// Generalised positions `[x, y, θ_torso, q1, q2, ...]` (MuJoCo's qpos).
    pub fn qpos(&self) -> Vec<f64> {
        self.sim.qpos()
    }

    /// Generalised velocities `[vx, vy, ω_torso, q̇1, q̇2, ...]` (MuJoCo's qvel).
    pub fn qvel(&self) -> Vec<f64> {
        self.sim.qvel()
    }

    /// The joint-space mass matrix (armature included) at the current configuration, ordered
    /// like qvel. Comparable with MuJoCo's `mj_fullM`.
    pub fn mass_matrix(&self) -> Option<Vec<Vec<f64>>> {
        self.sim.mass_matrix()
    }

    /// Sets the state to `qpos`, `qvel` (a fresh simulator state: nothing is carried over).
    pub fn set_state(&mut self, qpos: impl AsRef<[f64]>, qvel: impl AsRef<[f64]>) {
        self.sim.reset_state(qpos.as_ref(), qvel.as_ref());
    }

    fn observation(&self, qpos: &[f64], qvel: &[f64]) -> Vec<f32> {
        let start = if self.cfg.exclude_current_positions_from_observation { 2 } else { 0 };
        qpos[start..].iter().chain(qvel.iter()).map(|v| *v as f32).collect()
    }

    fn state(&self) -> State {
        State { world: WorldState::capture(&self.sim.world), rng: self.rng.clone(), steps: self.steps }
    }
}

impl Env for Swimmer {
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
        let mut draw = || {
            if s > 0.0 {
                self.rng.random_range(-s..s)
            } else {
                0.0
            }
        };
        let n = self.model.nq();
        let qpos: Vec<f64> = (0..n).map(|_| draw()).collect();
        let qvel: Vec<f64> = (0..n).map(|_| draw()).collect();
        self.set_state(&qpos, &qvel);
        self.steps = Some(0);
        let (qpos, qvel) = (self.qpos(), self.qvel());
        let mut info = Info::with_capacity(8);
        info.insert("x_position", qpos[0]);
        info.insert("y_position", qpos[1]);
        info.insert("distance_from_origin", qpos[0].hypot(qpos[1]));
        Ok((self.observation(&qpos, &qvel), info))
    }

    fn step(&mut self, action: &[f32]) -> Result<Step, EnvError> {
        check_action(&self.act_space, action)?;
        let Some(steps) = self.steps else {
            return Err(EnvError::NeedsReset("before reset() or after a physics error"));
        };
        let before = self.qpos();
        let ctrl: Vec<f64> = action.iter().map(|a| *a as f64).collect();
        let tau = actuator_forces(&self.model, &ctrl);
        for _ in 0..self.cfg.frame_skip * self.cfg.substeps {
            self.sim.step(&tau);
        }
        let (qpos, qvel) = (self.qpos(), self.qvel());
        // A diverged simulation: non-finite numbers, or speeds no actuator of 150 N·m in this fluid
        // can produce (a few m/s, rad/s at most). Ends the episode instead of poisoning a batch.
        let n = qpos.len();
        let bad = |i: usize, v: f64| !v.is_finite() || (i >= n && v.abs() > MAX_SANE_SPEED);
        if let Some(i) = qpos.iter().chain(qvel.iter()).enumerate().position(|(i, v)| bad(i, *v)) {
            self.steps = None;
            let v = if i < n { qpos[i] } else { qvel[i - n] };
            let what = if i < n { format!("qpos[{i}] = {v}") } else { format!("qvel[{}] = {v}", i - n) };
            return Err(EnvError::PhysicsBlowUp { step: steps, what });
        }
        self.steps = Some(steps + 1);
        let dt = self.dt();
        let x_velocity = (qpos[0] - before[0]) / dt;
        let y_velocity = (qpos[1] - before[1]) / dt;
        let reward_forward = self.cfg.forward_reward_weight * x_velocity;
        let ctrl: f64 = action.iter().map(|a| (*a as f64) * (*a as f64)).sum();
        let reward_ctrl = -self.cfg.ctrl_cost_weight * ctrl;
        let mut info = Info::with_capacity(8);
        info.insert("x_position", qpos[0]);
        info.insert("y_position", qpos[1]);
        info.insert("distance_from_origin", qpos[0].hypot(qpos[1]));
        info.insert("x_velocity", x_velocity);
        info.insert("y_velocity", y_velocity);
        info.insert("reward_forward", reward_forward);
        info.insert("reward_ctrl", reward_ctrl);
        Ok(Step {
            obs: self.observation(&qpos, &qvel),
            reward: reward_forward + reward_ctrl,
            terminated: false,
            truncated: false,
            info,
        })
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
        Ok(())
    }

    fn planar_scene(&self) -> Option<PlanarScene> {
        let capsules: Vec<Capsule2> = self
            .sim
            .capsules(&self.model)
            .into_iter()
            .map(|(a, b, radius)| Capsule2 { a: [a[0], a[1]], b: [b[0], b[1]], radius })
            .collect();
        // Centred on the middle capsule (the mid segment of the three-segment swimmer).
        let c = capsules.get(capsules.len() / 2)?;
        let focus = [(c.a[0] + c.b[0]) / 2.0, (c.a[1] + c.b[1]) / 2.0];
        let half = 0.5 + capsules.iter().map(|c| (c.a[0] - c.b[0]).hypot(c.a[1] - c.b[1])).sum::<f64>() / 1.5;
        Some(PlanarScene { capsules, markers: vec![], focus, view_half_width: half.max(2.5) })
    }

    fn max_episode_steps(&self) -> Option<usize> {
        None
    }

    fn qpos_qvel(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        Some((self.qpos(), self.qvel()))
    }
}
