//! What MuJoCo's planar runners share (Gymnasium 1.4.0's HalfCheetah-v5, Hopper-v5, Walker2d-v5): a
//! body on a planar root (slides `rootx`, `rootz`, hinge `rooty`) over a floor, rewarded for forward
//! velocity, charged for control, and (Hopper, Walker2d) kept healthy or ended. Each environment's
//! file holds its [`Spec`] and documents its model; this file holds the environment itself.
//!
//! * observation: qpos[1..] then qvel (clipped to ±10 where the spec says so); with
//!   `exclude_current_positions_from_observation = false`, qpos[0] leads;
//! * reward: `forward_reward_weight · x_velocity + healthy_reward · healthy − ctrl_cost_weight · |a|²`,
//!   with `x_velocity` = (rootx after − rootx before) / dt; info: `x_position`, `x_velocity`,
//!   `reward_forward`, `reward_ctrl`, and with health `z_distance_from_origin`, `reward_survive`;
//! * health: rootz in `healthy_z_range`, rooty in `healthy_angle_range` and (Hopper) every entry of
//!   `state_vector()[2..]` (qpos[2..], qvel) in `healthy_state_range`, all as open intervals;
//!   `terminated` when unhealthy and `terminate_when_unhealthy`;
//! * reset: qpos = init_qpos + U(−s, s), qvel = init_qvel + s·N(0, 1) (HalfCheetah) or U(−s, s)
//!   (Hopper, Walker2d), `s = reset_noise_scale`.
//!
//! Contacts and limits on Rapier: see [`crate::mjcf`] and the README's HalfCheetah-v5 section
//! (softness options `contact_natural_frequency`, `contact_damping_ratio`, `limit_natural_frequency`,
//! `limit_damping_ratio`, chosen per environment against MuJoCo; `mujoco_limits = true` replaces Rapier's
//! limits by MuJoCo's soft-limit law from the model's `solreflimit`/`solimplimit`, `mujoco_contacts = true`
//! Rapier's floor contacts by MuJoCo's soft-contact law ([`crate::mjcf::MjcfWorld::set_mujoco_contacts`]); both on
//! by default since session 15, the closest to MuJoCo measured, README "MuJoCo's contact and limit laws").

use rand::rngs::Xoshiro256PlusPlus as StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

use crate::config::{ConfigReader, EnvConfig};
use crate::env::{check_action, BoxSpace, Capsule2, Env, Info, PlanarScene, Snapshot, Step};
use crate::error::EnvError;
use crate::mjcf::{actuator_forces, JointKind, MjcfModel, MjcfWorld, RapierSettings};
use crate::rapier_world::{validate_rapier_options, WorldState};

/// How the reset draws qvel's noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VelocityNoise {
    /// `s · N(0, 1)` (HalfCheetah).
    Normal,
    /// `U(−s, s)` (Hopper, Walker2d).
    Uniform,
}

/// The health terms of Hopper and Walker2d.
#[derive(Clone, Debug, PartialEq)]
pub struct Health {
    pub healthy_reward: f64,
    pub terminate_when_unhealthy: bool,
    /// Bounds of `state_vector()[2..]` (`None`: not checked, as in Walker2d).
    pub healthy_state_range: Option<(f64, f64)>,
    pub healthy_z_range: (f64, f64),
    pub healthy_angle_range: (f64, f64),
}

/// Constructor options of a planar runner (the keys of `make(id, config)`).
#[derive(Clone, Debug, PartialEq)]
pub struct LocomotionConfig {
    pub xml_file: String,
    pub frame_skip: usize,
    pub forward_reward_weight: f64,
    pub ctrl_cost_weight: f64,
    pub reset_noise_scale: f64,
    pub exclude_current_positions_from_observation: bool,
    /// Health terms (`None` for HalfCheetah, which has none).
    pub health: Option<Health>,
    pub timestep: f64,
    pub substeps: usize,
    pub solver_iterations: usize,
    pub limit_natural_frequency: f64,
    pub limit_damping_ratio: f64,
    pub contact_natural_frequency: f64,
    pub contact_damping_ratio: f64,
    /// MuJoCo's soft joint limits instead of Rapier's (see [`MjcfWorld::set_mujoco_limits`]).
    pub mujoco_limits: bool,
    /// MuJoCo's soft contacts with the floor instead of Rapier's (see [`MjcfWorld::set_mujoco_contacts`]).
    pub mujoco_contacts: bool,
    /// Each Rapier step MuJoCo's Euler step (see [`MjcfWorld::set_euler_integrator`]).
    pub euler_integrator: bool,
    /// Each step MuJoCo's RK4 step, without Rapier's (see [`MjcfWorld::set_rk4_integrator`]).
    pub rk4_integrator: bool,
    /// Each step MuJoCo's Euler step taken whole, without Rapier's (see [`MjcfWorld::set_mujoco_euler`]); it
    /// supersedes `euler_integrator`, the correction of Rapier's step.
    pub mujoco_euler: bool,
}

