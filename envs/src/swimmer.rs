//! Swimmer-v5: MuJoCo's three-segment swimmer in a viscous fluid, simulated with Rapier.
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
//! | root | planar: slide x, slide y, hinge yaw (Rapier multibody, reduced coordinates) |
//! | joint limits | motor1_rot, motor2_rot: ±100° (Rapier limit constraints, see `limit_natural_frequency`) |
//! | armature | 0.1 on all five degrees of freedom (Rapier multibody armature) |
//! | damping | 0 (Rapier's default multibody angular damping of 0.1 is removed) |
//! | actuators | τ = 150 · clip(a, −1, 1) N·m on each hinge, equal and opposite on the two bodies |
//! | fluid | MuJoCo inertia-box model, ρ = 4000, β = 0.1, recomputed every physics substep ([`crate::fluid`]) |
//! | contacts, gravity | none (all motion is in the plane; gravity has no planar component) |
//! | time | timestep 0.01 s, `frame_skip` = 4 → dt = 0.04 s per env step |
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
//! | `xml_file` | `"swimmer.xml"` | only the stock model is available (there is no MJCF loader) |
//! | `frame_skip` | 4 | physics steps of `timestep` per env step |
//! | `forward_reward_weight` | 1.0 | weight of x_velocity |
//! | `ctrl_cost_weight` | 1e-4 | weight of Σa² |
//! | `reset_noise_scale` | 0.1 | half-width of the uniform reset noise |
//! | `exclude_current_positions_from_observation` | true | drop x, y from the observation |
//! | `timestep` | 0.01 | MuJoCo's `opt.timestep` (s) |
//! | `substeps` | 1 | Rapier steps per `timestep` (fluid forces are recomputed at each) |
//! | `solver_iterations` | 4 | Rapier's solver substeps per Rapier step |
//! | `limit_natural_frequency` | 1e6 | Hz, Rapier softness of the joint limits (its default: practically hard; MuJoCo's soft limit with impedance 0.9–0.95 overshoots ≤ 2.3°, and hard limits matched its returns best, see README) |
//! | `limit_damping_ratio` | 1.0 | damping ratio of the joint-limit softness |

use rand::rngs::Xoshiro256PlusPlus as StdRng;
use rand::{RngExt, SeedableRng};
use rapier3d::prelude::*;

use crate::config::EnvConfig;
use crate::env::{check_action, BoxSpace, Capsule2, Env, Info, PlanarScene, Snapshot, Step};
use crate::error::EnvError;
use crate::rapier_world::{check_stock_xml, configure_integration, validate_rapier_options, WorldState};
use crate::fluid::PlanarDrag;

/// Registry id.
pub const ID: &str = "Swimmer-v5";
/// Episode length of the registered environment (Gymnasium's `max_episode_steps`).
pub const MAX_EPISODE_STEPS: usize = 1000;
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
}

impl Default for SwimmerConfig {
    fn default() -> Self {
        SwimmerConfig {
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
        }
    }
}

