//! Ant-v5: MuJoCo's four-legged ant, from the MJCF file `ant.xml` through rapier3d-mjcf, on a
//! floating base (a free joint: [`crate::mjcf::MjcfWorld`] keeps MuJoCo's qpos and qvel layout).
//!
//! Faithful to Gymnasium 1.4.0's `ant_v5.py` in its spaces, reward terms, health, termination,
//! reset and options; the dynamics are measured against reference rollouts of the real MuJoCo
//! (`tests/ant.rs`, the README's locomotion section).
//!
//! ## Model (`models/ant.xml`)
//! | part | value |
//! |---|---|
//! | root | free joint on the torso (sphere, radius 0.25 m) at z = 0.75 m: qpos = (x, y, z, qw, qx, qy, qz, 8 hinges), qvel = (linear velocity in the world frame, angular velocity in the torso frame, 8 hinges) |
//! | legs | four legs of three capsules (radius 0.08 m; density 5: 0.911 kg in all), hip hinges about z in [−30°, 30°], ankle hinges in ±[30°, 70°] (they start at 0, outside their ranges: the limits act from the first step, as in MuJoCo); armature 1, damping 1 |
//! | actuators | torques 150 · clip(a, −1, 1) on hip_4, ankle_4, hip_1, ankle_1, hip_2, ankle_2, hip_3, ankle_3 |
//! | contacts | body geoms touch the floor only (contype 1, conaffinity 0), friction 1, margin 0.01 |
//! | time | timestep 0.01 s, RK4 (as MuJoCo), `frame_skip` = 5 → dt = 0.05 s |
//!
//! ## Spaces, reward, end
//! action (8,) in [−1, 1]; observation (105,): qpos[2..] (13), qvel (14), then `cfrc_ext` of the 13
//! bodies (78: per body torque then force, world frame, torque about the ant's centre of mass; MuJoCo's
//! `cfrc_ext[1:]`) clipped to `contact_force_range`. Reward
//! `forward_reward_weight · x_velocity + healthy_reward · healthy − ctrl_cost_weight · |a|² −
//! contact_cost_weight · |clip(cfrc_ext)|²`, with x_velocity of the `main_body`'s frame origin. Healthy:
//! every qpos and qvel finite and the torso's z in the closed `healthy_z_range`; `terminated` when
//! unhealthy. info: `reward_forward`, `reward_ctrl`, `reward_contact`, `reward_survive`, `x_position`,
//! `y_position`, `distance_from_origin`, `x_velocity`, `y_velocity`. The registry's `TimeLimit`
//! truncates after 1000 steps.
//!
//! The contact forces are those of MuJoCo's soft-contact law (`mujoco_contacts`) at the last stage of the
//! last RK4 step, as MuJoCo's `cfrc_ext` after an RK4 `mj_step` (with Rapier's step, of its last step's start;
//! with Rapier's contacts, their impulses over the last step: see
//! [`crate::mjcf::MjcfWorld::contact_wrenches`]); after a reset they are 0, as in Gymnasium (which computes them
//! in `step` only).
//!
//! ## Options (`make("Ant-v5", config)`)
//! | key | default | meaning |
//! |---|---|---|
//! | `xml_file` | `"ant.xml"` | a shipped model's name or a path to an MJCF file (a free root, 8 hinges, 8 actuators) |
//! | `frame_skip` | 5 | physics steps of `timestep` per env step |
//! | `forward_reward_weight` | 1.0 | weight of the forward velocity |
//! | `ctrl_cost_weight` | 0.5 | weight of the control cost |
//! | `contact_cost_weight` | 5e-4 | weight of the contact cost |
//! | `healthy_reward` | 1.0 | reward per healthy step |
//! | `main_body` | `"1"` | the body whose x–y displacement is rewarded: MuJoCo body id (1 = torso) or name |
//! | `terminate_when_unhealthy` | true | end the episode when unhealthy |
//! | `healthy_z_range` | `"0.2,1"` | closed bounds of the torso's z |
//! | `contact_force_range` | `"-1,1"` | clip range of `cfrc_ext` (observation and cost) |
//! | `reset_noise_scale` | 0.1 | qpos noise U(−s, s) (the quaternion's too), qvel noise s·N(0, 1) |
//! | `exclude_current_positions_from_observation` | true | leave x, y out of the observation |
//! | `include_cfrc_ext_in_observation` | true | append the 78 clipped contact forces |
//! | `timestep`, `substeps`, `solver_iterations` | 0.01, 1 (2 with `rk4_integrator = false`), 1 | the step (`substeps` steps per `timestep`) |
//! | `limit_natural_frequency`, `limit_damping_ratio` | 10, 1.0 | softness of the joint limits |
//! | `contact_natural_frequency`, `contact_damping_ratio` | 10, 1.0 | softness of Rapier's contacts (with `mujoco_contacts = false`) |
//! | `contact_margin` | 0.01 | m: Rapier's contacts (with `mujoco_contacts = false`) push from this distance on (MuJoCo's geom `margin`; MuJoCo's pair margin is the two geoms' summed, 0.02, which `mujoco_contacts` uses) |
//! | `mujoco_limits` | true | MuJoCo's soft joint limits as explicit forces (`MjcfWorld::set_mujoco_limits`); false: Rapier's limits with the softness above |
//! | `mujoco_contacts` | true | MuJoCo's soft-contact law against the floor as explicit forces (`MjcfWorld::set_mujoco_contacts`; the pair's margin is MuJoCo's, both geoms' summed: 0.02 m), `cfrc_ext` from those forces; the contact options above then do not apply |
//! | `rk4_integrator` | true (since session 29; dynamics revision 2) | each `timestep` MuJoCo's own `RK4` step, the model's integrator, without Rapier's step (the constraint forces solved at each of its four stages, the free joint's quaternion integrated as MuJoCo's `mj_integratePos` does; `MjcfWorld::set_rk4_integrator`), `substeps` 1 unless given (2 with `false`, Rapier's step as revision 1 took it): each step from MuJoCo's states within 1e-3 of MuJoCo's velocity change (Rapier's step: 3–7 % in the median), `cfrc_ext` that of the step's last stage as in MuJoCo; needs `mujoco_contacts` and `mujoco_limits`; 1.2× the speed of two Rapier steps (session 30: 2,848–2,880 against 2,335–2,371 env steps/s, `rebel --env Ant-v5 bench`) |

