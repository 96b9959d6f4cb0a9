//! Humanoid-v5: MuJoCo's humanoid, from Gymnasium's own `humanoid.xml` through rapier3d-mjcf, on a
//! floating base (a free joint whose centre of mass is off the torso's frame: see
//! [`crate::mjcf::MjcfWorld`]).
//!
//! Faithful to Gymnasium 1.4.0's `humanoid_v5.py` in its spaces, reward terms, health, termination,
//! reset and options; the dynamics are measured against reference rollouts of the real MuJoCo
//! (`tests/humanoid.rs`, the README's locomotion section).
//!
//! ## Model (`models/humanoid.xml`, Gymnasium's file unchanged)
//! | part | value |
//! |---|---|
//! | root | free joint on the torso at z = 1.4 m: qpos = (x, y, z, qw, qx, qy, qz, 17 hinges), qvel = (linear velocity of the torso frame's origin in the world frame, angular velocity in the torso frame, 17 hinges) |
//! | joints | 17 hinges: abdomen (z, y in one body, x), hips (x, z, y in one body), knees, shoulders (two in one body), elbows; armature 0.0028–0.02, damping 5 on abdomen and hips, springs (stiffness 1–20) on most; the knees start at 0, 2° past their range |
//! | actuators | torques gear · clip(a, −0.4, 0.4), gears 25–300 |
//! | contacts | every geom touches every other except its parent's (MuJoCo's rule), condim 1 bodies on a condim-3 floor (friction 1), margin 0.001 |
//! | time | timestep 0.003 s (MuJoCo: RK4), `frame_skip` = 5 → dt = 0.015 s |
//!
//! ## Spaces, reward, end
//! action (17,) in [−0.4, 0.4]; observation (348,): qpos[2..] (22), qvel (23), then of the 13 bodies
//! MuJoCo's `cinert` (130: inertia about the humanoid's centre of mass and mass, world axes), `cvel` (78:
//! angular velocity, velocity of the point at the centre of mass moving with the body), the 17 actuator
//! forces `qfrc_actuator[6:]`, and `cfrc_ext` (78: contact torque about the centre of mass and force).
//! Reward `forward_reward_weight · x_velocity + healthy_reward · healthy − ctrl_cost_weight · |a|² −
//! clip(contact_cost_weight · |cfrc_ext|², contact_cost_range)`, with x_velocity of the whole body's
//! centre of mass (Gymnasium's `mass_center`). Healthy: the torso's z strictly inside `healthy_z_range`;
//! `terminated` when unhealthy. info: `reward_forward`, `reward_ctrl`, `reward_contact`, `reward_survive`,
//! `x_position`, `y_position`, `distance_from_origin`, `x_velocity`, `y_velocity` (Gymnasium's
//! `tendon_length` and `tendon_velocity` arrays are left out: the tendons exert nothing). The registry's
//! `TimeLimit` truncates after 1000 steps.
//!
//! The com-based quantities are computed from the state after the step ([`MjcfWorld::com_quantities`]);
//! MuJoCo's, read after its RK4 step, come from the integrator's last stage, a close estimate of that
//! state. After a reset `cfrc_ext` and the actuator forces are 0, as in Gymnasium.
//!
//! ## Options (`make("Humanoid-v5", config)`)
//! | key | default | meaning |
//! |---|---|---|
//! | `xml_file` | `"humanoid.xml"` | a shipped model's name or a path to an MJCF file (a free root, 17 hinges, 17 actuators, 13 bodies) |
//! | `frame_skip` | 5 | physics steps of `timestep` per env step |
//! | `forward_reward_weight` | 1.25 | weight of the forward velocity |
//! | `ctrl_cost_weight` | 0.1 | weight of the control cost |
//! | `contact_cost_weight` | 5e-7 | weight of the contact cost |
//! | `contact_cost_range` | `"-inf,10"` | clip range of the contact cost |
//! | `healthy_reward` | 5.0 | reward per healthy step |
//! | `terminate_when_unhealthy` | true | end the episode when unhealthy |
//! | `healthy_z_range` | `"1,2"` | open bounds of the torso's z |
//! | `reset_noise_scale` | 0.01 | qpos and qvel noise U(−s, s) (the quaternion's too) |
//! | `exclude_current_positions_from_observation` | true | leave x, y out of the observation |
//! | `include_cinert_in_observation`, `include_cvel_in_observation`, `include_qfrc_actuator_in_observation`, `include_cfrc_ext_in_observation` | true | the observation's parts |
//! | `timestep`, `substeps`, `solver_iterations` | 0.003, 1, 1 | Rapier's step (`substeps` Rapier steps per `timestep`) |
//! | `limit_natural_frequency`, `limit_damping_ratio`, `contact_natural_frequency`, `contact_damping_ratio`, `contact_margin`, `mujoco_limits`, `mujoco_contacts` | 10, 1, 10, 1, 0.001, true, true | as for Ant-v5 ([`crate::ant`]); the contacts between the body's own geoms are Rapier's |
//! | `rk4_integrator` | false | MuJoCo's own RK4 step, as for Ant-v5; a step that starts with two of the body's own geoms touching is Rapier's (`rk4_fallbacks`) |

