//! Hopper-v5: MuJoCo's one-legged hopper, from the MJCF file `hopper.xml` through rapier3d-mjcf; a
//! [`crate::locomotion::Locomotion`] (see there for the observation, reward, health and reset shared with HalfCheetah
//! and Walker2d).
//!
//! Faithful to Gymnasium 1.4.0's `hopper_v5.py` in its spaces, reward terms, health, termination,
//! reset and options; the dynamics are measured against reference rollouts of the real MuJoCo
//! (`tests/hopper.rs`, the README's locomotion section).
//!
//! ## Model (`models/hopper.xml`)
//! | part | value |
//! |---|---|
//! | root | slides `rootx`, `rootz` (ref 1.25: qpos[1] = 1.25 at rest) and hinge `rooty`, torso at z = 1.25 |
//! | body | torso, thigh, leg and foot capsules (density 1000) |
//! | joints | `thigh_joint`, `leg_joint` in [−150°, 0], `foot_joint` in [−45°, 45°], about −y; armature 1, damping 1 |
//! | actuators | torques 200 · clip(a, −1, 1) |
//! | contacts | every geom against the floor and the others (not parent–child), friction 0.9 (foot 2.0) |
//! | time | timestep 0.002 s (MuJoCo: RK4), `frame_skip` = 4 → dt = 0.008 s |
//!
//! ## Spaces, reward, end
//! action (3,) in [−1, 1]; observation (11,): qpos[1..6], clip(qvel, −10, 10). Reward
//! `x_velocity + healthy_reward · healthy − 1e-3 · |a|²`; info adds `z_distance_from_origin` and
//! `reward_survive`. Healthy: rootz > 0.7, |rooty| < 0.2, every entry of (qpos[2..], qvel) in
//! (−100, 100); `terminated` when unhealthy. The registry's `TimeLimit` truncates after 1000 steps.
//!
//! ## Options (`make("Hopper-v5", config)`)
//! | key | default | meaning |
//! |---|---|---|
//! | `xml_file` | `"hopper.xml"` | a shipped model's name or a path to an MJCF file (six DoFs, three actuators) |
//! | `frame_skip` | 4 | physics steps of `timestep` per env step |
//! | `forward_reward_weight` | 1.0 | weight of the forward velocity |
//! | `ctrl_cost_weight` | 1e-3 | weight of the control cost |
//! | `healthy_reward` | 1.0 | reward per healthy step |
//! | `terminate_when_unhealthy` | true | end the episode when unhealthy |
//! | `healthy_state_range` | `"-100,100"` | bounds of qpos[2..] and qvel |
//! | `healthy_z_range` | `"0.7,inf"` | bounds of rootz |
//! | `healthy_angle_range` | `"-0.2,0.2"` | bounds of rooty |
//! | `reset_noise_scale` | 5e-3 | qpos and qvel noise U(−s, s) |
//! | `exclude_current_positions_from_observation` | true | leave rootx out of the observation |
//! | `timestep`, `substeps`, `solver_iterations` | 0.002, 1, 1 | Rapier's step |
//! | `limit_natural_frequency`, `limit_damping_ratio` | 30, 1.0 | softness of Rapier's joint limits, with `mujoco_limits = false` (MuJoCo's default `solimp` makes them nearly hard; 30 Hz matched the reference rollouts' time past the limits, README) |
//! | `contact_natural_frequency`, `contact_damping_ratio` | 15, 1.0 | softness of Rapier's contacts (between body geoms; with `mujoco_contacts = false` also with the floor) |
//! | `mujoco_limits` | true | MuJoCo's soft-limit law (MuJoCo's default solreflimit, solimplimit) instead of Rapier's limits |
//! | `mujoco_contacts` | true | MuJoCo's soft-contact law against the floor (the model's geom solref, solimp, margin, condim; `MjcfWorld::set_mujoco_contacts`) instead of Rapier's contacts; with `mujoco_limits` the closest to MuJoCo measured (README) |
//! | `euler_integrator` | false | each Rapier step MuJoCo's `Euler` step (Coriolis terms explicit; `MjcfWorld::set_euler_integrator`). The model integrates with RK4 in MuJoCo, whose 2 ms steps it changes little (median one-step errors −20 % to +9 % of without; README) |
//! | `mujoco_euler` | false | each step MuJoCo's `Euler` step taken whole, without Rapier's step (`MjcfWorld::set_mujoco_euler`; the HalfCheetah's default): not this model's integrator, which is RK4; needs `rk4_integrator = false` |
//! | `rk4_integrator` | true | each step MuJoCo's own `RK4` step, the model's integrator, without Rapier's step (the constraint forces solved at each of its four stages; `MjcfWorld::set_rk4_integrator`): each step from MuJoCo's states within 1e-4 of MuJoCo's, the open-loop sequences replayed whole (0.3–1.2 % per step and 1e-3 before the first contact without); needs `mujoco_contacts`, `mujoco_limits` and `euler_integrator = false` |

use crate::locomotion::{Health, LocomotionConfig, Spec, VelocityNoise};

/// Registry id.
pub const ID: &str = "Hopper-v5";
/// Episode length of the registered environment (Gymnasium's `max_episode_steps`).
pub const MAX_EPISODE_STEPS: usize = 1000;

/// The history of this environment's dynamics, one line per revision (see
/// [`crate::registry::register_with_history`]): add a line when a change makes the same options step differently
/// (`envs/tests/dynamics_revisions.rs` fails until one is added).
pub const DYNAMICS_HISTORY: &[&str] = &[
    crate::registry::FIRST_REVISION,
    "session 28: MuJoCo's own RK4 step by default (rk4_integrator = true), the model's integrator, where revision 1 took \
     Rapier's semi-implicit step; --env-opt rk4_integrator=false steps as revision 1 did",
];

/// The environment's shape and defaults.
pub const SPEC: Spec = Spec {
    id: ID,
    nq: 6,
    nu: 3,
    max_episode_steps: MAX_EPISODE_STEPS,
    velocity_noise: VelocityNoise::Uniform,
    clip_qvel: Some(10.0),
    defaults,
};

/// Gymnasium's defaults; MuJoCo's contact and limit laws (`mujoco_contacts`, `mujoco_limits`: the closest to
/// MuJoCo measured, README "MuJoCo's contact and limit laws") and its RK4 step (`rk4_integrator`, since session 28:
/// README "MuJoCo's RK4 step on the Hopper and the Walker2d"; switch it off to use Rapier's contacts or limits). With both off, Rapier's contacts as for
/// HalfCheetah-v5 and stiffer Rapier joint limits (30 Hz, chosen against MuJoCo).
pub fn defaults() -> LocomotionConfig {
    LocomotionConfig {
        xml_file: "hopper.xml".into(),
        frame_skip: 4,
        forward_reward_weight: 1.0,
        ctrl_cost_weight: 1e-3,
        reset_noise_scale: 5e-3,
        exclude_current_positions_from_observation: true,
        health: Some(Health {
            healthy_reward: 1.0,
            terminate_when_unhealthy: true,
            healthy_state_range: Some((-100.0, 100.0)),
            healthy_z_range: (0.7, f64::INFINITY),
            healthy_angle_range: (-0.2, 0.2),
        }),
        timestep: 0.002,
        substeps: 1,
        solver_iterations: 1,
        limit_natural_frequency: 30.0,
        limit_damping_ratio: 1.0,
        contact_natural_frequency: 15.0,
        contact_damping_ratio: 1.0,
        mujoco_limits: true,
        mujoco_contacts: true,
        euler_integrator: false,
        rk4_integrator: true,
        mujoco_euler: false,
    }
}