use rand::rngs::Xoshiro256PlusPlus as StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

use crate::config::EnvConfig;
use crate::env::{check_action, BoxSpace, Capsule2, Env, Info, PlanarScene, Snapshot, Step};
use crate::error::EnvError;
pub use crate::free_base::FreeBaseOptions;
use crate::free_base::check_state;
use crate::mjcf::{actuator_forces, MjcfModel, MjcfWorld};
use crate::rapier_world::WorldState;

/// Registry id.
pub const ID: &str = "Ant-v5";
/// Episode length of the registered environment (Gymnasium's `max_episode_steps`).
pub const MAX_EPISODE_STEPS: usize = 1000;

/// The history of this environment's dynamics, one line per revision (see
/// [`crate::registry::register_with_history`]): add a line when a change makes the same options step differently
/// (`envs/tests/dynamics_revisions.rs` fails until one is added).
pub const DYNAMICS_HISTORY: &[&str] = &[
    crate::registry::FIRST_REVISION,
    "session 29: MuJoCo's own RK4 step by default (rk4_integrator = true, one RK4 step per timestep: substeps = 1), the \
     model's integrator, where revision 1 took two Rapier semi-implicit steps per timestep; --env-opt \
     rk4_integrator=false steps as revision 1 did",
];
/// Bodies in the model (world excluded): `cfrc_ext` adds 6 values per body.
const NBODY: usize = 13;