use rand::rngs::Xoshiro256PlusPlus as StdRng;
use rand::{RngExt, SeedableRng};

use crate::free_base::{check_state, FreeBaseOptions};
use crate::config::EnvConfig;
use crate::env::{check_action, BoxSpace, Capsule2, Env, Info, PlanarScene, Snapshot, Step};
use crate::error::EnvError;
use crate::mjcf::{actuator_forces, ComQuantities, MjcfModel, MjcfWorld};
use crate::rapier_world::WorldState;

/// Registry id.
pub const ID: &str = "Humanoid-v5";
/// Episode length of the registered environment (Gymnasium's `max_episode_steps`).
pub const MAX_EPISODE_STEPS: usize = 1000;

/// The history of this environment's dynamics, one line per revision (see
/// [`crate::registry::register_with_history`]): add a line when a change makes the same options step differently
/// (`envs/tests/dynamics_revisions.rs` fails until one is added).
pub const DYNAMICS_HISTORY: &[&str] = &[crate::registry::FIRST_REVISION];
/// Bodies in the model (world excluded).
const NBODY: usize = 13;
/// Hinges (and actuators).
const NJOINT: usize = 17;

/// Constructor options (the keys of `make("Humanoid-v5", config)`, see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct HumanoidConfig {
    pub xml_file: String,
    pub frame_skip: usize,
    pub forward_reward_weight: f64,
    pub ctrl_cost_weight: f64,
    pub contact_cost_weight: f64,
    pub contact_cost_range: (f64, f64),
    pub healthy_reward: f64,
    pub terminate_when_unhealthy: bool,
    pub healthy_z_range: (f64, f64),
    pub reset_noise_scale: f64,
    pub exclude_current_positions_from_observation: bool,
    pub include_cinert_in_observation: bool,
    pub include_cvel_in_observation: bool,
    pub include_qfrc_actuator_in_observation: bool,
    pub include_cfrc_ext_in_observation: bool,
    /// Rapier's step and MuJoCo's limit and contact laws, as for Ant-v5.
    pub physics: FreeBaseOptions,
}

impl Default for HumanoidConfig {
    /// Gymnasium's defaults; Rapier's step chosen against MuJoCo (README, "The MuJoCo locomotion suite").
    fn default() -> Self {
        HumanoidConfig {
            xml_file: "humanoid.xml".into(),
            frame_skip: 5,
            forward_reward_weight: 1.25,
            ctrl_cost_weight: 0.1,
            contact_cost_weight: 5e-7,
            contact_cost_range: (f64::NEG_INFINITY, 10.0),
            healthy_reward: 5.0,
            terminate_when_unhealthy: true,
            healthy_z_range: (1.0, 2.0),
            reset_noise_scale: 1e-2,
            exclude_current_positions_from_observation: true,
            include_cinert_in_observation: true,
            include_cvel_in_observation: true,
            include_qfrc_actuator_in_observation: true,
            include_cfrc_ext_in_observation: true,
            physics: FreeBaseOptions { timestep: 0.003, substeps: 1, solver_iterations: 1, contact_margin: 0.001, ..FreeBaseOptions::default() },
        }
    }
}

