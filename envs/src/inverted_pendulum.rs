//! InvertedPendulum-v5: MuJoCo's cart-pole (a cart on a rail, a free pole on a hinge), with Rapier.
//! The bodies come from the MJCF file `envs/models/inverted_pendulum.xml` through rapier3d-mjcf ([`crate::mjcf`]).
//!
//! Faithful to Gymnasium 1.4.0's `inverted_pendulum_v5.py` on MuJoCo 4.0.0
//! (`inverted_pendulum.xml`); the numbers below are MuJoCo's compiled model values
//! (`scripts/record_mujoco_rollouts.py --print-model`) and are pinned by
//! `tests/inverted_pendulum.rs`.
//!
//! ## Axes
//! Rapier's axes are MuJoCo's (the MJCF file is read as it is): the rail is x, up is +z, gravity
//! (0, 0, −9.81), the hinge turns about +y, and its Rapier coordinate is MuJoCo's qpos[1]
//! (positive tilts the pole towards +x). [`Env::planar_scene`] draws MuJoCo's x–z plane.
//!
//! ## Model
//! | part | value |
//! |---|---|
//! | cart | slide joint `slider` along x, range ±1 m; capsule along x, r = 0.1, half-length 0.1: 10.47197551196598 kg at the origin |
//! | pole | hinge `hinge` on the cart's origin, range ±90°; capsule from (0, 0, 0) to (0.001, 0, 0.6), r = 0.049: 5.018591641363306 kg, COM (0.0005, 0, 0.3) in the cart frame |
//! | pole inertia | 0.1887497668730885 kg·m² about the hinge axis through the COM (0.00590649630984607 about the pole's own axis) |
//! | cart inertia | 0.12671090369478838 normal to the rail, 0.04817108735504351 about it (it only translates) |
//! | armature | 0 on both |
//! | damping | 1.0 on both (N·s/m on the slider, N·m·s/rad on the hinge; Rapier's implicit multibody damping, its default replaced) |
//! | actuator | F = 100 · clip(a, −3, 3) N on the slider, on the cart only (the rail is the fixed world) |
//! | gravity | 9.81 m/s² downwards; the pole's 1 mm tilt gives it a torque of 0.02461619200088702 N·m at rest, so from the exact rest state with a = 0 it falls |
//! | mass matrix at rest | `mj_fullM` = [[15.490567153329286, 1.505577492408992], [1.505577492408992, 0.6404242692436963]] |
//! | contacts | none (`contype = 0` on every geom) |
//! | time | timestep 0.02 s (MuJoCo: RK4), `frame_skip` = 2 → dt = 0.04 s per env step |
//!
//! ## Spaces
//! | space | shape | content |
//! |---|---|---|
//! | action | (1,) in [−3, 3] | slider force / 100 (values outside are clipped by the actuator, as MuJoCo's ctrlrange) |
//! | observation | (4,) | qpos = [cart x, pole angle], qvel = [cart ẋ, pole angular velocity] |
//!
//! ## Reward and episode end
//! `terminated` when any observation entry is not finite or |pole angle| > 0.2 rad after the step;
//! `reward = reward_survive = 1` if not terminated, else 0 (info: `reward_survive`). The registry's
//! `TimeLimit` truncates after 1000 steps. Stepping on after a termination by angle is allowed (as in
//! Gymnasium); after a non-finite state, `step` asks for a `reset`.
//!
//! ## Start
//! `reset`: qpos = U(−s, s)² then qvel = U(−s, s)², `s = reset_noise_scale` (0.01); s = 0 gives
//! the exact rest state.
//!
//! ## Options (`make("InvertedPendulum-v5", config)`)
//! | key | default | meaning |
//! |---|---|---|
//! | `xml_file` | `"inverted_pendulum.xml"` | the shipped model (`envs/models/inverted_pendulum.xml`), or a path to an MJCF file (Gymnasium's own file loads as it is; see [`crate::mjcf`] for what is supported) |
//! | `frame_skip` | 2 | physics steps of `timestep` per env step |
//! | `reset_noise_scale` | 0.01 | half-width of the uniform reset noise |
//! | `timestep` | 0.02 | MuJoCo's `opt.timestep` (s) |
//! | `substeps` | 1 | Rapier (or RK4) steps per `timestep` |
//! | `solver_iterations` | 4 | Rapier's solver substeps per Rapier step (Rapier's step only) |
//! | `limit_natural_frequency` | 1e6 | Hz, Rapier softness of the slider and hinge limits (practically hard) |
//! | `limit_damping_ratio` | 1.0 | damping ratio of the joint-limit softness |
//! | `mujoco_limits` | true (false with `rk4_integrator = false`) | MuJoCo's soft joint limits on the slider's and the hinge's ranges (its soft-constraint law from the model's `solref`/`solimp`, [`MjcfWorld::set_mujoco_limits`]) instead of Rapier's constraints |
//! | `rk4_integrator` | true (since session 30; dynamics revision 2) | each `timestep` MuJoCo's own `RK4` step, the model's integrator, without Rapier's step (the soft limits' forces recomputed at each of its four stages; [`MjcfWorld::set_rk4_integrator`]); `substeps` RK4 steps per `timestep`, `solver_iterations` unused; needs `mujoco_limits` (its default then) |
//!
//! Gymnasium's `default_camera_config` and MujocoEnv's rendering arguments configure MuJoCo's
//! viewer and have no counterpart: pictures come from [`Env::planar_scene`] and `render`.

