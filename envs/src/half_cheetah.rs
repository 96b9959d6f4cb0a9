//! HalfCheetah-v5: MuJoCo's planar cheetah running on a floor, from the MJCF file
//! `half_cheetah.xml` through rapier3d-mjcf; the first environment here with contacts.
//!
//! Faithful to Gymnasium 1.4.0's `half_cheetah_v5.py` in its spaces, reward, reset and options;
//! the dynamics are measured against reference rollouts of the real MuJoCo (`tests/half_cheetah.rs`,
//! the README's environment table): the state before the first contact agrees closely, whole episodes
//! agree in their returns within the stated tolerances (contacts are chaotic, so trajectories part).
//!
//! ## Model (`models/half_cheetah.xml`)
//! | part | value |
//! |---|---|
//! | root | slides `rootx`, `rootz` and hinge `rooty` (a planar root), torso at z = 0.7 |
//! | body | torso and head capsules, two legs of thigh, shin and foot (r = 0.046), 14 kg in all |
//! | leg joints | hinges about +y with ranges, springs (`stiffness` 240/180/120 back, 180/120/60 front, relaxed at 0), damping 6/4.5/3 and 4.5/3/1.5, armature 0.1 |
//! | actuators | torques gear · clip(a, −1, 1) with gears 120, 90, 60, 120, 60, 30 |
//! | contacts | every body capsule against the floor (MuJoCo's contype/conaffinity rule), friction 0.4 |
//! | time | timestep 0.01 s (MuJoCo: Euler), `frame_skip` = 5 → dt = 0.05 s |
//!
//! ## Spaces
//! action (6,) in [−1, 1]; observation (17,): qpos[1..9] (rootz, rooty, the six leg angles), then
//! qvel (9,); with `exclude_current_positions_from_observation = false` qpos[0] (rootx) leads (18,).
//!
//! ## Reward and end
//! `reward = forward_reward_weight · x_velocity − ctrl_cost_weight · |a|²` with `x_velocity` =
//! (rootx after − rootx before) / dt; info: `x_position`, `x_velocity`, `reward_forward`,
//! `reward_ctrl`. Never terminates; the registry's `TimeLimit` truncates after 1000 steps.
//!
//! ## Start
//! `reset`: qpos = U(−s, s)⁹, qvel = s · N(0, 1)⁹ around the model's rest pose, `s = reset_noise_scale`.
//!
//! ## Options (`make("HalfCheetah-v5", config)`)
//! | key | default | meaning |
//! |---|---|---|
//! | `xml_file` | `"half_cheetah.xml"` | a shipped model's name or a path to an MJCF file (nine hinge/slide DoFs, six actuators) |
//! | `frame_skip` | 5 | physics steps of `timestep` per env step |
//! | `forward_reward_weight` | 1.0 | weight of the forward velocity |
//! | `ctrl_cost_weight` | 0.1 | weight of the control cost |
//! | `reset_noise_scale` | 0.1 | scale of the reset noise |
//! | `exclude_current_positions_from_observation` | true | leave rootx out of the observation |
//! | `timestep` | 0.01 | MuJoCo's `opt.timestep` (s) |
//! | `substeps` | 1 | Rapier steps per `timestep` |
//! | `solver_iterations` | 1 | Rapier's solver substeps per Rapier step (`euler_integrator` needs 1; no effect with `mujoco_euler`) |
//! | `limit_natural_frequency` | 10 | Hz, softness of Rapier's joint limits with `mujoco_limits = false` (MuJoCo's are soft: `solreflimit` .02 1, `solimplimit` 0 .8 .03) |
//! | `limit_damping_ratio` | 1.0 | damping ratio of the limit softness |
//! | `contact_natural_frequency` | 15 | Hz, softness of Rapier's floor contacts with `mujoco_contacts = false` (MuJoCo: `solref` .02 1, `solimp` 0 .8 .01) |
//! | `contact_damping_ratio` | 1.0 | damping ratio of the contact softness |
//! | `mujoco_limits` | true | MuJoCo's soft-limit law (solreflimit, solimplimit) as explicit forces instead of Rapier's limits (`MjcfWorld::set_mujoco_limits`) |
//! | `mujoco_contacts` | true | MuJoCo's soft-contact law against the floor as explicit forces (`MjcfWorld::set_mujoco_contacts`); with `mujoco_limits` the open-loop gallop runs as in MuJoCo (README) |
//! | `mujoco_euler` | true | each step MuJoCo's `Euler` step (the model's integrator) taken whole, without Rapier's step, as `rk4_integrator` takes RK4 (`MjcfWorld::set_mujoco_euler`; since session 31, dynamics revision 2): each step from MuJoCo's states within 1e-5 of MuJoCo's, as `euler_integrator`'s, at 2.4× its speed; needs `mujoco_contacts` and `mujoco_limits`; `false` steps as revision 1 |
//! | `rk4_integrator` | false | MuJoCo's `RK4` step (`MjcfWorld::set_rk4_integrator`; needs `mujoco_euler = false` and `euler_integrator = false`): not this model's integrator, which is `Euler` |
//! | `euler_integrator` | true | with `mujoco_euler = false` (revision 1), each Rapier step corrected to MuJoCo's `Euler` step: Coriolis terms explicit, joint damping implicit, where Rapier's multibody makes the Coriolis terms semi-implicit (`MjcfWorld::set_euler_integrator`; each step from MuJoCo's states then within 5e-5 of MuJoCo's, 1.6 % without; 0.90–0.93 of the speed); nothing to correct with `mujoco_euler` |
//!
//! The environment is a [`crate::locomotion::Locomotion`] (shared with Hopper-v5 and Walker2d-v5);
//! `SPEC.make(config)` makes it.
//!
//! Gymnasium's `default_camera_config` and rendering arguments have no counterpart: pictures come
//! from `Env::planar_scene` (a side view that follows the torso).