/// What makes one planar runner: its id, shape and defaults.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub id: &'static str,
    /// DoFs (rootx, rootz, rooty first) and actuators.
    pub nq: usize,
    pub nu: usize,
    pub max_episode_steps: usize,
    pub velocity_noise: VelocityNoise,
    /// `Some(c)`: the observation's qvel is clipped to ±c.
    pub clip_qvel: Option<f64>,
    /// Gymnasium's defaults, and the contact and limit settings chosen against MuJoCo.
    pub defaults: fn() -> LocomotionConfig,
}

impl Spec {
    /// The environment with the options of `config` (what `make(id, config)` calls).
    pub fn make(&self, config: &EnvConfig) -> Result<Locomotion, EnvError> {
        self.build(self.config(config)?)
    }

    /// The environment from typed options.
    pub fn build(&self, cfg: LocomotionConfig) -> Result<Locomotion, EnvError> {
        Locomotion::with_config(*self, cfg)
    }

    /// Reads the options from `config`; unknown keys and bad values are errors.
    pub fn config(&self, config: &EnvConfig) -> Result<LocomotionConfig, EnvError> {
        let d = (self.defaults)();
        let mut r = config.reader(self.id);
        let health = match &d.health {
            None => None,
            Some(h) => Some(Health {
                healthy_reward: r.f64("healthy_reward", h.healthy_reward)?,
                terminate_when_unhealthy: r.bool("terminate_when_unhealthy", h.terminate_when_unhealthy)?,
                healthy_state_range: match h.healthy_state_range {
                    Some(range) => Some(r.range("healthy_state_range", range)?),
                    None => None,
                },
                healthy_z_range: r.range("healthy_z_range", h.healthy_z_range)?,
                healthy_angle_range: r.range("healthy_angle_range", h.healthy_angle_range)?,
            }),
        };
        let c = LocomotionConfig {
            xml_file: r.string("xml_file", &d.xml_file)?,
            frame_skip: r.usize_in("frame_skip", d.frame_skip, 1, 1000)?,
            forward_reward_weight: r.f64("forward_reward_weight", d.forward_reward_weight)?,
            ctrl_cost_weight: r.f64("ctrl_cost_weight", d.ctrl_cost_weight)?,
            reset_noise_scale: r.nonneg_f64("reset_noise_scale", d.reset_noise_scale)?,
            exclude_current_positions_from_observation: r.bool(
                "exclude_current_positions_from_observation",
                d.exclude_current_positions_from_observation,
            )?,
            health,
            timestep: r.nonneg_f64("timestep", d.timestep)?,
            substeps: r.usize_in("substeps", d.substeps, 1, 100)?,
            solver_iterations: r.usize_in("solver_iterations", d.solver_iterations, 1, 100)?,
            limit_natural_frequency: r.nonneg_f64("limit_natural_frequency", d.limit_natural_frequency)?,
            limit_damping_ratio: r.nonneg_f64("limit_damping_ratio", d.limit_damping_ratio)?,
            contact_natural_frequency: r.nonneg_f64("contact_natural_frequency", d.contact_natural_frequency)?,
            contact_damping_ratio: r.nonneg_f64("contact_damping_ratio", d.contact_damping_ratio)?,
            mujoco_limits: r.bool("mujoco_limits", d.mujoco_limits)?,
            mujoco_contacts: r.bool("mujoco_contacts", d.mujoco_contacts)?,
            euler_integrator: r.bool("euler_integrator", d.euler_integrator)?,
            rk4_integrator: r.bool("rk4_integrator", d.rk4_integrator)?,
            mujoco_euler: r.bool("mujoco_euler", d.mujoco_euler)?,
        };
        let euler = "mujoco_euler = true takes MuJoCo's Euler step whole, without the Rapier step this corrects (it acts with \
                     mujoco_euler=false)";
        r.inert_if(c.mujoco_euler, "euler_integrator", euler);
        let own_step = [(c.mujoco_euler, "mujoco_euler=false"), (c.rk4_integrator, "rk4_integrator=false")];
        let contacts = format!(
            "mujoco_contacts = true: the floor contacts follow MuJoCo's law, not Rapier's softness (it acts with {})",
            acts_with("mujoco_contacts=false", &own_step)
        );
        r.inert_if(c.mujoco_contacts, "contact_natural_frequency", &contacts);
        r.inert_if(c.mujoco_contacts, "contact_damping_ratio", &contacts);
        mark_limits_inert(&r, c.mujoco_limits, &own_step);
        r.finish()?;
        validate_rapier_options(self.id, c.timestep, c.limit_natural_frequency)?;
        if c.rk4_integrator && c.mujoco_euler {
            return Err(EnvError::BadOption {
                env: self.id.into(),
                key: "mujoco_euler".into(),
                msg: "MuJoCo's Euler step and its RK4 step (rk4_integrator) exclude each other: set one of them to false".into(),
            });
        }
        if c.contact_natural_frequency <= 0.0 {
            return Err(EnvError::BadOption {
                env: self.id.into(),
                key: "contact_natural_frequency".into(),
                msg: "must be > 0 Hz (larger is stiffer)".into(),
            });
        }
        Ok(c)
    }
}