impl HumanoidConfig {
    /// Reads the options from `config`; unknown keys and bad values are errors.
    pub fn from_env_config(config: &EnvConfig) -> Result<Self, EnvError> {
        let d = HumanoidConfig::default();
        let mut r = config.reader(ID);
        let c = HumanoidConfig {
            xml_file: r.string("xml_file", &d.xml_file)?,
            frame_skip: r.usize_in("frame_skip", d.frame_skip, 1, 1000)?,
            forward_reward_weight: r.f64("forward_reward_weight", d.forward_reward_weight)?,
            ctrl_cost_weight: r.f64("ctrl_cost_weight", d.ctrl_cost_weight)?,
            contact_cost_weight: r.f64("contact_cost_weight", d.contact_cost_weight)?,
            contact_cost_range: r.range("contact_cost_range", d.contact_cost_range)?,
            healthy_reward: r.f64("healthy_reward", d.healthy_reward)?,
            terminate_when_unhealthy: r.bool("terminate_when_unhealthy", d.terminate_when_unhealthy)?,
            healthy_z_range: r.range("healthy_z_range", d.healthy_z_range)?,
            reset_noise_scale: r.nonneg_f64("reset_noise_scale", d.reset_noise_scale)?,
            exclude_current_positions_from_observation: r.bool(
                "exclude_current_positions_from_observation",
                d.exclude_current_positions_from_observation,
            )?,
            include_cinert_in_observation: r.bool("include_cinert_in_observation", d.include_cinert_in_observation)?,
            include_cvel_in_observation: r.bool("include_cvel_in_observation", d.include_cvel_in_observation)?,
            include_qfrc_actuator_in_observation: r
                .bool("include_qfrc_actuator_in_observation", d.include_qfrc_actuator_in_observation)?,
            include_cfrc_ext_in_observation: r.bool("include_cfrc_ext_in_observation", d.include_cfrc_ext_in_observation)?,
            physics: FreeBaseOptions::read(&mut r, &d.physics)?,
        };
        r.finish()?;
        c.physics.validate(ID)?;
        Ok(c)
    }
}

#[derive(Clone)]
struct State {
    world: WorldState,
    rng: StdRng,
    steps: Option<usize>,
    cfrc: Vec<[f64; 6]>,
    actuator: Vec<f64>,
}

/// Humanoid-v5 (see the module docs).
pub struct Humanoid {
    cfg: HumanoidConfig,
    model: MjcfModel,
    obs_space: BoxSpace,
    act_space: BoxSpace,
    sim: MjcfWorld,
    init_qpos: Vec<f64>,
    rng: StdRng,
    steps: Option<usize>,
    /// `cfrc_ext` per body after the last step (zero after a reset).
    cfrc: Vec<[f64; 6]>,
    /// `qfrc_actuator[6:]` of the last step (zero after a reset).
    actuator: Vec<f64>,
}

impl Humanoid {
    /// The environment with the options of `config` (what `make("Humanoid-v5", config)` calls).
    pub fn new(config: &EnvConfig) -> Result<Self, EnvError> {
        Self::with_config(HumanoidConfig::from_env_config(config)?)
    }

    /// The environment from typed options; the state is the rest pose until `reset`.
    pub fn with_config(cfg: HumanoidConfig) -> Result<Self, EnvError> {
        let model = MjcfModel::load(&cfg.xml_file)?;
        model.expect_free_base(ID, NJOINT, NBODY, "humanoid.xml")?;
        let sim = cfg.physics.build(&model, ID)?;
        let act_space = model.action_space();
        let c = &cfg;
        let obs_dim = model.nq() + model.nv() - if c.exclude_current_positions_from_observation { 2 } else { 0 }
            + if c.include_cinert_in_observation { 10 * NBODY } else { 0 }
            + if c.include_cvel_in_observation { 6 * NBODY } else { 0 }
            + if c.include_qfrc_actuator_in_observation { NJOINT } else { 0 }
            + if c.include_cfrc_ext_in_observation { 6 * NBODY } else { 0 };
        let init_qpos = sim.qpos();
        Ok(Humanoid {
            obs_space: BoxSpace::uniform(obs_dim, f32::NEG_INFINITY, f32::INFINITY),
            act_space,
            sim,
            init_qpos,
            model,
            rng: StdRng::seed_from_u64(rand::random()),
            steps: None,
            cfrc: vec![[0.0; 6]; NBODY],
            actuator: vec![0.0; NJOINT],
            cfg,
        })
    }

    /// The options in force.
    pub fn config(&self) -> &HumanoidConfig {
        &self.cfg
    }

    /// The MJCF model.
    pub fn model(&self) -> &MjcfModel {
        &self.model
    }

    /// Generalised positions (MuJoCo's qpos: x, y, z, quaternion w, x, y, z, then the hinges).
    pub fn qpos(&self) -> Vec<f64> {
        self.sim.qpos()
    }

