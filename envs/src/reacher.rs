//! Reacher-v5: MuJoCo's two-link planar arm that reaches for a target, simulated with Rapier.
//! The bodies come from the MJCF file `envs/models/reacher.xml` through rapier3d-mjcf ([`crate::mjcf`]).
//!
//! Faithful to Gymnasium 1.4.0's `reacher_v5.py` on MuJoCo 4.0.0 (`reacher.xml`); the numbers
//! below are MuJoCo's compiled model values (`scripts/record_mujoco_rollouts.py --print-model`)
//! and are pinned by `tests/reacher.rs`.
//!
//! ## Model
//! | part | value |
//! |---|---|
//! | base | fixed, at the world origin; the arm moves in the horizontal plane (MuJoCo z = 0.01) |
//! | body0 | hinge `joint0` about z at the origin, unlimited; link0: capsule 0 → 0.1 m along x, r = 0.01 m |
//! | body0 mass | 0.03560471674068432 kg, COM (0.05, 0); inertia about z through the COM 3.9175660390264734e-05 kg·m² (about its axis 1.7383479349863525e-06) |
//! | body1 | hinge `joint1` about z at body0's (0.1, 0), range ±3.0 rad; link1 like link0 |
//! | fingertip | sphere r = 0.01 m welded to body1 at (0.11, 0): 0.004188790204786391 kg, inertia 1.6755160819145565e-07 |
//! | target | sphere r = 0.009 m on two slide joints (`target_x`, `target_y`, range ±0.27); a second multibody (MJCF `ref` 0.1, −0.1); nothing acts on it along x or y, so it stays where `reset` puts it (qvel[2..4] = 0) |
//! | armature | 1.0 on joint0, joint1 (0 on the target slides) |
//! | damping | 1.0 on joint0, joint1 (Rapier's implicit multibody damping; its default of 0.1 replaced) |
//! | joint limits | joint1: ±3 rad (MuJoCo's soft limit since session 30, `mujoco_limits`; Rapier's limit constraints with `rk4_integrator = false`, see `limit_natural_frequency`) |
//! | actuators | τ = 200 · clip(a, −1, 1) N·m on each hinge, equal and opposite on the two bodies |
//! | mass matrix at rest | `mj_fullM` = [[1.0011533624389368, 4.0313964128415436e-04], [4.0313964128415436e-04, 1.0001790393653280]] (armature included) |
//! | contacts, gravity | none: every geom has `contype = 0`; gravity (−9.81 along MuJoCo z) is parallel to both hinge axes and normal to both slides, so it does no work |
//! | time | timestep 0.01 s (MuJoCo: RK4), `frame_skip` = 2 → dt = 0.02 s per env step |
//!
//! Rapier axes equal MuJoCo's: the arm lives in the x–y plane, the hinges turn about +z.
//!
//! ## Spaces
//! | space | shape | content |
//! |---|---|---|
//! | action | (2,) in [−1, 1] | torques of joint0, joint1 (values outside are clipped by the actuator, as MuJoCo's ctrlrange) |
//! | observation | (10,) | cos q0, cos q1, sin q0, sin q1, target x, target y, q̇0, q̇1, (fingertip − target) x, y |
//!
//! qpos = [q0, q1, target_x, target_y], qvel = [q̇0, q̇1, 0, 0] (MuJoCo's layout).
//!
//! ## Reward
//! `reward = reward_dist + reward_ctrl` with `reward_dist = −reward_dist_weight · ‖fingertip −
//! target‖` (after the physics step, as v5 fixed) and `reward_ctrl = −reward_control_weight · Σ a²`
//! of the *unclipped* action. Both terms are in info. Note: Gymnasium's docs say the control
//! weight defaults to 0.1, but `reacher_v5.py` uses 1; this follows the code.
//!
//! ## Start and end
//! `reset`: qpos = U(−s, s)⁴ + (0, 0, 0.1, −0.1), then the goal is drawn U(−0.2, 0.2)² until
//! ‖goal‖ < 0.2 and written into qpos[2..4], then qvel = U(−s/20, s/20)⁴ with qvel[2..4] = 0, where
//! s = `reset_noise_scale` = 0.1 as in Gymnasium (U(−0.1, 0.1) and U(−0.005, 0.005)). The draws
//! follow Gymnasium's order; the numbers come from this crate's generator, not NumPy's. Never
//! terminates; the registry's `TimeLimit` truncates after 50 steps.
//!
//! ## Options (`make("Reacher-v5", config)`)
//! | key | default | meaning |
//! |---|---|---|
//! | `xml_file` | `"reacher.xml"` | the shipped model (`envs/models/reacher.xml`), or a path to an MJCF file (Gymnasium's own file loads as it is; see [`crate::mjcf`] for what is supported) |
//! | `frame_skip` | 2 | physics steps of `timestep` per env step |
//! | `reward_dist_weight` | 1.0 | weight of the fingertip–target distance |
//! | `reward_control_weight` | 1.0 | weight of Σa² |
//! | `reset_noise_scale` | 0.1 | *rebel-rs extension* (reacher_v5.py hard-codes 0.1): half-width of the arm's qpos noise; its qvel noise is s/20; 0 starts the arm at rest (the goal is still drawn). Lets the CLI's `replay`/`render`, which set it, work |
//! | `timestep` | 0.01 | MuJoCo's `opt.timestep` (s) |
//! | `substeps` | 1 | Rapier (or RK4) steps per `timestep` |
//! | `solver_iterations` | 4 | Rapier's solver substeps per Rapier step (Rapier's step only) |
//! | `limit_natural_frequency` | 1e6 | Hz, Rapier softness of joint1's limit (practically hard; MuJoCo's soft limit, solref 0.02, sinks ≈ 0.004 rad under full torque) |
//! | `limit_damping_ratio` | 1.0 | damping ratio of the joint-limit softness |
//! | `mujoco_limits` | true (false with `rk4_integrator = false`) | MuJoCo's soft joint limits on joint1's range and the target's slides (its soft-constraint law from the model's `solref`/`solimp`, [`MjcfWorld::set_mujoco_limits`]) instead of Rapier's constraints |
//! | `rk4_integrator` | true (since session 30; dynamics revision 2) | each `timestep` MuJoCo's own `RK4` step, the model's integrator, without Rapier's step (the soft limits' forces recomputed at each of its four stages; [`MjcfWorld::set_rk4_integrator`]); `substeps` RK4 steps per `timestep`, `solver_iterations` unused; needs `mujoco_limits` (its default then) |
//!
//! Gymnasium's `default_camera_config` and MujocoEnv's rendering arguments (`render_mode`,
//! `width`, `height`, `camera_id`, …) configure MuJoCo's viewer and have no counterpart:
//! pictures come from [`Env::planar_scene`] and `render`.

