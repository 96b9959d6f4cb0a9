//! What the MuJoCo-style environments on Rapier share: the snapshot of a world's state, and the
//! Rapier-specific options (`timestep`, `substeps`, `solver_iterations`, joint-limit softness)
//! with their validation.

use rapier3d::prelude::*;

use crate::error::EnvError;

/// The evolving part of a [`PhysicsWorld`]: every state set. The pipelines are workspaces and
/// are not part of it; a world restored from a `WorldState` continues bit-identically.
#[derive(Clone)]
pub struct WorldState {
    bodies: RigidBodySet,
    colliders: ColliderSet,
    impulse_joints: ImpulseJointSet,
    multibody_joints: MultibodyJointSet,
    islands: IslandManager,
    broad_phase: BroadPhaseBvh,
    narrow_phase: NarrowPhase,
    ccd_solver: CCDSolver,
}

impl WorldState {
    /// Copies the state of `w`.
    pub fn capture(w: &PhysicsWorld) -> Self {
        WorldState {
            bodies: w.bodies.clone(),
            colliders: w.colliders.clone(),
            impulse_joints: w.impulse_joints.clone(),
            multibody_joints: w.multibody_joints.clone(),
            islands: w.islands.clone(),
            broad_phase: w.broad_phase.clone(),
            narrow_phase: w.narrow_phase.clone(),
            ccd_solver: w.ccd_solver.clone(),
        }
    }

    /// Puts this state into `w`.
    pub fn restore_into(self, w: &mut PhysicsWorld) {
        let s = self;
        w.bodies = s.bodies;
        w.colliders = s.colliders;
        w.impulse_joints = s.impulse_joints;
        w.multibody_joints = s.multibody_joints;
        w.islands = s.islands;
        w.broad_phase = s.broad_phase;
        w.narrow_phase = s.narrow_phase;
        w.ccd_solver = s.ccd_solver;
    }
}

/// Checks the Rapier options after reading: `timestep` in (0, 0.1] s and a positive limit
/// frequency.
pub fn validate_rapier_options(env: &str, timestep: f64, limit_natural_frequency: f64) -> Result<(), EnvError> {
    if timestep <= 0.0 || timestep > 0.1 {
        return Err(EnvError::BadOption {
            env: env.into(),
            key: "timestep".into(),
            msg: format!("must be in (0, 0.1] s, got {timestep}"),
        });
    }
    if limit_natural_frequency <= 0.0 {
        return Err(EnvError::BadOption {
            env: env.into(),
            key: "limit_natural_frequency".into(),
            msg: "must be > 0 (use a large value such as 1e6 for hard limits)".into(),
        });
    }
    Ok(())
}

/// Sets a world's step: `timestep / substeps` seconds, `solver_iterations` solver substeps, no CCD.
pub fn configure_integration(p: &mut IntegrationParameters, timestep: f64, substeps: usize, solver_iterations: usize) {
    p.dt = (timestep / substeps as f64) as Real;
    p.num_solver_iterations = solver_iterations;
    p.max_ccd_substeps = 0;
}
