//! An environment defined outside the crate is registered, made through `make` (with its time
//! limit), vectorised and rendered like a built-in one.

use rebel_envs::render::render_rgb;
use rebel_envs::{
    check_action, make, register, registered, BoxSpace, Capsule2, ConfigValue, Env, EnvConfig, EnvError, Info,
    PlanarScene, Snapshot, Step, VecEnv,
};

/// A unit mass on a spring (stiffness `k`, option `stiffness`, default 4), pushed by a force in
/// [-1, 1]; semi-implicit Euler, dt 0.02. Reward `-x^2 - 0.01 a^2` as terms `reward_pos` and
/// `reward_ctrl`. Start `x = 1`, `v = 0` (deterministic). Never terminates.
struct Spring {
    k: f64,
    x: f64,
    v: f64,
    obs_space: BoxSpace,
    act_space: BoxSpace,
}

const ID: &str = "ExternalSpring-v0";

impl Spring {
    fn make(config: &EnvConfig) -> Result<Box<dyn Env>, EnvError> {
        let mut r = config.reader(ID);
        let k = r.nonneg_f64("stiffness", 4.0)?;
        r.finish()?;
        Ok(Box::new(Spring {
            k,
            x: 1.0,
            v: 0.0,
            obs_space: BoxSpace::uniform(2, f32::NEG_INFINITY, f32::INFINITY),
            act_space: BoxSpace::uniform(1, -1.0, 1.0),
        }))
    }
}

impl Env for Spring {
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
        0.02
    }
    fn reset(&mut self, _seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError> {
        self.x = 1.0;
        self.v = 0.0;
        Ok((vec![1.0, 0.0], Info::new()))
    }
    fn step(&mut self, action: &[f32]) -> Result<Step, EnvError> {
        check_action(&self.act_space, action)?;
        let a = action[0].clamp(-1.0, 1.0) as f64;
        self.v += (a - self.k * self.x) * self.dt();
        self.x += self.v * self.dt();
        let mut info = Info::new();
        info.insert("reward_pos", -self.x * self.x);
        info.insert("reward_ctrl", -0.01 * a * a);
        Ok(Step {
            obs: vec![self.x as f32, self.v as f32],
            reward: -self.x * self.x - 0.01 * a * a,
            terminated: false,
            truncated: false,
            info,
        })
    }
    fn snapshot(&self) -> Snapshot {
        Snapshot::new(ID, (self.x, self.v))
    }
    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), EnvError> {
        let (x, v) = *snapshot.get::<(f64, f64)>(ID)?;
        self.x = x;
        self.v = v;
        Ok(())
    }
    fn planar_scene(&self) -> Option<PlanarScene> {
        Some(PlanarScene {
            capsules: vec![Capsule2 { a: [0.0, 0.0], b: [self.x, 0.0], radius: 0.05 }],
            markers: vec![[self.x, 0.0, 0.1]],
            focus: [0.0, 0.0],
            view_half_width: 1.5,
        })
    }
}

#[test]
fn external_env_is_made_wrapped_and_vectorised() {
    register(ID, Some(20), Spring::make).unwrap();
    assert!(registered().iter().any(|id| id == ID));
    assert!(registered().iter().any(|id| id == "Swimmer-v5"));
    assert!(matches!(register(ID, Some(20), Spring::make), Err(EnvError::AlreadyRegistered(_))));

    // Options reach the constructor; the time limit comes from the registration.
    let cfg = EnvConfig::new().with("stiffness", ConfigValue::Float(9.0));
    let mut env = make(ID, &cfg).unwrap();
    assert_eq!(env.max_episode_steps(), Some(20));
    env.reset(None).unwrap();
    // With k = 9 and no force, x(t) = cos(3t): after 20 steps (0.4 s), cos(1.2) ≈ 0.362.
    let mut last = None;
    for t in 1..=20 {
        let s = env.step(&[0.0]).unwrap();
        assert_eq!(s.reward, s.info["reward_pos"] + s.info["reward_ctrl"]);
        assert_eq!(s.truncated, t == 20);
        assert!(!s.terminated);
        last = Some(s);
    }
    let x = last.unwrap().obs[0] as f64;
    assert!((x - 1.2f64.cos()).abs() < 0.03, "x = {x}");
    assert!(matches!(env.step(&[0.0]), Err(EnvError::NeedsReset(_))));
    assert!(matches!(
        make(ID, &EnvConfig::new().with("damping", ConfigValue::Float(1.0))),
        Err(EnvError::UnknownOption { key, .. }) if key == "damping"
    ));

    // Vectorised, with auto-reset at the registered limit, overridden to 5 steps.
    let cfg5 = EnvConfig::new().with("max_episode_steps", ConfigValue::Int(5));
    let mut v = VecEnv::make(ID, &cfg5, 3, 2).unwrap();
    assert_eq!((v.num_envs(), v.obs_dim(), v.act_dim()), (3, 2, 1));
    v.reset(Some(0)).unwrap();
    for t in 1..=5 {
        let s = v.step(&[1.0, 0.0, -1.0]).unwrap();
        assert_eq!(s.truncated, vec![t == 5; 3]);
        if t == 5 {
            assert!(s.final_obs.iter().all(|f| f.is_some()));
            assert_eq!(s.obs, vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0], "restarted at x = 1");
        }
    }

    // Rendering works on any planar env.
    let img = render_rgb(&env.planar_scene().unwrap(), 30, 20);
    assert_eq!(img.len(), 30 * 20 * 3);
}