use rand::rngs::Xoshiro256PlusPlus as StdRng;
use rand::{RngExt, SeedableRng};

use crate::config::EnvConfig;
use crate::env::{check_action, BoxSpace, Capsule2, Env, Info, PlanarScene, Snapshot, Step};
use crate::error::EnvError;
use crate::mjcf::{actuator_forces, MjcfModel, MjcfWorld, RapierSettings};
use crate::rapier_world::{validate_rapier_options, WorldState};

/// Registry id.
pub const ID: &str = "Reacher-v5";
/// Episode length of the registered environment (Gymnasium's `max_episode_steps`).
pub const MAX_EPISODE_STEPS: usize = 50;

/// The history of this environment's dynamics, one line per revision (see
/// [`crate::registry::register_with_history`]): add a line when a change makes the same options step differently
/// (`envs/tests/dynamics_revisions.rs` fails until one is added).
pub const DYNAMICS_HISTORY: &[&str] = &[
    crate::registry::FIRST_REVISION,
    "session 30: MuJoCo's own RK4 step and soft limits by default (rk4_integrator = true, mujoco_limits following it), \
     the model's integrator, where revision 1 took Rapier's semi-implicit step and hard limits; --env-opt \
     rk4_integrator=false steps as revision 1 did",
];
/// Mass of each link (body0, body1), kg (MuJoCo `body_mass`).
pub const LINK_MASS: f64 = 0.03560471674068432;
/// Moment of inertia of a link about an axis normal to it through its COM, kg·m².
pub const LINK_I_PERP: f64 = 3.9175660390264734e-05;
/// Moment of inertia of a link about its own axis, kg·m².
pub const LINK_I_AXIS: f64 = 1.7383479349863525e-06;
/// Length of each link (joint to joint), m.
pub const LINK_LENGTH: f64 = 0.1;
/// Capsule radius of the links, m.
pub const LINK_RADIUS: f64 = 0.01;
/// Mass of the fingertip sphere, kg.
pub const FINGERTIP_MASS: f64 = 0.004188790204786391;
/// Moment of inertia of the fingertip sphere about its centre, kg·m².
pub const FINGERTIP_I: f64 = 1.6755160819145565e-07;
/// Distance of the fingertip from joint1, m.
pub const FINGERTIP_OFFSET: f64 = 0.11;
/// Radius of the target sphere, m.
pub const TARGET_RADIUS: f64 = 0.009;
/// Range of joint1, rad.
pub const JOINT1_LIMIT: f64 = 3.0;
/// Actuator gear, N·m per unit control.
pub const GEAR: f64 = 200.0;
/// Armature of both hinges.
pub const ARMATURE: f64 = 1.0;
/// Damping of both hinges, N·m·s/rad.
pub const DAMPING: f64 = 1.0;
/// MuJoCo's `qpos0` of the target slides (their `ref`): the mean of the reset's target x, y
/// before the goal overwrites them.
pub const TARGET_REF: [f64; 2] = [0.1, -0.1];
/// Half-width of the arena walls drawn around the arm, m (MuJoCo `sideS`… at ±0.3).
pub const ARENA_HALF_WIDTH: f64 = 0.3;