/// Marks Rapier's joint-limit softness as without effect where MuJoCo's limit law replaces Rapier's limits
/// (`mujoco_limits`), for [`crate::inert_options`]. `own_step`: the settings of a step of our own that needs
/// MuJoCo's law, each with the value that turns it off where it is on.
pub(crate) fn mark_limits_inert(r: &ConfigReader, mujoco_limits: bool, own_step: &[(bool, &str)]) {
    let why = format!(
        "mujoco_limits = true: the joint limits follow MuJoCo's law, not Rapier's softness (it acts with {})",
        acts_with("mujoco_limits=false", own_step)
    );
    r.inert_if(mujoco_limits, "limit_natural_frequency", &why);
    r.inert_if(mujoco_limits, "limit_damping_ratio", &why);
}

/// `setting`, then each of `also` that is on (`(on, what turns it off)`), as `a, b` for an inert option's reason.
fn acts_with(setting: &str, also: &[(bool, &str)]) -> String {
    std::iter::once(setting).chain(also.iter().filter(|(on, _)| *on).map(|(_, off)| *off)).collect::<Vec<_>>().join(", ")
}

#[derive(Clone)]
struct State {
    world: WorldState,
    rng: StdRng,
    steps: Option<usize>,
}

/// A planar runner (see the module docs); the `SPEC`s of [`crate::half_cheetah`], [`crate::hopper`] and
/// [`crate::walker2d`] make them ([`Spec::make`]).
pub struct Locomotion {
    spec: Spec,
    cfg: LocomotionConfig,
    pub(crate) model: MjcfModel,
    obs_space: BoxSpace,
    act_space: BoxSpace,
    pub(crate) sim: MjcfWorld,
    /// qpos when every body is at its declared pose (MuJoCo's `init_qpos`: the joints' `ref`).
    init_qpos: Vec<f64>,
    rng: StdRng,
    steps: Option<usize>,
}

