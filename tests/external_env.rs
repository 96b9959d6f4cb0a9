//! An environment defined outside the envs crate, following docs/adding-an-environment.md: a
//! planar Rapier puck pushed by two thrusters towards the origin. It is registered from here and
//! trained end to end with REBEL, which must improve its return.

use rapier3d::prelude::*;
use rebel_agents::algos::rebel::RebelConfig;
use rebel_agents::train::{train, RunOptions, TrainConfig};
use rebel_envs::{check_action, registry, BoxSpace, Env, EnvConfig, EnvError, Info, PlanarScene, Snapshot, Step};

const ID: &str = "Puck-v0";
/// Seconds per env step (2 Rapier steps of 0.025 s).
const DT: f64 = 0.05;
/// Thruster force per unit action, N.
const GAIN: f64 = 2.0;

/// The complete state: Rapier sets, generator, counters.
#[derive(Clone)]
struct State {
    bodies: RigidBodySet,
    multibody_joints: MultibodyJointSet,
    islands: IslandManager,
    rng_state: u64,
    started: bool,
}

struct Puck {
    world: PhysicsWorld,
    puck: RigidBodyHandle,
    rng_state: u64,
    started: bool,
    obs_space: BoxSpace,
    act_space: BoxSpace,
}

fn uniform(state: &mut u64) -> f64 {
    // SplitMix64: a tiny seeded generator, part of the snapshot
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

impl Puck {
    fn new(config: &EnvConfig) -> Result<Self, EnvError> {
        config.reader(ID).finish()?; // no options: reject any key
        let (world, puck) = Self::build([0.0, 0.0]);
        Ok(Puck {
            world,
            puck,
            rng_state: 0,
            started: false,
            obs_space: BoxSpace::uniform(4, f32::NEG_INFINITY, f32::INFINITY),
            act_space: BoxSpace::uniform(2, -1.0, 1.0),
        })
    }

    fn build(pos: [f64; 2]) -> (PhysicsWorld, RigidBodyHandle) {
        let mut world = PhysicsWorld::new();
        world.gravity = Vector::ZERO;
        world.integration_parameters.dt = (DT / 2.0) as Real;
        let anchor = world.insert_body(RigidBodyBuilder::fixed());
        let puck = world.insert_body(
            RigidBodyBuilder::dynamic()
                .translation(Vector::new(pos[0] as Real, pos[1] as Real, 0.0))
                .can_sleep(false)
                .additional_mass_properties(MassProperties::new(Vector::ZERO, 1.0, Vector::new(0.1, 0.1, 0.1))),
        );
        // planar root: x and y slide, nothing else
        let planar = GenericJointBuilder::new(
            JointAxesMask::LIN_Z | JointAxesMask::ANG_X | JointAxesMask::ANG_Y | JointAxesMask::ANG_Z,
        )
        .local_anchor1(Vector::new(pos[0] as Real, pos[1] as Real, 0.0))
        .build();
        world.multibody_joints.insert(anchor, puck, planar, true).expect("planar joint");
        (world, puck)
    }

    fn obs(&self) -> Vec<f32> {
        let rb = &self.world.bodies[self.puck];
        let (p, v) = (rb.translation(), rb.linvel());
        vec![p.x, p.y, v.x, v.y]
    }
}

impl Env for Puck {
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
        DT
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError> {
        if let Some(s) = seed {
            self.rng_state = s;
        }
        let pos = [2.0 * uniform(&mut self.rng_state) - 1.0, 2.0 * uniform(&mut self.rng_state) - 1.0];
        (self.world, self.puck) = Self::build(pos);
        self.started = true;
        Ok((self.obs(), Info::new()))
    }
    fn step(&mut self, action: &[f32]) -> Result<Step, EnvError> {
        check_action(&self.act_space, action)?;
        if !self.started {
            return Err(EnvError::NeedsReset("before reset()"));
        }
        let a: Vec<f64> = action.iter().map(|v| (*v as f64).clamp(-1.0, 1.0)).collect();
        for _ in 0..2 {
            let rb = &mut self.world.bodies[self.puck];
            rb.reset_forces(false);
            rb.add_force(Vector::new((GAIN * a[0]) as Real, (GAIN * a[1]) as Real, 0.0), false);
            self.world.step();
        }
        let o = self.obs();
        let dist = ((o[0] as f64).powi(2) + (o[1] as f64).powi(2)).sqrt();
        let mut info = Info::new();
        info.insert("reward_distance", -dist);
        info.insert("reward_ctrl", -0.01 * (a[0] * a[0] + a[1] * a[1]));
        let reward = info["reward_distance"] + info["reward_ctrl"];
        Ok(Step { obs: o, reward, terminated: false, truncated: false, info })
    }
    fn snapshot(&self) -> Snapshot {
        let w = &self.world;
        Snapshot::new(
            ID,
            State {
                bodies: w.bodies.clone(),
                multibody_joints: w.multibody_joints.clone(),
                islands: w.islands.clone(),
                rng_state: self.rng_state,
                started: self.started,
            },
        )
    }
    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), EnvError> {
        let s: &State = snapshot.get(ID)?;
        self.world.bodies = s.bodies.clone();
        self.world.multibody_joints = s.multibody_joints.clone();
        self.world.islands = s.islands.clone();
        self.rng_state = s.rng_state;
        self.started = s.started;
        Ok(())
    }
    fn planar_scene(&self) -> Option<PlanarScene> {
        let o = self.obs();
        let (x, y) = (o[0] as f64, o[1] as f64);
        Some(PlanarScene {
            capsules: vec![rebel_envs::Capsule2 { a: [x, y], b: [x, y], radius: 0.1 }],
            markers: vec![[0.0, 0.0, 0.05]],
            focus: [0.0, 0.0],
            view_half_width: 2.0,
        })
    }
}