impl SwimmerConfig {
    /// Reads the options from `config`; unknown keys and bad values are errors.
    pub fn from_env_config(config: &EnvConfig) -> Result<Self, EnvError> {
        let d = SwimmerConfig::default();
        let mut r = config.reader(ID);
        check_stock_xml(&mut r, ID, "swimmer.xml")?;
        let c = SwimmerConfig {
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
    obs_space: BoxSpace,
    act_space: BoxSpace,
    world: PhysicsWorld,
    rng: StdRng,
    steps: Option<usize>,
    /// torso, mid, back
    segments: [RigidBodyHandle; 3],
    mb_link: MultibodyJointHandle,
    drag: PlanarDrag,
}

impl Swimmer {
    /// A Swimmer with the given options; the state is the rest pose until `reset`.
    pub fn new(config: &EnvConfig) -> Result<Self, EnvError> {
        Self::with_config(SwimmerConfig::from_env_config(config)?)
    }

    /// A Swimmer from typed options.
    pub fn with_config(cfg: SwimmerConfig) -> Result<Self, EnvError> {
        let obs_dim = if cfg.exclude_current_positions_from_observation { 8 } else { 10 };
        let (world, segments, mb_link) = build_world(&cfg);
        let drag = PlanarDrag::new(SEGMENT_MASS, SEGMENT_I_PERP, SEGMENT_I_AXIS, DENSITY, VISCOSITY);
        Ok(Swimmer {
            obs_space: BoxSpace::uniform(obs_dim, f32::NEG_INFINITY, f32::INFINITY),
            act_space: BoxSpace::uniform(2, -1.0, 1.0),
            world,
            rng: StdRng::seed_from_u64(rand::random()),
            steps: None,
            segments,
            mb_link,
            drag,
            cfg,
        })
    }

    /// The options in force.
    pub fn config(&self) -> &SwimmerConfig {
        &self.cfg
    }

    fn multibody(&self) -> &Multibody {
        let (mb, _) = self.world.multibody_joints.get(self.mb_link).expect("swimmer multibody exists");
        mb
    }

    /// Generalised positions `[x, y, θ_torso, q1, q2]` (MuJoCo's qpos).
    pub fn qpos(&self) -> [f64; 5] {
        let mb = self.multibody();
        let c = |link: usize, i: usize| mb.link(link).expect("link").joint().coords()[i] as f64;
        // link 0: the fixed anchor; 1: torso (planar: coords x, y, and yaw at index 5);
        // 2: mid, 3: back (revolute: coordinate at index 3).
        [c(1, 0), c(1, 1), c(1, 5), c(2, 3), c(3, 3)]
    }

    /// Generalised velocities `[vx, vy, ω_torso, q̇1, q̇2]` (MuJoCo's qvel).
    pub fn qvel(&self) -> [f64; 5] {
        let v = self.multibody().generalized_velocity();
        [v[0] as f64, v[1] as f64, v[2] as f64, v[3] as f64, v[4] as f64]
    }

    /// The joint-space mass matrix (armature included) that Rapier used in its last step,
    /// ordered like qvel. Comparable with MuJoCo's `mj_fullM`.
    pub fn mass_matrix(&self) -> Option<[[f64; 5]; 5]> {
        // Rapier keeps the LU factors of the augmented mass: invert twice to read M itself.
        let inv = self.multibody().inv_augmented_mass().try_inverse()?.try_inverse()?;
        if inv.nrows() != 5 {
            return None;
        }
        Some(std::array::from_fn(|i| std::array::from_fn(|j| inv[(i, j)] as f64)))
    }

    /// Sets the state to `qpos`, `qvel` (a fresh simulator state: nothing is carried over).
    pub fn set_state(&mut self, qpos: [f64; 5], qvel: [f64; 5]) {
        let (world, segments, mb_link) = build_world(&self.cfg);
        self.world = world;
        self.segments = segments;
        self.mb_link = mb_link;
        let (mb, _) = self.world.multibody_joints.get_mut(mb_link).expect("swimmer multibody exists");
        let disp: Vec<Real> = qpos.iter().map(|v| *v as Real).collect();
        mb.apply_displacements(&disp);
        let mut gv = mb.generalized_velocity_mut();
        for i in 0..5 {
            gv[i] = qvel[i] as Real;
        }
        mb.forward_kinematics(&self.world.bodies, false);
        mb.update_rigid_bodies(&mut self.world.bodies, true);
    }

    fn observation(&self, qpos: &[f64; 5], qvel: &[f64; 5]) -> Vec<f32> {
        let start = if self.cfg.exclude_current_positions_from_observation { 2 } else { 0 };
        qpos[start..].iter().chain(qvel.iter()).map(|v| *v as f32).collect()
    }

    /// One Rapier step of `timestep / substeps` with the given hinge torques.
    fn physics_step(&mut self, torques: [f64; 2]) {
        let [torso, mid, back] = self.segments;
        let (q, qd) = (self.qpos(), self.qvel());
        let kin = segment_kinematics(&q, &qd);
        // Body torques: each hinge torque acts on its child and, opposite, on its parent.
        let body_torque = [-torques[0], torques[0] - torques[1], torques[1]];
        for (k, h) in [torso, mid, back].into_iter().enumerate() {
            let (theta, v, w) = kin[k];
            let (f, t) = self.drag.force_torque(theta, v, w);
            let rb = &mut self.world.bodies[h];
            rb.reset_forces(false);
            rb.reset_torques(false);
            rb.add_force(Vector::new(f[0] as Real, f[1] as Real, 0.0), false);
            rb.add_torque(Vector::new(0.0, 0.0, (t + body_torque[k]) as Real), false);
        }
        self.world.step();
    }

    fn state(&self) -> State {
        let w = &self.world;
        State {
            world: WorldState::capture(w),
            rng: self.rng.clone(),
            steps: self.steps,
        }
    }
}

/// Heading, COM velocity and yaw rate of (torso, mid, back) from MuJoCo's qpos and qvel
/// (planar kinematics of swimmer_model.md; exact, and independent of Rapier's body caches).
pub fn segment_kinematics(q: &[f64; 5], qd: &[f64; 5]) -> [(f64, [f64; 2], f64); 3] {
    let th = [q[2], q[2] + q[3], q[2] + q[3] + q[4]];
    let w = [qd[2], qd[2] + qd[3], qd[2] + qd[3] + qd[4]];
    // velocity of a point at distance d along u(theta) from a point moving with v: v + d·w·u⊥
    let along = |v: [f64; 2], d: f64, k: usize| {
        let (s, c) = th[k].sin_cos();
        [v[0] - d * w[k] * s, v[1] + d * w[k] * c]
    };
    let vp = [qd[0], qd[1]];
    let v_torso = along(vp, 1.0, 0);
    let v_j1 = along(vp, 0.5, 0);
    let v_mid = along(v_j1, -0.5, 1);
    let v_j2 = along(v_j1, -1.0, 1);
    let v_back = along(v_j2, -0.5, 2);
    [(th[0], v_torso, w[0]), (th[1], v_mid, w[1]), (th[2], v_back, w[2])]
}

/// Builds the world at the rest pose: returns it, the segment handles and a multibody handle.
fn build_world(cfg: &SwimmerConfig) -> (PhysicsWorld, [RigidBodyHandle; 3], MultibodyJointHandle) {
    let mut world = PhysicsWorld::new();
    world.gravity = Vector::ZERO;
    configure_integration(&mut world.integration_parameters, cfg.timestep, cfg.substeps, cfg.solver_iterations);

    let inertia = Vector::new(SEGMENT_I_AXIS as Real, SEGMENT_I_PERP as Real, SEGMENT_I_PERP as Real);
    let segment = |origin_x: Real, com_x: Real| {
        RigidBodyBuilder::dynamic()
            .translation(Vector::new(origin_x, 0.0, 0.0))
            .can_sleep(false)
            .additional_mass_properties(MassProperties::new(
                Vector::new(com_x, 0.0, 0.0),
                SEGMENT_MASS as Real,
                inertia,
            ))
    };
    let anchor = world.insert_body(RigidBodyBuilder::fixed());
    // MuJoCo body frames: torso at the origin (COM +1.0), mid at (0.5,0,0) (COM −0.5),
    // back at (−0.5,0,0) (COM −0.5).
    let torso = world.insert_body(segment(0.0, 1.0));
    let mid = world.insert_body(segment(0.5, -0.5));
    let back = world.insert_body(segment(-0.5, -0.5));

    let planar = GenericJointBuilder::new(JointAxesMask::LIN_Z | JointAxesMask::ANG_X | JointAxesMask::ANG_Y).build();
    let softness = SpringCoefficients::new(cfg.limit_natural_frequency as Real, cfg.limit_damping_ratio as Real);
    let hinge = |anchor1: Real| {
        RevoluteJointBuilder::new(Vector::Z)
            .local_anchor1(Vector::new(anchor1, 0.0, 0.0))
            .local_anchor2(Vector::ZERO)
            .limits([-JOINT_LIMIT as Real, JOINT_LIMIT as Real])
            .softness(softness)
    };
    let mb = &mut world.multibody_joints;
    let link = mb.insert(anchor, torso, planar, true).expect("planar root joint");
    mb.insert(torso, mid, hinge(0.5), true).expect("hinge 1");
    mb.insert(mid, back, hinge(-1.0), true).expect("hinge 2");

    // A zero-length step lets Rapier settle the multibody's root (fixed) and its DOF count.
    let dt = world.integration_parameters.dt;
    world.integration_parameters.dt = 0.0;
    world.step();
    world.integration_parameters.dt = dt;

    let (mbody, _) = world.multibody_joints.get_mut(link).expect("multibody");
    assert_eq!(mbody.ndofs(), 5, "swimmer multibody must have 5 DOF");
    mbody.damping_mut().fill(0.0);
    mbody.armature_mut().fill(ARMATURE as Real);
    (world, [torso, mid, back], link)
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
        let mut draw = || if s > 0.0 { self.rng.random_range(-s..s) } else { 0.0 };
        let qpos: [f64; 5] = std::array::from_fn(|_| draw());
        let qvel: [f64; 5] = std::array::from_fn(|_| draw());
        self.set_state(qpos, qvel);
        self.steps = Some(0);
        let (qpos, qvel) = (self.qpos(), self.qvel());
        let mut info = Info::new();
        info.insert("x_position".into(), qpos[0]);
        info.insert("y_position".into(), qpos[1]);
        info.insert("distance_from_origin".into(), qpos[0].hypot(qpos[1]));
        Ok((self.observation(&qpos, &qvel), info))
    }

    fn step(&mut self, action: &[f32]) -> Result<Step, EnvError> {
        check_action(&self.act_space, action)?;
        let Some(steps) = self.steps else {
            return Err(EnvError::NeedsReset("before reset() or after a physics error"));
        };
        let before = self.qpos();
        let torques = [
            GEAR * (action[0] as f64).clamp(-1.0, 1.0),
            GEAR * (action[1] as f64).clamp(-1.0, 1.0),
        ];
        for _ in 0..self.cfg.frame_skip * self.cfg.substeps {
            self.physics_step(torques);
        }
        let (qpos, qvel) = (self.qpos(), self.qvel());
        // A diverged simulation: non-finite numbers, or speeds no actuator of 150 N·m in this fluid
        // can produce (a few m/s, rad/s at most). Ends the episode instead of poisoning a batch.
        let bad = |i: usize, v: f64| !v.is_finite() || (i >= 5 && v.abs() > MAX_SANE_SPEED);
        if let Some(i) = qpos.iter().chain(qvel.iter()).enumerate().position(|(i, v)| bad(i, *v)) {
            self.steps = None;
            let v = if i < 5 { qpos[i] } else { qvel[i - 5] };
            let what = if i < 5 { format!("qpos[{i}] = {v}") } else { format!("qvel[{}] = {v}", i - 5) };
            return Err(EnvError::PhysicsBlowUp { step: steps, what });
        }
        self.steps = Some(steps + 1);
        let dt = self.dt();
        let x_velocity = (qpos[0] - before[0]) / dt;
        let y_velocity = (qpos[1] - before[1]) / dt;
        let reward_forward = self.cfg.forward_reward_weight * x_velocity;
        let ctrl: f64 = action.iter().map(|a| (*a as f64) * (*a as f64)).sum();
        let reward_ctrl = -self.cfg.ctrl_cost_weight * ctrl;
        let mut info = Info::new();
        info.insert("x_position".into(), qpos[0]);
        info.insert("y_position".into(), qpos[1]);
        info.insert("distance_from_origin".into(), qpos[0].hypot(qpos[1]));
        info.insert("x_velocity".into(), x_velocity);
        info.insert("y_velocity".into(), y_velocity);
        info.insert("reward_forward".into(), reward_forward);
        info.insert("reward_ctrl".into(), reward_ctrl);
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
        s.world.restore_into(&mut self.world);
        self.rng = s.rng;
        self.steps = s.steps;
        Ok(())
    }

    fn planar_scene(&self) -> Option<PlanarScene> {
        let q = self.qpos();
        let u = |t: f64| [t.cos(), t.sin()];
        let (t0, t1, t2) = (q[2], q[2] + q[3], q[2] + q[3] + q[4]);
        let p = [q[0], q[1]];
        let add = |a: [f64; 2], d: [f64; 2], s: f64| [a[0] + s * d[0], a[1] + s * d[1]];
        let j1 = add(p, u(t0), 0.5);
        let j2 = add(j1, u(t1), -1.0);
        let r = SEGMENT_RADIUS;
        let capsules = vec![
            Capsule2 { a: add(p, u(t0), 1.5), b: j1, radius: r },
            Capsule2 { a: j1, b: j2, radius: r },
            Capsule2 { a: j2, b: add(j2, u(t2), -1.0), radius: r },
        ];
        let focus = [(capsules[1].a[0] + capsules[1].b[0]) / 2.0, (capsules[1].a[1] + capsules[1].b[1]) / 2.0];
        Some(PlanarScene { capsules, markers: vec![], focus, view_half_width: 2.5 })
    }

    fn max_episode_steps(&self) -> Option<usize> {
        None
    }

    fn qpos_qvel(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        Some((self.qpos().to_vec(), self.qvel().to_vec()))
    }
}