impl Locomotion {
    /// The environment of `spec` with options `cfg`; the state is the rest pose until `reset`.
    pub fn with_config(spec: Spec, cfg: LocomotionConfig) -> Result<Self, EnvError> {
        let model = MjcfModel::load(&cfg.xml_file)?;
        model.expect_shape(spec.id, Some(spec.nq), spec.nu)?;
        let kinds: Vec<JointKind> = model.joints.iter().take(3).map(|j| j.kind).collect();
        if kinds != [JointKind::Slide, JointKind::Slide, JointKind::Hinge] {
            return Err(EnvError::BadOption {
                env: spec.id.into(),
                key: "xml_file".into(),
                msg: format!(
                    "{}: the root must be slides rootx, rootz then hinge rooty (a planar root), got {kinds:?}",
                    model.source
                ),
            });
        }
        let settings = RapierSettings {
            timestep: cfg.timestep,
            substeps: cfg.substeps,
            solver_iterations: cfg.solver_iterations,
            limit_natural_frequency: cfg.limit_natural_frequency,
            limit_damping_ratio: cfg.limit_damping_ratio,
            limit_projection: false,
            // with MuJoCo's floor contacts, Rapier's (body against body) keep its default softness, and the
            // planar root needs no hidden freedom (see `hidden_linear_freedom`)
            contact: (!cfg.mujoco_contacts).then_some([cfg.contact_natural_frequency, cfg.contact_damping_ratio]),
        };
        let act_space = model.action_space();
        let obs_dim = 2 * spec.nq - usize::from(cfg.exclude_current_positions_from_observation);
        let mut sim = MjcfWorld::build(&model, &settings);
        if cfg.mujoco_limits {
            sim.set_mujoco_limits(&model, cfg.timestep);
        }
        if cfg.mujoco_contacts {
            sim.use_mujoco_contacts(&model, spec.id)?;
        }
        sim.set_euler_integrator(cfg.euler_integrator && !cfg.mujoco_euler).map_err(|msg| EnvError::BadOption {
            env: spec.id.into(),
            key: "euler_integrator".into(),
            msg: format!("{msg}; set solver_iterations=1 or euler_integrator=false"),
        })?;
        sim.use_rk4_integrator(cfg.rk4_integrator, spec.id, "mujoco_contacts=true, mujoco_limits=true and euler_integrator=false")?;
        sim.set_mujoco_euler(cfg.mujoco_euler).map_err(|msg| EnvError::BadOption {
            env: spec.id.into(),
            key: "mujoco_euler".into(),
            msg: format!("{msg}; set mujoco_contacts=true and mujoco_limits=true, or mujoco_euler=false"),
        })?;
        let init_qpos = model.joints.iter().map(|j| j.reference).collect();
        Ok(Locomotion {
            spec,
            obs_space: BoxSpace::uniform(obs_dim, f32::NEG_INFINITY, f32::INFINITY),
            act_space,
            sim,
            init_qpos,
            model,
            rng: StdRng::seed_from_u64(rand::random()),
            steps: None,
            cfg,
        })
    }

    /// The options in force.
    pub fn config(&self) -> &LocomotionConfig {
        &self.cfg
    }

    /// The MJCF model.
    pub fn model(&self) -> &MjcfModel {
        &self.model
    }

    /// Generalised positions (MuJoCo's qpos: rootx, rootz, rooty, then the legs).
    pub fn qpos(&self) -> Vec<f64> {
        self.sim.qpos()
    }

    /// Generalised velocities (MuJoCo's qvel).
    pub fn qvel(&self) -> Vec<f64> {
        self.sim.qvel()
    }

    /// Joint-space mass matrix (armature included, damping excluded), ordered like qvel.
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

    /// Contact points where a geom overlaps another (MuJoCo's `ncon`).
    /// Steps of the RK4 integrator (`rk4_integrator`) that Rapier took instead because two body geoms touched.
    pub fn rk4_fallbacks(&self) -> u64 {
        self.sim.rk4_fallbacks()
    }

    pub fn contact_count(&self) -> usize {
        self.sim.contact_count()
    }

    /// Sets the state to MuJoCo's `qpos`, `qvel` (a fresh simulator state).
    pub fn set_state(&mut self, qpos: &[f64], qvel: &[f64]) -> Result<(), EnvError> {
        let n = self.spec.nq;
        if qpos.len() != n || qvel.len() != n {
            return Err(EnvError::BadOption {
                env: self.spec.id.into(),
                key: "state".into(),
                msg: format!("qpos and qvel need {n} values each, got {} and {}", qpos.len(), qvel.len()),
            });
        }
        self.sim.reset_state(qpos, qvel);
        Ok(())
    }

    /// The observation of the current state.
    pub fn observe(&self) -> Vec<f32> {
        let skip = usize::from(self.cfg.exclude_current_positions_from_observation);
        let clip = self.spec.clip_qvel.unwrap_or(f64::INFINITY);
        let q = self.qpos();
        let v = self.qvel().into_iter().map(|x| x.clamp(-clip, clip));
        q[skip..].iter().copied().chain(v).map(|x| x as f32).collect()
    }