use rand::rngs::Xoshiro256PlusPlus as StdRng;
use rand::{RngExt, SeedableRng};

use crate::config::EnvConfig;
use crate::env::{check_action, BoxSpace, Capsule2, Env, Info, PlanarScene, Snapshot, Step};
use crate::error::EnvError;
use crate::mjcf::{actuator_forces, MjcfModel, MjcfWorld, RapierSettings};
use crate::rapier_world::{validate_rapier_options, WorldState};

/// Registry id.
pub const ID: &str = "InvertedPendulum-v5";
/// Episode length of the registered environment (Gymnasium's `max_episode_steps`).
pub const MAX_EPISODE_STEPS: usize = 1000;

/// The history of this environment's dynamics, one line per revision (see
/// [`crate::registry::register_with_history`]): add a line when a change makes the same options step differently
/// (`envs/tests/dynamics_revisions.rs` fails until one is added).
pub const DYNAMICS_HISTORY: &[&str] = &[
    crate::registry::FIRST_REVISION,
    "session 30: MuJoCo's own RK4 step and soft limits by default (rk4_integrator = true, mujoco_limits following it), \
     the model's integrator, where revision 1 took Rapier's semi-implicit step and hard limits; --env-opt \
     rk4_integrator=false steps as revision 1 did",
];
/// Cart mass, kg.
pub const CART_MASS: f64 = 10.47197551196598;
/// Cart moment of inertia normal to the rail, kg·m².
pub const CART_I_PERP: f64 = 0.12671090369478838;
/// Cart moment of inertia about the rail, kg·m².
pub const CART_I_AXIS: f64 = 0.04817108735504351;
/// Cart capsule radius and half-length, m.
pub const CART_SIZE: [f64; 2] = [0.1, 0.1];
/// Pole mass, kg.
pub const POLE_MASS: f64 = 5.018591641363306;
/// Pole moment of inertia about the hinge axis through its COM, kg·m².
pub const POLE_I_PERP: f64 = 0.1887497668730885;
/// Pole moment of inertia about its own axis, kg·m².
pub const POLE_I_AXIS: f64 = 0.00590649630984607;
/// Pole COM in the cart frame (MuJoCo x, z), m.
pub const POLE_COM: [f64; 2] = [0.0005, 0.3];
/// Pole tip in the cart frame at angle 0 (MuJoCo x, z), m (`fromto="0 0 0 0.001 0 0.6"`).
pub const POLE_TIP: [f64; 2] = [0.001, 0.6];
/// Pole capsule radius, m.
pub const POLE_RADIUS: f64 = 0.049;
/// Slider range, m.
pub const SLIDER_LIMIT: f64 = 1.0;
/// Hinge range, rad (±90°).
pub const HINGE_LIMIT: f64 = std::f64::consts::FRAC_PI_2;
/// Actuator gear, N per unit control.
pub const GEAR: f64 = 100.0;
/// Control range (MuJoCo ctrlrange), the action space's bounds.
pub const CTRL_LIMIT: f64 = 3.0;
/// Damping of both joints.
pub const DAMPING: f64 = 1.0;
/// Gravity, m/s².
pub const GRAVITY: f64 = 9.81;
/// |pole angle| beyond which the episode terminates, rad.
pub const HEALTHY_ANGLE: f64 = 0.2;