use crate::locomotion::{LocomotionConfig, Spec, VelocityNoise};

/// Registry id.
pub const ID: &str = "HalfCheetah-v5";
/// Episode length of the registered environment (Gymnasium's `max_episode_steps`).
pub const MAX_EPISODE_STEPS: usize = 1000;

/// The history of this environment's dynamics, one line per revision (see
/// [`crate::registry::register_with_history`]): add a line when a change makes the same options step differently
/// (`envs/tests/dynamics_revisions.rs` fails until one is added).
pub const DYNAMICS_HISTORY: &[&str] = &[
    crate::registry::FIRST_REVISION,
    "session 31: MuJoCo's Euler step taken whole by default (mujoco_euler = true), in MuJoCo's coordinates without \
     Rapier's step, where revision 1 corrected each Rapier step to it; --env-opt mujoco_euler=false steps as revision 1 did",
];

/// The environment's shape and defaults.
pub const SPEC: Spec = Spec {
    id: ID,
    nq: 9,
    nu: 6,
    max_episode_steps: MAX_EPISODE_STEPS,
    velocity_noise: VelocityNoise::Normal,
    clip_qvel: None,
    defaults,
};

/// Gymnasium's defaults; the softness of limits and contacts as measured against MuJoCo (README,
/// "HalfCheetah-v5").
pub fn defaults() -> LocomotionConfig {
    LocomotionConfig {
        xml_file: "half_cheetah.xml".into(),
        frame_skip: 5,
        forward_reward_weight: 1.0,
        ctrl_cost_weight: 0.1,
        reset_noise_scale: 0.1,
        exclude_current_positions_from_observation: true,
        health: None,
        timestep: 0.01,
        substeps: 1,
        solver_iterations: 1,
        limit_natural_frequency: 10.0,
        limit_damping_ratio: 1.0,
        contact_natural_frequency: 15.0,
        contact_damping_ratio: 1.0,
        mujoco_limits: true,
        mujoco_contacts: true,
        euler_integrator: true,
        rk4_integrator: false,
        mujoco_euler: true,
    }
}