fn make_puck(c: &EnvConfig) -> Result<Box<dyn Env>, EnvError> {
    Ok(Box::new(Puck::new(c)?))
}

#[test]
fn an_external_environment_registers_and_trains_end_to_end() {
    registry::register(ID, Some(40), make_puck).unwrap();
    assert!(registry::registered().contains(&ID.to_string()));

    // snapshot/restore is bit-identical, as the guide requires
    let mut env = registry::make(ID, &EnvConfig::new()).unwrap();
    env.reset(Some(3)).unwrap();
    env.step(&[0.5, -0.2]).unwrap();
    let snap = env.snapshot();
    let a: Vec<_> = (0..5).map(|_| env.step(&[1.0, 1.0]).unwrap().obs).collect();
    env.restore(&snap).unwrap();
    let b: Vec<_> = (0..5).map(|_| env.step(&[1.0, 1.0]).unwrap().obs).collect();
    assert_eq!(a, b);

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = TrainConfig::default();
    cfg.env.id = ID.into();
    cfg.env_steps = 60_000;
    cfg.threads = 1;
    cfg.set_algo(&RebelConfig { groups: 8, branch_len: 10, tail_len: 10, ..RebelConfig::default() });
    cfg.eval.episodes = 16;
    cfg.eval.every_iters = 1000;
    let opts = RunOptions { run_dir: Some(dir.path().join("run")), ..RunOptions::default() };
    let s = train(&cfg, &opts).unwrap();
    eprintln!("puck: eval {:.2} -> {:.2}", s.initial_eval_true_return_mean, s.eval_true_return_mean);
    assert_eq!(s.env, ID);
    assert!(dir.path().join("run/summary.json").exists());
    assert!(
        s.eval_true_return_mean > s.initial_eval_true_return_mean + 5.0,
        "REBEL should learn to hold the puck at the origin: {} -> {}",
        s.initial_eval_true_return_mean,
        s.eval_true_return_mean
    );
}