/// Constructor options (the keys of `make("Ant-v5", config)`, see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct AntConfig {
    pub xml_file: String,
    pub frame_skip: usize,
    pub forward_reward_weight: f64,
    pub ctrl_cost_weight: f64,
    pub contact_cost_weight: f64,
    pub healthy_reward: f64,
    pub main_body: String,
    pub terminate_when_unhealthy: bool,
    pub healthy_z_range: (f64, f64),
    pub contact_force_range: (f64, f64),
    pub reset_noise_scale: f64,
    pub exclude_current_positions_from_observation: bool,
    pub include_cfrc_ext_in_observation: bool,
    /// The integrator (MuJoCo's RK4 step or Rapier's) and MuJoCo's limit and contact laws.
    pub physics: FreeBaseOptions,
}

impl Default for AntConfig {
    /// Gymnasium's defaults; MuJoCo's limit and contact laws and, since session 29, its RK4 step (README, "The
    /// MuJoCo locomotion suite").
    fn default() -> Self {
        AntConfig {
            xml_file: "ant.xml".into(),
            frame_skip: 5,
            forward_reward_weight: 1.0,
            ctrl_cost_weight: 0.5,
            contact_cost_weight: 5e-4,
            healthy_reward: 1.0,
            main_body: "1".into(),
            terminate_when_unhealthy: true,
            healthy_z_range: (0.2, 1.0),
            contact_force_range: (-1.0, 1.0),
            reset_noise_scale: 0.1,
            exclude_current_positions_from_observation: true,
            include_cfrc_ext_in_observation: true,
            physics: FreeBaseOptions { rk4_integrator: true, substeps: 1, ..FreeBaseOptions::default() },
        }
    }
}

