//! Walker2d-v5: MuJoCo's planar biped, from the MJCF file `walker2d_v5.xml` through rapier3d-mjcf; a
//! [`crate::locomotion::Locomotion`] (see there for the observation, reward, health and reset shared with HalfCheetah
//! and Hopper).
//!
//! Faithful to Gymnasium 1.4.0's `walker2d_v5.py` in its spaces, reward terms, health, termination,
//! reset and options; the dynamics are measured against reference rollouts of the real MuJoCo
//! (`tests/walker2d.rs`, the README's locomotion section).
//!
//! ## Model (`models/walker2d_v5.xml`)
//! | part | value |
//! |---|---|
//! | root | slides `rootx`, `rootz` (ref 1.25) and hinge `rooty`, torso at z = 1.25 |
//! | body | torso and two legs of thigh, leg and foot capsules (density 1000) |
//! | joints | thighs and legs in [−150°, 0], feet in [−45°, 45°], about −y; armature 0.01, damping 0.1 |
//! | actuators | torques 100 · clip(a, −1, 1) |
//! | contacts | body geoms against the floor only, friction 0.9 (feet 1.9) |
//! | time | timestep 0.002 s (MuJoCo: RK4), `frame_skip` = 4 → dt = 0.008 s |
//!
//! ## Spaces, reward, end
//! action (6,) in [−1, 1]; observation (17,): qpos[1..9], clip(qvel, −10, 10). Reward
//! `x_velocity + healthy_reward · healthy − 1e-3 · |a|²`; info adds `z_distance_from_origin` and
//! `reward_survive`. Healthy: 0.8 < rootz < 2, |rooty| < 1; `terminated` when unhealthy. The
//! registry's `TimeLimit` truncates after 1000 steps.
//!
//! ## Options (`make("Walker2d-v5", config)`)
//! | key | default | meaning |
//! |---|---|---|
//! | `xml_file` | `"walker2d_v5.xml"` | a shipped model's name or a path to an MJCF file (nine DoFs, six actuators) |
//! | `frame_skip` | 4 | physics steps of `timestep` per env step |
//! | `forward_reward_weight` | 1.0 | weight of the forward velocity |
//! | `ctrl_cost_weight` | 1e-3 | weight of the control cost |
//! | `healthy_reward` | 1.0 | reward per healthy step |
//! | `terminate_when_unhealthy` | true | end the episode when unhealthy |
//! | `healthy_z_range` | `"0.8,2"` | bounds of rootz |
//! | `healthy_angle_range` | `"-1,1"` | bounds of rooty |
//! | `reset_noise_scale` | 5e-3 | qpos and qvel noise U(−s, s) |
//! | `exclude_current_positions_from_observation` | true | leave rootx out of the observation |
//! | `timestep`, `substeps`, `solver_iterations` | 0.002, 1, 1 | Rapier's step |
//! | `limit_natural_frequency`, `limit_damping_ratio` | 30, 1.0 | softness of the joint limits (MuJoCo's default `solimp` makes them nearly hard; 30 Hz matched the reference rollouts' time past the limits, README) |
//! | `contact_natural_frequency`, `contact_damping_ratio` | 15, 1.0 | softness of the contacts |
//! | `mujoco_limits` | true | as for Hopper-v5 |
//! | `mujoco_contacts` | true | as for Hopper-v5 |
//! | `euler_integrator` | false | as for Hopper-v5 |
//! | `rk4_integrator` | true | as for Hopper-v5 (without it 1.9–3.7 % per step) |
//! | `mujoco_euler` | false | as for Hopper-v5 |

use crate::locomotion::{Health, LocomotionConfig, Spec, VelocityNoise};

/// Registry id.
pub const ID: &str = "Walker2d-v5";
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
    nq: 9,
    nu: 6,
    max_episode_steps: MAX_EPISODE_STEPS,
    velocity_noise: VelocityNoise::Uniform,
    clip_qvel: Some(10.0),
    defaults,
};

/// Gymnasium's defaults; contacts as for HalfCheetah-v5, stiffer joint limits (30 Hz, chosen against
/// MuJoCo: README, "The MuJoCo locomotion suite").
pub fn defaults() -> LocomotionConfig {
    LocomotionConfig {
        xml_file: "walker2d_v5.xml".into(),
        health: Some(Health {
            healthy_reward: 1.0,
            terminate_when_unhealthy: true,
            healthy_state_range: None,
            healthy_z_range: (0.8, 2.0),
            healthy_angle_range: (-1.0, 1.0),
        }),
        // the rest as Hopper-v5's (Gymnasium's defaults are the same)
        ..crate::hopper::defaults()
    }
}
