//! Adapter to the `gymnasium_rs` crate's `Env` trait (feature `gymnasium`).
//!
//! [`GymnasiumAdapter`] makes any `Box<dyn Env>` usable where a
//! `gymnasium_rs::core::Env<Array1<f32>, Array1<f32>>` is wanted (ndarray 0.15 arrays, as that
//! crate's `Space::Box` uses).
//!
//! | ours                         | gymnasium_rs                                              |
//! |------------------------------|-----------------------------------------------------------|
//! | `BoxSpace`                   | `Space::Box { low, high }`                                |
//! | `reset(Option<u64>)`         | `reset(Option<i32>, options)`: a seed `s` becomes `s as u32 as u64` (negative seeds are taken as their 32-bit pattern); options are not used and are listed under `ignored_options` in info |
//! | `Step { reward: f64, .. }`   | `(obs, reward as f32, terminated, truncated, info)`       |
//! | `Info` (`f64` values)        | `HashMap<String, serde_json::Value>` (NaN/inf become `null`) |
//! | `planar_scene()` + `render`  | `render()`: a 256 × 256 `[H, W, 3]` image, or `None`      |
//!
//! The trait has no `Result`, so the adapter never panics on an environment error. Instead:
//! * a failed `step` (wrong action length, NaN action, physics blow-up, step after the end)
//!   returns the last good observation, reward 0, `terminated = false`, `truncated = true`, and
//!   the message under `"error"` in info: the episode is over and the caller resets;
//! * a failed `reset` returns an all-zero observation and `"error"` in info;
//! * the error itself is kept in [`GymnasiumAdapter::last_error`].

use std::collections::HashMap;

use gymnasium_rs::core::{Env as GymEnv, Info as GymInfo, Options, Reward, Space};
use ndarray015::{Array1, Array3};
use serde_json::Value;

use crate::env::{BoxSpace, Env, Info};
use crate::error::EnvError;

/// Side length of the images returned by `render()`.
pub const RENDER_SIZE: u32 = 256;

/// Wraps one of our environments for `gymnasium_rs`.
pub struct GymnasiumAdapter {
    env: Box<dyn Env>,
    last_obs: Vec<f32>,
    last_error: Option<EnvError>,
}

fn to_space(b: &BoxSpace) -> Space {
    Space::Box { low: Array1::from(b.low.clone()), high: Array1::from(b.high.clone()) }
}

fn to_info(info: &Info) -> GymInfo {
    info.iter().map(|(k, v)| (k.to_string(), Value::from(v))).collect()
}

impl GymnasiumAdapter {
    /// Wraps `env`.
    pub fn new(env: Box<dyn Env>) -> Self {
        let last_obs = vec![0.0; env.observation_space().dim()];
        GymnasiumAdapter { env, last_obs, last_error: None }
    }

    /// The error of the last `reset` or `step`, if it failed (cleared by the next success).
    pub fn last_error(&self) -> Option<&EnvError> {
        self.last_error.as_ref()
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &dyn Env {
        self.env.as_ref()
    }

    /// The wrapped environment, mutably.
    pub fn inner_mut(&mut self) -> &mut Box<dyn Env> {
        &mut self.env
    }

    /// Unwraps.
    pub fn into_inner(self) -> Box<dyn Env> {
        self.env
    }
}

impl GymEnv<Array1<f32>, Array1<f32>> for GymnasiumAdapter {
    fn observation_space(&self) -> Space {
        to_space(self.env.observation_space())
    }

    fn action_space(&self) -> Space {
        to_space(self.env.action_space())
    }

    fn reset(&mut self, seed: Option<i32>, options: Options) -> (Array1<f32>, GymInfo) {
        let mut ignored: Vec<&String> = options.keys().collect();
        ignored.sort();
        let ignored = Value::from(ignored.into_iter().cloned().collect::<Vec<String>>());
        match self.env.reset(seed.map(|s| s as u32 as u64)) {
            Ok((obs, info)) => {
                self.last_error = None;
                self.last_obs = obs.clone();
                let mut info = to_info(&info);
                if !options.is_empty() {
                    info.insert("ignored_options".into(), ignored);
                }
                (Array1::from(obs), info)
            }
            Err(e) => {
                let zeros = vec![0.0; self.env.observation_space().dim()];
                self.last_obs = zeros.clone();
                let mut info = HashMap::new();
                info.insert("error".to_string(), Value::from(e.to_string()));
                self.last_error = Some(e);
                (Array1::from(zeros), info)
            }
        }
    }