    /// Whether the state is healthy (always, without health terms).
    pub fn is_healthy(&self) -> bool {
        let Some(h) = &self.cfg.health else { return true };
        let (q, v) = (self.qpos(), self.qvel());
        let inside = |x: f64, (lo, hi): (f64, f64)| lo < x && x < hi;
        let state_ok = h.healthy_state_range.is_none_or(|r| q[2..].iter().chain(&v).all(|x| inside(*x, r)));
        state_ok && inside(q[1], h.healthy_z_range) && inside(q[2], h.healthy_angle_range)
    }

    fn state(&self) -> State {
        State { world: WorldState::capture(&self.sim.world), rng: self.rng.clone(), steps: self.steps }
    }
}

impl Env for Locomotion {
    fn id(&self) -> &str {
        self.spec.id
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
        let uniform = |rng: &mut StdRng| if s > 0.0 { rng.random_range(-s..s) } else { 0.0 };
        let qpos: Vec<f64> = self.init_qpos.iter().map(|q| q + uniform(&mut self.rng)).collect();
        let qvel: Vec<f64> = (0..self.spec.nq)
            .map(|_| match self.spec.velocity_noise {
                VelocityNoise::Normal => s * self.rng.sample::<f64, _>(StandardNormal),
                VelocityNoise::Uniform => uniform(&mut self.rng),
            })
            .collect();
        self.sim.reset_state(&qpos, &qvel);
        self.steps = Some(0);
        let mut info = Info::with_capacity(8);
        let q = self.sim.qpos();
        info.insert("x_position", q[0]);
        if self.cfg.health.is_some() {
            info.insert("z_distance_from_origin", q[1] - self.init_qpos[1]);
        }
        Ok((self.observe(), info))
    }