/// Constructor options of the InvertedPendulum (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct InvertedPendulumConfig {
    /// The model: a shipped file's name or a path to an MJCF file (a slider and a hinge, one actuator).
    pub xml_file: String,
    pub frame_skip: usize,
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

impl Default for InvertedPendulumConfig {
    fn default() -> Self {
        InvertedPendulumConfig {
            xml_file: "inverted_pendulum.xml".into(),
            frame_skip: 2,
            reset_noise_scale: 0.01,
            timestep: 0.02,
            substeps: 1,
            solver_iterations: 4,
            limit_natural_frequency: 1.0e6,
            limit_damping_ratio: 1.0,
            mujoco_limits: true,
            rk4_integrator: true,
        }
    }
}

impl InvertedPendulumConfig {
    /// Reads the options from `config`; unknown keys and bad values are errors.
    pub fn from_env_config(config: &EnvConfig) -> Result<Self, EnvError> {
        let d = InvertedPendulumConfig::default();
        let mut r = config.reader(ID);
        let rk4_integrator = r.bool("rk4_integrator", d.rk4_integrator)?;
        debug_assert!(d.mujoco_limits == d.rk4_integrator, "MuJoCo's limits follow the RK4 step");
        let c = InvertedPendulumConfig {
            xml_file: r.string("xml_file", &d.xml_file)?,
            frame_skip: r.usize_in("frame_skip", d.frame_skip, 1, 1000)?,
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

/// Everything that evolves: the physics state sets, the random generator and counters.
#[derive(Clone)]
struct State {
    world: WorldState,
    rng: StdRng,
    steps: Option<usize>,
}

/// The InvertedPendulum-v5 environment (see the module docs).
pub struct InvertedPendulum {
    cfg: InvertedPendulumConfig,
    model: MjcfModel,
    obs_space: BoxSpace,
    act_space: BoxSpace,
    sim: MjcfWorld,
    rng: StdRng,
    /// Steps since the last reset; `None` before the first reset or after a non-finite state.
    steps: Option<usize>,
}

impl InvertedPendulum {
    /// An InvertedPendulum with the given options; the state is the rest pose until `reset`.
    pub fn new(config: &EnvConfig) -> Result<Self, EnvError> {
        Self::with_config(InvertedPendulumConfig::from_env_config(config)?)
    }

    /// An InvertedPendulum from typed options.
    pub fn with_config(cfg: InvertedPendulumConfig) -> Result<Self, EnvError> {
        let model = MjcfModel::load(&cfg.xml_file)?;
        model.expect_shape(ID, Some(2), 1)?;
        let settings = RapierSettings {
            timestep: cfg.timestep,
            substeps: cfg.substeps,
            solver_iterations: cfg.solver_iterations,
            limit_natural_frequency: cfg.limit_natural_frequency,
            limit_damping_ratio: cfg.limit_damping_ratio,
            limit_projection: false,
            contact: None,
        };
        let [lo, hi] = model.actuators[0].ctrl_range.unwrap_or([-CTRL_LIMIT, CTRL_LIMIT]);
        let mut sim = MjcfWorld::build(&model, &settings);
        if cfg.mujoco_limits {
            sim.set_mujoco_limits(&model, cfg.timestep);
        }
        sim.use_rk4_integrator(cfg.rk4_integrator, ID, "mujoco_limits=true")?;
        Ok(InvertedPendulum {
            obs_space: BoxSpace::uniform(4, f32::NEG_INFINITY, f32::INFINITY),
            act_space: BoxSpace::new(vec![lo as f32], vec![hi as f32]),
            sim,
            model,
            rng: StdRng::seed_from_u64(rand::random()),
            steps: None,
            cfg,
        })
    }

    /// The options in force.
    pub fn config(&self) -> &InvertedPendulumConfig {
        &self.cfg
    }

    /// The MJCF model.
    pub fn model(&self) -> &MjcfModel {
        &self.model
    }

    /// Generalised positions `[cart x, pole angle]` (MuJoCo's qpos).
    pub fn qpos(&self) -> [f64; 2] {
        let q = self.sim.qpos();
        [q[0], q[1]]
    }

    /// Generalised velocities `[cart ẋ, pole angular velocity]` (MuJoCo's qvel).
    pub fn qvel(&self) -> [f64; 2] {
        let v = self.sim.qvel();
        [v[0], v[1]]
    }

    /// The joint-space mass matrix (damping excluded) at the current configuration, ordered like
    /// qvel. Comparable with MuJoCo's `mj_fullM`.
    pub fn mass_matrix(&self) -> Option<[[f64; 2]; 2]> {
        let m = self.sim.mass_matrix()?;
        if m.len() != 2 {
            return None;
        }
        Some(std::array::from_fn(|i| std::array::from_fn(|j| m[i][j])))
    }

    /// Sets the state to MuJoCo's `qpos`, `qvel` (a fresh simulator state).
    pub fn set_state(&mut self, qpos: [f64; 2], qvel: [f64; 2]) {
        self.sim.reset_state(&qpos, &qvel);
    }

    /// The observation of the current state (what `reset` and `step` return).
    pub fn observe(&self) -> Vec<f32> {
        observation(&self.qpos(), &self.qvel())
    }

    fn state(&self) -> State {
        State { world: WorldState::capture(&self.sim.world), rng: self.rng.clone(), steps: self.steps }
    }
}

impl Env for InvertedPendulum {
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
        let qpos: [f64; 2] = std::array::from_fn(|_| draw());
        let qvel: [f64; 2] = std::array::from_fn(|_| draw());
        self.set_state(qpos, qvel);
        self.steps = Some(0);
        let (qpos, qvel) = (self.qpos(), self.qvel());
        Ok((observation(&qpos, &qvel), Info::new()))
    }

    fn step(&mut self, action: &[f32]) -> Result<Step, EnvError> {
        check_action(&self.act_space, action)?;
        let Some(steps) = self.steps else {
            return Err(EnvError::NeedsReset("before reset() or after a non-finite state"));
        };
        let tau = actuator_forces(&self.model, &[action[0] as f64]);
        for _ in 0..self.cfg.frame_skip * self.cfg.substeps {
            self.sim.step(&tau);
        }
        let (qpos, qvel) = (self.qpos(), self.qvel());
        let obs = observation(&qpos, &qvel);
        let finite = obs.iter().all(|v| v.is_finite());
        let terminated = !finite || qpos[1].abs() > HEALTHY_ANGLE;
        self.steps = if finite { Some(steps + 1) } else { None };
        let reward = if terminated { 0.0 } else { 1.0 };
        let mut info = Info::with_capacity(8);
        info.insert("reward_survive", reward);
        Ok(Step { obs, reward, terminated, truncated: false, info })
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

    /// Side view (MuJoCo's x–z plane, z up): the rail, the cart, the pole.
    fn planar_scene(&self) -> Option<PlanarScene> {
        let [x, th] = self.qpos();
        let (s, c) = th.sin_cos();
        // MuJoCo's hinge about +y maps the pole's (px, pz) to (px cos + pz sin, −px sin + pz cos).
        let tip = [x + POLE_TIP[0] * c + POLE_TIP[1] * s, -POLE_TIP[0] * s + POLE_TIP[1] * c];
        let capsules = vec![
            Capsule2 { a: [-SLIDER_LIMIT, 0.0], b: [SLIDER_LIMIT, 0.0], radius: 0.02 },
            Capsule2 { a: [x - CART_SIZE[1], 0.0], b: [x + CART_SIZE[1], 0.0], radius: CART_SIZE[0] },
            Capsule2 { a: [x, 0.0], b: tip, radius: POLE_RADIUS },
        ];
        Some(PlanarScene { capsules, markers: vec![], focus: [0.0, 0.25], view_half_width: 1.3 })
    }

    fn max_episode_steps(&self) -> Option<usize> {
        None
    }

    fn qpos_qvel(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        Some((self.qpos().to_vec(), self.qvel().to_vec()))
    }
}

/// The observation `qpos ++ qvel` as `f32`.
fn observation(qpos: &[f64; 2], qvel: &[f64; 2]) -> Vec<f32> {
    qpos.iter().chain(qvel.iter()).map(|v| *v as f32).collect()
}