/// Largest |qvel| accepted as physical, rad/s (joint0's top speed is 200 rad/s under full torque
/// against its damping); beyond it the step fails with [`EnvError::PhysicsBlowUp`].
pub const MAX_SANE_SPEED: f64 = 1.0e4;

/// Constructor options of the Reacher (see the module docs for meanings and defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct ReacherConfig {
    /// The model: a shipped file's name or a path to an MJCF file (two actuated hinges, bodies
    /// `fingertip` and `target`, the target on two slides).
    pub xml_file: String,
    pub frame_skip: usize,
    pub reward_dist_weight: f64,
    pub reward_control_weight: f64,
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

impl Default for ReacherConfig {
    fn default() -> Self {
        ReacherConfig {
            xml_file: "reacher.xml".into(),
            frame_skip: 2,
            reward_dist_weight: 1.0,
            reward_control_weight: 1.0,
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

impl ReacherConfig {
    /// Reads the options from `config`; unknown keys and bad values are errors.
    pub fn from_env_config(config: &EnvConfig) -> Result<Self, EnvError> {
        let d = ReacherConfig::default();
        let mut r = config.reader(ID);
        let rk4_integrator = r.bool("rk4_integrator", d.rk4_integrator)?;
        debug_assert!(d.mujoco_limits == d.rk4_integrator, "MuJoCo's limits follow the RK4 step");
        let c = ReacherConfig {
            xml_file: r.string("xml_file", &d.xml_file)?,
            frame_skip: r.usize_in("frame_skip", d.frame_skip, 1, 1000)?,
            reward_dist_weight: r.f64("reward_dist_weight", d.reward_dist_weight)?,
            reward_control_weight: r.f64("reward_control_weight", d.reward_control_weight)?,
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

/// Everything that evolves: the physics state sets (the target's slides included), the random
/// generator, counters.
#[derive(Clone)]
struct State {
    world: WorldState,
    rng: StdRng,
    steps: Option<usize>,
}

/// The Reacher-v5 environment (see the module docs).
pub struct Reacher {
    cfg: ReacherConfig,
    model: MjcfModel,
    obs_space: BoxSpace,
    act_space: BoxSpace,
    sim: MjcfWorld,
    /// Index of the `fingertip` body.
    fingertip_body: usize,
    rng: StdRng,
    /// Steps since the last reset; `None` before the first reset or after a blow-up.
    steps: Option<usize>,
}

impl Reacher {
    /// A Reacher with the given options; the state is the rest pose until `reset`.
    pub fn new(config: &EnvConfig) -> Result<Self, EnvError> {
        Self::with_config(ReacherConfig::from_env_config(config)?)
    }

    /// A Reacher from typed options.
    pub fn with_config(cfg: ReacherConfig) -> Result<Self, EnvError> {
        let model = MjcfModel::load(&cfg.xml_file)?;
        model.expect_shape(ID, Some(4), 2)?;
        let fingertip_body = model.body("fingertip").ok_or_else(|| EnvError::BadOption {
            env: ID.into(),
            key: "xml_file".into(),
            msg: format!(
                "{} has no body named \"fingertip\" (the reward measures its distance to the target)",
                model.source
            ),
        })?;
        let settings = RapierSettings {
            timestep: cfg.timestep,
            substeps: cfg.substeps,
            solver_iterations: cfg.solver_iterations,
            limit_natural_frequency: cfg.limit_natural_frequency,
            limit_damping_ratio: cfg.limit_damping_ratio,
            limit_projection: false,
            contact: None,
        };
        let mut sim = MjcfWorld::build(&model, &settings);
        if cfg.mujoco_limits {
            sim.set_mujoco_limits(&model, cfg.timestep);
        }
        sim.use_rk4_integrator(cfg.rk4_integrator, ID, "mujoco_limits=true")?;
        sim.set_state(&[0.0, 0.0, TARGET_REF[0], TARGET_REF[1]], &[0.0; 4]);
        Ok(Reacher {
            obs_space: BoxSpace::uniform(10, f32::NEG_INFINITY, f32::INFINITY),
            act_space: BoxSpace::uniform(2, -1.0, 1.0),
            sim,
            model,
            fingertip_body,
            rng: StdRng::seed_from_u64(rand::random()),
            steps: None,
            cfg,
        })
    }

    /// The options in force.
    pub fn config(&self) -> &ReacherConfig {
        &self.cfg
    }

    /// The MJCF model.
    pub fn model(&self) -> &MjcfModel {
        &self.model
    }

    /// Generalised positions `[q0, q1, target_x, target_y]` (MuJoCo's qpos).
    pub fn qpos(&self) -> [f64; 4] {
        let q = self.sim.qpos();
        [q[0], q[1], q[2], q[3]]
    }

    /// Generalised velocities `[q̇0, q̇1, 0, 0]` (MuJoCo's qvel; nothing moves the target).
    pub fn qvel(&self) -> [f64; 4] {
        let v = self.sim.qvel();
        [v[0], v[1], v[2], v[3]]
    }

    /// The fingertip's position in the plane, m (the `fingertip` body's origin).
    pub fn fingertip(&self) -> [f64; 2] {
        let p = self.sim.body_pose(self.fingertip_body).translation;
        [p.x as f64, p.y as f64]
    }

    /// The arm's joint-space mass matrix (armature included, damping excluded) at the current
    /// configuration, ordered like qvel[0..2]. Comparable with MuJoCo's `mj_fullM`.
    pub fn mass_matrix(&self) -> Option<[[f64; 2]; 2]> {
        let m = self.sim.mass_matrix()?;
        Some(std::array::from_fn(|i| std::array::from_fn(|j| m[i][j])))
    }

    /// Sets the state to MuJoCo's `qpos`, `qvel` (a fresh simulator state; qvel[2..4] must be 0,
    /// since nothing moves the target, and are ignored).
    pub fn set_state(&mut self, qpos: [f64; 4], qvel: [f64; 4]) {
        self.sim.reset_state(&qpos, &[qvel[0], qvel[1], 0.0, 0.0]);
    }

    /// The observation of the current state (what `reset` and `step` return).
    pub fn observe(&self) -> Vec<f32> {
        self.observation(&self.qpos(), &self.qvel())
    }

    fn observation(&self, qpos: &[f64; 4], qvel: &[f64; 4]) -> Vec<f32> {
        let tip = self.fingertip();
        [
            qpos[0].cos(),
            qpos[1].cos(),
            qpos[0].sin(),
            qpos[1].sin(),
            qpos[2],
            qpos[3],
            qvel[0],
            qvel[1],
            tip[0] - qpos[2],
            tip[1] - qpos[3],
        ]
        .iter()
        .map(|v| *v as f32)
        .collect()
    }

    fn state(&self) -> State {
        State { world: WorldState::capture(&self.sim.world), rng: self.rng.clone(), steps: self.steps }
    }
}

/// The fingertip's position for joint angles `q0`, `q1` (exact planar kinematics).
pub fn fingertip_position(q0: f64, q1: f64) -> [f64; 2] {
    let (s0, c0) = q0.sin_cos();
    let (s01, c01) = (q0 + q1).sin_cos();
    [LINK_LENGTH * c0 + FINGERTIP_OFFSET * c01, LINK_LENGTH * s0 + FINGERTIP_OFFSET * s01]
}

impl Env for Reacher {
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
        let rng = &mut self.rng;
        let s = self.cfg.reset_noise_scale;
        let mut uniform = |h: f64| {
            if h > 0.0 {
                rng.random_range(-h..h)
            } else {
                0.0
            }
        };
        let mut qpos: [f64; 4] = std::array::from_fn(|_| uniform(s));
        qpos[2] += TARGET_REF[0];
        qpos[3] += TARGET_REF[1];
        let goal = loop {
            let g: [f64; 2] = [uniform(0.2), uniform(0.2)];
            if g[0].hypot(g[1]) < 0.2 {
                break g;
            }
        };
        qpos[2] = goal[0];
        qpos[3] = goal[1];
        let mut qvel: [f64; 4] = std::array::from_fn(|_| uniform(s / 20.0));
        qvel[2] = 0.0;
        qvel[3] = 0.0;
        self.set_state(qpos, qvel);
        self.steps = Some(0);
        let (qpos, qvel) = (self.qpos(), self.qvel());
        Ok((self.observation(&qpos, &qvel), Info::new()))
    }

    fn step(&mut self, action: &[f32]) -> Result<Step, EnvError> {
        check_action(&self.act_space, action)?;
        let Some(steps) = self.steps else {
            return Err(EnvError::NeedsReset("before reset() or after a physics error"));
        };
        let tau = actuator_forces(&self.model, &[action[0] as f64, action[1] as f64]);
        for _ in 0..self.cfg.frame_skip * self.cfg.substeps {
            self.sim.step(&tau);
        }
        let (qpos, qvel) = (self.qpos(), self.qvel());
        let bad = |i: usize, v: f64| !v.is_finite() || (i >= 4 && v.abs() > MAX_SANE_SPEED);
        if let Some(i) = qpos.iter().chain(qvel.iter()).enumerate().position(|(i, v)| bad(i, *v)) {
            self.steps = None;
            let what =
                if i < 4 { format!("qpos[{i}] = {}", qpos[i]) } else { format!("qvel[{}] = {}", i - 4, qvel[i - 4]) };
            return Err(EnvError::PhysicsBlowUp { step: steps, what });
        }
        self.steps = Some(steps + 1);
        let tip = self.fingertip();
        let dist = (tip[0] - qpos[2]).hypot(tip[1] - qpos[3]);
        let reward_dist = -self.cfg.reward_dist_weight * dist;
        let ctrl: f64 = action.iter().map(|a| (*a as f64) * (*a as f64)).sum();
        let reward_ctrl = -self.cfg.reward_control_weight * ctrl;
        let mut info = Info::with_capacity(8);
        info.insert("reward_dist", reward_dist);
        info.insert("reward_ctrl", reward_ctrl);
        Ok(Step {
            obs: self.observation(&qpos, &qvel),
            reward: reward_dist + reward_ctrl,
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

    /// Top view: link0, link1, the fingertip, then the arena walls; the target as a marker.
    fn planar_scene(&self) -> Option<PlanarScene> {
        let q = self.qpos();
        let (s0, c0) = q[0].sin_cos();
        let j1 = [LINK_LENGTH * c0, LINK_LENGTH * s0];
        let (s01, c01) = (q[0] + q[1]).sin_cos();
        let end1 = [j1[0] + LINK_LENGTH * c01, j1[1] + LINK_LENGTH * s01];
        let tip = self.fingertip();
        let w = ARENA_HALF_WIDTH;
        let mut capsules = vec![
            Capsule2 { a: [0.0, 0.0], b: j1, radius: LINK_RADIUS },
            Capsule2 { a: j1, b: end1, radius: LINK_RADIUS },
            Capsule2 { a: tip, b: tip, radius: 0.01 },
        ];
        for (a, b) in [([-w, -w], [w, -w]), ([w, -w], [w, w]), ([-w, w], [w, w]), ([-w, -w], [-w, w])] {
            capsules.push(Capsule2 { a, b, radius: 0.02 });
        }
        Some(PlanarScene {
            capsules,
            markers: vec![[q[2], q[3], TARGET_RADIUS]],
            focus: [0.0, 0.0],
            view_half_width: 0.35,
        })
    }

    fn max_episode_steps(&self) -> Option<usize> {
        None
    }

    fn qpos_qvel(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        Some((self.qpos().to_vec(), self.qvel().to_vec()))
    }
}