    /// Generalised velocities (MuJoCo's qvel).
    pub fn qvel(&self) -> Vec<f64> {
        self.sim.qvel()
    }

    /// Steps of the RK4 integrator (`rk4_integrator`) that Rapier took instead because two body geoms touched.
    pub fn rk4_fallbacks(&self) -> u64 {
        self.sim.rk4_fallbacks()
    }

    /// Joint-space mass matrix (armature included), 23 × 23 in MuJoCo's qvel order.
    pub fn mass_matrix(&self) -> Option<Vec<Vec<f64>>> {
        self.sim.mass_matrix()
    }

    /// MuJoCo's `qfrc_bias` at the state now (Coriolis, centrifugal, gyroscopic and gravity forces), in
    /// MuJoCo's qvel order.
    pub fn bias_forces(&self) -> Option<Vec<f64>> {
        self.sim.bias_forces()
    }

    /// MuJoCo's `qfrc_constraint` at the state now with controls `ctrl` (the joint limits' and floor contacts'
    /// generalised forces of the next physics step), in MuJoCo's qvel order.
    pub fn constraint_forces(&mut self, ctrl: &[f64]) -> Option<Vec<f64>> {
        self.sim.constraint_forces(&actuator_forces(&self.model, ctrl))
    }

    /// Contact points within the contact margin of another geom (MuJoCo's `ncon`).
    pub fn contact_count(&self) -> usize {
        self.sim.contact_count()
    }

    /// Sets the state to MuJoCo's `qpos` (24), `qvel` (23) (a fresh simulator state; the contact and
    /// actuator forces are zeroed, as after a reset).
    pub fn set_state(&mut self, qpos: &[f64], qvel: &[f64]) -> Result<(), EnvError> {
        check_state(ID, &self.model, qpos, qvel)?;
        self.sim.reset_state(qpos, qvel);
        self.cfrc = vec![[0.0; 6]; NBODY];
        self.actuator = vec![0.0; NJOINT];
        Ok(())
    }

    /// The observation of `q`, `v` (qpos as given: MuJoCo observes a set quaternion unnormalised), the
    /// com-based quantities of the current state and the stored forces.
    pub fn observe(&self, q: &[f64], v: &[f64]) -> Vec<f32> {
        self.observe_with(q, v, &self.sim.com_quantities(&self.model))
    }

    /// [`Humanoid::observe`] with the current state's com-based quantities `com`.
    fn observe_with(&self, q: &[f64], v: &[f64], com: &ComQuantities) -> Vec<f32> {
        let c = &self.cfg;
        let skip = if c.exclude_current_positions_from_observation { 2 } else { 0 };
        let mut obs: Vec<f32> = q[skip..].iter().chain(v).map(|x| *x as f32).collect();
        if c.include_cinert_in_observation {
            obs.extend(com.cinert.iter().flatten().map(|x| *x as f32));
        }
        if c.include_cvel_in_observation {
            obs.extend(com.cvel.iter().flatten().map(|x| *x as f32));
        }
        if c.include_qfrc_actuator_in_observation {
            obs.extend(self.actuator.iter().map(|x| *x as f32));
        }
        if c.include_cfrc_ext_in_observation {
            obs.extend(self.cfrc.iter().flatten().map(|x| *x as f32));
        }
        obs
    }

    /// Whether the state is healthy: the torso's z strictly inside `healthy_z_range`.
    pub fn is_healthy(&self) -> bool {
        self.healthy(self.qpos()[2])
    }

    fn healthy(&self, z: f64) -> bool {
        let (lo, hi) = self.cfg.healthy_z_range;
        lo < z && z < hi
    }

    /// x–y position of the whole body's centre of mass (Gymnasium's `mass_center`).
    pub fn mass_center(&self) -> [f64; 2] {
        self.mass_center_of(&self.sim.com_quantities(&self.model))
    }

    fn mass_center_of(&self, com: &ComQuantities) -> [f64; 2] {
        let (mut m, mut x, mut y) = (0.0, 0.0, 0.0);
        for (b, p) in self.model.bodies.iter().zip(&com.xipos) {
            m += b.mass;
            x += b.mass * p[0];
            y += b.mass * p[1];
        }
        [x / m, y / m]
    }