    fn step(&mut self, action: Array1<f32>) -> (Array1<f32>, Reward, bool, bool, GymInfo) {
        let action = action.to_vec();
        match self.env.step(&action) {
            Ok(s) => {
                self.last_error = None;
                self.last_obs = s.obs.clone();
                (Array1::from(s.obs), s.reward as f32, s.terminated, s.truncated, to_info(&s.info))
            }
            Err(e) => {
                let mut info = HashMap::new();
                info.insert("error".to_string(), Value::from(e.to_string()));
                self.last_error = Some(e);
                (Array1::from(self.last_obs.clone()), 0.0, false, true, info)
            }
        }
    }

    fn render(&self) -> Option<Array3<u8>> {
        let scene = self.env.planar_scene()?;
        let rgb = crate::render::render_rgb(&scene, RENDER_SIZE, RENDER_SIZE);
        Array3::from_shape_vec((RENDER_SIZE as usize, RENDER_SIZE as usize, 3), rgb).ok()
    }

    fn close(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EnvConfig;

    fn swimmer() -> GymnasiumAdapter {
        GymnasiumAdapter::new(crate::registry::make("Swimmer-v5", &EnvConfig::new()).unwrap())
    }

    #[test]
    fn spaces_reset_and_step_match_the_wrapped_env() {
        let mut g = swimmer();
        let mut ours = crate::registry::make("Swimmer-v5", &EnvConfig::new()).unwrap();
        match (GymEnv::observation_space(&g), GymEnv::action_space(&g)) {
            (Space::Box { low: ol, .. }, Space::Box { low, high }) => {
                assert_eq!(ol.len(), ours.observation_space().dim());
                assert_eq!(low.to_vec(), ours.action_space().low);
                assert_eq!(high.to_vec(), ours.action_space().high);
            }
            other => panic!("expected boxes, got {other:?}"),
        }
        let (o, _) = g.reset_seed(3);
        let (o2, _) = ours.reset(Some(3)).unwrap();
        assert_eq!(o.to_vec(), o2);
        for t in 0..5 {
            let a = vec![0.3 * t as f32 - 0.5, 0.2];
            let (obs, r, term, trunc, info) = g.step(Array1::from(a.clone()));
            let s = ours.step(&a).unwrap();
            assert_eq!(obs.to_vec(), s.obs);
            assert_eq!(r, s.reward as f32);
            assert_eq!((term, trunc), (s.terminated, s.truncated));
            for (k, v) in &s.info {
                assert_eq!(info[k].as_f64(), Some(v), "{k}");
            }
        }
        let img = g.render().expect("swimmer renders");
        assert_eq!(img.shape(), &[256, 256, 3]);
    }

    #[test]
    fn errors_end_the_episode_without_panicking() {
        let mut g = swimmer();
        // Before reset: the time limit refuses the step.
        let (obs, r, term, trunc, info) = g.step(Array1::from(vec![0.0, 0.0]));
        assert!(trunc && !term && r == 0.0);
        assert!(info["error"].as_str().unwrap().contains("reset"));
        assert!(matches!(g.last_error(), Some(EnvError::NeedsReset(_))));
        assert_eq!(obs.len(), 8);
        let (first, _) = g.reset(Some(-1), HashMap::from([("low".to_string(), Value::from(0.1))]));
        assert!(g.last_error().is_none());
        // Wrong action length: last observation back, truncated, error in info.
        let (obs, _, _, trunc, info) = g.step(Array1::from(vec![0.0; 3]));
        assert!(trunc);
        assert_eq!(obs, first);
        assert!(matches!(g.last_error(), Some(EnvError::ActionShape { expected: 2, found: 3 })));
        assert!(info.contains_key("error"));
        // NaN action: same.
        let (_, _, _, trunc, _) = g.step(Array1::from(vec![f32::NAN, 0.0]));
        assert!(trunc);
        assert!(matches!(g.last_error(), Some(EnvError::NonFiniteAction { .. })));
    }

    #[test]
    fn seeds_and_options_are_mapped() {
        let mut g = swimmer();
        let (a, info) = g.reset(Some(-1), HashMap::from([("low".to_string(), Value::from(0.1))]));
        assert_eq!(info["ignored_options"], Value::from(vec!["low".to_string()]));
        let mut ours = crate::registry::make("Swimmer-v5", &EnvConfig::new()).unwrap();
        let (b, _) = ours.reset(Some(u32::MAX as u64)).unwrap();
        assert_eq!(a.to_vec(), b);
    }
}