    fn step(&mut self, action: &[f32]) -> Result<Step, EnvError> {
        check_action(&self.act_space, action)?;
        let Some(steps) = self.steps else {
            return Err(EnvError::NeedsReset("before reset() or after a non-finite state"));
        };
        let ctrl: Vec<f64> = action.iter().map(|a| *a as f64).collect();
        let tau = actuator_forces(&self.model, &ctrl);
        let x_before = self.sim.qpos()[0];
        let n = self.cfg.frame_skip * self.cfg.substeps;
        let (q, _) = self.sim.advance(&tau, n, steps).inspect_err(|_| self.steps = None)?;
        self.steps = Some(steps + 1);
        let x_velocity = (q[0] - x_before) / self.dt();
        let forward = self.cfg.forward_reward_weight * x_velocity;
        let ctrl_cost = self.cfg.ctrl_cost_weight * ctrl.iter().map(|a| a * a).sum::<f64>();
        let mut info = Info::with_capacity(8);
        info.insert("x_position", q[0]);
        info.insert("x_velocity", x_velocity);
        info.insert("reward_forward", forward);
        info.insert("reward_ctrl", -ctrl_cost);
        let mut reward = forward - ctrl_cost;
        let mut terminated = false;
        if let Some(h) = &self.cfg.health {
            let healthy = self.is_healthy();
            let survive = if healthy { h.healthy_reward } else { 0.0 };
            info.insert("z_distance_from_origin", q[1] - self.init_qpos[1]);
            info.insert("reward_survive", survive);
            reward += survive;
            terminated = !healthy && h.terminate_when_unhealthy;
        }
        Ok(Step { obs: self.observe(), reward, terminated, truncated: false, info })
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.spec.id, self.state())
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), EnvError> {
        let s: &State = snapshot.get(self.spec.id)?;
        let s = s.clone();
        s.world.restore_into(&mut self.sim.world);
        self.rng = s.rng;
        self.steps = s.steps;
        Ok(())
    }

    /// Side view (MuJoCo's x–z plane) following the torso, with the floor.
    fn planar_scene(&self) -> Option<PlanarScene> {
        let x = self.qpos()[0];
        let mut capsules = vec![Capsule2 { a: [x - 4.0, -0.02], b: [x + 4.0, -0.02], radius: 0.02 }];
        capsules.extend(
            self.sim
                .capsules(&self.model)
                .into_iter()
                .map(|(a, b, radius)| Capsule2 { a: [a[0], a[2]], b: [b[0], b[2]], radius }),
        );
        let top = capsules.iter().flat_map(|c| [c.a[1], c.b[1]]).fold(0.0, f64::max);
        Some(PlanarScene { capsules, markers: vec![], focus: [x, 0.5 * top.max(1.0)], view_half_width: (0.8 * top).max(1.6) })
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
pub struct Replay {
    /// Steps replayed (up to MuJoCo's end or ours, whichever comes first).
    pub steps: usize,
    /// First step after which MuJoCo had a contact (`ncon > 0`), if any.
    pub first_contact_mujoco: Option<usize>,
    /// First step after which we had a contact (a geom overlapping another), if any.
    pub first_contact_ours: Option<usize>,
    /// Largest |qpos − qpos_MuJoCo| over all coordinates, before MuJoCo's first contact.
    pub max_qpos_err_before_contact: f64,
    /// Our return and MuJoCo's.
    pub return_ours: f64,
    pub return_mujoco: f64,
    /// The step (0-based) at which each terminated, if it did.
    pub terminated_ours: Option<usize>,
    pub terminated_mujoco: Option<usize>,
    /// Mean torso height (rootz) over the last quarter of the replay, ours and MuJoCo's.
    pub late_height_ours: f64,
    pub late_height_mujoco: f64,
    /// Final x position, ours and MuJoCo's.
    pub final_x_ours: f64,
    pub final_x_mujoco: f64,
    /// (joint, step) pairs with a joint past its range, and the largest excess, ours and MuJoCo's:
    /// how far the soft joint limits give.
    pub past_limit_ours: (usize, f64),
    pub past_limit_mujoco: (usize, f64),
}

fn past_limit(model: &MjcfModel, q: &[f64], acc: &mut (usize, f64)) {
    for (j, qj) in model.joints.iter().zip(q) {
        if let Some([lo, hi]) = j.range {
            let over = (lo - qj).max(qj - hi);
            if over > 0.0 {
                acc.0 += 1;
                acc.1 = acc.1.max(over);
            }
        }
    }
}

/// The one-step errors of a reference rollout of `scripts/record_mujoco_rollouts.py`, sorted: from each of
/// MuJoCo's states, `step(qpos, qvel, action)` sets it, takes one env step with MuJoCo's next action and
/// returns qvel after it; the error is `|qvel ours − qvel MuJoCo| / |qvel MuJoCo − qvel before|` (steps whose
/// change is below 1e-6 skipped). Open-loop replays are chaotic over hundreds of steps; this measures the
/// dynamics of the step itself.
pub fn one_step_errors(
    mut step: impl FnMut(&[f64], &[f64], &[f32]) -> Result<Vec<f64>, EnvError>,
    table: &crate::csvio::Table,
    (nq, nv, nu): (usize, usize, usize),
) -> Result<Vec<f64>, EnvError> {
    let (q, v, a) = (table.columns("qpos", 0..nq)?, table.columns("qvel", 0..nv)?, table.columns("action", 0..nu)?);
    let col = |c: &[Vec<f64>], k: usize| c.iter().map(|x| x[k]).collect::<Vec<f64>>();
    let norm = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
    let mut errs = Vec::new();
    for k in 1..table.rows.len() {
        let (v0, v1) = (col(&v, k - 1), col(&v, k));
        let change = norm(&v1, &v0);
        if change >= 1e-6 {
            let act: Vec<f32> = col(&a, k).iter().map(|x| *x as f32).collect();
            errs.push(norm(&step(&col(&q, k - 1), &v0, &act)?, &v1) / change);
        }
    }
    errs.sort_by(f64::total_cmp);
    Ok(errs)
}

/// Replays a reference rollout of `scripts/record_mujoco_rollouts.py` (its `step = -1` row is the
/// start state; its actions are applied in order) with the options `cfg`; stops where either
/// simulator terminates.
pub fn replay(spec: Spec, cfg: &LocomotionConfig, table: &crate::csvio::Table) -> Result<Replay, EnvError> {
    let (nq, nu) = (spec.nq, spec.nu);
    let (qref, vref, acts) = (table.columns("qpos", 0..nq)?, table.columns("qvel", 0..nq)?, table.columns("action", 0..nu)?);
    let (rewards, ncon, term) = (table.column("reward")?, table.column("ncon")?, table.column("terminated")?);
    let n = rewards.len() - 1;
    let mut env = Locomotion::with_config(spec, LocomotionConfig { reset_noise_scale: 0.0, ..cfg.clone() })?;
    env.reset(Some(0))?;
    env.set_state(&qref.iter().map(|c| c[0]).collect::<Vec<_>>(), &vref.iter().map(|c| c[0]).collect::<Vec<_>>())?;
    let first_contact_mujoco = (1..=n).find(|&k| ncon[k] > 0.0).map(|k| k - 1);
    let late = n - n / 4;
    let mut late_count = 0usize;
    let mut r = Replay {
        steps: 0,
        first_contact_mujoco,
        first_contact_ours: None,
        max_qpos_err_before_contact: 0.0,
        return_ours: 0.0,
        return_mujoco: rewards[1..].iter().sum(),
        terminated_ours: None,
        terminated_mujoco: (1..=n).find(|&k| term[k] != 0.0).map(|k| k - 1),
        late_height_ours: 0.0,
        late_height_mujoco: qref[1][late + 1..].iter().sum::<f64>() / (n - late) as f64,
        final_x_ours: 0.0,
        final_x_mujoco: qref[0][n],
        past_limit_ours: (0, 0.0),
        past_limit_mujoco: (0, 0.0),
    };
    for k in 0..n {
        let a: Vec<f32> = acts.iter().map(|c| c[k + 1] as f32).collect();
        let s = env.step(&a)?;
        r.return_ours += s.reward;
        r.steps = k + 1;
        let q = env.qpos();
        if first_contact_mujoco.is_none_or(|c| k < c) {
            let err = (0..nq).map(|i| (q[i] - qref[i][k + 1]).abs()).fold(0.0, f64::max);
            r.max_qpos_err_before_contact = r.max_qpos_err_before_contact.max(err);
        }
        if r.first_contact_ours.is_none() && env.contact_count() > 0 {
            r.first_contact_ours = Some(k);
        }
        if k >= late {
            r.late_height_ours += q[1];
            late_count += 1;
        }
        r.final_x_ours = q[0];
        past_limit(&env.model, &q, &mut r.past_limit_ours);
        let qm: Vec<f64> = (0..nq).map(|i| qref[i][k + 1]).collect();
        past_limit(&env.model, &qm, &mut r.past_limit_mujoco);
        if s.terminated {
            r.terminated_ours = Some(k);
            break;
        }
    }
    r.late_height_ours /= late_count.max(1) as f64;
    Ok(r)
}

/// Returns and lengths of `episodes` episodes of uniform random actions over the action space (±1 where
/// it is unbounded; the same draws as U(−1, 1) for a space of [−1, 1]) (episode i reset with
/// seed 1000 + i, the actions drawn from one stream seeded 7; at most 1000 steps, the registered limit):
/// the draws the fidelity example and tests compare with MuJoCo's `*_random_returns.csv`.
/// Any environment works (Ant-v5 uses it too); `max_episode_steps` is the registered limit.
pub fn random_action_returns(
    env: &mut dyn Env,
    max_episode_steps: usize,
    episodes: u64,
) -> Result<Vec<(f64, usize)>, EnvError> {
    let mut rng = StdRng::seed_from_u64(7);
    // uniform over the action space (a random policy's `action_space.sample()`), ±1 where it is unbounded
    let space = env.action_space();
    let bounds: Vec<(f32, f32)> = space
        .low
        .iter()
        .zip(&space.high)
        .map(|(l, h)| if l.is_finite() && h.is_finite() { (*l, *h) } else { (-1.0, 1.0) })
        .collect();
    (0..episodes)
        .map(|i| {
            env.reset(Some(1000 + i))?;
            let (mut ret, mut n) = (0.0, 0);
            while n < max_episode_steps {
                let a: Vec<f32> = bounds.iter().map(|&(l, h)| rng.random_range(l..h)).collect();
                let s = env.step(&a)?;
                ret += s.reward;
                n += 1;
                if s.terminated {
                    break;
                }
            }
            Ok((ret, n))
        })
        .collect()
}