    fn state(&self) -> State {
        State {
            world: WorldState::capture(&self.sim.world),
            rng: self.rng.clone(),
            steps: self.steps,
            cfrc: self.cfrc.clone(),
            actuator: self.actuator.clone(),
        }
    }
}

impl Env for Humanoid {
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
        self.cfg.physics.timestep * self.cfg.frame_skip as f64
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError> {
        if let Some(s) = seed {
            self.rng = StdRng::seed_from_u64(s);
        }
        let s = self.cfg.reset_noise_scale;
        let mut noise = |x: f64| x + if s > 0.0 { self.rng.random_range(-s..s) } else { 0.0 };
        let qpos: Vec<f64> = self.init_qpos.clone().into_iter().map(&mut noise).collect();
        let qvel: Vec<f64> = (0..self.model.nv()).map(|_| noise(0.0)).collect();
        self.set_state(&qpos, &qvel)?;
        self.steps = Some(0);
        let mut info = Info::with_capacity(3);
        info.insert("x_position", qpos[0]);
        info.insert("y_position", qpos[1]);
        info.insert("distance_from_origin", qpos[0].hypot(qpos[1]));
        Ok((self.observe(&qpos, &qvel), info))
    }

    fn step(&mut self, action: &[f32]) -> Result<Step, EnvError> {
        check_action(&self.act_space, action)?;
        let Some(steps) = self.steps else {
            return Err(EnvError::NeedsReset("before reset() or after a non-finite state"));
        };
        let ctrl: Vec<f64> = action.iter().map(|a| *a as f64).collect();
        let tau = actuator_forces(&self.model, &ctrl);
        let before = self.mass_center_of(&self.sim.com_quantities(&self.model));
        let n = self.cfg.frame_skip * self.cfg.physics.substeps;
        let (q, v) = self.sim.advance(&tau, n, steps).inspect_err(|_| self.steps = None)?;
        self.steps = Some(steps + 1);
        self.cfrc = self.sim.contact_wrenches(&self.model);
        self.actuator = tau;
        // one evaluation of the com-based quantities serves the mass centre and the observation
        let com = self.sim.com_quantities(&self.model);
        let after = self.mass_center_of(&com);
        let (vx, vy) = ((after[0] - before[0]) / self.dt(), (after[1] - before[1]) / self.dt());
        let healthy = self.healthy(q[2]);
        let forward = self.cfg.forward_reward_weight * vx;
        let survive = if healthy { self.cfg.healthy_reward } else { 0.0 };
        let ctrl_cost = self.cfg.ctrl_cost_weight * ctrl.iter().map(|a| a * a).sum::<f64>();
        let (lo, hi) = self.cfg.contact_cost_range;
        let contact_cost = (self.cfg.contact_cost_weight * self.cfrc.iter().flatten().map(|f| f * f).sum::<f64>()).clamp(lo, hi);
        let mut info = Info::with_capacity(9);
        info.insert("reward_forward", forward);
        info.insert("reward_ctrl", -ctrl_cost);
        info.insert("reward_contact", -contact_cost);
        info.insert("reward_survive", survive);
        info.insert("x_position", q[0]);
        info.insert("y_position", q[1]);
        info.insert("distance_from_origin", q[0].hypot(q[1]));
        info.insert("x_velocity", vx);
        info.insert("y_velocity", vy);
        Ok(Step {
            obs: self.observe_with(&q, &v, &com),
            reward: forward + survive - ctrl_cost - contact_cost,
            terminated: !healthy && self.cfg.terminate_when_unhealthy,
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
        self.cfrc = s.cfrc;
        self.actuator = s.actuator;
        Ok(())
    }

    /// Side view (MuJoCo's x–z plane) following the torso, the floor as a line.
    fn planar_scene(&self) -> Option<PlanarScene> {
        let x = self.qpos()[0];
        let mut capsules = vec![Capsule2 { a: [x - 4.0, -0.02], b: [x + 4.0, -0.02], radius: 0.02 }];
        capsules.extend(
            self.sim.capsules(&self.model).into_iter().map(|(a, b, radius)| Capsule2 { a: [a[0], a[2]], b: [b[0], b[2]], radius }),
        );
        Some(PlanarScene { capsules, markers: vec![], focus: [x, 0.9], view_half_width: 1.4 })
    }

    fn max_episode_steps(&self) -> Option<usize> {
        None
    }

    fn qpos_qvel(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        Some((self.qpos(), self.qvel()))
    }
}
