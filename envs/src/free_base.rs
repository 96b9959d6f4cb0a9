//! What the floating-base environments (Ant-v5, Humanoid-v5) share: the options of their physics and the
//! check of a state set from outside.

use crate::config::ConfigReader;
use crate::error::EnvError;
use crate::mjcf::{MjcfModel, MjcfWorld, RapierSettings};
use crate::rapier_world::validate_rapier_options;

/// The options of a floating-base environment's physics (Ant-v5's, Humanoid-v5's): Rapier's step, its
/// limit and contact softness, and MuJoCo's limit and contact laws (see the Ant's module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct FreeBaseOptions {
    pub timestep: f64,
    pub substeps: usize,
    pub solver_iterations: usize,
    pub limit_natural_frequency: f64,
    pub limit_damping_ratio: f64,
    pub contact_natural_frequency: f64,
    pub contact_damping_ratio: f64,
    pub contact_margin: f64,
    pub mujoco_limits: bool,
    /// MuJoCo's soft contacts with the floor instead of Rapier's (see `MjcfWorld::set_mujoco_contacts`).
    pub mujoco_contacts: bool,
    /// Each step MuJoCo's RK4 step, without Rapier's (see `MjcfWorld::set_rk4_integrator`).
    pub rk4_integrator: bool,
}

impl Default for FreeBaseOptions {
    /// The Ant's settings, chosen against MuJoCo (README, "The MuJoCo locomotion suite").
    fn default() -> Self {
        FreeBaseOptions {
            timestep: 0.01,
            substeps: 2,
            solver_iterations: 1,
            limit_natural_frequency: 10.0,
            limit_damping_ratio: 1.0,
            contact_natural_frequency: 10.0,
            contact_damping_ratio: 1.0,
            contact_margin: 0.01,
            mujoco_limits: true,
            mujoco_contacts: true,
            rk4_integrator: false,
        }
    }
}

impl FreeBaseOptions {
    /// Reads the options' keys from `r`, `d` giving the defaults. Where `rk4_integrator` is given against its
    /// default, `substeps` defaults to that integrator's: 1 for MuJoCo's RK4 step (one RK4 step of `timestep`, as
    /// MuJoCo takes it), [`FreeBaseOptions::default`]'s for Rapier's.
    pub fn read(r: &mut ConfigReader, d: &FreeBaseOptions) -> Result<Self, EnvError> {
        let rk4_integrator = r.bool("rk4_integrator", d.rk4_integrator)?;
        let substeps = match (rk4_integrator, d.rk4_integrator) {
            (true, false) => 1,
            (false, true) => FreeBaseOptions::default().substeps,
            _ => d.substeps,
        };
        let o = FreeBaseOptions {
            timestep: r.nonneg_f64("timestep", d.timestep)?,
            substeps: r.usize_in("substeps", substeps, 1, 100)?,
            solver_iterations: r.usize_in("solver_iterations", d.solver_iterations, 1, 100)?,
            limit_natural_frequency: r.nonneg_f64("limit_natural_frequency", d.limit_natural_frequency)?,
            limit_damping_ratio: r.nonneg_f64("limit_damping_ratio", d.limit_damping_ratio)?,
            contact_natural_frequency: r.nonneg_f64("contact_natural_frequency", d.contact_natural_frequency)?,
            contact_damping_ratio: r.nonneg_f64("contact_damping_ratio", d.contact_damping_ratio)?,
            contact_margin: r.nonneg_f64("contact_margin", d.contact_margin)?,
            mujoco_limits: r.bool("mujoco_limits", d.mujoco_limits)?,
            mujoco_contacts: r.bool("mujoco_contacts", d.mujoco_contacts)?,
            rk4_integrator,
        };
        // Rapier's contact softness still acts on the contacts of body against body
        crate::locomotion::mark_limits_inert(r, o.mujoco_limits, &[(o.rk4_integrator, "rk4_integrator=false")]);
        Ok(o)
    }

    /// Errors for values out of range, naming environment `env`.
    pub fn validate(&self, env: &str) -> Result<(), EnvError> {
        validate_rapier_options(env, self.timestep, self.limit_natural_frequency)?;
        let bad = |key: &str, msg: &str| EnvError::BadOption { env: env.into(), key: key.into(), msg: msg.into() };
        if self.contact_natural_frequency <= 0.0 {
            return Err(bad("contact_natural_frequency", "must be > 0 Hz (larger is stiffer)"));
        }
        if self.contact_margin > 0.1 {
            return Err(bad("contact_margin", "must be in [0, 0.1] m"));
        }
        Ok(())
    }

    /// `model`'s world with these settings (for environment `env`, whose error a model MuJoCo's contact
    /// law cannot simulate is).
    pub fn build(&self, model: &MjcfModel, env: &str) -> Result<MjcfWorld, EnvError> {
        let settings = RapierSettings {
            timestep: self.timestep,
            substeps: self.substeps,
            solver_iterations: self.solver_iterations,
            limit_natural_frequency: self.limit_natural_frequency,
            limit_damping_ratio: self.limit_damping_ratio,
            limit_projection: false,
            contact: Some([self.contact_natural_frequency, self.contact_damping_ratio]),
        };
        let mut sim = MjcfWorld::build(model, &settings);
        sim.set_contact_margin(self.contact_margin);
        if self.mujoco_limits {
            sim.set_mujoco_limits(model, self.timestep);
        }
        if self.mujoco_contacts {
            sim.use_mujoco_contacts(model, env)?;
        }
        sim.use_rk4_integrator(self.rk4_integrator, env, "mujoco_contacts=true and mujoco_limits=true")?;
        Ok(sim)
    }
}

/// Error unless `qpos`, `qvel` are `model`'s sizes and finite (environment `env`'s `set_state`).
pub fn check_state(env: &str, model: &MjcfModel, qpos: &[f64], qvel: &[f64]) -> Result<(), EnvError> {
    let (nq, nv) = (model.nq(), model.nv());
    if qpos.len() != nq || qvel.len() != nv || !qpos.iter().chain(qvel).all(|x| x.is_finite()) {
        return Err(EnvError::BadOption {
            env: env.into(),
            key: "state".into(),
            msg: format!("qpos and qvel need {nq} and {nv} finite values, got {} and {}", qpos.len(), qvel.len()),
        });
    }
    Ok(())
}