impl AntConfig {
    /// Reads the options from `config`; unknown keys and bad values are errors.
    pub fn from_env_config(config: &EnvConfig) -> Result<Self, EnvError> {
        let d = AntConfig::default();
        let mut r = config.reader(ID);
        let c = AntConfig {
            xml_file: r.string("xml_file", &d.xml_file)?,
            frame_skip: r.usize_in("frame_skip", d.frame_skip, 1, 1000)?,
            forward_reward_weight: r.f64("forward_reward_weight", d.forward_reward_weight)?,
            ctrl_cost_weight: r.f64("ctrl_cost_weight", d.ctrl_cost_weight)?,
            contact_cost_weight: r.f64("contact_cost_weight", d.contact_cost_weight)?,
            healthy_reward: r.f64("healthy_reward", d.healthy_reward)?,
            main_body: r.string("main_body", &d.main_body)?,
            terminate_when_unhealthy: r.bool("terminate_when_unhealthy", d.terminate_when_unhealthy)?,
            healthy_z_range: r.range("healthy_z_range", d.healthy_z_range)?,
            contact_force_range: r.range("contact_force_range", d.contact_force_range)?,
            reset_noise_scale: r.nonneg_f64("reset_noise_scale", d.reset_noise_scale)?,
            exclude_current_positions_from_observation: r.bool(
                "exclude_current_positions_from_observation",
                d.exclude_current_positions_from_observation,
            )?,
            include_cfrc_ext_in_observation: r
                .bool("include_cfrc_ext_in_observation", d.include_cfrc_ext_in_observation)?,
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
}

/// Ant-v5 (see the module docs).
pub struct Ant {
    cfg: AntConfig,
    model: MjcfModel,
    obs_space: BoxSpace,
    act_space: BoxSpace,
    sim: MjcfWorld,
    /// Index into the model's bodies of `main_body`.
    main_body: usize,
    init_qpos: Vec<f64>,
    rng: StdRng,
    steps: Option<usize>,
    /// `cfrc_ext` per body after the last step (zero after a reset), unclipped.
    cfrc: Vec<[f64; 6]>,
}

impl Ant {
    /// The environment with the options of `config` (what `make("Ant-v5", config)` calls).
    pub fn new(config: &EnvConfig) -> Result<Self, EnvError> {
        Self::with_config(AntConfig::from_env_config(config)?)
    }

    /// The environment from typed options; the state is the rest pose until `reset`.
    pub fn with_config(cfg: AntConfig) -> Result<Self, EnvError> {
        let model = MjcfModel::load(&cfg.xml_file)?;
        model.expect_free_base(ID, 8, NBODY, "ant.xml")?;
        let main_body = match cfg.main_body.trim().parse::<usize>() {
            Ok(id) if (1..=NBODY).contains(&id) => id - 1,
            Ok(id) => {
                return Err(EnvError::BadOption {
                    env: ID.into(),
                    key: "main_body".into(),
                    msg: format!("body id {id} is not a body of the model (1..={NBODY}; 0 is the world)"),
                })
            }
            Err(_) => model.body(cfg.main_body.trim()).ok_or_else(|| {
                let names: Vec<&str> =
                    model.bodies.iter().map(|b| b.name.as_str()).filter(|n| !n.is_empty()).collect();
                EnvError::BadOption {
                    env: ID.into(),
                    key: "main_body".into(),
                    msg: format!("no body named {:?}; give a body id or one of: {}", cfg.main_body, names.join(", ")),
                }
            })?,
        };
        let sim = cfg.physics.build(&model, ID)?;
        let act_space = model.action_space();
        let obs_dim = model.nq() + model.nv()
            - if cfg.exclude_current_positions_from_observation { 2 } else { 0 }
            + if cfg.include_cfrc_ext_in_observation { 6 * NBODY } else { 0 };
        let init_qpos = sim.qpos();
        Ok(Ant {
            obs_space: BoxSpace::uniform(obs_dim, f32::NEG_INFINITY, f32::INFINITY),
            act_space,
            sim,
            main_body,
            init_qpos,
            model,
            rng: StdRng::seed_from_u64(rand::random()),
            steps: None,
            cfrc: vec![[0.0; 6]; NBODY],
            cfg,
        })
    }

    /// The options in force.
    pub fn config(&self) -> &AntConfig {
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

    /// Joint-space mass matrix (armature included), 14 × 14 in MuJoCo's qvel order.
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

    /// `cfrc_ext` of the 13 bodies after the last step (unclipped; zero after a reset).
    pub fn contact_forces(&self) -> &[[f64; 6]] {
        &self.cfrc
    }

    /// Sets the state to MuJoCo's `qpos` (15), `qvel` (14) (a fresh simulator state; the contact forces
    /// are zeroed, as after a reset).
    pub fn set_state(&mut self, qpos: &[f64], qvel: &[f64]) -> Result<(), EnvError> {
        check_state(ID, &self.model, qpos, qvel)?;
        self.sim.reset_state(qpos, qvel);
        self.cfrc = vec![[0.0; 6]; NBODY];
        Ok(())
    }

    /// The observation of qpos, qvel and the stored contact forces.
    fn observe(&self, q: &[f64], v: &[f64]) -> Vec<f32> {
        let skip = if self.cfg.exclude_current_positions_from_observation { 2 } else { 0 };
        let mut obs: Vec<f32> = q[skip..].iter().chain(v).map(|x| *x as f32).collect();
        if self.cfg.include_cfrc_ext_in_observation {
            let (lo, hi) = self.cfg.contact_force_range;
            obs.extend(self.cfrc.iter().flatten().map(|f| f.clamp(lo, hi) as f32));
        }
        obs
    }

    /// Whether the state is healthy: all finite, torso z in the closed `healthy_z_range`.
    pub fn is_healthy(&self) -> bool {
        self.healthy(&self.qpos(), &self.qvel())
    }

    fn healthy(&self, q: &[f64], v: &[f64]) -> bool {
        let (lo, hi) = self.cfg.healthy_z_range;
        q.iter().chain(v).all(|x| x.is_finite()) && lo <= q[2] && q[2] <= hi
    }

    /// x–y position of the main body's frame origin.
    fn main_xy(&self) -> [f64; 2] {
        let p = self.sim.body_pose(self.main_body).translation;
        [p.x as f64, p.y as f64]
    }

    fn state(&self) -> State {
        State {
            world: WorldState::capture(&self.sim.world),
            rng: self.rng.clone(),
            steps: self.steps,
            cfrc: self.cfrc.clone(),
        }
    }
}

impl Env for Ant {
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
        let qpos: Vec<f64> = self
            .init_qpos
            .iter()
            .map(|q| q + if s > 0.0 { self.rng.random_range(-s..s) } else { 0.0 })
            .collect();
        let qvel: Vec<f64> = (0..self.model.nv()).map(|_| s * self.rng.sample::<f64, _>(StandardNormal)).collect();
        self.sim.reset_state(&qpos, &qvel);
        self.cfrc = vec![[0.0; 6]; NBODY];
        self.steps = Some(0);
        let mut info = Info::with_capacity(3);
        info.insert("x_position", qpos[0]);
        info.insert("y_position", qpos[1]);
        info.insert("distance_from_origin", qpos[0].hypot(qpos[1]));
        // MuJoCo observes the quaternion as it was set (normalised at the first integration)
        Ok((self.observe(&qpos, &qvel), info))
    }

    fn step(&mut self, action: &[f32]) -> Result<Step, EnvError> {
        check_action(&self.act_space, action)?;
        let Some(steps) = self.steps else {
            return Err(EnvError::NeedsReset("before reset() or after a non-finite state"));
        };
        let ctrl: Vec<f64> = action.iter().map(|a| *a as f64).collect();
        let tau = actuator_forces(&self.model, &ctrl);
        let before = self.main_xy();
        let n = self.cfg.frame_skip * self.cfg.physics.substeps;
        let (q, v) = self.sim.advance(&tau, n, steps).inspect_err(|_| self.steps = None)?;
        self.steps = Some(steps + 1);
        self.cfrc = self.sim.contact_wrenches(&self.model);
        let after = self.main_xy();
        let (vx, vy) = ((after[0] - before[0]) / self.dt(), (after[1] - before[1]) / self.dt());
        let healthy = self.healthy(&q, &v);
        let forward = self.cfg.forward_reward_weight * vx;
        let survive = if healthy { self.cfg.healthy_reward } else { 0.0 };
        let ctrl_cost = self.cfg.ctrl_cost_weight * ctrl.iter().map(|a| a * a).sum::<f64>();
        let (lo, hi) = self.cfg.contact_force_range;
        let contact_cost =
            self.cfg.contact_cost_weight * self.cfrc.iter().flatten().map(|f| f.clamp(lo, hi).powi(2)).sum::<f64>();
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
            obs: self.observe(&q, &v),
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
        Ok(())
    }

    /// Top view (MuJoCo's x–y plane) following the torso; the torso as a disc.
    fn planar_scene(&self) -> Option<PlanarScene> {
        let q = self.qpos();
        let capsules = self
            .sim
            .capsules(&self.model)
            .into_iter()
            .map(|(a, b, radius)| Capsule2 { a: [a[0], a[1]], b: [b[0], b[1]], radius })
            .collect();
        Some(PlanarScene { capsules, markers: vec![[q[0], q[1], 0.25]], focus: [q[0], q[1]], view_half_width: 1.6 })
    }

    fn max_episode_steps(&self) -> Option<usize> {
        None
    }

    fn qpos_qvel(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        Some((self.qpos(), self.qvel()))
    }
}

/// How a replay of a MuJoCo reference rollout went (see [`replay`]).
#[derive(Clone, Debug, PartialEq)]
pub struct AntReplay {
    /// Steps replayed (up to MuJoCo's end or ours, whichever comes first).
    pub steps: usize,
    /// First step after which MuJoCo had a contact (`ncon > 0`), and we, if any.
    pub first_contact_mujoco: Option<usize>,
    pub first_contact_ours: Option<usize>,
    /// Largest |qpos − qpos_MuJoCo| over all coordinates, before MuJoCo's first contact.
    pub max_qpos_err_before_contact: f64,
    /// Our return and MuJoCo's.
    pub return_ours: f64,
    pub return_mujoco: f64,
    /// The step (0-based) at which each terminated, if it did.
    pub terminated_ours: Option<usize>,
    pub terminated_mujoco: Option<usize>,
    /// Mean torso height over the last quarter of the replay, ours and MuJoCo's.
    pub late_height_ours: f64,
    pub late_height_mujoco: f64,
    /// Final x–y position, ours and MuJoCo's.
    pub final_xy_ours: [f64; 2],
    pub final_xy_mujoco: [f64; 2],
    /// Of the clipped contact-force observations (78 per step) over the replay: the share that agree
    /// within 0.25 (most are 0 without contact, or ±1, saturated, with one).
    pub cfrc_agreement: f64,
}

/// Replays a reference rollout of `scripts/record_mujoco_rollouts.py` (its `step = -1` row is the start
/// state; its actions are applied in order) with the options `cfg`; stops where either simulator
/// terminates.
pub fn replay(cfg: &AntConfig, table: &crate::csvio::Table) -> Result<AntReplay, EnvError> {
    let (qref, vref, acts) = (table.columns("qpos", 0..15)?, table.columns("qvel", 0..14)?, table.columns("action", 0..8)?);
    let cref = table.columns("obs", 27..105)?;
    let (rewards, ncon, term) = (table.column("reward")?, table.column("ncon")?, table.column("terminated")?);
    let n = rewards.len() - 1;
    let mut env = Ant::with_config(AntConfig {
        reset_noise_scale: 0.0,
        exclude_current_positions_from_observation: true,
        include_cfrc_ext_in_observation: true,
        ..cfg.clone()
    })?;
    env.reset(Some(0))?;
    env.set_state(&qref.iter().map(|c| c[0]).collect::<Vec<_>>(), &vref.iter().map(|c| c[0]).collect::<Vec<_>>())?;
    let first_contact_mujoco = (1..=n).find(|&k| ncon[k] > 0.0).map(|k| k - 1);
    let late = n - n / 4;
    let mut r = AntReplay {
        steps: 0,
        first_contact_mujoco,
        first_contact_ours: None,
        max_qpos_err_before_contact: 0.0,
        return_ours: 0.0,
        return_mujoco: rewards[1..].iter().sum(),
        terminated_ours: None,
        terminated_mujoco: (1..=n).find(|&k| term[k] != 0.0).map(|k| k - 1),
        late_height_ours: 0.0,
        late_height_mujoco: qref[2][late + 1..].iter().sum::<f64>() / (n - late) as f64,
        final_xy_ours: [0.0; 2],
        final_xy_mujoco: [qref[0][n], qref[1][n]],
        cfrc_agreement: 0.0,
    };
    let (mut late_count, mut agree) = (0usize, 0usize);
    for k in 0..n {
        let a: Vec<f32> = acts.iter().map(|c| c[k + 1] as f32).collect();
        let s = env.step(&a)?;
        r.return_ours += s.reward;
        r.steps = k + 1;
        let q = env.qpos();
        if first_contact_mujoco.is_none_or(|c| k < c) {
            let err = (0..15).map(|i| (q[i] - qref[i][k + 1]).abs()).fold(0.0, f64::max);
            r.max_qpos_err_before_contact = r.max_qpos_err_before_contact.max(err);
        }
        if r.first_contact_ours.is_none() && env.contact_count() > 0 {
            r.first_contact_ours = Some(k);
        }
        agree += cref.iter().zip(&s.obs[27..]).filter(|(c, o)| (c[k + 1] - **o as f64).abs() <= 0.25).count();
        if k >= late {
            r.late_height_ours += q[2];
            late_count += 1;
        }
        r.final_xy_ours = [q[0], q[1]];
        if s.terminated {
            r.terminated_ours = Some(k);
            break;
        }
    }
    r.late_height_ours /= late_count.max(1) as f64;
    r.cfrc_agreement = agree as f64 / (78 * r.steps.max(1)) as f64;
    Ok(r)
}
